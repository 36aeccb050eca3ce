"""``canon redfix``: from a red sweep to fixes verified green, in one command.

1. sweep under load (with the profile that reproduces today's CI) -> the failing set;
2. classify each failure (two arms, confidence, where the defect lives); systemic events first;
3. M1: the results table, every row backed by isolated runs;
4. apply the fix for each from the fix catalogue (``fixes/bench.yml``): a recipe pull request
   with ``!testme`` (the forge's CI answers on the PR's head), a test pull request, or the harness
   setting that fixes it; verify it green in the reproducing condition (N loaded runs for a
   load-flake, N from the observed failure rate; the promote again for the warm machinery);
   then sweep again with every fix in place;
5. M2: the report: per recipe, flake or real, the fix (PR link or setting), the verification
   runs; nothing merged; a failure that could not be fixed is said plainly, with the reason.
"""
from __future__ import annotations

import os
import time

import yaml

from canon import ROOT
from canon.classifier import ClassifyError, Classifier
from canon.load import LoadArm
from canon.progress import shorten
from canon.report import markdown_table, relative_documents, write_all
from canon.sweep import PROMOTE_RED, Sweep, is_red

from canon.verdict import runs_needed
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import now_iso, write_json_atomic

SCHEMA = "coopcloud.canon/redfix"
# A verification run's error in redfix.json: cut at a word with "…" (its run's result.json is whole).
ERROR_LIMIT = 300


def red(entry: dict) -> bool:
    return is_red(entry)  # the sweep's own rule: infra, harness errors and interruptions are not a red


def verification_runs(decision: dict) -> int:
    """Runs needed to call a fixed flake fixed: from the failure rate the loaded arm showed.

    The rate is estimated with Laplace's rule ((f+1)/(n+2)): 3 reds of 3 give 0.8, not 1, so a
    single green run is never taken as proof."""
    loaded = decision["arms"]["loaded"]
    f, n = loaded.get("fail", 0), loaded.get("fail", 0) + loaded.get("pass", 0)
    p = (f + 1.0) / (n + 2.0)
    return max(2, runs_needed(p) or 2)


class Redfix:
    def __init__(self, server, inventory, results_root, plans, profile: dict, load_spec, probe_image, cap=2,
                 budget=10, deadline=3600, catalogue=None, progress=None, stop=None, ci=None, busy_from=None):
        self.server, self.inventory, self.plans, self.profile = server, inventory, plans, profile
        self.load_spec, self.probe_image, self.cap, self.budget, self.deadline = load_spec, probe_image, cap, budget, deadline
        self.busy_from = busy_from      # None: the classifier's default (canon.load.BUSY_CPU_PCT)
        self.catalogue = catalogue if catalogue is not None else load_catalogue()
        self.progress, self.stop, self.ci = progress, stop, ci
        self.redfix_id = "redfix-%s-%s" % (time.strftime("%Y%m%d%H%M%S", time.gmtime()), os.urandom(3).hex())
        self.dir = os.path.join(results_root, self.redfix_id)
        os.makedirs(self.dir, exist_ok=True)
        self.doc = {"schema": SCHEMA, "schema_version": 1, "redfix_id": self.redfix_id, "server": server.name,
                    "started": now_iso(), "started_epoch": time.time(), "sweeps": {}, "recipes": {}, "merged": 0}

    def say(self, text):
        if self.progress:
            self.progress.say(text)

    def save(self):
        write_json_atomic(os.path.join(self.dir, "redfix.json"), self.doc)

    # -- phases ----------------------------------------------------------------------------
    def sweep(self, name, plans) -> tuple:
        load = LoadArm(self.server, self.load_spec, self.probe_image) if any(self.load_spec.values()) else None
        sweep = Sweep(self.server, plans, self.dir, self.inventory, cap=self.cap, load_arm=load, deadline=self.deadline,
                      progress=self.progress)
        if self.stop is not None:
            sweep.stop = self.stop
        doc = sweep.run()
        self.doc["sweeps"][name] = {"sweep_id": doc["sweep_id"], "outcome": doc["outcome"], "dir": sweep.dir,
                                    "duration": doc["duration"]}
        self.save()
        return doc, sweep.dir

    def classify(self, sweep_doc, sweep_dir) -> dict:
        docs = {}
        loaded = bool((sweep_doc.get("load") or {}).get("spec"))
        for entry in sweep_doc["recipes"]:
            if not red(entry) or (self.stop and self.stop.is_set()):
                continue
            self.say("classify %s ..." % entry["recipe"])
            try:
                clf = Classifier(self.server, self.inventory, entry["recipe"], sweep_dir, entry, loaded,
                                 self.load_spec or {"cpu": 6}, self.probe_image, budget=self.budget,
                                 deadline=self.deadline, stop=self.stop, progress=self.say, busy_from=self.busy_from)
                docs[entry["recipe"]] = clf.run()
            except ClassifyError as exc:
                docs[entry["recipe"]] = {"recipe": entry["recipe"], "verdict": "undecided", "clear": False,
                                         "reason": str(exc), "location": {"where": "unknown", "detail": str(exc)}}
        return docs

    # -- fixes -----------------------------------------------------------------------------
    def fix(self, entry, classification) -> dict:
        recipe = entry["recipe"]
        where = (classification.get("location") or {}).get("where", "unknown")
        fix = (self.catalogue.get(recipe) or {}).get(where)
        record = {"recipe": recipe, "where": where, "verdict": classification.get("verdict")}
        if not classification.get("clear"):
            return dict(record, status="not-fixed", reason="the classification is not clear (%s): no fix is applied "
                        "to a failure whose cause is not established" % classification.get("reason", ""))
        if not fix:
            return dict(record, status="not-fixed", reason="no fix for a %s defect of %s is known to this harness "
                        "(fixes/bench.yml)" % (where, recipe))
        kind = fix["kind"]
        if kind == "harness-setting":
            return dict(record, **self.fix_setting(entry, classification, fix))
        return dict(record, **self.fix_pr(entry, classification, fix))

    def fix_setting(self, entry, classification, fix) -> dict:
        recipe, setting = entry["recipe"], fix["setting"]
        override = (self.profile.get(recipe) or {})
        if setting == "warm_drift":
            self.profile.setdefault(recipe, {})["warm_drift"] = True
        else:
            (override.get("settings") or {}).pop(setting, None)
        fixed_entry = dict(entry, settings=(self.profile.get(recipe) or {}).get("settings") or {},
                           warm_drift=(self.profile.get(recipe) or {}).get("warm_drift", True))
        out = {"status": "fixed", "fix": {"kind": "harness-setting", "ref": setting, "detail": " ".join(fix["detail"].split())}}
        runs = []
        if classification.get("verdict") == "load-flake":
            n = verification_runs(classification)
            clf = Classifier(self.server, self.inventory, recipe, self.dir, fixed_entry, True, self.load_spec or {"cpu": 6},
                             self.probe_image, deadline=self.deadline, stop=self.stop, kind="cold")
            clf.runs_dir = os.path.join(self.dir, "verify", recipe)
            for i in range(1, n + 1):
                self.say("verify %s: loaded run %d of %d with %s" % (recipe, i, n, setting))
                obs = clf.run_arm("loaded", i)
                if obs is None:     # stopped before it ended: no evidence either way
                    runs.append({"arm": "loaded", "outcome": "interrupted", "run_id": clf.stopped_runs[-1].get("run_id"),
                                 "error": ""})
                    break
                runs.append({"arm": "loaded", "outcome": obs["outcome"], "run_id": obs.get("run_id"),
                             "error": clip_words(obs.get("error", ""), ERROR_LIMIT)})
                if obs["outcome"] != "pass":
                    break
            load = ",".join("%s=%s" % (k, v) for k, v in sorted((self.load_spec or {"cpu": 6}).items()) if v)
            out["verification"] = {"condition": "loaded (%s)" % load, "needed": n, "runs": runs}
        else:
            clf = Classifier(self.server, self.inventory, recipe, self.dir, fixed_entry, False, {}, self.probe_image,
                             deadline=self.deadline, stop=self.stop, kind="promote")
            clf.runs_dir = os.path.join(self.dir, "verify", recipe)
            self.say("verify %s: the promote again with %s" % (recipe, setting))
            obs = clf.run_arm("isolated", 1) or {"outcome": "interrupted", "run_id": clf.stopped_runs[-1].get("run_id")}
            rec = clf.records[-1]
            runs.append({"arm": "isolated", "outcome": obs["outcome"], "run_id": obs.get("run_id"),
                         "promote": rec.get("outcome"), "mode": rec.get("mode"),
                         "error": clip_words(obs.get("error", ""), ERROR_LIMIT)})
            out["verification"] = {"condition": "promote from the same green cold result", "needed": 1, "runs": runs}
            if rec.get("outcome") != "promoted":
                out["status"] = "not-fixed"
                out["reason"] = ("the promote with %s was stopped before it ended: the fix is not verified" % setting
                                 if obs["outcome"] == "interrupted" else
                                 "the promote with %s was %s" % (setting, rec.get("outcome")))
        if any(r["outcome"] != "pass" for r in runs):
            out["status"] = "not-fixed"
            red = [r for r in runs if r["outcome"] not in ("pass", "infra", "interrupted")]
            stopped = any(r["outcome"] == "interrupted" for r in runs)
            out.setdefault("reason", "a verification run was red with the fix in place" if red
                           else "a verification run was stopped before it ended: the fix is not verified" if stopped
                           else "a verification run was infra: the server could not take it, the fix is not verified")
        return out

    def fix_pr(self, entry, classification, fix) -> dict:
        if self.ci is None:
            return {"status": "not-fixed", "reason": "no forge configured for pull requests"}
        return self.ci.pull_request(self, entry, classification, fix)

    # -- the whole phase -------------------------------------------------------------------
    def run(self) -> dict:
        self.say("redfix %s: sweep 1 (reproduce) ..." % self.redfix_id)
        plans1 = [dict(p) for p in self.plans]
        first, first_dir = self.sweep("reproduce", plans1)
        failing = [e for e in first["recipes"] if red(e)]
        self.doc["failing"] = [e["recipe"] for e in failing]
        self.doc["systemic"] = first.get("systemic") or []
        if self.doc["systemic"]:
            self.doc["note"] = "systemic events were seen; no recipe is blamed for them"
        classifications = self.classify(first, first_dir)
        write_all(first, [c for c in classifications.values() if c.get("schema")], first_dir)
        self.write_m1(first, classifications)  # now, so an interrupted redfix still has one
        self.save()

        fixes = {}
        for entry in failing:
            if self.stop and self.stop.is_set():
                break
            self.say("fix %s ..." % entry["recipe"])
            try:
                fixes[entry["recipe"]] = self.fix(entry, classifications.get(entry["recipe"], {}))
            except ClassifyError as exc:   # the verification could not run (e.g. no canonical to reset)
                fixes[entry["recipe"]] = {"recipe": entry["recipe"], "status": "not-fixed",
                                          "reason": "the verification could not run: %s" % exc}
            self.doc["recipes"][entry["recipe"]] = fixes[entry["recipe"]]
            self.save()

        # Sweep again with every fix in place: settings from the updated profile, recipe fixes
        # as the release candidates their pull requests carry, test fixes from their branch.
        if not (self.stop and self.stop.is_set()):
            self.say("redfix %s: sweep 2 (with the fixes) ..." % self.redfix_id)
            with (self.ci.candidates(fixes) if self.ci else _nothing()) as extras:
                plans2 = []
                for p in self.plans:
                    plan = dict(p)
                    override = self.profile.get(p["recipe"]) or {}
                    plan["settings"] = dict(p.get("base_settings") or {}, **(override.get("settings") or {}))
                    plan["warm_drift"] = override.get("warm_drift", p.get("warm_drift", True))
                    plan.update((extras or {}).get(p["recipe"]) or {})
                    plans2.append(plan)
                second, second_dir = self.sweep("verify", plans2)
            for r in second["recipes"]:
                rec = self.doc["recipes"].setdefault(r["recipe"], {"recipe": r["recipe"], "status": "green"})
                rec["sweep2"] = {"cold": r["cold"]["outcome"], "promote": r["promote"]["outcome"], "version": r.get("version")}
        for c in classifications.values():
            if c.get("schema") and c["recipe"] in fixes and fixes[c["recipe"]].get("fix"):
                f = fixes[c["recipe"]]
                c["fix"] = dict(f["fix"], verified=describe_verification(f))
                # on disk too: `canon report` on the sweep's folder shows the fix as well
                write_json_atomic(os.path.join(first_dir, "classify", c["recipe"] + ".json"), c)
        write_all(first, [c for c in classifications.values() if c.get("schema")], first_dir)
        # M1 again, with the fix column: the first M1 was written before any fix existed (it
        # was a copy of the sweep's results.md from before the fixes, hence a column of "—").
        self.write_m1(first, classifications)
        self.doc["finished"] = now_iso()
        self.doc["duration"] = round(time.time() - self.doc["started_epoch"], 1)
        self.doc["outcome"] = ("interrupted" if self.stop and self.stop.is_set() else
                               "green" if all(not red_after(r) for r in self.doc["recipes"].values()) else "not-all-fixed")
        self.save()
        report = m2_report(relative_documents(self.doc, self.roots()), relative_documents(first, self.roots()),
                           classifications)
        with open(os.path.join(self.dir, "M2.md"), "w") as fh:
            fh.write(report)
        return self.doc

    def roots(self) -> dict:
        """Run folders as seen from the redfix folder (where M1 and M2 are written)."""
        roots = {self.redfix_id: "."}
        for sweep in self.doc["sweeps"].values():
            roots[sweep["sweep_id"]] = sweep["sweep_id"]
        return roots

    def write_m1(self, first: dict, classifications: dict) -> None:
        """M1: the reproducing sweep's results table, paths relative to the redfix folder."""
        roots = self.roots()
        docs = [relative_documents(c, roots) for c in classifications.values() if c.get("schema")]
        with open(os.path.join(self.dir, "M1.md"), "w") as fh:
            fh.write(markdown_table(relative_documents(first, roots), docs))


class _nothing:
    def __enter__(self):
        return {}

    def __exit__(self, *exc):
        return False


def red_after(rec: dict) -> bool:
    s2 = rec.get("sweep2") or {}
    if rec.get("status") == "not-fixed":
        return True
    return s2.get("cold") not in ("pass",) or s2.get("promote") in PROMOTE_RED


def evidence_words(iso: dict, lod: dict, classification: dict) -> str:
    """The classification's runs in plain words, the statistic beside them: "isolated 2 of 2 red
    (the same failure), loaded none run; Fisher p = 1"."""
    def arm(name, counts):
        runs = counts.get("fail", 0) + counts.get("pass", 0)
        return "%s %s" % (name, "%d of %d red" % (counts.get("fail", 0), runs) if runs else "none run")
    same = " (the same failure)" if classification.get("verdict") == "genuine" else ""
    p_value = (classification.get("confidence") or {}).get("p_value", 1.0)
    return "%s%s, %s; Fisher p = %.3g" % (arm("isolated", iso), same, arm("loaded", lod), p_value)


def describe_verification(fix: dict) -> str:
    v = fix.get("verification") or {}
    runs = v.get("runs") or []
    green = sum(1 for r in runs if r.get("outcome") == "pass")
    return "%d/%d %s runs green" % (green, len(runs), v.get("condition", ""))


def load_catalogue(path=None) -> dict:
    with open(path or os.path.join(ROOT, "fixes", "bench.yml")) as fh:
        return yaml.safe_load(fh) or {}


def m2_report(doc: dict, first: dict, classifications: dict) -> str:
    lines = ["# redfix %s on %s: %s" % (doc["redfix_id"], doc["server"], doc["outcome"]), ""]
    s1, s2 = doc["sweeps"].get("reproduce", {}), doc["sweeps"].get("verify", {})
    lines.append("Sweep 1 (reproduce): %s, %s in %.0f s. Sweep 2 (with the fixes): %s, %s in %.0f s. "
                 "Redfix took %.0f s. Pull requests merged: 0." % (
                     s1.get("sweep_id"), s1.get("outcome"), s1.get("duration") or 0,
                     s2.get("sweep_id"), s2.get("outcome"), s2.get("duration") or 0, doc.get("duration") or 0))
    lines.append("")
    for ev in doc.get("systemic") or []:
        lines.append("- systemic event in %s: %s" % (", ".join(ev["recipes"]), shorten(ev.get("normalised", ""), 120)))
    lines += ["| recipe | failure | flake or real | evidence | fix | verification | after |",
              "|---|---|---|---|---|---|---|"]
    for entry in first["recipes"]:
        recipe = entry["recipe"]
        rec = doc["recipes"].get(recipe) or {}
        c = classifications.get(recipe) or {}
        if not red(entry):
            s2 = rec.get("sweep2") or {}
            lines.append("| %s | — | green | — | — | — | cold %s, promote %s |" % (
                recipe, s2.get("cold", "?"), s2.get("promote", "?")))
            continue
        f = entry["cold"].get("failure") or {}
        failure = ("%s: %s" % (f.get("tier"), f.get("error", ""))) if f else "promote %s: %s" % (
            entry["promote"]["outcome"], entry["promote"].get("detail", ""))
        arms = c.get("arms") or {}
        iso, lod = arms.get("isolated", {}), arms.get("loaded", {})
        evidence = evidence_words(iso, lod, c)
        flake = {"load-flake": "flake", "flaky": "flake", "genuine": "real"}.get(c.get("verdict"), c.get("verdict"))
        where = (c.get("location") or {}).get("where", "?")
        fx = rec.get("fix") or {}
        fix_text = ("%s `%s`" % (fx.get("kind"), fx.get("ref"))) if fx else "not fixed: %s" % rec.get("reason", "?")
        s2 = rec.get("sweep2") or {}
        lines.append("| %s | %s | %s (%s) | %s | %s | %s | cold %s, promote %s |" % (
            recipe, cell(failure, 90), flake, where, evidence, cell(fix_text, 90), cell(describe_verification(rec), 60),
            s2.get("cold", "?"), s2.get("promote", "?")))
    lines.append("")
    not_fixed = [r for r in doc["recipes"].values() if r.get("status") == "not-fixed"]
    if not_fixed:
        lines.append("Not fixed:")
        for r in not_fixed:
            lines.append("- %s: %s" % (r["recipe"], r.get("reason")))
    else:
        lines.append("Every failure has a fix, verified; none is left as a standing exception.")
    return "\n".join(lines) + "\n"


def cell(text, width) -> str:
    """One table cell: one line, at most ``width`` characters cut at a word boundary, pipes escaped."""
    return shorten(text, width).replace("|", "\\|")
