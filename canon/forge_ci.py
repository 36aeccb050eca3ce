"""Redfix's pull requests on the bench forge, and the release candidates the second sweep tests.

A recipe fix goes through ``playbooks/fix_pr.yml`` (branch on the recipe's mirror with the
release candidate tag, pull request, ``!testme``), the bench CI answers the ``!testme`` with the
lifecycle on the PR's head (``canon.ci``), and, when the failure was a promote, the promote of
that candidate is run too. A test fix goes the same way against the suites repository. Nothing is
ever merged: the second sweep tests the pull requests' heads.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile

from canon.ci import ReleaseCandidate, answer_pending, forge_settings, git
from canon.runner import Job
from canon.sweep import TEARDOWN_GRACE, promote_record

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words

# Errors carried in a fix's record: cut at a word with "…" (the runs' own records are whole).
REASON_LIMIT = 500
ERROR_LIMIT = 300


class BenchForge:
    def __init__(self, forge, server, inventory: str, results_dir: str):
        self.forge, self.server, self.inventory, self.results_dir = forge, server, inventory, results_dir
        self.prs: dict = {}      # recipe -> the fix_pr.yml record

    @classmethod
    def from_inventory(cls, server, inventory, results_dir):
        return cls(forge_settings(inventory, server.host), server, inventory, results_dir)

    def _job(self, playbook, extravars, ident, results):
        return Job(playbook, dict(extravars, canon_hosts=self.server.host, canon_results_dir=results),
                   ident=ident, inventory=self.inventory, timeout=3600 + TEARDOWN_GRACE).run()

    def pull_request(self, redfix, entry, classification, fix) -> dict:
        recipe, kind = entry["recipe"], fix["kind"]
        results = os.path.join(redfix.dir, "fix", recipe)
        os.makedirs(results, exist_ok=True)
        record_path = os.path.join(results, "pr.json")
        f = entry["cold"].get("failure") or {}
        extravars = {"recipe": recipe, "fix_kind": kind, "fix_branch": fix["branch"], "fix_title": fix["title"],
                     "fix_record": record_path,
                     # a fresh verdict from this harness, even when an earlier run had one on this head
                     "fix_retest": True,
                     "fix_failure": ("%s: %s" % (f.get("tier"), f.get("error", ""))) if f else
                     "promote %s: %s" % (entry["promote"]["outcome"], entry["promote"].get("detail", "")),
                     "fix_classification": "%s (%s): %s" % (classification.get("verdict"),
                                                            (classification.get("location") or {}).get("where"),
                                                            classification.get("reason", ""))}
        if kind == "recipe-pr":
            extravars.update(fix_tree=fix["tree"], fix_tag=fix["tag"])
        else:
            extravars.update(fix_patch=fix["patch"])
        res = self._job("fix_pr.yml", extravars, "redfix-pr-%s" % recipe, results)
        if res.status != "successful" or not os.path.exists(record_path):
            reason = "; ".join(x["msg"] for x in res.failures) or res.status
            return {"status": "not-fixed", "reason": "the pull request could not be made: %s" % clip_words(reason, REASON_LIMIT)}
        with open(record_path) as fh:
            pr = json.load(fh)
        self.prs[recipe] = dict(pr, kind=kind)
        redfix.say("%s: %s #%s %s; !testme" % (recipe, pr["repo"], pr["number"], pr["url"]))
        answers = answer_pending(self.inventory, results_dir=os.path.join(results, "ci"), repo=pr["repo"],
                                 pr=pr["number"], log=redfix.say)
        answer = next((a for a in answers if a.get("head_sha") == pr["head_sha"]), None)
        out = {"fix": {"kind": kind, "ref": pr["url"], "branch": pr["branch"], "head_sha": pr["head_sha"],
                       "tag": pr.get("tag")}, "pr": pr}
        if answer is None:
            return dict(out, status="not-fixed", reason="the CI did not answer !testme on %s" % pr["head_sha"][:12])
        runs = [{"arm": "isolated", "outcome": r["outcome"], "run_id": r.get("run_id"), "version": r.get("version"),
                 "result": r.get("result")} for r in answer.get("runs", [])]
        out["verification"] = {"condition": "isolated (the CI's lifecycle on the PR head)", "needed": 1, "runs": runs,
                               "ci": {"state": answer["state"], "comment": answer.get("comment_url"),
                                      "description": answer.get("description")}}
        if answer["state"] != "success":
            return dict(out, status="not-fixed", reason="the CI's verdict on the PR head is %s: %s"
                        % (answer["state"], answer.get("description") or answer.get("error") or ""))
        if classification.get("kind") == "promote" and kind == "recipe-pr":
            # The defect showed in the promote: the candidate is promoted from its green cold run.
            cold = runs[-1]
            repo = os.path.join(self.forge.repos_dir, recipe)
            checkout = os.path.join(self.server.abra_dir, "recipes", recipe)
            with ReleaseCandidate(repo, checkout, os.path.join(self.forge.git_root, pr["repo"] + ".git"),
                                  pr["tag"], pr["head_sha"]):
                pres = self._job("promote.yml", {"recipe": recipe, "version": pr["tag"], "cold_result": cold["result"],
                                                 "warm_drift": entry.get("warm_drift", True)},
                                 "redfix-verify-promote-%s" % recipe, results)
            prec = promote_record(pres, results)
            # an infra promote (a harness error included) says nothing about the fix: not a red run
            runs.append({"arm": "isolated", "stage": "promote", "outcome": "pass" if prec["outcome"] in ("promoted", "current")
                         else "infra" if prec["outcome"] == "infra" else "fail", "promote": prec["outcome"],
                         "run_id": prec.get("run_id"), "error": clip_words(prec.get("detail", ""), ERROR_LIMIT)})
            out["verification"]["condition"] += ", then its promote"
            if prec["outcome"] not in ("promoted", "current"):
                return dict(out, status="not-fixed", reason="the fixed release's promote was %s: %s"
                            % (prec["outcome"], prec.get("detail", "")))
        return dict(out, status="fixed")

    @contextlib.contextmanager
    def candidates(self, fixes: dict):
        """While the second sweep runs: recipe fixes as release candidates abra can fetch, test
        fixes checked out from their branch. Yields recipe -> sweep plan additions."""
        extras, work = {}, tempfile.mkdtemp(prefix="canon-redfix-")
        with contextlib.ExitStack() as stack:
            try:
                for recipe, f in fixes.items():
                    pr = self.prs.get(recipe)
                    if f.get("status") != "fixed" or not pr:
                        continue
                    mirror = os.path.join(self.forge.git_root, pr["repo"] + ".git")
                    if pr["kind"] == "recipe-pr":
                        stack.enter_context(ReleaseCandidate(
                            os.path.join(self.forge.repos_dir, recipe),
                            os.path.join(self.server.abra_dir, "recipes", recipe), mirror, pr["tag"], pr["head_sha"]))
                        extras[recipe] = {"version": pr["tag"]}
                    else:
                        suites = os.path.join(work, "suites-%s" % recipe)
                        git(work, "clone", "--quiet", "--no-checkout", mirror, suites)
                        git(suites, "checkout", "--quiet", "--detach", pr["head_sha"])
                        extras[recipe] = {"suites_dir": suites}
                yield extras
            finally:
                shutil.rmtree(work, ignore_errors=True)
