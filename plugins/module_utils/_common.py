# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every abra-facing module shares, and building the clients from them."""

from __future__ import annotations

import os

from ansible.module_utils.basic import env_fallback

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraClient
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import Evidence, load_redactor
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, validate_docker_context
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError

ABRA_DEFAULT_DIR = "~/.abra"   # abra's own default when neither abra_dir nor $ABRA_DIR is set


def abra_home(abra_dir: str | None) -> str:
    """The ABRA_DIR the modules read files from: the option (a ``path``, already expanded by
    Ansible), else abra's own default."""
    return abra_dir or os.path.expanduser(ABRA_DEFAULT_DIR)


def common_argument_spec() -> dict:
    return dict(
        abra_bin=dict(type="path", default="abra"),
        abra_dir=dict(type="path", fallback=(env_fallback, ["ABRA_DIR"])),
        server=dict(type="str", default="default"),
        docker_bin=dict(type="path", default="docker"),
        docker_context=dict(type="str", default=""),
        evidence_dir=dict(type="path", fallback=(env_fallback, ["CANON_EVIDENCE_DIR"])),
        redact_file=dict(type="path", fallback=(env_fallback, ["CANON_REDACT_FILE"]), no_log=False),
    )


def clients(module) -> tuple:
    p = module.params
    redactor = load_redactor(p.get("redact_file"))
    evidence = Evidence(p.get("evidence_dir"), redactor)
    abra = AbraClient(binary=p["abra_bin"], abra_dir=p.get("abra_dir"), redactor=redactor,
                      log=evidence.log_command)
    try:
        context = validate_docker_context(p.get("docker_context"))
    except NameError_ as exc:   # before any command runs
        module.fail_json(msg=str(exc))
    docker = DockerClient(binary=p["docker_bin"], context=context)
    return abra, docker, evidence


def fail_from(module, exc: Exception, **extra):
    """Fail with everything a CommandError knows (cmd, rc, stdout, stderr)."""
    if isinstance(exc, CommandError):
        data = exc.as_dict()
        data.update(extra)
        module.fail_json(**data)
    module.fail_json(msg=str(exc), **extra)
