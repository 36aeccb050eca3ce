"""``canon classify``: re-run a failure in two arms until the verdict is clear.

The logic (verdicts, the exact test, the stopping rule, where the defect lives) is pure and
lives in ``canon/verdict.py``; this module only runs the arms:

* ``isolated``: the recipe alone on the server (no other harness run may be live);
* ``loaded``: the same run while the load arm runs beside it.

A cold failure is re-run up to its failing rung (install, then the failing tier); a promote
failure is re-run as a promote from the same green cold result, with the canonical put back
where it was before the failing promote.
"""
from __future__ import annotations

import os
import re
import time

from canon.load import BUSY_CPU_PCT, LoadArm, fingerprint as load_fingerprint, Sampler
from canon.runner import Job
from canon.sweep import (
    TEARDOWN_GRACE, cold_record, harness_commit, promote_record, proxy_urls, recipe_commit)

from canon.verdict import (
    base_evidence, busy, classification_document, custom_base_needed, decide, fingerprint, infra_signature, locate)
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger, read_json, write_json_atomic


class ClassifyError(Exception):
    pass


def entry_from_result(doc: dict, path: str) -> dict:
    """A single run's ``result.json`` (``isolate.yml`` or ``canon isolate``) as the sweep entry
    the classifier reads: its cold record, no promote. The run is taken as an isolated one."""
    cold = {"outcome": doc.get("outcome"), "run_id": doc.get("run_id"), "result": path,
            "tiers": doc.get("tiers") or [], "versions": doc.get("versions") or {}, "domains": doc.get("domains") or {},
            "level": doc.get("level"), "failure": None, "infra": doc.get("infra")}
    failed = next((t for t in cold["tiers"] if t.get("outcome") in ("fail", "infra", "harness-error")), None)
    if failed:
        error = str(failed.get("error") or failed.get("reason") or "")
        cold["failure"] = {"tier": failed["name"], "error": clip_words(error, 2000), "task": failed.get("task") or "",
                           "fingerprint": fingerprint(failed["name"], error)}
    if cold["outcome"] == "harness-error":
        cold.update(outcome="infra", infra="harness-error")
    return {"recipe": doc.get("recipe"), "server": doc.get("server"), "cold": cold,
            "promote": {"outcome": "not-run"}, "version": (doc.get("versions") or {}).get("head")}


def classify_target(folder: str, recipe: str) -> tuple:
    """What ``canon classify --from FOLDER`` classifies: ``(entry, sweep_loaded, out_dir)``.
    FOLDER is a sweep's results folder (``sweep.json``) or a single run's (``result.json``);
    a relative FOLDER is the caller's (made absolute here, before any path reaches Ansible, which
    would resolve it from the playbook's folder). The re-runs' evidence goes inside FOLDER."""
    folder = os.path.abspath(folder)
    sweep = read_json(os.path.join(folder, "sweep.json"), None)
    if isinstance(sweep, dict):
        entry = next((r for r in sweep.get("recipes") or [] if r.get("recipe") == recipe), None)
        if entry is None:
            raise ClassifyError("%s was not in sweep %s" % (recipe, sweep.get("sweep_id") or folder))
        return entry, bool((sweep.get("load") or {}).get("spec")), folder
    result = read_json(os.path.join(folder, "result.json"), None)
    if isinstance(result, dict):
        if result.get("recipe") != recipe:
            raise ClassifyError("run %s in %s is of %s, not %s" % (result.get("run_id"), folder, result.get("recipe"),
                                                                   recipe))
        return entry_from_result(result, os.path.join(folder, "result.json")), False, folder
    raise ClassifyError("no sweep.json or result.json in %s (name a sweep's results folder or a run's)" % folder)


def observation(arm: str, kind: str, record: dict, origin: bool = False) -> dict | None:
    """A sweep or re-run record (cold or promote) as an observation for ``decide``; None for a
    run that was stopped (Ctrl-C, SIGTERM, the classification's own stop) before it could say
    anything of the recipe: it is neither a pass nor a fail."""
    outcome = record.get("outcome")
    if outcome == "interrupted":
        return None
    # cold_record and promote_record turn a harness error into infra with signature harness-error;
    # a record read as the role wrote it says harness-error: never recipe evidence either way
    infra = record.get("infra") or ("harness-error" if outcome == "harness-error" else None)
    if kind == "cold":
        failure = record.get("failure") or {}
        if outcome == "pass":
            obs = {"outcome": "pass", "tier": None, "fingerprint": None, "error": ""}
        elif outcome in ("infra", "harness-error"):
            obs = {"outcome": "infra", "tier": failure.get("tier"), "fingerprint": failure.get("fingerprint"),
                   "error": failure.get("error") or record.get("infra") or "", "infra": infra}
        else:
            obs = {"outcome": "fail", "tier": failure.get("tier"), "fingerprint": failure.get("fingerprint"),
                   "error": failure.get("error", "")}
    else:
        error = record.get("detail") or ""
        if outcome in ("promoted", "current"):
            obs = {"outcome": "pass", "tier": None, "fingerprint": None, "error": ""}
        elif outcome in ("infra", "harness-error"):
            obs = {"outcome": "infra", "tier": "promote", "fingerprint": None, "error": error, "infra": infra}
        else:
            # A fallback that saved the canonical still means the in-place advance failed.
            error = record.get("in_place_error") or error or outcome
            obs = {"outcome": "fail", "tier": "promote", "fingerprint": fingerprint("promote", error), "error": error}
    obs.update(arm=arm, run_id=record.get("run_id"), origin=origin, kind=kind,
               started=record.get("started_epoch"), finished=record.get("finished_epoch"))
    return obs


def location_context(kind: str, cold: dict, promote: dict, drift_enabled: bool) -> dict:
    tiers = cold.get("tiers") or []
    findings = []
    for t in tiers:
        if t.get("name") == "preflight":
            for message in t.get("warnings") or []:
                findings.append({"code": "ambiguous-alias", "level": "warning", "message": message})
    ctx = {"kind": kind, "tiers": tiers, "findings": findings, "drift_enabled": drift_enabled,
           "tier": (cold.get("failure") or {}).get("tier") if kind == "cold" else "promote"}
    if kind == "promote":
        error = promote.get("in_place_error") or promote.get("detail") or ""
        m = re.search(r"\b(ok|no-answer|no-route|wrong-backend)\b", error)
        backend = re.search(r"backend[ =:]+([^\s,;)]+)", error)
        ctx["promote"] = {"outcome": promote.get("outcome"), "mode": promote.get("mode"),
                          "in_place_error": promote.get("in_place_error", ""), "fallback": promote.get("fallback", False),
                          "fallback_error": promote.get("fallback_error", ""), "drift": dict(promote.get("drift") or {},
                                                                                             reconciled=drift_enabled),
                          "identity": {"verdict": m.group(1) if m else None,
                                       "backend": backend.group(1) if backend else None}}
    return ctx


class Classifier:
    def __init__(self, server, inventory: str, recipe: str, out_dir: str, sweep_entry: dict, sweep_loaded: bool,
                 load_spec: dict, probe_image: str, budget: int = 10, deadline: int = 1800, kind: str | None = None,
                 progress=None, stop=None, busy_from: float | None = None):
        # absolute before it reaches Ansible, which resolves a relative path from the playbook's folder
        self.server, self.inventory, self.recipe, self.out_dir = server, inventory, recipe, os.path.abspath(out_dir)
        self.entry, self.sweep_loaded = sweep_entry, sweep_loaded
        self.load_spec, self.probe_image, self.budget, self.deadline = load_spec, probe_image, int(budget), int(deadline)
        self.progress, self.stop = progress, stop
        # an isolated run that met a machine this busy (% of CPU time working) counts as a loaded one
        self.busy_from = BUSY_CPU_PCT if busy_from is None else float(busy_from)
        cold, promote = sweep_entry.get("cold") or {}, sweep_entry.get("promote") or {}
        if kind is None:
            kind = "promote" if cold.get("outcome") == "pass" and promote.get("outcome") in (
                "failed", "refused", "promoted-by-fallback") else "cold"
        self.kind = kind
        if kind == "cold" and cold.get("outcome") not in ("fail", "incomplete", "infra"):
            raise ClassifyError("%s: nothing to classify: its cold run was %s" % (recipe, cold.get("outcome")))
        if kind == "promote" and promote.get("outcome") not in ("failed", "refused", "promoted-by-fallback", "infra"):
            raise ClassifyError("%s: nothing to classify: its promote was %s" % (recipe, promote.get("outcome")))
        self.runs_dir = os.path.join(self.out_dir, "runs")
        origin = cold if kind == "cold" else promote
        self.observations = [observation("loaded" if sweep_loaded else "isolated", kind, origin, origin=True)]
        self.records = []
        self.stopped_runs = []      # re-runs stopped before they ended: kept out of the observations

    # -- arms ------------------------------------------------------------------------------
    def _assert_alone(self):
        live = Ledger(self.server.state_dir).live_runs(server=self.server.name)
        if live:
            raise ClassifyError("refusing an isolated run: other harness runs are live on server %s (%s)"
                                % (self.server.name, ", ".join(r["run_id"] for r in live)))

    def _job(self, playbook, extravars, ident) -> Job:
        return Job(playbook, dict(extravars, canon_hosts=self.server.host, canon_results_dir=self.runs_dir,
                                  canon_deadline=self.deadline),
                   ident=ident, inventory=self.inventory, timeout=self.deadline + TEARDOWN_GRACE, cancel=self.stop)

    def cold_tiers(self) -> list:
        """The failing run's own path up to the failing rung: every tier that ran before it on the
        app's domain, then the failing one. The upgrade tier works on a domain of its own, so it
        is left out unless it is the one that failed (a failure right after a restore, say, needs
        the restore before it to reproduce)."""
        failing = (self.entry["cold"].get("failure") or {}).get("tier")
        ran = [t["name"] for t in self.entry["cold"].get("tiers") or []
               if t.get("name") not in ("preflight", "harness") and t.get("outcome") in ("pass", "fail")]
        if failing in (None, "preflight", "harness", "install") or failing not in ran:
            return ["install"]
        before = ran[:ran.index(failing)]
        return [t for t in before if t != "upgrade"] + [failing]

    def _cold_run(self, arm: str, n: int) -> dict:
        extravars = {"recipe": self.recipe, "version": self.entry.get("version") or "",
                     "canon_exclusive": arm == "isolated", "canon_tier_order": self.cold_tiers(),
                     "canon_settings_overrides": self.entry.get("settings") or {}}
        res = self._job("isolate.yml", extravars, "classify-%s-%s-%d" % (self.recipe, arm, n)).run()
        return cold_record(res, self.runs_dir, self.server)

    def _registry(self) -> dict:
        return read_json(os.path.join(self.server.state_dir, "canon", self.server.name, self.recipe + ".json")) or {}

    def _reset_canonical(self, n: int) -> dict | None:
        """Put the canonical back where the failing promote found it. None once it is there; the
        infra record of the step that failed when the server could not take the reset (the same
        rules as every run's: cold_record and promote_record read module_utils/_infra.py), so
        the attempt counts as an infra observation; ClassifyError when the canonical cannot be
        put back for a reason of its own (the previous release is not green cold, say)."""
        previous = (self.entry.get("promote") or {}).get("previous")
        now = self._registry()
        if not previous or (now.get("version") == previous and now.get("status") == "live"):
            return None
        res = self._job("warm_teardown.yml", {"recipe": self.recipe}, "classify-%s-reset-%d" % (self.recipe, n)).run()
        if res.status != "successful":
            error = "; ".join(f["msg"] for f in res.failures) or "warm_teardown.yml ended %s" % res.status
            sig = infra_signature(error, proxy_urls(self.server))
            if sig:
                return self._reset_infra(previous, "warm teardown", res, {"infra": sig, "detail": error})
            raise ClassifyError("cannot reset the %s canonical: %s" % (self.recipe, res.failures))
        job = self._job("isolate.yml", {"recipe": self.recipe, "version": previous, "canon_tier_order": ["install"]},
                        "classify-%s-seed-%d" % (self.recipe, n)).run()
        seed = cold_record(job, self.runs_dir, self.server)
        if seed["outcome"] == "infra":
            return self._reset_infra(previous, "cold install of %s" % previous, job,
                                     dict(seed, detail=(seed.get("failure") or {}).get("error") or seed.get("infra")))
        if seed["outcome"] != "pass":
            raise ClassifyError("cannot reset the %s canonical: %s is not green cold" % (self.recipe, previous))
        job = self._job("promote.yml", {"recipe": self.recipe, "version": previous, "cold_result": seed["result"]},
                        "classify-%s-seed-promote-%d" % (self.recipe, n)).run()
        promoted = promote_record(job, self.runs_dir, self.server)
        if promoted["outcome"] == "infra":
            return self._reset_infra(previous, "promote of %s" % previous, job, promoted)
        if promoted["outcome"] not in ("promoted", "current"):
            raise ClassifyError("cannot reset the %s canonical to %s" % (self.recipe, previous))
        return None

    def _reset_infra(self, previous: str, step: str, job, record: dict) -> dict:
        """The promote record of an attempt whose reset the server could not take: outcome
        ``infra``, its signature, and where the failing step's evidence is."""
        error = str(record.get("detail") or record.get("infra") or "")
        evidence = {"step": step, "previous": previous, "run_id": record.get("run_id"), "result": record.get("result"),
                    "infra": record.get("infra"), "error": clip_words(error, 2000)}
        where = ", ".join(x for x in (record.get("run_id"), record.get("result")) if x)
        detail = "the reset of the %s canonical to %s did not complete (%s%s): %s" % (
            self.recipe, previous, step, "; " + where if where else "", error)
        return {"outcome": "infra", "infra": record.get("infra"), "run_id": record.get("run_id"),
                "result": record.get("result"), "detail": detail, "reset": evidence,
                "started_epoch": job.started, "finished_epoch": job.finished, "duration": job.duration}

    def _promote_run(self, arm: str, n: int) -> dict:
        reset = self._reset_canonical(n)
        if reset is not None:
            return reset
        cold = self.entry["cold"]
        res = self._job("promote.yml", {"recipe": self.recipe, "cold_result": cold["result"],
                                        "version": self.entry.get("version") or "",
                                        "warm_drift": self.entry.get("warm_drift", True)},
                        "classify-%s-promote-%s-%d" % (self.recipe, arm, n)).run()
        return promote_record(res, self.runs_dir, self.server)

    def base_run(self) -> dict:
        """The same suite commit (the inventory's canon_suites_dir) against the upgrade base release,
        alone on the server: install then custom. What tells a stale test from a regression
        only the suite catches (canon.verdict._locate_custom)."""
        versions = (self.entry.get("cold") or {}).get("versions") or {}
        head = versions.get("head") or self.entry.get("version")
        base = versions.get("upgrade_base") or versions.get("previous")
        if not base or base == head:
            return {"version": None, "head": head}
        if self.progress:
            self.progress("%s: the custom suite against the upgrade base %s" % (self.recipe, base))
        self._assert_alone()
        extravars = {"recipe": self.recipe, "version": base, "canon_exclusive": True,
                     "canon_tier_order": ["install", "custom"],
                     "canon_settings_overrides": self.entry.get("settings") or {}}
        record = cold_record(self._job("isolate.yml", extravars, "classify-%s-base" % self.recipe).run(),
                             self.runs_dir, self.server)
        self.records.append(record)
        return base_evidence(record, base, head)

    def run_arm(self, arm: str, n: int) -> dict:
        if arm == "isolated":
            self._assert_alone()
        sampler = Sampler(self.server, interval=3.0)
        sampler.start()
        load = LoadArm(self.server, self.load_spec if arm == "loaded" else {}, self.probe_image)
        try:
            with load:
                record = self._cold_run(arm, n) if self.kind == "cold" else self._promote_run(arm, n)
        finally:
            sampler.stop()
        record["load"] = load_fingerprint(sampler.samples)
        self.records.append(record)
        obs = observation(arm, self.kind, record)
        if obs is None:
            self.stopped_runs.append({"arm": arm, "run_id": record.get("run_id"), "result": record.get("result"),
                                      "interrupted": record.get("interrupted")})
            return None
        obs["load"] = record["load"]
        if arm == "isolated" and busy(record["load"], self.busy_from):
            # no other harness run, but something else kept the machine busy: not isolated
            obs.update(arm="loaded", run_as="isolated", busy_from=self.busy_from)
            if self.progress:
                self.progress("%s: isolated run %d met a busy machine (CPUs %s%% busy, busy from %s%%): counted as loaded"
                              % (self.recipe, n, record["load"].get("cpu_busy_pct"), self.busy_from))
        return obs

    # -- the sequential loop ---------------------------------------------------------------
    def run(self) -> dict:
        started = time.time()
        decision = decide(self.observations, budget=self.budget)
        n = 0
        while not decision["clear"] and decision.get("next_arm") and not (self.stop and self.stop.is_set()):
            n += 1
            arm = decision["next_arm"]
            if self.progress:
                self.progress("%s: %s run %d (%s so far)" % (self.recipe, arm, n, decision["verdict"]))
            obs = self.run_arm(arm, n)
            if obs is None:     # stopped half way: no evidence either way, and no more runs
                break
            self.observations.append(obs)
            decision = decide(self.observations, budget=self.budget)
        promote = self.entry.get("promote") or {}
        context = location_context(self.kind, self.entry.get("cold") or {}, promote, self.entry.get("warm_drift", True))
        if custom_base_needed(decision, context) and not (self.stop and self.stop.is_set()):
            try:
                context["base"] = self.base_run()
            except ClassifyError as exc:  # the server is busy: say so instead of guessing
                context["base"] = {"version": None, "head": self.entry.get("version"), "outcome": str(exc)}
        location = locate(decision, context)
        doc = classification_document(
            self.recipe, self.kind, self.observations, decision, location,
            recipe_commit=self.entry.get("recipe_commit") or recipe_commit(self.server, self.recipe, self.entry.get("version")),
            harness_commit=harness_commit(), server=self.server.name, started=started, finished=time.time())
        doc["interrupted"] = bool(self.stop and self.stop.is_set()) or bool(self.stopped_runs)
        if self.stopped_runs:
            doc["stopped_runs"] = self.stopped_runs   # where they were, not counted as observations
        doc["version"] = self.entry.get("version")
        if "base" in context:
            doc["base_release"] = context["base"]
        write_json_atomic(os.path.join(self.out_dir, "classify", self.recipe + ".json"), doc)
        return doc
