# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Claiming a run: validate, refuse what is unsafe, record in the ledger, start the guardian."""

from __future__ import annotations

import glob
import os
import secrets as _secrets
import shutil
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import load_redactor
from ansible_collections.coopcloud.canon.plugins.module_utils._guardian import record_interruption, spawn
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import STATUS_RUNNING, Ledger, now_iso
from ansible_collections.coopcloud.canon.plugins.module_utils._run_processes import controller_pid
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    cold_domain, is_protected, stack_name, validate_domain, validate_recipe, validate_run_id,
    validate_docker_context, validate_server)
from ansible_collections.coopcloud.canon.plugins.module_utils._teardown import reapable_runs, teardown_run


class RunRefused(Exception):
    pass


def new_run_id(recipe: str) -> str:
    return "%s-%s-%s" % (recipe[:12].rstrip("-"), time.strftime("%Y%m%d%H%M%S", time.gmtime()), _secrets.token_hex(3))


def domain_in_use(domain: str, shared_abra_dir: str, deployed_stacks) -> str | None:
    """Why ``domain`` cannot be handed out: an app ``.env`` on any server, or a deployed stack."""
    for env in glob.glob(os.path.join(shared_abra_dir, "servers", "*", domain + ".env")):
        return "an app .env already exists for it (%s)" % env
    if stack_name(domain) in deployed_stacks:
        return "a stack %s is deployed" % stack_name(domain)
    return None


def plan_domains(recipe: str, run_id: str, base_domain: str, roles, override: str | None,
                 protected, shared_abra_dir: str, deployed_stacks) -> dict:
    domains = {}
    for role in roles:
        domain = override if (override and role == "base") else cold_domain(recipe, "%s|%s" % (run_id, role), base_domain)
        validate_domain(domain)
        if is_protected(domain, protected):
            raise RunRefused("refusing domain %s: it is protected (a live service); pick another" % domain)
        why = domain_in_use(domain, shared_abra_dir, deployed_stacks)
        if why:
            raise RunRefused("refusing domain %s: %s" % (domain, why))
        domains[role] = domain
    return domains


def check_inputs(params: dict) -> None:
    """Every check that needs neither the ledger nor a command: the names, protected domains,
    the abra binary and the server's registration. Raises NameError_ or RunRefused."""
    validate_recipe(params["recipe"])
    server = validate_server(params["server"])
    validate_docker_context(params.get("docker_context"))
    for option in ("deadline", "lease"):
        if (params.get(option) or 0) < 0:
            raise RunRefused("%s must be 0 (none) or a number of seconds, not %s" % (option, params[option]))
    if params.get("run_id"):
        validate_run_id(params["run_id"])
    base_domain = validate_domain(params["base_domain"])
    protected = list(params.get("protected_domains") or [])
    if params.get("domain"):
        validate_domain(params["domain"])
        if is_protected(params["domain"], protected):
            raise RunRefused("refusing domain %s: it is protected (a live service); pick another" % params["domain"])
    generated = [r for r in params.get("domain_roles") or ["base"] if not (r == "base" and params.get("domain"))]
    if generated and is_protected(base_domain, protected):
        raise RunRefused("refusing base domain %s: every cold domain under it would be protected (a live "
                         "service); pick another" % base_domain)
    abra_bin = params["abra_bin"]
    if not (os.path.isabs(abra_bin) and os.access(abra_bin, os.X_OK)) and not shutil.which(abra_bin):
        raise RunRefused("abra binary %s not found or not executable" % abra_bin)
    shared = os.path.abspath(params["abra_dir"])
    if not os.path.isdir(os.path.join(shared, "servers", server)):
        raise RunRefused("server %s is not registered in %s (run: abra server add %s)" % (server, shared, server))


def reap_dead_runs(ledger: Ledger, protected=()) -> list:
    """The janitor: tear down the runs whose controller and guardian are both gone, and write
    each one's interrupted result (its guardian died with it: nobody else will say what became
    of it). Returns the run ids reaped."""
    reaped = []
    dead, _live = reapable_runs(ledger)
    for rid in dead:
        rec = ledger.get(rid) or {}
        if rec.get("status") == STATUS_RUNNING:
            redact = load_redactor(os.path.join(ledger.run_dir(rid), "redact"))
            try:
                removed = teardown_run(ledger, rid, protected=list(protected), kill_strays=True)
            except RuntimeError as exc:   # a dead run's process survived SIGKILL
                raise RunRefused("the janitor could not reap dead run %s: %s" % (rid, exc)) from exc
            record_interruption(ledger, rec, "janitor", removed, redact)
            reaped.append(rid)
    return reaped


def start_run(params: dict, deployed_stacks, check_mode: bool = False) -> dict:
    """Validate everything, then record the run and start its guardian. Nothing is created on
    the swarm here; a refusal leaves nothing behind."""
    check_inputs(params)
    recipe = params["recipe"]
    server = params["server"]
    run_id = validate_run_id(params.get("run_id") or new_run_id(recipe))
    base_domain = params["base_domain"]
    abra_bin = params["abra_bin"]
    shared = os.path.abspath(params["abra_dir"])
    ledger = Ledger(params["state_dir"])
    protected = list(params.get("protected_domains") or [])

    # The janitor: runs whose guardian died with them are reaped before anything new starts.
    reaped = [] if check_mode else reap_dead_runs(ledger, protected)

    exclusive = bool(params.get("exclusive", True))
    with ledger.mutex():
        # Checked under the ledger mutex: two runs starting at once cannot both see an empty server.
        # A run recorded moments ago whose guardian is still being spawned counts as live too.
        live = [r for r in ledger.runs() if r.get("server") == server and r.get("status") == STATUS_RUNNING
                and (ledger.is_live(r) or (r.get("guardian_pid") is None
                                           and time.time() - r.get("started_epoch", 0) < 120))]
        if exclusive and live:
            raise RunRefused("refusing to start: other harness runs are live on server %s (%s); isolation needs "
                             "the server to itself" % (server, ", ".join(r["run_id"] for r in live)))
        isolating = [r["run_id"] for r in live if r.get("exclusive")]
        if isolating:
            raise RunRefused("refusing to start: an isolation run has server %s to itself (%s)"
                             % (server, ", ".join(isolating)))
        if ledger.get(run_id):
            raise RunRefused("run id %s is already in the ledger" % run_id)
        claimed = {d for r in ledger.runs() for d in r.get("domains", {}).values()}
        domains = plan_domains(recipe, run_id, base_domain, params.get("domain_roles") or ["base"],
                               params.get("domain"), protected, shared, deployed_stacks)
        clash = claimed & set(domains.values())
        if clash:
            raise RunRefused("refusing domain(s) %s: claimed by another run in the ledger" % ", ".join(sorted(clash)))
        run_dir = ledger.run_dir(run_id)
        record = {
            "run_id": run_id, "recipe": recipe, "server": server, "status": STATUS_RUNNING,
            "abra_bin": abra_bin, "docker_bin": params.get("docker_bin", "docker"),
            "docker_context": params.get("docker_context") or "",
            "abra_dir": shared, "run_abra_dir": os.path.join(run_dir, "abra"),
            "domains": domains, "protected": protected, "started": now_iso(), "started_epoch": time.time(),
            "keep_on_failure": bool(params.get("keep_on_failure")), "exclusive": exclusive,
            "controller_pid": None, "guardian_pid": None,
            # where the run's result.json goes: an interrupted run's guardian writes it there
            "results_dir": os.path.abspath(params["results_dir"]) if params.get("results_dir") else None,
        }
        if check_mode:
            return dict(record, run_dir=run_dir, redact_file=os.path.join(run_dir, "redact"), reaped=reaped)
        os.makedirs(os.path.join(run_dir, "abra", "recipes"), exist_ok=True)
        os.symlink(os.path.join(shared, "servers"), os.path.join(run_dir, "abra", "servers"))
        ledger.put(record)
    watch = int(params.get("watch_pid") or 0) or controller_pid()
    deadline = time.time() + float(params["deadline"]) if params.get("deadline") else 0
    lease = float(params.get("lease") or 0)
    if watch:
        record = ledger.update(run_id, controller_pid=watch, guardian_pid=spawn(ledger, run_id, watch, deadline),
                               deadline=deadline or None, guardian_mode="controller")
    elif lease > 0:
        # No ansible-playbook above the module: the server is reached over SSH. The guardian
        # holds the run on a lease renewed by the run's own processes on this server.
        record = ledger.update(run_id, guardian_pid=spawn(ledger, run_id, 0, deadline, lease),
                               deadline=deadline or None, guardian_mode="lease", lease=lease)
    return dict(record, run_dir=run_dir, redact_file=os.path.join(run_dir, "redact"), reaped=reaped)
