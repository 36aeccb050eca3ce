"""The sweep renderers (canon.report, canon.timeline) on a synthetic sweep of the six bench recipes.

The sweep is made up, shaped like the driver's documents: discourse red on its stale custom test,
mattermost-lts red on backup_restore, mumble red on its handshake under load, bluesky-pds and
gitea green cold with a failed warm promotion, keycloak green and promoted. Errors are the
harness's own wording from real bench runs (results/*/result.json, promote.json).
"""
from __future__ import annotations

import calendar
import copy
import hashlib
import html.parser
import math
import os
import re
import time
import xml.etree.ElementTree as ET

import pytest

from canon import report, timeline

T0 = float(calendar.timegm((2026, 11, 27, 19, 0, 0)))  # 2026-11-27T19:00:00Z
SVG_NS = "{http://www.w3.org/2000/svg}"

MUMBLE_ERROR = (
    'custom tests failed: >       assert "channels: Root,Lobby" in out.splitlines(), \\ | E       AssertionError: '
    "no channel list from mumb-2ce6d4_bench_canon_test_app:64738 (rc=1, stdout='', stderr=\"nc: can't connect to "
    'remote host (10.0.1.39): Connection refused") | FAILED tests/suites/mumble/test_handshake.py::'
    "test_hello_returns_the_channel_list"
)
DISCOURSE_ERROR = (
    "custom tests failed: E       AssertionError: no top-level 'version' in /about.json: "
    '{"about": {"version": "3.3.1"}} | FAILED tests/suites/discourse/test_about.py::test_about_reports_the_version'
)
MATTERMOST_ERROR = (
    'the restore did not bring back the state written before the backup: found "changed-matt-7c1e20" in '
    '/var/lib/db/data/canon-marker.txt, wanted "kept-matt-7c1e20"'
)


def _run_id(recipe, start, kind):
    """A run id shaped like the harness's: <recipe[:12]>-<UTC time>-<6 hex>."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(start))
    return "%s-%s-%s" % (recipe[:12], stamp, hashlib.sha256((recipe + kind).encode()).hexdigest()[:6])


def _iso(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _tiers(start, durations, outcomes, errors=None, timed=True):
    """Tier dicts in ladder order; with ``timed`` each has its started_epoch, consecutive."""
    names = ["preflight", "install", "upgrade", "backup_restore", "custom", "lint"]
    tiers, cursor = [], start
    for name, seconds, outcome in zip(names, durations, outcomes):
        tier = {"name": name, "outcome": outcome, "duration": seconds, "error": (errors or {}).get(name, "")}
        if timed:
            tier["started_epoch"] = cursor
        tiers.append(tier)
        cursor += seconds
    return tiers


def _cold(recipe, start, durations, outcomes, errors=None, timed=True, fingerprint=None):
    run_id = _run_id(recipe, start, "cold")
    duration = sum(durations)
    failed = next((t for t in _tiers(start, durations, outcomes, errors) if t["outcome"] == "fail"), None)
    return {
        "outcome": "fail" if failed else "pass", "run_id": run_id, "result": "results/%s/result.json" % run_id,
        "started_epoch": start, "finished_epoch": start + duration, "duration": duration,
        "tiers": _tiers(start, durations, outcomes, errors, timed),
        "failure": {"tier": failed["name"], "error": failed["error"], "fingerprint": fingerprint} if failed else None,
        "infra": None,
    }


def _promote(recipe, outcome, start=None, duration=None, detail=""):
    promote = {"outcome": outcome, "detail": detail}
    if start is not None:
        run_id = _run_id(recipe, start, "promote")
        promote.update({"run_id": run_id, "result": "results/%s/promote.json" % run_id, "started_epoch": start,
                        "finished_epoch": start + duration, "duration": duration})
    return promote


PASSED = ["pass"] * 6


def bench_sweep() -> dict:
    """A sweep of the six bench recipes, cap 2, under a CPU load with one extra deploy."""
    recipes = [
        {"recipe": "discourse", "version": "0.7.0+3.3.1", "status": "done",
         "cold": _cold("discourse", T0 + 2, [0.3, 1092.4, 1210.7, 48.2, 9.1, 0.0],
                       ["pass", "pass", "pass", "pass", "fail", "skipped"], {"custom": DISCOURSE_ERROR},
                       fingerprint="custom:5e0c1b7a9d24"),
         "promote": _promote("discourse", "skipped", detail="cold run not green")},
        {"recipe": "mattermost-lts", "version": "2.1.0+9.11.5", "status": "done",
         "cold": _cold("mattermost-lts", T0 + 3, [0.2, 61.3, 142.8, 18.4, 0.0, 0.0],
                       ["pass", "pass", "pass", "fail", "skipped", "skipped"], {"backup_restore": MATTERMOST_ERROR},
                       fingerprint="backup_restore:0b9d4f61c2aa"),
         "promote": _promote("mattermost-lts", "skipped", detail="cold run not green")},
        # Tiers without started_epoch: laid out one after the other from the cold run's start.
        {"recipe": "mumble", "version": "0.6.0+v1.5.735", "status": "done",
         "cold": _cold("mumble", T0 + 229, [0.1, 22.6, 71.0, 12.3, 6.4, 0.0],
                       ["pass", "pass", "pass", "pass", "fail", "skipped"], {"custom": MUMBLE_ERROR}, timed=False,
                       fingerprint="custom:1a2b3c4d5e6f"),
         "promote": _promote("mumble", "skipped", detail="cold run not green")},
        {"recipe": "bluesky-pds", "version": "0.3.0+0.4.107", "status": "done",
         "cold": _cold("bluesky-pds", T0 + 343, [0.2, 31.0, 88.4, 9.2, 5.1, 0.3], PASSED, timed=False),
         "promote": _promote("bluesky-pds", "failed", T0 + 478, 61.8,
                             "routing identity wrong-backend: warm-canon-bluesky-pds.bench.canon.test answered, "
                             "but not from this stack (alias app on proxy)")},
        {"recipe": "gitea", "version": "3.6.0+1.25.0-rootless", "status": "done",
         "cold": _cold("gitea", T0 + 541, [0.2, 35.1, 80.2, 11.0, 4.2, 0.3], PASSED, timed=False),
         "promote": _promote("gitea", "failed", T0 + 673, 151.4,
                             "abra app upgrade failed (exit 1): deploy failed 🛑; env drift: missing "
                             "LFS_JWT_SECRET_URI")},
        {"recipe": "keycloak", "version": "10.1.0+26.0.5", "status": "done",
         "cold": _cold("keycloak", T0 + 826, [0.2, 40.3, 95.1, 10.2, 5.0, 0.2], PASSED, timed=False),
         "promote": _promote("keycloak", "promoted", T0 + 978, 70.4, "fresh: warm-canon-keycloak.bench.canon.test")},
    ]
    end = max(r["cold"]["finished_epoch"] for r in recipes)
    samples = []
    for i in range(int((end - T0) // 30) + 1):
        t = T0 + 30 * i
        running = sum(1 for r in recipes if r["cold"]["started_epoch"] <= t < r["cold"]["finished_epoch"])
        samples.append({"t": t, "load1": round(3.0 + 1.6 * math.sin(i / 4.0) + 0.4 * running, 2),
                        "mem_used_pct": round(38.0 + 4.0 * running + (i % 5), 1),
                        "stacks": 1 + 2 * running, "tasks_changed": (i * 7) % 4})
    load1 = [s["load1"] for s in samples]
    return {
        "schema": "coopcloud.canon/sweep", "schema_version": 1, "sweep_id": "sweep-20261127190000-ab12cd",
        "server": "default", "cap": 2, "harness_commit": "3694915c0e1b4d8f2a7c9e6b5d4f3a2b1c0d9e8f",
        "started": "2026-11-27T19:00:00Z", "started_epoch": T0,
        "finished": _iso(end + 2.0), "finished_epoch": end + 2.0, "duration": round(end + 2.0 - T0, 1),
        "outcome": "fail",
        "load": {"spec": {"cpu": 6, "deploys": ["custom-html"]}, "samples": samples,
                 "fingerprint": {"load1_mean": round(sum(load1) / len(load1), 2), "load1_max": max(load1),
                                 "mem_used_pct_max": max(s["mem_used_pct"] for s in samples),
                                 "stacks_max": max(s["stacks"] for s in samples), "task_churn_per_min": 3.1}},
        "recipes": recipes,
        "systemic": [{"fingerprint": "systemic:7d3e0a91c4b2",
                      "normalised": "task: non-zero exit (137): container killed (out of memory) on <node>",
                      "recipes": ["discourse", "mattermost-lts"], "first": T0 + 611.0, "last": T0 + 1402.5,
                      "count": 2, "infra": None}],
        "summary": {"recipes": 6, "cold": {"pass": 3, "fail": 3},
                    "promote": {"promoted": 1, "failed": 2, "skipped": 3}, "infra": 0},
    }


def _runs(recipe, arm, outcomes, tier=None, fingerprint=None):
    runs = [{"run_id": _run_id(recipe, T0 + 3600 + 600 * i + (0 if arm == "iso" else 300), arm + str(i)), "outcome": o,
             "tier": tier if o == "fail" else None, "fingerprint": fingerprint if o == "fail" else None}
            for i, o in enumerate(outcomes)]
    return {"runs": runs, "pass": outcomes.count("pass"), "fail": outcomes.count("fail"),
            "infra": outcomes.count("infra")}


def _classification(recipe, kind, verdict, isolated, loaded, p_value, clean, where, detail, evidence, reason, fix,
                    tier=None, fingerprint=None):
    return {
        "schema": "coopcloud.canon/classification", "schema_version": 1, "recipe": recipe, "kind": kind,
        "verdict": verdict, "clear": True,
        "arms": {"isolated": _runs(recipe, "iso", isolated, tier, fingerprint),
                 "loaded": _runs(recipe, "load", loaded, tier, fingerprint)},
        "confidence": {"test": "one-sided Fisher exact (loaded vs isolated)", "p_value": p_value, "alpha": 0.05,
                       "loaded_failure_rate": loaded.count("fail") / len(loaded), "isolated_clean": clean,
                       "isolated_clean_needed": 1},
        "budget": {"runs": 10, "used": len(isolated) + len(loaded), "exhausted": False},
        "fingerprint": fingerprint,
        "location": {"where": where, "detail": detail, "evidence": evidence},
        "reason": reason, "fix": fix,
    }


def bench_classifications() -> list[dict]:
    """Classifications of the five red recipes (keycloak is green and not classified)."""
    return [
        _classification(
            "discourse", "cold", "genuine", ["fail", "fail"], ["fail", "fail"], 1.0, 0, "stale-test",
            "test_about_reports_the_version reads a top-level 'version'; /about.json now nests it under 'about'",
            ["results/%s/evidence/custom-pytest.txt" % _run_id("discourse", T0 + 3600, "iso0"),
             "GET /about.json -> {\"about\": {\"version\": ...}}"],
            "2 of 2 isolated runs red with the same fingerprint as under load",
            {"kind": "test-pr", "ref": "https://git.example.org/coop-cloud/discourse/pulls/1",
             "verified": "2/2 isolated runs green"}, "custom", "custom:5e0c1b7a9d24"),
        _classification(
            "mattermost-lts", "cold", "genuine", ["fail", "fail"], ["fail", "fail", "fail"], 1.0, 0, "recipe",
            "backup pre-hook dumps the database; no restore post-hook re-imports it",
            ["compose.yml: backupbot.backup.pre-hook pg_dump, no backupbot.restore.post-hook",
             "results/%s/evidence/backup_restore/" % _run_id("mattermost-lts", T0 + 3600, "iso0")],
            "2 of 2 isolated runs red: the restore never re-imports the dump",
            {"kind": "recipe-pr", "ref": "https://git.example.org/coop-cloud/mattermost-lts/pulls/2",
             "verified": "3/3 loaded runs green"}, "backup_restore", "backup_restore:0b9d4f61c2aa"),
        _classification(
            "mumble", "cold", "load-flake", ["pass", "pass", "pass"], ["fail", "fail", "fail"], 0.05, 3, "load",
            "the handshake ran before TCP 64738 accepted connections (nc: Connection refused)",
            ["results/%s/evidence/custom-pytest.txt: Connection refused" % _run_id("mumble", T0 + 3900, "load0"),
             "isolated: port open 0.8 s after the service converged; loaded: 14 s"],
            "3 of 3 loaded runs red, 3 of 3 isolated runs green",
            {"kind": "harness-setting", "ref": "canon_readiness_ports (port open 3 times in a row before custom)",
             "verified": "3/3 loaded runs green"}, "custom", "custom:1a2b3c4d5e6f"),
        _classification(
            "bluesky-pds", "promote", "genuine", ["fail", "fail"], ["fail", "fail"], 1.0, 0, "warm-machinery",
            "service 'app' on the shared proxy network: the alias resolves to another stack's app",
            ["curl -H 'Host: warm-canon-bluesky-pds.bench.canon.test' -> 200 from custom-html"],
            "2 of 2 isolated promotions answered from the wrong backend",
            {"kind": "harness-setting", "ref": "routing_identity (the answer must come from this stack)",
             "verified": "2/2 promotions green with the fix release"}),
        _classification(
            "gitea", "promote", "genuine", ["fail"], ["fail", "fail"], 1.0, 0, "warm-machinery",
            "3.6.0 adds LFS_JWT_SECRET_URI to .env.sample; the warm .env lacks it and app.ini renders it empty",
            ["promote.json drift.missing: [LFS_JWT_SECRET_URI]", "service ps: task rolled back (crash loop)"],
            "1 of 1 isolated promotion red: env drift",
            {"kind": "harness-setting", "ref": "warm_drift=true (reconcile .env before an in-place advance)",
             "verified": "promoted 3.5.3 -> 3.6.0 in place"}),
    ]


@pytest.fixture
def sweep():
    return bench_sweep()


@pytest.fixture
def classifications():
    return bench_classifications()


def _table_rows(markdown: str) -> list[list[str]]:
    """The table's rows split on unescaped pipes (header and separator included)."""
    rows = []
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([c.strip() for c in cells])
    return rows


# ---------------------------------------------------------------- Markdown

def test_markdown_table_has_one_row_per_recipe_with_the_six_columns(sweep, classifications):
    rows = _table_rows(report.markdown_table(sweep, classifications))
    assert rows[0] == ["recipe", "failure", "isolation result", "root cause", "classification", "fix"]
    assert set(rows[1]) == {"---"}
    assert [r[0].split()[0] for r in rows[2:]] == ["discourse", "mattermost-lts", "mumble", "bluesky-pds", "gitea",
                                                   "keycloak"]
    assert all(len(r) == 6 for r in rows)


def test_markdown_cells_say_what_failed_and_why(sweep, classifications):
    rows = {r[0].split()[0]: r for r in _table_rows(report.markdown_table(sweep, classifications))[2:]}
    assert rows["mattermost-lts"][1].startswith("backup\\_restore: the restore did not bring back the state")
    assert rows["mattermost-lts"][2] == "2/2 red"
    assert rows["mattermost-lts"][3].startswith("recipe: backup pre-hook dumps the database")
    assert rows["mattermost-lts"][4] == "genuine — isolated 2 of 2 red, same error (p=1, 0 isolated clean < 1 needed)"
    assert rows["mattermost-lts"][5] == ("recipe-pr: <https://git.example.org/coop-cloud/mattermost-lts/pulls/2> "
                                         "(verified: 3/3 loaded runs green)")
    assert rows["mumble"][2] == "0/3 red (3 green)"
    assert rows["mumble"][4] == ("load-flake — green alone (isolated 3 of 3 green), red under load (loaded 3 of 3 red) "
                                 "(p=0.05, 3 isolated clean ≥ 1 needed)")
    assert rows["mumble"][3].startswith("load: the handshake ran before TCP 64738")
    assert rows["discourse"][3].startswith("stale-test: ")
    assert rows["bluesky-pds"][1].startswith("promote: failed — routing identity wrong-backend")
    assert rows["gitea"][1] == ("promote: failed — abra app upgrade failed (exit 1): deploy failed 🛑; env drift: "
                                "missing LFS\\_JWT\\_SECRET\\_URI")
    assert rows["keycloak"][1:] == ["—", "—", "—", "—", "—"]


def test_markdown_header_and_systemic_events_come_before_the_rows(sweep, classifications):
    markdown = report.markdown_table(sweep, classifications)
    first_row = markdown.index("| recipe |")
    header = markdown.splitlines()[0]
    for part in ("sweep-20261127190000-ab12cd", "server default", "cap 2", "cpu 6", "deploys custom-html",
                 "duration 39 min 25 s", "outcome fail"):
        assert part in header
    event = markdown.index("systemic event: task: non-zero exit (137)")
    assert event < first_row
    assert "in discourse, mattermost-lts (2×, +611 s … +1402 s" in markdown[event:first_row]


def test_markdown_escapes_pipes_and_keeps_cells_on_one_line(sweep, classifications):
    # mumble's real error joins pytest lines with " | ": every pipe in a cell must be escaped.
    sweep["recipes"][2]["cold"]["failure"]["error"] = "line one |\nline two <b>bold</b> | a_b"
    markdown = report.markdown_table(sweep, classifications)
    table = [line for line in markdown.splitlines() if line.startswith("| mumble")]
    assert len(table) == 1
    assert "custom: line one \\| line two \\<b>bold\\</b> \\| a\\_b" in table[0]
    assert len(_table_rows(table[0])[0]) == 6


def test_cells_are_cut_at_the_limit(sweep, classifications):
    row = report.result_rows(sweep, classifications)[2]
    assert row["failure"].startswith("custom: custom tests failed")
    assert len(row["failure"]) <= len("custom: ") + report.CELL_LIMIT and row["failure"].endswith("…")


def test_load_text_leaves_out_what_was_not_added(sweep):
    sweep["load"]["spec"] = {"cpu": 6, "io": 0, "deploys": []}  # the shape canon.load.parse_spec gives
    assert report.load_text(sweep).startswith("cpu 6 (load1 mean 3.54, max 5.40; memory ≤ 50%; stacks ≤ 5;")
    sweep["load"] = {"spec": None, "samples": sweep["load"]["samples"],
                     "fingerprint": {"samples": 79, "load1_mean": 1.2, "load1_max": 2.0, "stacks_max": None}}
    assert report.load_text(sweep) == "none added (load1 mean 1.20, max 2.00; 79 samples)"
    sweep["load"] = None
    assert report.load_text(sweep) == "none added"


def test_unclassified_red_recipe_and_recipe_not_run(sweep):
    sweep["recipes"][5]["cold"] = {"outcome": "not-run"}
    sweep["recipes"][5]["promote"] = {"outcome": "not-run"}
    rows = {r[0].split()[0]: r for r in _table_rows(report.markdown_table(sweep))[2:]}
    assert rows["mumble"][2] == "not classified"
    assert rows["mumble"][3:5] == ["—", "—"]
    assert rows["keycloak"][1] == "not run"
    # Read while the sweep runs: the driver marks the recipe running before its cold run ends.
    sweep["recipes"][5]["status"] = "running"
    assert report.result_rows(sweep)[5]["failure"] == "running"
    skipped = ET.fromstring(report.junit_xml(sweep)).findall("testsuite/testcase/skipped")
    assert "running" in [s.get("message") for s in skipped]
    assert "running (no times recorded)" in timeline.timeline_svg(sweep)


def test_infra_and_incomplete_cold_runs_are_named(sweep):
    sweep["recipes"][0]["cold"] = {"outcome": "infra", "infra": "engine-down", "started_epoch": T0, "duration": 3.0}
    sweep["recipes"][1]["cold"]["outcome"] = "incomplete"
    sweep["recipes"][1]["cold"]["failure"] = None
    for tier in sweep["recipes"][1]["cold"]["tiers"]:
        if tier["outcome"] == "fail":
            tier["outcome"] = "skipped"
            tier["reason"] = "no older release to upgrade from"
    rows = report.result_rows(sweep)
    assert rows[0]["failure"] == "infra: engine-down"
    assert rows[1]["failure"] == "incomplete: backup_restore skipped (no older release to upgrade from)"


def test_a_document_of_another_schema_is_refused(sweep, classifications):
    with pytest.raises(ValueError, match="schema_version 2"):
        report.markdown_table(dict(sweep, schema_version=2))
    with pytest.raises(ValueError, match="not a classification document"):
        report.markdown_table(sweep, [dict(classifications[0], schema="coopcloud.canon/result")])


def test_classification_text_names_an_undecided_leaning():
    undecided = {"verdict": "undecided", "clear": False, "leaning": "load-flake",
                 "confidence": {"p_value": 0.2, "isolated_clean": 1, "isolated_clean_needed": 2},
                 "budget": {"runs": 10, "used": 10, "exhausted": True}}
    assert report.classification_text(undecided) == ("undecided, leaning load-flake (p=0.2, 1 isolated clean < 2 "
                                                     "needed, budget exhausted (10/10 runs))")
    assert report.classification_text({"verdict": "flaky", "clear": False}) == "flaky, not clear"
    # No rate yet: nothing to say about the clean runs needed.
    assert report.classification_text({"verdict": "genuine", "clear": True, "confidence": {
        "p_value": 1.0, "isolated_clean": 0, "isolated_clean_needed": None}}) == "genuine (p=1)"


def test_arm_text_counts():
    assert report.arm_text({"pass": 0, "fail": 2, "infra": 0}) == "2/2 red"
    assert report.arm_text({"pass": 3, "fail": 0, "infra": 0}) == "0/3 red (3 green)"
    assert report.arm_text({"pass": 1, "fail": 1, "infra": 1}) == "1/3 red (1 green, 1 infra)"
    assert report.arm_text({"runs": [{"outcome": "fail"}, {"outcome": "pass"}]}) == "1/2 red (1 green)"
    assert report.arm_text(None) == "no runs"


# ---------------------------------------------------------------- JUnit

def test_junit_parses_and_counts_failures_errors_skipped(sweep, classifications):
    root = ET.fromstring(report.junit_xml(sweep, classifications).encode())
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite.get("name") == "coopcloud.canon sweep sweep-20261127190000-ab12cd"
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases[:4]] == [
        ("discourse", "cold"), ("discourse", "promote"), ("mattermost-lts", "cold"), ("mattermost-lts", "promote")]
    assert len(cases) == 12
    assert len(suite.findall("testcase/failure")) == 5  # 3 cold tiers, 2 promotions
    assert len(suite.findall("testcase/error")) == 0
    assert len(suite.findall("testcase/skipped")) == 3  # promotions after a red cold run
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "12", "5", "0", "3")
    # the tiers' suite: 36 tiers, 3 red (the cold failures), 4 blocked by them (issue 17)
    tiers = root.findall("testsuite")[1]
    assert (tiers.get("tests"), tiers.get("failures"), tiers.get("errors"), tiers.get("skipped")) == (
        "36", "3", "0", "4")
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == (
        "48", "8", "0", "7")
    mumble = cases[4]
    failure = mumble.find("failure")
    assert failure.get("type") == "custom"
    assert failure.get("message").startswith("custom: custom tests failed")
    assert mumble.get("time") == "112.400"
    assert ("classification: load-flake — green alone (isolated 3 of 3 green), red under load (loaded 3 of 3 red) "
            "(p=0.05, 3 isolated clean ≥ 1 needed)") in mumble.find("system-out").text
    assert cases[2].find("failure").get("type") == "backup_restore"
    assert cases[7].find("failure").get("type") == "promote"  # bluesky-pds
    assert "warm-machinery" in cases[7].find("system-out").text
    assert cases[10].find("failure") is None and cases[11].find("failure") is None  # keycloak


def test_junit_infra_is_an_error_and_interrupted_is_skipped(sweep):
    sweep["recipes"][0]["cold"] = {"outcome": "infra", "infra": "engine-down"}
    sweep["recipes"][5]["cold"] = {"outcome": "interrupted"}
    sweep["recipes"][5]["promote"] = {"outcome": "not-enrolled", "detail": "warm domain is a live service"}
    suite = ET.fromstring(report.junit_xml(sweep)).find("testsuite")
    errors = suite.findall("testcase/error")
    assert [(e.get("type"), e.get("message")) for e in errors] == [("infra", "engine-down")]
    skipped = [s.get("message") for s in suite.findall("testcase/skipped")]
    assert "interrupted" in skipped and "not-enrolled: warm domain is a live service" in skipped
    assert suite.get("errors") == "1"


def _tier_cases(xml_text: str) -> dict:
    """``{(classname, name): testcase}`` of the tiers' testsuite."""
    [suite] = [s for s in ET.fromstring(xml_text).findall("testsuite") if s.get("name", "").endswith(" tiers")]
    return {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}


def _verdict(case):
    """(element, type, message) of a testcase; (None, None, None) when it passed."""
    for tag in ("failure", "error", "skipped"):
        element = case.find(tag)
        if element is not None:
            return tag, element.get("type"), element.get("message")
    return None, None, None


# issue 17: a tier not applicable is skipped with its reason; a tier blocked by a lower rung is
# skipped as blocked, naming that rung; never a pass, never a failure of its own
@pytest.mark.parametrize("tiers, name, expected", [
    ([{"name": "install", "outcome": "pass"}, {"name": "upgrade", "outcome": "not-applicable", "intended": True,
                                               "reason": "oldest release: nothing to upgrade from"}],
     "upgrade", ("skipped", None, "not applicable: oldest release: nothing to upgrade from")),
    ([{"name": "custom", "outcome": "not-applicable", "reason": ""}],
     "custom", ("skipped", None, "not applicable")),
    ([{"name": "upgrade", "outcome": "fail", "error": "image did not change"},
      {"name": "backup_restore", "outcome": "skipped", "intended": False, "reason": "blocked: upgrade did not pass"}],
     "backup_restore", ("skipped", None, "blocked: upgrade did not pass")),
    # a record without a reason (older results): blocked by the first lower rung that did not pass
    ([{"name": "install", "outcome": "pass"}, {"name": "upgrade", "outcome": "infra", "infra": "engine-down"},
      {"name": "backup_restore", "outcome": "skipped"}, {"name": "custom", "outcome": "skipped"}],
     "custom", ("skipped", None, "blocked: upgrade did not pass")),
    # skipped for a missing prerequisite, not blocked: its own reason
    ([{"name": "install", "outcome": "pass"},
      {"name": "upgrade", "outcome": "skipped", "intended": False, "reason": "no older release to upgrade from"}],
     "upgrade", ("skipped", None, "skipped: no older release to upgrade from")),
    ([{"name": "install", "outcome": "pass", "duration": 3.2}], "install", (None, None, None)),
    ([{"name": "install", "outcome": "fail", "error": "deploy failed: crashloop"}],
     "install", ("failure", "install", "install: deploy failed: crashloop")),
    ([{"name": "install", "outcome": "infra", "infra": "image-unavailable", "error": "pull access denied"}],
     "install", ("error", "infra", "infra (image-unavailable): pull access denied")),
    ([{"name": "upgrade", "outcome": "harness-error", "task": "upgrade - write the marker",
       "error": "template error while templating"}],
     "upgrade", ("error", "harness-error", "harness error in task 'upgrade - write the marker': "
                 "template error while templating")),
    ([{"name": "lint", "outcome": "sideways"}], "lint", ("error", "unknown", "unknown tier outcome 'sideways'")),
])
def test_junit_has_a_testcase_per_tier_and_says_why_one_was_skipped(tiers, name, expected):
    sweep = {"schema": "coopcloud.canon/sweep", "schema_version": 1, "sweep_id": "s",
             "recipes": [{"recipe": "r", "cold": {"outcome": "fail", "tiers": tiers}}]}
    cases = _tier_cases(report.junit_xml(sweep))
    assert [key[1] for key in cases] == [t["name"] for t in tiers]
    assert _verdict(cases[("r.cold", name)]) == expected


def test_junit_tiers_of_the_bench_sweep_are_blocked_by_the_rung_that_failed(sweep):
    cases = _tier_cases(report.junit_xml(sweep))
    assert len(cases) == 36
    assert _verdict(cases[("mattermost-lts.cold", "custom")]) == ("skipped", None, "blocked: backup_restore did not pass")
    assert _verdict(cases[("discourse.cold", "lint")]) == ("skipped", None, "blocked: custom did not pass")
    assert _verdict(cases[("mumble.cold", "custom")])[:2] == ("failure", "custom")
    assert cases[("mumble.cold", "custom")].get("time") == "6.400"
    assert _verdict(cases[("keycloak.cold", "lint")]) == (None, None, None)


def test_junit_drops_characters_xml_cannot_carry(sweep):
    sweep["recipes"][0]["cold"]["failure"]["error"] = "\x1b[31mFATA\x1b[0m deploy\x07 failed"
    text = report.junit_xml(sweep)
    failure = ET.fromstring(text).find("testsuite/testcase/failure")
    assert failure.get("message") == "custom: FATA deploy failed"


# ---------------------------------------------------------------- SVG timeline

def _gids(svg: str) -> list[str]:
    root = ET.fromstring(svg.encode())
    return [g.get("id") for g in root.iter(SVG_NS + "g") if (g.get("id") or "").startswith("bar-")]


def test_svg_has_one_bar_per_tier_and_per_timed_promotion(sweep):
    svg = timeline.timeline_svg(sweep)
    gids = _gids(svg)
    tiers = [g for g in gids if g.startswith("bar-tier-")]
    assert len(tiers) == sum(len(r["cold"]["tiers"]) for r in sweep["recipes"]) == 36
    assert "bar-tier-2-mumble-custom" in tiers
    promotes = [g for g in gids if g.startswith("bar-promote-")]
    assert promotes == ["bar-promote-3-bluesky-pds", "bar-promote-4-gitea", "bar-promote-5-keycloak"]
    root = ET.fromstring(svg.encode())
    bar = next(g for g in root.iter(SVG_NS + "g") if g.get("id") == "bar-tier-2-mumble-custom")
    assert "#d62728" in bar.find(SVG_NS + "path").get("style")  # fail is red
    assert "load-load1" in svg and "load-stacks" in svg
    assert "canon sweep sweep-20261127190000-ab12cd" in svg


def test_svg_ids_stay_unique_when_a_tier_is_recorded_twice(sweep):
    tiers = sweep["recipes"][2]["cold"]["tiers"]
    tiers.insert(5, dict(tiers[4], outcome="pass"))  # custom retried
    gids = _gids(timeline.timeline_svg(sweep))
    assert len(gids) == len(set(gids)) == 37 + 3
    assert "bar-tier-2-mumble-custom-2" in gids


def test_a_sweep_with_only_the_required_keys_renders(tmp_path):
    minimal = {"schema": "coopcloud.canon/sweep", "schema_version": 1, "sweep_id": "sweep-x",
               "recipes": [{"recipe": "custom-html"}]}
    assert _table_rows(report.markdown_table(minimal))[2] == ["custom-html", "not run", "not classified", "—", "—",
                                                              "—"]
    suite = ET.fromstring(report.junit_xml(minimal)).find("testsuite")
    assert suite.get("skipped") == "2" and suite.get("tests") == "2"
    assert "custom-html" in timeline.timeline_svg(minimal)
    empty = dict(minimal, recipes=[])
    assert sorted(report.write_all(empty, (), str(tmp_path))) == ["html", "junit", "markdown"]


def test_svg_is_byte_equal_for_equal_input(sweep):
    assert timeline.timeline_svg(sweep) == timeline.timeline_svg(copy.deepcopy(sweep))


def test_untimed_tiers_follow_each_other_from_the_cold_start(sweep):
    spans = timeline.tier_spans(sweep["recipes"][2]["cold"])  # mumble: no tier has started_epoch
    starts = [round(start - T0, 1) for _, _, start, _ in spans]
    assert starts == [229.0, 229.1, 251.7, 322.7, 335.0, 341.4]
    timed = timeline.tier_spans({"started_epoch": T0, "tiers": [
        {"name": "install", "outcome": "pass", "duration": 5, "started_epoch": T0 + 10},
        {"name": "upgrade", "outcome": "pass", "duration": 2}]})
    assert [(n, s - T0, d) for n, _, s, d in timed] == [("install", 10.0, 5.0), ("upgrade", 15.0, 2.0)]


def test_svg_without_load_or_times_still_renders(sweep):
    sweep["load"] = None
    sweep["recipes"][0]["cold"] = {"outcome": "infra", "infra": "engine-down", "started_epoch": T0, "duration": 3.0}
    sweep["recipes"][1]["cold"] = {"outcome": "not-run"}
    svg = timeline.timeline_svg(sweep)
    gids = _gids(svg)
    assert "bar-run-0-discourse" in gids
    assert not any(g.startswith("bar-tier-1-") for g in gids)
    assert "load-load1" not in svg
    assert "not-run (no times recorded)" in svg


# ---------------------------------------------------------------- HTML

class _Resources(html.parser.HTMLParser):
    """Every (tag, attribute, value) that can point somewhere: src, href, xlink:href, action, data."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "action", "data", "srcset", "poster"):
                self.found.append((tag, name, value or ""))


def test_html_is_self_contained(sweep, classifications):
    page = report.html_page(sweep, classifications)
    parser = _Resources()
    parser.feed(page)
    remote = [(t, n, v) for t, n, v in parser.found if re.match(r"\s*(https?:)?//", v)]
    # Links to the fixes' pull requests are anchors (nothing is loaded); nothing else is remote.
    assert remote and all(t == "a" for t, _, _ in remote)
    assert {v for _, _, v in remote} == {"https://git.example.org/coop-cloud/discourse/pulls/1",
                                         "https://git.example.org/coop-cloud/mattermost-lts/pulls/2"}
    assert "script" not in parser.tags and "link" not in parser.tags and "img" not in parser.tags
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page) and "@import" not in page


def test_the_stylesheet_is_a_template_beside_the_page(sweep, classifications):
    with open(os.path.join(os.path.dirname(report.__file__), "templates", "report.css.j2"), encoding="utf-8") as fh:
        css = fh.read()
    page = report.html_page(sweep, classifications)
    assert page.count("<style>") == 1 and "<style>\n%s</style>" % css in page
    assert "tr.red td:first-child{border-left:4px solid #d62728}" in css and "{{" not in css and "{%" not in css
    with open(report.__file__, encoding="utf-8") as fh:
        assert "border-left:4px solid" not in fh.read()


def test_html_contains_the_svg_and_the_table(sweep, classifications):
    page = report.html_page(sweep, classifications)
    assert page.count("<svg ") == 1 and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert 'id="bar-tier-2-mumble-custom"' in page
    for column in report.COLUMNS:
        assert "<th>%s</th>" % column in page
    assert page.count('<tr class="red">') == 5 and page.count('<tr class="green">') == 1
    assert "load-flake — green alone (isolated 3 of 3 green), red under load (loaded 3 of 3 red) (p=0.05, 3 isolated " \
        "clean ≥ 1 needed)" in page
    assert "one-sided Fisher exact (loaded vs isolated)" in page
    assert "compose.yml: backupbot.backup.pre-hook pg_dump, no backupbot.restore.post-hook" in page
    assert "systemic event: task: non-zero exit (137): container killed (out of memory) on &lt;node&gt;" in page


def test_html_says_which_loaded_run_was_an_isolated_run_on_a_busy_machine(sweep, classifications):
    mumble = next(c for c in classifications if c["recipe"] == "mumble")
    mumble["arms"]["loaded"]["runs"][-1].update(run_as="isolated", busy_from=90.0,
                                                load={"host": "controller", "cpu_busy_pct": 97.4})
    page = report.html_page(sweep, classifications)
    assert "run isolated, met a busy machine (CPUs 97.4% busy)" in page


def test_html_escapes_everything_it_is_given(sweep, classifications):
    sweep["sweep_id"] = "sweep-<script>alert(1)</script>"
    classifications[2]["location"]["evidence"].append('<img src="https://example.org/x.png">')
    page = report.html_page(sweep, classifications)
    assert "<script>" not in page and '<img src="https://' not in page
    assert "&lt;img src=&#34;https://example.org/x.png&#34;&gt;" in page  # markupsafe's escape of a quote


# ---------------------------------------------------------------- files

def test_write_all_writes_three_files_atomically(sweep, classifications, tmp_path):
    target = tmp_path / "sweep"
    paths = report.write_all(sweep, classifications, str(target))
    assert paths == {"markdown": str(target / "results.md"), "junit": str(target / "junit.xml"),
                     "html": str(target / "index.html")}
    assert sorted(os.listdir(target)) == ["index.html", "junit.xml", "results.md"]  # no temporary file left
    assert (target / "results.md").read_text(encoding="utf-8") == report.markdown_table(sweep, classifications)
    ET.parse(target / "junit.xml")
    assert oct(os.stat(target / "index.html").st_mode & 0o777) == "0o644"


def test_write_all_leaves_the_directory_alone_when_rendering_fails(sweep, tmp_path):
    (tmp_path / "results.md").write_text("before\n")
    with pytest.raises(ValueError):
        report.write_all(dict(sweep, schema="something/else"), [], str(tmp_path))
    assert os.listdir(tmp_path) == ["results.md"] and (tmp_path / "results.md").read_text() == "before\n"


def test_a_fallback_that_saved_the_canonical_is_still_a_red_promote():
    from canon.report import is_green, promote_failure
    entry = {"recipe": "gitea", "status": "done", "cold": {"outcome": "pass"},
             "promote": {"outcome": "promoted-by-fallback", "detail": "rolled-back: app update rolled back"}}
    assert not is_green(entry)
    assert promote_failure(entry) == "promote: promoted-by-fallback — rolled-back: app update rolled back"


@pytest.mark.parametrize("location, text", [
    ({"where": "test-or-app", "detail": "behaviour changed between 2.3.1 and 2.4.0",
      "confidence": {"level": "undecided", "why": "w"}},
     "test-or-app (confidence: undecided): behaviour changed between 2.3.1 and 2.4.0"),
    ({"where": "stale-test", "detail": "the suite fails the same way", "confidence": {"level": "medium"}},
     "stale-test (confidence: medium): the suite fails the same way"),
    ({"where": "recipe", "detail": "red cold"}, "recipe: red cold"),
])
def test_root_cause_states_the_location_confidence(location, text):
    from canon.report import root_cause_text
    assert root_cause_text({"location": location}) == text


@pytest.mark.parametrize("cold, text", [
    ({"outcome": "interrupted", "interrupted": {"why": "controller-died", "tier": "upgrade"}},
     "cold: interrupted in upgrade (controller-died)"),
    ({"outcome": "interrupted", "interrupted": {"why": "janitor", "tier": None}}, "cold: interrupted (janitor)"),
    ({"outcome": "interrupted"}, "cold: interrupted"),
])
def test_an_interrupted_run_says_where_and_why(cold, text):
    from canon.report import cold_failure
    assert cold_failure({"cold": cold}) == text


# ---------------------------------------------------------------- harness errors and honest levels (issue 17)

HARNESS_ERROR = ("AnsibleUndefinedVariable: 'dict object' has no attribute 'table'. The error appears to be in "
                 "'roles/lifecycle/tasks/upgrade.yml': line 12, column 3, but may be elsewhere in the file "
                 "depending on the exact syntax problem. The offending line appears to be: - name: upgrade - "
                 "render the env of the new release")
HARNESS_TASK = "upgrade - render the env of the new release"


def _recorded_cold(tiers, run_id="custom-html-20261206200000-abc123"):
    """A cold record made as the sweep makes it: the lifecycle's result document (the ladder's
    own result_document) read by canon.sweep.cold_record from the job's events."""
    from types import SimpleNamespace
    from canon.sweep import cold_record
    from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder
    doc = _ladder.result_document({"run_id": run_id, "recipe": "custom-html", "versions": {"head": "1.0.1+1.36"}},
                                  tiers)
    job = SimpleNamespace(results=[doc], run_ids=[run_id], domains={}, status="successful", failures=[],
                          started=T0, finished=T0 + 40.0, duration=40.0)
    return cold_record(job, "results", None)


HARNESS_TIERS = [{"name": "install", "outcome": "pass", "duration": 12.0},
                 {"name": "upgrade", "outcome": "harness-error", "duration": 1.5, "task": HARNESS_TASK,
                  "harness_error": "templating", "error": HARNESS_ERROR},
                 {"name": "backup_restore", "outcome": "skipped", "intended": False,
                  "reason": "blocked: upgrade did not pass"}]
NA_TIERS = [{"name": "install", "outcome": "pass", "duration": 12.0},
            {"name": "upgrade", "outcome": "not-applicable", "intended": True, "reason": "oldest release"},
            {"name": "backup_restore", "outcome": "pass", "duration": 4.0},
            {"name": "custom", "outcome": "not-applicable", "intended": True, "reason": "no suite"},
            {"name": "lint", "outcome": "pass", "duration": 0.4}]
NA_LEVEL = "PASS, 3 of 3 applicable rungs (upgrade n/a: oldest release; custom n/a: no suite)"


def test_a_harness_error_cell_names_the_task_and_the_error_cut_at_a_word(sweep):
    cold = _recorded_cold(HARNESS_TIERS)
    assert cold["outcome"] == "infra" and cold["infra"] == "harness-error"
    sweep["recipes"][5]["cold"] = cold
    sweep["recipes"][5]["promote"] = {"outcome": "skipped", "detail": "the cold run was not green (infra)"}
    row = report.result_rows(sweep)[5]
    head = "infra: harness-error in upgrade task '%s': " % HARNESS_TASK
    assert row["failure"].startswith(head + "AnsibleUndefinedVariable: 'dict object' has no attribute 'table'.")
    clipped = row["failure"][len(head):]
    assert clipped.endswith("…") and len(clipped) <= report.CELL_LIMIT
    assert HARNESS_ERROR.startswith(clipped[:-1]) and HARNESS_ERROR[len(clipped) - 1] == " "   # at a word
    # the page: the task and the error in the row's reason, whole behind its disclosure, not only a tooltip
    page = report.html_page(sweep)
    summary = html.escape(row["failure"], quote=True).replace("&#x27;", "&#39;")
    assert "<summary>%s</summary>" % summary in page
    assert "<pre>%s</pre>" % html.escape(head + HARNESS_ERROR).replace("&#x27;", "&#39;") in page
    # JUnit: the cold testcase's error names them too, whole
    keycloak = [c for c in ET.fromstring(report.junit_xml(sweep)).iter("testcase")
                if c.get("classname") == "keycloak" and c.get("name") == "cold"][0]
    assert keycloak.find("error").get("message") == head[len("infra: "):] + HARNESS_ERROR


def test_an_infra_cell_keeps_its_kind_and_adds_the_error_the_run_recorded():
    cold = {"outcome": "infra", "infra": "image-unavailable",
            "failure": {"tier": "install", "error": "pull access denied for recipe/app"}}
    assert report.cold_failure({"cold": cold}) == "infra: image-unavailable: pull access denied for recipe/app"
    assert report.cold_failure({"cold": {"outcome": "infra", "infra": "disk-full", "detail": "2.1 GiB free"}}) == \
        "infra: disk-full: 2.1 GiB free"


@pytest.mark.parametrize("cold, level", [
    ({"level_text": NA_LEVEL}, NA_LEVEL),                                       # as the result document says
    ({"outcome": "pass", "tiers": NA_TIERS}, NA_LEVEL),                         # a sweep from before level_text
    ({"outcome": "fail", "tiers": [{"name": "install", "outcome": "pass"}, {"name": "upgrade", "outcome": "fail"}]},
     "FAIL, 1 of 5 applicable rungs, stopped at upgrade"),
    ({"outcome": "infra", "infra": "harness-error", "tiers": HARNESS_TIERS},
     "HARNESS-ERROR, 1 of 5 applicable rungs, stopped at upgrade"),
    ({"outcome": "interrupted"}, "—"),
    ({}, "—"),
])
def test_the_level_of_a_recipe(cold, level):
    assert report.level_of({"cold": cold}) == level


def test_every_format_shows_each_recipes_honest_level(sweep):
    sweep["recipes"][5]["cold"] = _recorded_cold(NA_TIERS)
    assert sweep["recipes"][5]["cold"]["level_text"] == NA_LEVEL
    md = report.markdown_table(sweep)
    assert "What each cold run verified:\n\n- discourse 0.7.0+3.3.1: FAIL, 3 of 5 applicable rungs, stopped at custom\n" \
        in md
    assert "- keycloak 10.1.0+26.0.5: %s\n" % NA_LEVEL in md
    page = report.html_page(sweep)
    assert "<th>promote</th><th>level</th>" in page and '<td class="level">%s</td>' % NA_LEVEL in page
    root = ET.fromstring(report.junit_xml(sweep))
    cold = [c for c in root.iter("testcase") if c.get("classname") == "keycloak" and c.get("name") == "cold"][0]
    assert cold.find("system-out").text.splitlines()[0] == "level: " + NA_LEVEL
    # the n/a tiers stay skipped with their reason
    tiers = {c.get("name"): c for c in root.iter("testcase") if c.get("classname") == "keycloak.cold"}
    assert tiers["upgrade"].find("skipped").get("message") == "not applicable: oldest release"
    assert tiers["custom"].find("skipped").get("message") == "not applicable: no suite"


def test_an_all_green_sweep_reads_as_before_with_the_levels_added(sweep):
    for r in sweep["recipes"]:
        r["cold"] = _cold(r["recipe"], r["cold"]["started_epoch"], [0.2, 30.0, 80.0, 10.0, 5.0, 0.3], PASSED)
        r["promote"] = _promote(r["recipe"], "promoted", r["cold"]["finished_epoch"], 60.0, "fresh")
    md = report.markdown_table(sweep)
    assert "\nall 6 green\n" in md
    table, _, levels = md.partition("\n\nWhat each cold run verified:\n\n")
    assert levels == "".join("- %s %s: PASS, 5 of 5 applicable rungs\n" % (r["recipe"], r["version"])
                             for r in sweep["recipes"])
    assert table.endswith("| keycloak 10.1.0+26.0.5 | — | — | — | — | — |") and "rungs" not in table
    assert '<p class="banner green" id="banner">all 6 green</p>' in report.html_page(sweep)
