# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An app's observed state, and the plan that takes it to a wanted state.

Read (the ``.env`` and the swarm) -> compare -> act: :func:`plan` is pure, so which abra
commands a state change needs is unit-tested without running anything.
"""

from __future__ import annotations

import os
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import (
    AbraError, env_file_path, fata_message, read_env_file)
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import STACK_LABEL
from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import env_line, parse_env
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Result
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import version_key

STATES = ("present", "deployed", "undeployed", "absent")

# docker's stack removal (``docker stack rm``, and abra's copy of it) removes the services and then
# at once the networks; a task that is still stopping holds its network, and the removal fails
# with "network <id> is in use by task <id>" after the services are already gone.
NETWORK_IN_USE = "is in use by task"


def observe(abra_dir: str, server: str, domain: str, docker) -> dict:
    """What exists now: the ``.env`` (and its TYPE), the deployed services, their version label
    and images."""
    env_path = env_file_path(abra_dir, server, domain)
    env = read_env_file(env_path)
    stack = stack_name(domain)
    services = []
    for svc in docker.services(stack):
        spec = svc.get("Spec", {})
        labels = spec.get("Labels", {}) or {}
        image = (spec.get("TaskTemplate", {}).get("ContainerSpec", {}) or {}).get("Image", "")
        services.append({
            "name": spec.get("Name"),
            "image": image.split("@")[0],
            "version": labels.get("coop-cloud.%s.version" % stack, ""),
            "update_state": (svc.get("UpdateStatus") or {}).get("State", ""),
        })
    versions = sorted({s["version"] for s in services if s["version"]})
    type_field = env.get("TYPE", "")
    recipe, _colon, env_version = type_field.partition(":")
    return {
        "domain": domain,
        "stack": stack,
        "exists": os.path.exists(env_path),
        "deployed": bool(services),
        "recipe": env.get("RECIPE") or recipe or None,
        "version": versions[-1] if versions else (env_version or None),
        "deployed_version": versions[-1] if versions else None,
        "services": sorted(services, key=lambda s: s["name"] or ""),
    }


def env_changes(env_path: str, wanted: dict) -> dict:
    """The ``{key: (old, new)}`` that writing ``wanted`` into the ``.env`` would change."""
    current = read_env_file(env_path)
    return {k: (current.get(k), str(v)) for k, v in (wanted or {}).items() if current.get(k) != str(v)}


def write_env(env_path: str, wanted: dict) -> None:
    """Set keys in an app's ``.env`` so the one reader reads them back as given: the line that
    decides the key (its last active line, a whole multi-line value included) is replaced, so a
    later chained line (``COMPOSE_FILE="$COMPOSE_FILE:..."``) cannot append to it; a key only
    commented out has its first commented line replaced; a new key is appended."""
    with open(env_path, encoding="utf-8") as fh:
        text = fh.read()
    for key, value in wanted.items():
        entries = [e for e in parse_env(text, name=env_path).entries if e.key == key]
        active = [e for e in entries if not e.commented]
        target = active[-1] if active else (entries[0] if entries else None)
        lines = text.splitlines()
        if target:
            lines[target.line - 1:max(target.end_line, target.line)] = [env_line(key, value)]
        else:
            lines.append(env_line(key, value))
        text = "\n".join(lines) + "\n"
    tmp = env_path + ".canon-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, os.stat(env_path).st_mode & 0o777)
    os.replace(tmp, env_path)


def plan(observed: dict, state: str, version: str | None = None, force: bool = False,
         env_diff: dict | None = None) -> list:
    """The abra steps that take ``observed`` to ``state``: a list of step names among
    ``new``, ``env``, ``deploy``, ``upgrade``, ``redeploy``, ``undeploy``, ``remove``.

    Raises ValueError for a move abra cannot make safely (a downgrade in place).
    """
    if state not in STATES:
        raise ValueError("state must be one of %s" % ", ".join(STATES))
    steps = []
    if state in ("present", "deployed", "undeployed"):
        if not observed["exists"]:
            steps.append("new")
        if env_diff:
            steps.append("env")
    if state == "deployed":
        if not observed["deployed"]:
            steps.append("deploy")
        elif force:
            steps.append("redeploy")
        elif version and observed["deployed_version"] != version:
            if observed["deployed_version"] and version_key(version) < version_key(observed["deployed_version"]):
                raise ValueError("%s is deployed at %s; refusing an in-place downgrade to %s"
                                 % (observed["domain"], observed["deployed_version"], version))
            steps.append("upgrade")
        elif env_diff:
            steps.append("redeploy")
    if state in ("undeployed", "absent") and observed["deployed"]:
        steps.append("undeploy")
    if state == "absent" and observed["exists"]:
        steps.append("remove")
    return steps


def undeploy(abra, docker, domain: str, wait: float = 60, poll: float = 1) -> list:
    """``abra app undeploy``; when it failed only because swarm was still stopping a task on the
    stack's network (:data:`NETWORK_IN_USE`, every service already removed), wait for the stack's
    containers to stop and remove the networks abra could not: swarm's timing, not the app's
    fault. Returns those networks ([] when abra did it all); raises abra's error otherwise."""
    res = abra.undeploy(domain, check=False)
    if res.ok:
        return []
    stack = stack_name(domain)
    label = "%s=%s" % (STACK_LABEL, stack)
    if NETWORK_IN_USE in res.stderr + res.stdout and not docker.list_names("service", label=label):
        deadline = time.monotonic() + wait
        stopping = docker.stack_containers(stack)
        while stopping and time.monotonic() < deadline:
            time.sleep(poll)
            stopping = docker.stack_containers(stack)
        networks = [] if stopping else docker.list_names("network", label=label)
        if not stopping and sorted(docker.remove("network", networks)) == sorted(networks):
            return networks
    # not that race, or it outlasted the wait: abra's own error, as a checked call reports it
    logged = Result(argv=res.argv, rc=res.rc, stdout=abra.redactor(res.stdout), stderr=abra.redactor(res.stderr),
                    duration=res.duration, timed_out=res.timed_out)
    what = "timed out" if res.timed_out else "failed (exit %d)" % res.rc
    raise AbraError("abra app undeploy %s: %s" % (what, fata_message(logged.stderr) or logged.stderr.strip()[-500:]),
                    logged)
