# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The base every module of the collection stands on, in the manner of community.docker's
``AnsibleModuleDockerClient``: the option groups merged into the module's own argument spec, the
names it receives refused before anything runs, the clients built when first used, and known
errors turned into ``fail_json`` with everything they know.

module_utils never import ``AnsibleModule`` (the modules are the Ansible face), so the module
hands its class in: ``CanonModule(AnsibleModule, {...}, groups=("abra",), names=("domain",))``.
"""

from __future__ import annotations

import contextlib
import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraClient
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import Evidence, load_redactor
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    NameError_, validate_branch, validate_docker_context, validate_domain, validate_env, validate_forge_name,
    validate_http_url, validate_image, validate_network, validate_recipe, validate_run_id, validate_server,
    validate_service, validate_url_path, validate_version)
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError

ABRA_DEFAULT_DIR = "~/.abra"   # abra's own default when neither abra_dir nor $ABRA_DIR is set


def abra_home(abra_dir: str | None) -> str:
    """The ABRA_DIR the modules read files from: the option (a ``path``, already expanded by
    Ansible), else abra's own default."""
    return abra_dir or os.path.expanduser(ABRA_DEFAULT_DIR)


def abra_options() -> dict:
    """The options of the ``abra`` action group (doc fragment ``coopcloud.canon.abra``): every
    module that runs abra or reads the swarm."""
    return dict(
        abra_bin=dict(type="path", default="abra"),
        abra_dir=dict(type="path", fallback=(env_fallback, ["ABRA_DIR"])),
        server=dict(type="str", default="default"),
        docker_bin=dict(type="path", default="docker"),
        docker_context=dict(type="str", default=""),
        evidence_dir=dict(type="path", fallback=(env_fallback, ["CANON_EVIDENCE_DIR"])),
        redact_file=dict(type="path", fallback=(env_fallback, ["CANON_REDACT_FILE"]), no_log=False),
    )


def canon_options() -> dict:
    """The options of the ``canon`` action group (doc fragment ``coopcloud.canon.canon``): the
    harness modules that keep their records in the state directory."""
    return dict(state_dir=dict(type="path", required=True))


# An action group of meta/runtime.yml: its options (module_defaults hand every one of them to
# every module of the group, so each member takes them all) and the names among them.
GROUPS = {
    "abra": (abra_options, ("server", "docker_context")),
    "canon": (canon_options, ()),
}

# The kinds of name a module may receive, each with its rule from _names. The rules of the second
# set name the option in their message.
NAME_RULES = {
    "recipe": validate_recipe, "domain": validate_domain, "server": validate_server,
    "version": validate_version, "run_id": validate_run_id, "docker_context": validate_docker_context,
    "env": validate_env,
}
NAMED_RULES = {
    "service": validate_service, "network": validate_network, "image": validate_image,
    "http_url": validate_http_url, "url_path": validate_url_path, "forge_name": validate_forge_name,
    "branch": validate_branch,
}


def merge_specs(argument_spec: dict | None, groups=()) -> dict:
    """The groups' options, then the module's own. An option both in a group and in the module
    is refused: module_defaults for the group would hand the module a value it reads otherwise."""
    spec = {}
    for group in groups:
        if group not in GROUPS:
            raise ValueError("no option group %r (known: %s)" % (group, ", ".join(sorted(GROUPS))))
        for option, entry in GROUPS[group][0]().items():
            if option in spec:
                raise ValueError("option %s is in two groups" % option)
            spec[option] = entry
    for option, entry in (argument_spec or {}).items():
        if option in spec:
            raise ValueError("option %s is the module's own and the option group's" % option)
        spec[option] = entry
    return spec


def name_checks(names=(), groups=()) -> list:
    """``[(option, kind)]`` from ``names`` (an option whose kind is its own name, or an
    ``(option, kind)`` pair), then the groups' names not already there."""
    checks = [(n, n) if isinstance(n, str) else tuple(n) for n in names]
    for group in groups:
        checks += [(n, n) for n in GROUPS[group][1] if n not in [c[0] for c in checks]]
    for option, kind in checks:
        if kind not in NAME_RULES and kind not in NAMED_RULES:
            raise ValueError("option %s: no rule for names of kind %r" % (option, kind))
    return checks


def given(value, entry: dict) -> bool:
    """Whether a value is to be checked: None is no value, and so is an empty string for an
    optional option without a default (playbooks pass ``{{ x | default('') }}`` to leave it out)."""
    if value is None:
        return False
    return not (value == "" and not entry.get("required") and entry.get("default") in (None, ""))


def check_names(params: dict, spec: dict, checks) -> None:
    """Raise NameError_ for the first name that breaks its rule; a list option's every element."""
    for option, kind in checks:
        value = params.get(option)
        if not given(value, spec.get(option) or {}):
            continue
        for item in value if isinstance(value, list) else [value]:
            if kind in NAMED_RULES:
                NAMED_RULES[kind](item, option)
            else:
                NAME_RULES[kind](item)


class CanonModule:
    """One module run: ``module`` (the AnsibleModule) built with the merged spec and its names
    checked; ``abra``, ``docker``, ``evidence`` and ``redactor`` built when first used; ``fail``
    and ``failing`` for the errors the module knows."""

    def __init__(self, module_class, argument_spec: dict | None = None, groups=(), names=(), **kwargs):
        self.spec = merge_specs(argument_spec, groups)
        checks = name_checks(names, groups)
        self.module = module_class(argument_spec=self.spec, **kwargs)
        self.params = self.module.params
        self._clients: dict = {}
        try:
            check_names(self.params, self.spec, checks)   # before anything runs
        except NameError_ as exc:
            self.module.fail_json(msg=str(exc))

    @property
    def check_mode(self) -> bool:
        return self.module.check_mode

    @property
    def diff(self) -> bool:
        return self.module._diff

    # -- clients, built when first used ------------------------------------------------------------
    def _client(self, name: str, build):
        if name not in self._clients:
            self._clients[name] = build()
        return self._clients[name]

    @property
    def redactor(self):
        """The run's secret values (``redact_file``), shared by the evidence and abra."""
        return self._client("redactor", lambda: load_redactor(self.params.get("redact_file")))

    @property
    def evidence(self) -> Evidence:
        return self._client("evidence", lambda: Evidence(self.params.get("evidence_dir"), self.redactor))

    @property
    def abra(self) -> AbraClient:
        return self._client("abra", lambda: AbraClient(
            binary=self.params["abra_bin"], abra_dir=self.params.get("abra_dir"), redactor=self.redactor,
            log=self.evidence.log_command))

    @property
    def docker(self) -> DockerClient:
        """The docker CLI on the server's context; NameError_ for a context that is no name."""
        return self._client("docker", lambda: DockerClient(
            binary=self.params["docker_bin"], context=validate_docker_context(self.params.get("docker_context"))))

    @property
    def abra_dir(self) -> str:
        return abra_home(self.params.get("abra_dir"))

    # -- ending ------------------------------------------------------------------------------------
    def exit(self, **result):
        self.module.exit_json(**result)

    def fail(self, error: Exception | None = None, **result):
        """fail_json with everything the error knows - a CommandError's cmd, rc, stdout and
        stderr (an error that says it with ``as_dict``, as a ForgeError does), any other error's
        message - and ``result`` over it."""
        if error is None:
            data = {}
        elif callable(getattr(error, "as_dict", None)):
            data = error.as_dict()
        else:
            data = {"msg": str(error)}
        data.update(result)
        self.module.fail_json(**data)

    @contextlib.contextmanager
    def failing(self, *errors, **result):
        """Inside, a CommandError or one of ``errors`` ends the module through ``fail`` (with
        ``result``). Any other exception is a defect of the harness and stays one: Ansible
        reports its traceback, and the run is a harness error, never a red recipe."""
        try:
            yield
        except (CommandError,) + errors as exc:
            self.fail(exc, **result)
