# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Teardown: remove exactly what a run recorded in the ledger, and nothing else.

Shared by the ``canon_teardown`` module, the lifecycle's ``always:`` and the run guardian
(which tears down after the controller died from a signal).
"""

from __future__ import annotations

import os
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraClient, env_file_path
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import STACK_LABEL, DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import (
    STATUS_KEPT, STATUS_RUNNING, Ledger)
from ansible_collections.coopcloud.canon.plugins.module_utils._names import is_protected, stack_name
from ansible_collections.coopcloud.canon.plugins.module_utils._run_processes import kill_run_processes
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import (
    NOTHING_RUNS, read_canonical, read_lease, record_failed, release_run_leases)
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import reap_stale_leases as _reap_stale_leases


class ProtectedError(Exception):
    pass


def domain_leftovers(docker: DockerClient, shared_abra_dir: str, server: str, domain: str) -> dict:
    """What of ``domain`` exists now: swarm objects by kind, and its ``.env``."""
    found = docker.stack_objects(stack_name(domain))
    found["probe-container"] = docker.probe_containers(stack_name(domain))
    env = env_file_path(shared_abra_dir, server, domain)
    found["env"] = [env] if os.path.exists(env) else []
    return {k: v for k, v in found.items() if v}


def teardown_domain(domain: str, server: str, shared_abra_dir: str, abra: AbraClient,
                    docker: DockerClient, protected=(), check_mode: bool = False,
                    wait_timeout: float = 180) -> dict:
    """Undeploy and remove one app; then remove whatever its stack still owns.

    abra does the work first (``app undeploy``, ``app remove``); docker only removes what abra
    left. Returns ``{kind: [names]}`` of what was removed (or would be, in check mode).
    """
    if is_protected(domain, protected):
        raise ProtectedError("refusing to touch %s: it is a protected domain" % domain)
    before = domain_leftovers(docker, shared_abra_dir, server, domain)
    if check_mode or not before:
        return before
    stack = stack_name(domain)
    env = env_file_path(shared_abra_dir, server, domain)
    if before.get("probe-container"):
        docker.remove_containers(before["probe-container"])
    if before.get("service"):
        if os.path.exists(env):
            abra.undeploy(domain, check=False)
        if docker.list_names("service", label="%s=%s" % (STACK_LABEL, stack)):
            docker.stack_rm(stack)
    docker.wait_gone(stack, timeout=wait_timeout)
    if os.path.exists(env):
        abra.remove(domain, check=False)
    # What abra left: removed by the stack's label (and its secret name prefix).
    deadline = time.monotonic() + wait_timeout
    while True:
        left = docker.stack_objects(stack)
        for kind in ("service", "secret", "config", "volume", "network"):
            if left.get(kind):
                docker.remove(kind, left[kind])
        left = {k: v for k, v in docker.stack_objects(stack).items() if v}
        if not left or time.monotonic() > deadline:
            break
        time.sleep(1)
    if os.path.exists(env):
        os.unlink(env)
    after = domain_leftovers(docker, shared_abra_dir, server, domain)
    if after:
        raise RuntimeError("teardown of %s left %s" % (domain, after))
    return before


def clients_for(record: dict, log=None) -> tuple:
    abra = AbraClient(binary=record["abra_bin"], abra_dir=record.get("run_abra_dir") or record["abra_dir"],
                      log=log, timeout=600)
    docker = DockerClient(binary=record.get("docker_bin", "docker"), log=log, context=record.get("docker_context") or "")
    return abra, docker


def teardown_run(ledger: Ledger, run_id: str, protected=(), final_status: str | None = None,
                 check_mode: bool = False, log=None, kill_strays: bool = False) -> dict:
    """Tear down every domain a run recorded, release its locks and forget it.

    ``kill_strays``: a dead run's processes that outlived it (an ``abra app upgrade`` whose
    controller and guardian were killed goes on deploying) are stopped first, so nothing of the
    run changes the swarm after the teardown read it. The janitor passes it; a run's own
    teardown does not (they are its own processes).

    Returns ``{"removed": {domain: {kind: [...]}}, "locks": [...], "changed": bool}``.
    """
    record = ledger.get(run_id)
    if record is None:
        return {"removed": {}, "locks": [], "changed": False}
    if kill_strays and not check_mode:
        left = kill_run_processes(run_id)
        if left:
            raise RuntimeError("run %s: processes %s survived SIGKILL; not tearing down under them" % (run_id, left))
    abra_client, docker = clients_for(record, log=log)
    protected = list(protected or ()) + list(record.get("protected", []))
    removed = {}
    if os.path.isdir(os.path.join(record.get("run_abra_dir", ""), "recipes")) is False:
        # The run's own ABRA_DIR is gone (an earlier teardown got half way): use the shared one.
        abra_client.abra_dir = record["abra_dir"]
    for _role, domain in sorted(record.get("domains", {}).items()):
        done = teardown_domain(domain, record["server"], record["abra_dir"], abra_client, docker,
                               protected=protected, check_mode=check_mode)
        if done:
            removed[domain] = done
    closed = None if check_mode else close_open_attempt(ledger, record, docker)
    locks = [] if check_mode else ledger.release_locks(run_id)
    if not check_mode:
        locks += ["lease:%s" % d for d in release_run_leases(ledger, run_id)]
    changed = bool(removed or locks or closed or os.path.isdir(ledger.run_dir(run_id)))
    if not check_mode:
        if final_status == STATUS_KEPT:
            ledger.update(run_id, status=STATUS_KEPT)
        else:
            ledger.forget(run_id)
    return {"removed": removed, "locks": locks, "changed": changed, "closed_attempt": closed}


def deployed_versions(docker: DockerClient, domain: str) -> list:
    """The release labels of the services deployed on ``domain`` now (empty: nothing runs)."""
    stack = stack_name(domain)
    labels = {svc.get("Spec", {}).get("Labels", {}).get("coop-cloud.%s.version" % stack, "")
              for svc in docker.services(stack)}
    return sorted(v for v in labels if v)


def close_open_attempt(ledger: Ledger, record: dict, docker: DockerClient) -> dict | None:
    """Close the warm advance this run opened and did not finish.

    A promote run records its attempt (registry ``deploying``, under its own lease) before it
    deploys, and its outcome after. Stopped in between (a signal, a killed controller, a failure
    outside the promote's rescue), it would leave the canonical saying an advance is in progress
    after the run is gone. It is recorded as failed instead, and the reason names the run, why it
    stopped, and the release the warm app runs now. The record's version is what the swarm runs:
    the previous release when the advance never took, else the new one (or none), unverified,
    for the next promote to verify. Returns the registry record when it changed it.
    """
    server, recipe = record.get("server"), record.get("recipe")
    if not server or not recipe:
        return None
    canonical = read_canonical(ledger, server, recipe)
    if canonical.get("status") != "deploying":
        return None
    opened = [e for e in canonical.get("history", []) if e.get("event") == "deploying"][-1:]
    lease = read_lease(ledger, opened[0]["run_lease"]) if opened and opened[0].get("run_lease") else None
    if not lease or lease.get("run_id") != record["run_id"]:
        return None   # someone else's attempt (or not one a run opened): not this run's to close
    why = {"controller-died": "lost its controller", "deadline": "passed its deadline"}.get(
        record.get("interrupted"), "stopped before recording its outcome")
    runs = None   # unknown: the record keeps its version
    try:
        running = deployed_versions(docker, canonical["domain"])
        if len(running) <= 1:
            runs = running[0] if running else NOTHING_RUNS
    except Exception as exc:  # the reason still gets written; what runs is then unknown
        running = ["unknown (%s)" % str(exc).splitlines()[0][:120]]
    reason = ("interrupted: promote run %s %s during the advance to %s; the warm app now runs %s"
              % (record["run_id"], why, (canonical.get("target") or {}).get("version") or "?",
                 ", ".join(running) or "nothing"))
    closed, changed = record_failed(ledger, server, recipe, reason, runs=runs)
    return closed if changed else None


def reapable_runs(ledger: Ledger, scope_run_id=None, scope_recipe=None, own_run_id=None,
                  include_kept: bool = True) -> tuple:
    """Runs a teardown may act on, and the live runs it must leave alone.

    A run's own teardown (``own_run_id``) may act on itself while its guardian lives.
    """
    act, skipped = [], []
    for rec in ledger.runs():
        if scope_run_id and rec["run_id"] != scope_run_id:
            continue
        if scope_recipe and rec.get("recipe") != scope_recipe:
            continue
        if rec.get("status") == STATUS_KEPT and not include_kept:
            continue
        starting = rec.get("guardian_pid") is None and time.time() - rec.get("started_epoch", 0) < 120
        if rec["run_id"] != own_run_id and rec.get("status") == STATUS_RUNNING and (starting or ledger.is_live(rec)):
            skipped.append(rec["run_id"])
            continue
        act.append(rec["run_id"])
    return act, skipped


def reap_stale_leases(ledger: Ledger) -> list:
    """Warm-domain leases whose run is dead or gone from the ledger (call after runs are torn
    down). Leases held by the canonical registry are never stale. Returns the reaped leases."""
    return _reap_stale_leases(ledger)
