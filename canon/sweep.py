"""A sweep: every enrolled recipe's cold lifecycle, then its warm promote, at most ``cap`` at once.

The scheduler starts the longest recipes first (from the last sweep's times when there is
one), never two heavy recipes at once, and writes ``sweep.json`` after every recipe so an
interrupted sweep can be resumed without redoing what finished. Promotion is its own outcome,
never folded into the cold result; bench failures (engine down, disk full, ...) are ``infra``.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
import time

from canon import ROOT
from canon.inventory import is_heavy
from canon.load import Sampler, engine_on_controller, fingerprint as load_fingerprint
from canon.runner import Job
from canon.shard import shard

from canon.verdict import (
    fingerprint, infra_signature, systemic_events)
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import (
    Ledger, now_iso, read_json, write_json_atomic)

SCHEMA = "coopcloud.canon/sweep"
SCHEMA_VERSION = 1
MAX_CAP = 3
PROMOTE_GREEN = ("promoted", "current")
PROMOTE_RED = ("failed", "refused", "promoted-by-fallback")
# How long a run's guardian gets to finish tearing down after its playbook was stopped.
TEARDOWN_GRACE = 300


class SweepError(Exception):
    pass


def harness_commit() -> str:
    res = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return (res.stdout.strip() or "unknown") + ("+dirty" if dirty else "")


def recipe_commit(server, recipe: str, version: str | None) -> str | None:
    """The commit of the release that was tested, from the server's recipe checkout."""
    repo = os.path.join(server.abra_dir, "recipes", recipe)
    if not version or not os.path.isdir(os.path.join(repo, ".git")):
        return None
    res = subprocess.run(["git", "-C", repo, "rev-parse", "%s^{commit}" % version], capture_output=True, text=True)
    return res.stdout.strip() or None


def proxy_urls(server) -> list:
    """The reverse proxy this server's apps are reached through (``canon_proxy_url``), so that a
    refused connection to it reads as ``proxy-down``; none when apps are reached directly."""
    url = str((getattr(server, "vars", None) or {}).get("canon_proxy_url") or "")
    return [url] if url else []


def engine_problem(server) -> str | None:
    """``engine-down`` / ``swarm-down`` when the server's Docker engine cannot take deploys."""
    res = server.docker().swarm_state(timeout=30)
    if res.rc == 127:  # the docker binary cannot run at all
        return "engine-down"
    if not res.ok:
        return infra_signature(res.stderr) or "engine-down"
    if res.stdout.strip() != "active":
        return "swarm-down"
    return None


def disk_paths(server) -> list:
    """``(path, whose)`` of the filesystems a run writes to that the driver can measure: the
    engine's data root (``docker info``'s DockerRootDir) only when the engine runs on the
    controller, and the state directory (ledger, runs, ABRA_DIR), which is the controller's. A
    remote engine's free disk is not measured here (neither ``docker info`` nor ``docker system
    df`` tells it); a full disk there shows as ``disk-full`` from the run's own error."""
    paths = []
    if engine_on_controller(server):
        paths.append((server.docker(timeout=30).data_root() or "/var/lib/docker", "the engine's data root"))
    paths.append((server.state_dir, "the state directory"))
    return paths


def disk_shortage(server, paths=None) -> str | None:
    """Which filesystem has less free space than the server's minimum, in words; None when all
    have enough. ``paths``: ``(path, whose)`` pairs (default :func:`disk_paths`)."""
    for path, whose in disk_paths(server) if paths is None else paths:
        probe = path
        while probe and not os.path.exists(probe):
            probe = os.path.dirname(probe)
        free = shutil.disk_usage(probe or "/").free / 2 ** 30
        if free < server.min_free_disk_gb:
            return ("%s on the controller (%s): %.1f GiB free, under the minimum of %g GiB"
                    % (whose, path, free, server.min_free_disk_gb))
    return None


def cold_record(job, results_dir: str, server) -> dict:
    """The cold stage's record from the job's events (and its result.json)."""
    rec = {"outcome": "not-run", "run_id": None, "result": None, "started_epoch": job.started,
           "finished_epoch": job.finished, "duration": job.duration, "tiers": [], "failure": None, "infra": None,
           "versions": {}}
    if getattr(job, "deprecations", None):
        rec["deprecations"] = list(job.deprecations)
    doc = job.results[-1] if job.results else None
    if job.run_ids:
        rec["run_id"] = job.run_ids[-1]
        rec["domains"] = dict(job.domains.get(rec["run_id"]) or {})
        if not doc:
            # the playbook died before its result: the run's guardian (or a janitor) writes one
            # once its teardown is done, so it is waited for while the ledger still holds the run
            if server is not None and getattr(server, "state_dir", None) and job.status != "canceled":
                wait_for_guardian(server, rec["run_id"])
            on_disk = read_json(os.path.join(results_dir, rec["run_id"], "result.json"), None)
            if isinstance(on_disk, dict) and on_disk.get("interrupted"):
                rec["interrupted"] = on_disk["interrupted"]
                if on_disk.get("outcome") == "interrupted":
                    rec.update(outcome="interrupted", result=os.path.join(results_dir, rec["run_id"], "result.json"),
                               teardown=on_disk.get("teardown"))
                    return rec
                doc = on_disk  # stopped during its teardown: its own verdict stands
    if doc:
        rec.update(run_id=doc["run_id"], result=os.path.join(results_dir, doc["run_id"], "result.json"),
                   outcome=doc["outcome"], tiers=doc.get("tiers", []), versions=doc.get("versions", {}),
                   domains=doc.get("domains", {}),
                   level=doc.get("level"), level_text=doc.get("level_text"))
        failed = next((t for t in doc.get("tiers", []) if t.get("outcome") in ("fail", "infra", "harness-error")),
                      None)
        if failed:
            error = str(failed.get("error") or failed.get("reason") or "")
            rec["failure"] = {"tier": failed["name"], "error": clip_words(error, 2000), "task": failed.get("task") or "",
                              "fingerprint": fingerprint(failed["name"], error)}
            # the lifecycle decided infra and harness errors already (the tier_failure filter,
            # the same _infra rules); a result written before that decision existed is read here
            if failed.get("outcome") == "harness-error":
                rec.update(outcome="infra", infra="harness-error")
            else:
                sig = failed.get("infra") or infra_signature(error, proxy_urls(server))
                if sig:
                    rec.update(outcome="infra", infra=sig)
    if job.status == "canceled":
        rec["outcome"] = "interrupted"
    elif not doc:
        # No result at all: the playbook died or never started the run. Nothing of the recipe
        # was shown, so it is never the recipe's red: the server's fault when a signature or the
        # engine says so, else the harness's own (harness-error, an infra kind).
        msg = "; ".join(f["msg"] for f in job.failures) or "the playbook ended (%s) without a result" % job.status
        sig = infra_signature(msg, proxy_urls(server)) or engine_problem(server)
        rec["failure"] = {"tier": "harness", "error": clip_words(msg, 2000), "fingerprint": fingerprint("harness", msg)}
        rec["outcome"] = "infra"
        rec["infra"] = sig or "harness-error"
    elif job.status == "timeout":
        rec["outcome"] = "fail"
        rec["failure"] = rec["failure"] or {"tier": "harness", "error": "the run passed its deadline",
                                            "fingerprint": fingerprint("harness", "deadline")}
    return rec


def promote_record(job, results_dir: str, server=None) -> dict:
    promo = job.promotions[-1] if job.promotions else None
    rec = {"outcome": "not-run", "run_id": None, "result": None, "started_epoch": job.started,
           "finished_epoch": job.finished, "duration": job.duration, "detail": ""}
    if getattr(job, "deprecations", None):
        rec["deprecations"] = list(job.deprecations)
    if promo:
        # a promote that stopped before its record (promote.yml's rescue: its claim failed) has no run
        rec.update(outcome=promo.get("outcome", "failed"), run_id=promo.get("run_id"), mode=promo.get("mode"),
                   result=os.path.join(results_dir, promo["run_id"], "promote.json") if promo.get("run_id") else None,
                   detail=promo.get("fallback_error") or promo.get("in_place_error") or "",
                   in_place_error=promo.get("in_place_error", ""), fallback=promo.get("fallback", False),
                   drift=promo.get("drift", {}), domain=promo.get("domain"), version=promo.get("version"),
                   previous=promo.get("previous"), fallback_error=promo.get("fallback_error", ""))
        if rec["outcome"] == "pending":
            rec["outcome"] = "failed"
        # the promote role decided infra and harness errors already (the promote_failure filter,
        # the same _infra rules): a harness error is infra here, as cold_record reads it
        if rec["outcome"] == "infra":
            rec["infra"] = promo.get("infra") or infra_signature(rec["detail"], proxy_urls(server)) or "unrecognised"
        elif rec["outcome"] == "harness-error":
            rec.update(outcome="infra", infra="harness-error", harness_error=promo.get("harness_error") or {})
        if promo.get("later_error"):
            rec["later_error"] = promo["later_error"]
    if job.status == "canceled":
        rec["outcome"] = "interrupted"
    elif not promo:
        msg = "; ".join(f["msg"] for f in job.failures) or "the playbook ended (%s) without a record" % job.status
        sig = infra_signature(msg, proxy_urls(server))
        rec.update(outcome="infra" if sig else "failed", detail=clip_words(msg, 2000))
        if sig:
            rec["infra"] = sig
    # a record written before the role decided (or a playbook that ended without one) is read here;
    # the in-place error decides, as in the role: a fallback that then hit the server does not
    # make an advance the recipe failed infra
    sig = infra_signature(rec.get("in_place_error") or rec.get("detail") or "", proxy_urls(server))
    if rec["outcome"] in PROMOTE_RED and sig:
        rec.update(outcome="infra", infra=sig)
    return rec


def wait_for_guardian(server, run_id: str, timeout: float = TEARDOWN_GRACE) -> bool:
    """Wait while the run's guardian is alive and the ledger still holds the run as running (it
    is tearing the run down, then writes its result.json); True once it is done or gone."""
    ledger = Ledger(server.state_dir)
    deadline = time.time() + timeout
    while time.time() < deadline:
        record = ledger.get(run_id)
        if not record or not ledger.is_live(record):
            return True
        time.sleep(1)
    return False


def is_red(entry: dict) -> bool:
    """The recipe failed: its cold run failed or was incomplete, or its promotion failed. An
    infra or harness error (the cold outcome ``infra``) and an interrupted run are not a red of
    the recipe; the sweep's outcome, the live status line and the reports' banner count them apart."""
    return ((entry.get("cold") or {}).get("outcome") in ("fail", "incomplete")
            or (entry.get("promote") or {}).get("outcome") in PROMOTE_RED)


def wait_for_teardown(server, run_ids, timeout: float = TEARDOWN_GRACE) -> list:
    """Wait until the guardians of stopped runs have torn them down; the runs still there."""
    ledger = Ledger(server.state_dir)
    deadline = time.time() + timeout
    left = list(run_ids)
    while left and time.time() < deadline:
        left = [r for r in left if (ledger.get(r) or {}).get("status") == "running"]
        if left:
            time.sleep(1)
    return left


def canonical_servers(servers, recipe: str) -> list:
    """The servers of ``servers`` on which ``recipe`` has a warm canonical (its registry record)."""
    return [s.name for s in servers
            if os.path.exists(os.path.join(s.state_dir, "canon", s.name, recipe + ".json"))]


class Sweep:
    """``server`` is one server or a list of them. With several, every recipe is assigned to one
    server up front (``canon.shard``: pinned, eligible, then LPT), and each server runs its own
    shard with its own cap, heavy rule, engine checks and sampler."""

    def __init__(self, server, plans: list, results_root: str, inventory: str, cap: int | None = 2,
                 load_arm=None, deadline: int = 3600, progress=None, resume: dict | None = None,
                 sweep_id: str | None = None, sampler_interval: float = 5.0, caps: dict | None = None):
        if not plans:
            raise SweepError("no recipes to sweep: an empty set is not a green sweep (enrol recipes in "
                             "canon_enrolled, or name them)")
        self.servers = list(server) if isinstance(server, (list, tuple)) else [server]
        if not self.servers:
            raise SweepError("no servers to sweep on")
        self.by_name = {s.name: s for s in self.servers}
        if len(self.by_name) != len(self.servers):
            raise SweepError("two inventory hosts name the same abra server: %s"
                             % ", ".join(s.name for s in self.servers))
        # One cap for every server (--cap), else each server's own canon_sweep_cap.
        self.caps = {s.name: int(cap if cap is not None else (caps or {}).get(s.name, s.cap)) for s in self.servers}
        for name, c in self.caps.items():
            if not 1 <= c <= MAX_CAP:
                raise SweepError("cap %s refused: a sweep runs 1 to %d deploys at once on a server (%s)"
                                 % (c, MAX_CAP, name))
        self.server = self.servers[0]
        self.cap = max(self.caps.values())
        self.plans, self.inventory = plans, inventory
        arms = load_arm if isinstance(load_arm, (list, tuple)) else ([load_arm] if load_arm is not None else [])
        self.load_arms = [a for a in arms if a is not None]
        self.load_arm = self.load_arms[0] if self.load_arms else None
        self.deadline, self.progress = int(deadline), progress
        self.sweep_id = sweep_id or (resume or {}).get("sweep_id") or "sweep-%s-%s" % (
            time.strftime("%Y%m%d%H%M%S", time.gmtime()), os.urandom(3).hex())
        self.dir = os.path.join(results_root, self.sweep_id)
        self.runs_dir = os.path.join(self.dir, "runs")
        self.stop = threading.Event()
        self.samplers = {s.name: Sampler(s, interval=sampler_interval) for s in self.servers}
        self.sampler = self.samplers[self.server.name]
        self._lock = threading.Lock()
        self._running: dict = {}     # recipe -> {"job": Job, "stage": str, "tier": str, "since": t}
        for plan in self.plans:
            plan.setdefault("heavy", is_heavy(plan["recipe"], plan.get("settings")))
        self.assignment = self.assign(resume)
        for plan in self.plans:
            plan["server"] = self.assignment[plan["recipe"]]
        self.doc = self._initial_doc(resume)

    def assign(self, resume) -> dict:
        """``{recipe: server name}``: what a resumed sweep assigned (when that server is still
        here), a pin, then LPT over the servers a recipe is eligible for."""
        names = [s.name for s in self.servers]
        if len(names) == 1:
            return {p["recipe"]: names[0] for p in self.plans}
        before = {r["recipe"]: r.get("server") for r in (resume or {}).get("recipes", [])}
        pinned = {}
        for plan in self.plans:
            if before.get(plan["recipe"]) in self.by_name:
                pinned[plan["recipe"]] = before[plan["recipe"]]
            elif plan.get("server") in self.by_name:
                pinned[plan["recipe"]] = plan["server"]
            else:
                homes = canonical_servers(self.servers, plan["recipe"])
                if len(homes) == 1 and plan.get("warm", True):
                    pinned[plan["recipe"]] = homes[0]
        eligible = {p["recipe"]: set(p["servers"]) for p in self.plans if p.get("servers")}
        try:
            return shard(self.plans, [(n, self.caps[n]) for n in names], self.last_durations(),
                         eligible=eligible, pinned=pinned)
        except ValueError as exc:
            raise SweepError(str(exc)) from None

    # -- document --------------------------------------------------------------------------
    def servers_doc(self) -> list:
        """Every server of the sweep with its cap and the recipes assigned to it."""
        return [{"name": s.name, "host": s.host, "cap": self.caps[s.name],
                 "recipes": [p["recipe"] for p in self.plans if p["server"] == s.name]} for s in self.servers]

    def _initial_doc(self, resume):
        if resume:
            doc = dict(resume)
            doc.setdefault("resumed", []).append(now_iso())
            doc["servers"] = self.servers_doc()
            known = {r["recipe"]: r for r in doc.get("recipes", [])}
            doc["recipes"] = [known[p["recipe"]] if known.get(p["recipe"], {}).get("status") == "done"
                              else self._blank(p) for p in self.plans]
            return doc
        return {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "sweep_id": self.sweep_id,
                "server": self.server.name, "host": self.server.host, "cap": self.cap,
                "servers": self.servers_doc(),
                "harness_commit": harness_commit(), "started": now_iso(), "started_epoch": time.time(),
                "finished": None, "finished_epoch": None, "duration": None, "outcome": "running",
                "load": None, "recipes": [self._blank(p) for p in self.plans], "systemic": [], "summary": {}}

    @staticmethod
    def _blank(plan) -> dict:
        return {"recipe": plan["recipe"], "server": plan.get("server"), "status": "pending",
                "version": plan.get("version"), "recipe_commit": None,
                "suites_dir": plan.get("suites_dir"),
                "settings": plan.get("settings") or {}, "warm": plan.get("warm", True),
                "warm_drift": plan.get("warm_drift", True),
                "cold": {"outcome": "not-run"}, "promote": {"outcome": "not-run" if plan.get("warm", True) else "not-enrolled"}}

    def entry(self, recipe) -> dict:
        return next(r for r in self.doc["recipes"] if r["recipe"] == recipe)

    def save(self):
        with self._lock:
            doc = json.loads(json.dumps(self.doc))
        write_json_atomic(os.path.join(self.dir, "sweep.json"), doc)

    # -- one recipe ------------------------------------------------------------------------
    def server_of(self, recipe) -> object:
        return self.by_name[self.assignment[recipe]]

    def _job(self, recipe, stage, playbook, extravars) -> Job:
        def progress(_ident, tier):
            with self._lock:
                if recipe in self._running:
                    self._running[recipe]["tier"] = tier
            if self.progress:
                if hasattr(self.progress, "tier_started"):
                    self.progress.tier_started(recipe, tier, self.elapsed())
                self.progress.update(self.snapshot())

        def tier_done(_ident, record):
            if self.progress and hasattr(self.progress, "tier_done"):
                self.progress.tier_done(recipe, record, self.elapsed())
        job = Job(playbook, dict(extravars, canon_hosts=self.server_of(recipe).host, canon_results_dir=self.runs_dir,
                                 canon_deadline=self.deadline),
                  ident="%s-%s-%s" % (self.sweep_id, recipe, stage), inventory=self.inventory,
                  timeout=self.deadline + TEARDOWN_GRACE, cancel=self.stop, on_progress=progress, on_tier=tier_done)
        with self._lock:
            self._running[recipe] = {"stage": stage, "tier": stage, "since": time.time(),
                                     "server": self.assignment[recipe]}
        return job

    def run_recipe(self, plan):
        recipe = plan["recipe"]
        entry = self.entry(recipe)
        entry["status"] = "running"
        server = self.server_of(recipe)
        entry["server"] = server.name
        samples = self.samplers[server.name].samples
        problem, detail = engine_problem(server), None
        if not problem:
            detail = disk_shortage(server)
            problem = "disk-full" if detail else None
        if problem:
            entry["cold"] = {"outcome": "infra", "infra": problem, "failure": None, "tiers": [],
                             "started_epoch": time.time(), "finished_epoch": time.time(), "duration": 0}
            if detail:
                entry["cold"]["detail"] = detail
            entry["status"] = "done"
            return
        extravars = {"recipe": recipe, "canon_exclusive": False,
                     "canon_settings_overrides": plan.get("settings") or {}}
        if plan.get("version"):
            extravars["version"] = plan["version"]
        if plan.get("suites_dir"):
            extravars["canon_suites_dir"] = plan["suites_dir"]
        job = self._job(recipe, "cold", "isolate.yml", extravars)
        res = job.run()
        cold = cold_record(res, self.runs_dir, server)
        cold["load"] = load_fingerprint(samples, res.started, res.finished)
        entry["cold"] = cold
        entry["version"] = cold.get("versions", {}).get("head")
        entry["recipe_commit"] = recipe_commit(server, recipe, entry["version"])
        if cold["outcome"] == "interrupted":
            entry["status"] = "interrupted"
            left = wait_for_teardown(server, res.run_ids)
            cold["teardown_pending"] = left
            return
        if not plan.get("warm", True):
            entry["promote"] = {"outcome": "not-enrolled"}
        elif cold["outcome"] != "pass":
            entry["promote"] = {"outcome": "skipped", "detail": "the cold run was not green (%s)" % cold["outcome"]}
        elif self.stop.is_set():
            entry["promote"] = {"outcome": "not-run", "detail": "the sweep was stopped"}
            entry["status"] = "interrupted"
            return
        else:
            pjob = self._job(recipe, "promote", "promote.yml",
                             {"recipe": recipe, "cold_result": cold["result"], "version": entry["version"],
                              "warm_drift": plan.get("warm_drift", True)})
            pres = pjob.run()
            entry["promote"] = promote_record(pres, self.runs_dir, server)
            entry["promote"]["load"] = load_fingerprint(samples, pres.started, pres.finished)
            if entry["promote"]["outcome"] == "interrupted":
                entry["status"] = "interrupted"
                entry["promote"]["teardown_pending"] = wait_for_teardown(server, pres.run_ids)
                return
        entry["status"] = "done"

    def _worker(self, plan):
        try:
            self.run_recipe(plan)
        except Exception as exc:  # the driver's own bug must not leave the sweep hanging
            entry = self.entry(plan["recipe"])
            entry["status"] = "interrupted"
            entry["error"] = "%s: %s" % (type(exc).__name__, exc)
        finally:
            with self._lock:
                self._running.pop(plan["recipe"], None)
            self.save()
            if self.progress:
                self.progress.finished(self.entry(plan["recipe"]), self.snapshot())

    # -- schedule --------------------------------------------------------------------------
    def last_durations(self) -> dict:
        """``{recipe: seconds}`` (cold + promote) from the sweeps in the same results folder, the
        newest last (it wins)."""
        last = {}
        for path in sorted(glob.glob(os.path.join(os.path.dirname(self.dir), "sweep-*", "sweep.json"))):
            doc = read_json(path) or {}
            for r in doc.get("recipes", []):
                took = sum(float((r.get(k) or {}).get("duration") or 0) for k in ("cold", "promote"))
                if took:
                    last[r["recipe"]] = took
        return last

    def order(self, plans) -> list:
        """Longest first (LPT): from the last sweep's times when known, heavy recipes first otherwise."""
        last = self.last_durations()
        return sorted(plans, key=lambda p: (-(last.get(p["recipe"]) or 0), not p["heavy"]))

    def elapsed(self) -> float:
        return time.time() - self.doc["started_epoch"]

    def snapshot(self) -> dict:
        with self._lock:
            running = {r: dict(v) for r, v in self._running.items()}
            done = [r for r in self.doc["recipes"] if r["status"] in ("done", "interrupted")]
        return {"elapsed": time.time() - self.doc["started_epoch"], "running": running, "done": len(done),
                "total": len(self.doc["recipes"]), "red": sum(1 for r in done if is_red(r)),
                "infra": sum(1 for r in done if not is_red(r) and "infra" in (r["cold"]["outcome"], r["promote"]["outcome"]))}

    def plan_estimate(self) -> float | None:
        """Seconds the unfinished recipes should take by the plan (``canon sweep --plan``'s
        estimate: the slowest server's shard), None when it cannot be made."""
        from canon.shard import estimates
        todo = [p for p in self.plans if self.entry(p["recipe"])["status"] != "done"]
        try:
            est = estimates(todo, [(s.name, self.caps[s.name]) for s in self.servers], self.assignment,
                            self.last_durations())
        except (KeyError, ValueError, TypeError):
            return None
        return max(est.values()) if est else None

    def run(self) -> dict:
        todo = [p for p in self.order(self.plans) if self.entry(p["recipe"])["status"] != "done"]
        if self.progress is not None and hasattr(self.progress, "estimate"):
            self.progress.estimate = self.plan_estimate()  # each sweep its own (redfix runs two)
        os.makedirs(self.runs_dir, exist_ok=True)
        for sampler in self.samplers.values():
            sampler.start()
        threads: dict = {}

        def running_on(server):
            return [p for p, t in threads.values() if t.is_alive() and p["server"] == server]

        try:
            if self.load_arm is not None and self.load_arm.active:
                self.doc["load"] = {"spec": self.load_arm.spec, "samples": [], "fingerprint": {}}
                for arm in self.load_arms:
                    arm.start()
            self.save()
            while (todo or any(t.is_alive() for _, t in threads.values())):
                for name in [n for n, (_, t) in threads.items() if not t.is_alive()]:
                    threads.pop(name)
                while todo and not self.stop.is_set():
                    # The longest recipe whose server has a free slot (its cap) and, for a heavy
                    # one, no heavy recipe running there (the heavy lock is per server).
                    pick = next((p for p in todo if len(running_on(p["server"])) < self.caps[p["server"]]
                                 and not (p["heavy"] and any(q["heavy"] for q in running_on(p["server"])))),
                                None)
                    if pick is None:
                        break
                    todo.remove(pick)
                    t = threading.Thread(target=self._worker, args=(pick,), name="canon-%s" % pick["recipe"], daemon=True)
                    threads[pick["recipe"]] = (pick, t)
                    t.start()
                if self.stop.is_set():
                    todo = []
                if self.progress:
                    self.progress.update(self.snapshot())
                time.sleep(0.5)
        finally:
            # Ctrl-C or SIGTERM: no new work; running playbooks are stopped (their guardians tear
            # their runs down) and the driver waits for them before writing the results.
            for _, t in threads.values():
                t.join()
            for arm in self.load_arms:
                arm.stop()
            for sampler in self.samplers.values():
                sampler.stop()
            self.finish()
        return self.doc

    def finish(self):
        doc = self.doc
        doc["finished"], doc["finished_epoch"] = now_iso(), time.time()
        doc["duration"] = round(doc["finished_epoch"] - doc["started_epoch"], 1)
        samples = self.sampler.samples
        if len(self.servers) > 1:
            # One timeline per server: each sample says which engine it was taken on.
            samples = sorted((dict(x, server=name) for name, sm in self.samplers.items() for x in sm.samples),
                             key=lambda x: x["t"])
        if doc.get("load") is not None or samples:
            load = doc.get("load") or {"spec": None}
            load["samples"] = (load.get("samples") or []) + samples
            load["fingerprint"] = load_fingerprint(load["samples"])
            doc["load"] = load
        failures = []
        for r in doc["recipes"]:
            f = (r.get("cold") or {}).get("failure")
            if f:
                failures.append({"recipe": r["recipe"], "tier": f["tier"], "error": f["error"],
                                 "started": r["cold"].get("started_epoch"), "finished": r["cold"].get("finished_epoch")})
            p = r.get("promote") or {}
            if p.get("outcome") in PROMOTE_RED and p.get("detail"):
                failures.append({"recipe": r["recipe"], "tier": "promote", "error": p["detail"],
                                 "started": p.get("started_epoch"), "finished": p.get("finished_epoch")})
        doc["systemic"] = systemic_events([f for f in failures if f["started"]])
        cold, promote = {}, {}
        for r in doc["recipes"]:
            cold[r["cold"]["outcome"]] = cold.get(r["cold"]["outcome"], 0) + 1
            promote[r["promote"]["outcome"]] = promote.get(r["promote"]["outcome"], 0) + 1
        infra = sum(1 for r in doc["recipes"] if "infra" in (r["cold"]["outcome"], r["promote"]["outcome"]))
        doc["summary"] = {"recipes": len(doc["recipes"]), "cold": cold, "promote": promote, "infra": infra}
        if any(r["status"] != "done" for r in doc["recipes"]):
            doc["outcome"] = "interrupted"
        elif any(is_red(r) for r in doc["recipes"]):
            doc["outcome"] = "fail"
        elif infra:
            doc["outcome"] = "infra"
        else:
            doc["outcome"] = "pass"
        self.save()
