"""Reports a maintainer reads at a glance (issue #15, part 4): banner, plain-word verdicts, human
times, paths relative to the results folder, reasons whole, evidence links, the timeline's red
labels and hover titles, and M1's fix column. The real recorded sweep of benchmarks/results/ is
rendered too: no absolute path and no epoch float may reach any report."""
from __future__ import annotations

import glob
import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

from canon import ROOT, report, timeline
from canon.redfix import Redfix
from tests.unit.test_report import DISCOURSE_ERROR, MATTERMOST_ERROR, MUMBLE_ERROR, bench_classifications, bench_sweep

SVG_NS = "{http://www.w3.org/2000/svg}"
RECORDED = os.path.join(ROOT, "benchmarks", "results", "sweeps", "sweep-20261127190320-78ce88.json")


def recorded():
    sweep = json.load(open(RECORDED))
    classifications = [json.load(open(p)) for p in sorted(glob.glob(os.path.join(
        ROOT, "benchmarks", "results", "classifications", "sweep-20261127190320-78ce88-*.json")))]
    return sweep, classifications


@pytest.fixture
def sweep():
    return bench_sweep()


@pytest.fixture
def classifications():
    return bench_classifications()


# ---------------------------------------------------------------- words and times

def test_banner_names_every_red_recipe_and_where(sweep):
    assert report.banner_text(sweep) == ("5 of 6 red: discourse custom, mattermost-lts backup_restore, mumble custom, "
                                         "bluesky-pds promote, gitea promote")


@pytest.mark.parametrize("change, banner", [
    (lambda s: [r.update(cold={"outcome": "pass"}, promote={"outcome": "promoted"}) for r in s["recipes"]],
     "all 6 green"),
    (lambda s: s["recipes"][5].update(cold={"outcome": "not-run"}, promote={"outcome": "not-run"}),
     "5 of 6 red: discourse custom, mattermost-lts backup_restore, mumble custom, bluesky-pds promote, gitea promote; "
     "1 not run"),
    # infra, a harness error and an interrupted run are never a recipe's red: counted apart (issue 17)
    (lambda s: s["recipes"][0].update(cold={"outcome": "infra", "infra": "engine-down"}),
     "4 of 6 red: mattermost-lts backup_restore, mumble custom, bluesky-pds promote, gitea promote; "
     "1 infra: discourse (engine-down)"),
    (lambda s: (s["recipes"][1].update(cold={"outcome": "infra", "infra": "harness-error",
                                             "failure": {"tier": "upgrade", "task": "upgrade - write the marker",
                                                         "error": "template error"}}),
                s["recipes"][2].update(cold={"outcome": "interrupted"}),
                s["recipes"][3].update(promote={"outcome": "infra", "infra": "proxy-down"}),
                s["recipes"][5].update(promote={"outcome": "interrupted"})),
     "2 of 6 red: discourse custom, gitea promote; 2 infra: mattermost-lts (harness-error in upgrade), "
     "bluesky-pds (promote: proxy-down); 2 interrupted: mumble, keycloak (promote)"),
    (lambda s: [r.update(cold={"outcome": "pass"}, promote={"outcome": "promoted"}) for r in s["recipes"][:5]]
     + [s["recipes"][5].update(cold={"outcome": "infra", "infra": "engine-down"})],
     "none red, 5 of 6 green; 1 infra: keycloak (engine-down)"),
    (lambda s: [r.update(cold={"outcome": "not-run"}, promote={"outcome": "not-run"}) for r in s["recipes"]],
     "none of 6 run"),
    (lambda s: s.update(recipes=[]), "no recipes in this sweep"),
])
def test_banner_cases(sweep, change, banner):
    change(sweep)
    assert report.banner_text(sweep) == banner


def test_the_banner_of_the_issue_counts_red_infra_and_interrupted_apart(sweep):
    """``2 of 6 red: discourse custom, gitea promote; 1 infra: keycloak (engine-down); 1
    interrupted: mumble`` in results.md, index.html (amber nowhere: a recipe is red), junit.xml
    and the CLI's end summary alike."""
    recipes = {r["recipe"]: r for r in sweep["recipes"]}
    recipes["mattermost-lts"].update(cold={"outcome": "pass"}, promote={"outcome": "promoted"})
    recipes["bluesky-pds"]["promote"] = {"outcome": "promoted"}
    recipes["keycloak"]["cold"] = {"outcome": "infra", "infra": "engine-down", "tiers": []}
    recipes["mumble"]["cold"] = {"outcome": "interrupted"}
    words = "2 of 6 red: discourse custom, gitea promote; 1 infra: keycloak (engine-down); 1 interrupted: mumble"
    assert report.banner_text(sweep) == words
    assert report.red_items(sweep) == ["discourse custom", "gitea promote"]
    assert "\n%s\n" % words in report.markdown_table(sweep)
    assert '<p class="banner red" id="banner">%s</p>' % words in report.html_page(sweep)
    props = {p.get("name"): p.get("value") for p in ET.fromstring(report.junit_xml(sweep)).iter("property")}
    assert props["banner"] == words


@pytest.mark.parametrize("change, css", [
    (lambda s: None, "red"),
    (lambda s: [r.update(cold={"outcome": "pass"}, promote={"outcome": "promoted"}) for r in s["recipes"]], "green"),
    # nothing red, but something could not be judged: not green either
    (lambda s: [r.update(cold={"outcome": "pass"}, promote={"outcome": "promoted"}) for r in s["recipes"][1:]]
     + [s["recipes"][0].update(cold={"outcome": "infra", "infra": "harness-error"})], "amber"),
    (lambda s: [r.update(cold={"outcome": "pass"}, promote={"outcome": "promoted"}) for r in s["recipes"][1:]]
     + [s["recipes"][0].update(cold={"outcome": "interrupted"})], "amber"),
])
def test_the_banner_is_red_only_for_a_recipes_red(sweep, change, css):
    change(sweep)
    assert report.banner_class(sweep) == css
    assert '<p class="banner %s" id="banner">' % css in report.html_page(sweep)


def test_an_infra_row_is_not_marked_red(sweep):
    sweep["recipes"][0]["cold"] = {"outcome": "infra", "infra": "engine-down", "tiers": []}
    page = report.html_page(sweep)
    assert page.count('<tr class="red">') == 4 and page.count('<tr class="amber">') == 1


@pytest.mark.parametrize("seconds, text", [(None, "—"), ("x", "—"), (0, "0.0 s"), (8.64, "8.6 s"), (59.9, "59.9 s"),
                                           (60, "1 min 0 s"), (404.9, "6 min 45 s"), (3725, "1 h 2 min 5 s")])
def test_durations_read_as_people_say_them(seconds, text):
    assert report.seconds_text(seconds) == text == timeline.duration_text(seconds)


@pytest.mark.parametrize("value, text", [
    (1795843884.3783662, "2026-11-28 05:31:24 UTC"),
    ("2026-11-28T06:03:51.998935Z", "2026-11-28 06:03:51 UTC"),
    ("2026-11-27T19:00:00Z", "2026-11-27 19:00:00 UTC"),
    ("2026-11-27T19:00:00+00:00", "2026-11-27 19:00:00 UTC"),
    ("yesterday", "yesterday"),          # not a time: shown as it is
    (None, "—"),
])
def test_moments_are_utc_dates(value, text):
    assert report.utc_text(value) == text


def _classification(verdict, isolated, loaded, fingerprint="custom:aa", fps=None):
    def arm(outcomes, fps):
        return {"runs": [{"outcome": o, "fingerprint": (fps or {}).get(i, fingerprint if o == "fail" else None)}
                         for i, o in enumerate(outcomes)]}
    return {"verdict": verdict, "fingerprint": fingerprint,
            "arms": {"isolated": arm(isolated, fps), "loaded": arm(loaded, None)}}


@pytest.mark.parametrize("classification, words", [
    (_classification("genuine", ["fail", "fail"], ["fail"]), "isolated 2 of 2 red, same error"),
    (_classification("genuine", ["fail", "fail"], ["fail"], fps={1: "custom:bb"}),
     "isolated 2 of 2 red, same error in 1 of 2"),
    (_classification("genuine", ["fail"], ["fail"], fps={0: "custom:bb"}), "isolated 1 of 1 red, another error"),
    (_classification("genuine", ["fail"], ["fail"], fingerprint=None), "isolated 1 of 1 red"),
    (_classification("load-flake", ["pass"] * 3, ["fail"] * 3),
     "green alone (isolated 3 of 3 green), red under load (loaded 3 of 3 red)"),
    (_classification("flaky", ["pass", "fail"], ["fail", "pass"]),
     "red now and then, load or not: isolated 1 of 2 red, loaded 1 of 2 red"),
    (_classification("not-reproduced", ["pass"] * 3, ["pass"] * 3),
     "not red again: isolated 3 of 3 green, loaded 3 of 3 green"),
    (dict(_classification("infra", ["infra"], []), arms={"isolated": {"infra": 2}}),
     "the bench failed, not the recipe (2 infrastructure failures)"),
    (_classification("undecided", ["fail", "pass"], []), "not clear yet: isolated 1 of 2 red"),
])
def test_verdicts_in_plain_words(classification, words):
    assert report.verdict_words(classification) == words


def test_the_statistics_stay_beside_the_words(classifications):
    text = report.classification_text(classifications[0])
    assert text == "genuine — isolated 2 of 2 red, same error (p=1, 0 isolated clean < 1 needed)"


def test_cells_are_cut_at_a_word_not_inside_one(sweep):
    cut = report.one_line(MATTERMOST_ERROR, 60)
    assert cut.endswith("…") and len(cut) <= 60
    assert MATTERMOST_ERROR.startswith(cut[:-1]) and not MATTERMOST_ERROR[len(cut) - 1].isalnum()


# ---------------------------------------------------------------- paths

ROOTS = {"sweep-20261128053124-34947c": ".", "redfix-20261128053124-36ad75": ".."}


@pytest.mark.parametrize("path, relative", [
    ("/work/main/results/redfix-20261128053124-36ad75/sweep-20261128053124-34947c/runs/g-1/promote.json",
     "runs/g-1/promote.json"),
    ("/work/main/results/redfix-20261128053124-36ad75/fix/bluesky-pds/ci/r/result.json",
     "../fix/bluesky-pds/ci/r/result.json"),
    ("/tmp/pytest-of-root/pytest-96/sweep0/sweep-20261127190320-78ce88/runs/d/result.json",
     "sweep-20261127190320-78ce88/runs/d/result.json"),     # another sweep's folder: from its name on
    ("/srv/ci/results/isolate-x/result.json", "isolate-x/result.json"),
    ("/var/lib/db/data/canon-marker.txt", None),           # inside a container: not a local path
    ("/xrpc/_health", None),
])
def test_relative_path(path, relative):
    assert report.relative_path(path, ROOTS) == relative


def test_relative_text_leaves_urls_and_container_paths_alone():
    text = ("rolled back; evidence: /work/main/results/redfix-20261128053124-36ad75/sweep-20261128053124-34947c/runs/"
            "g/promote.json; found x in /var/lib/db/data/m.txt; PR http://127.0.0.1:8490/coop-cloud/g/pulls/1; "
            "../.collections/x/test_about.py:30")
    assert report.relative_text(text, ROOTS) == (
        "rolled back; evidence: runs/g/promote.json; found x in /var/lib/db/data/m.txt; PR "
        "http://127.0.0.1:8490/coop-cloud/g/pulls/1; ../.collections/x/test_about.py:30")


def test_roots_for_a_sweep_inside_a_redfix_folder(tmp_path):
    folder = tmp_path / "redfix-20261128053124-36ad75" / "sweep-20261128053124-34947c"
    assert report.roots_for(str(folder), {"sweep_id": "sweep-20261128053124-34947c"}) == ROOTS
    assert report.roots_for(str(tmp_path / "showcase"), {"sweep_id": "s"}) == {"s": "."}


def _absolute_paths(text):
    return re.findall(r"(?<![\w.:/~-])/(?:tmp|work|home|root|srv|var/lib/canon)/[^\s\"'<>]*", text)


def test_written_reports_carry_no_absolute_local_path(sweep, classifications, tmp_path):
    folder = tmp_path / "redfix-20261128053124-36ad75" / sweep["sweep_id"]
    base = str(folder)
    sweep["recipes"][4]["promote"]["detail"] += "; evidence: %s/runs/gitea-1/promote.json" % base
    for entry in sweep["recipes"]:
        entry["cold"]["result"] = "%s/runs/%s/result.json" % (base, entry["cold"]["run_id"])
    classifications[0]["location"]["evidence"].append("%s/runs/x/evidence/custom-pytest.txt: E assert" % base)
    report.write_all(sweep, classifications, base)
    for name in ("results.md", "junit.xml", "index.html"):
        text = (folder / name).read_text()
        assert _absolute_paths(text) == [], name
        assert str(tmp_path) not in text, name
    page = (folder / "index.html").read_text()
    assert 'href="runs/discourse-' in page and "evidence: runs/gitea-1/promote.json" in page
    assert '<a href="runs/x/evidence/custom-pytest.txt" class="missing"' in page   # not there: marked


# ---------------------------------------------------------------- the page

def test_each_reason_is_whole_behind_a_disclosure(sweep, classifications):
    page = report.html_page(sweep, classifications)
    summaries = re.findall(r'<details class="reason"><summary>(.*?)</summary><pre>(.*?)</pre></details>', page, re.S)
    wholes = [w for _, w in summaries]
    for error in (DISCOURSE_ERROR, MUMBLE_ERROR, MATTERMOST_ERROR):
        escaped = report.html.escape(" ".join(error.split()), quote=True).replace("&quot;", "&#34;") \
            .replace("&#x27;", "&#39;")
        assert any(escaped in w for w in wholes), error[:40]
    assert all(len(report.html.unescape(s)) <= report.CELL_LIMIT + 20 for s, _ in summaries)


def test_evidence_links_are_relative_and_marked_when_absent(sweep, tmp_path):
    entry = sweep["recipes"][0]
    links = report.evidence_links(entry, str(tmp_path))
    assert [link["href"] for link in links] == [entry["cold"]["result"], os.path.dirname(entry["cold"]["result"]) + "/"]
    assert all(link["missing"] for link in links)
    (tmp_path / entry["cold"]["result"]).parent.mkdir(parents=True)
    (tmp_path / entry["cold"]["result"]).write_text("{}")
    assert [link["missing"] for link in report.evidence_links(entry, str(tmp_path))] == [False, False]
    assert report.evidence_links({"cold": {"result": "/abs/result.json"}}) == []   # never an absolute link


def test_the_page_shows_times_as_dates_and_durations(sweep, classifications):
    classifications[0]["started"], classifications[0]["finished"] = 1795806201.8409336, 1795806504.8463767
    page = report.html_page(sweep, classifications)
    assert "2026-11-27 19:00:00 UTC" in page and "39 min 25 s" in page
    assert "2026-11-27 19:03:21 UTC" in page
    assert not re.search(r"\b1795\d{6}(\.\d+)?\b", page)  # never a raw epoch


def test_the_banner_leads_the_page(sweep, classifications):
    page = report.html_page(sweep, classifications)
    assert page.index('<p class="banner red" id="banner">5 of 6 red: discourse custom') < page.index("<h2>Timeline")


def test_the_timeline_names_red_bars_and_titles_every_bar(sweep):
    svg = timeline.timeline_svg(sweep)
    root = ET.fromstring(svg.encode())
    groups = {g.get("id"): g for g in root.iter(SVG_NS + "g") if g.get("id")}
    bar = groups["bar-tier-2-mumble-custom"]
    assert bar[0].tag == SVG_NS + "title"
    assert bar[0].text.startswith("mumble custom: fail after 6.4 s — custom tests failed")
    assert bar[0].text.endswith("test_hello_returns_the_channel_list")          # the whole reason
    label = groups["label-bar-tier-2-mumble-custom"]
    assert "custom fail" in "".join(label.itertext())
    for gid in ("bar-promote-3-bluesky-pds", "bar-promote-4-gitea"):
        assert "promote failed" in "".join(groups["label-" + gid].itertext())
    assert "label-bar-promote-5-keycloak" not in groups and "label-bar-tier-5-keycloak-install" not in groups
    titled = [g for gid, g in groups.items() if gid.startswith("bar-")]
    assert titled and all(g[0].tag == SVG_NS + "title" for g in titled)


# ---------------------------------------------------------------- the real recorded sweep

def test_the_recorded_sweep_renders_without_local_paths_or_epochs(tmp_path):
    sweep, classifications = recorded()
    assert "/tmp/pytest-of-root" in json.dumps(sweep)                 # the input does carry them
    paths = report.write_all(sweep, classifications, str(tmp_path))
    for path in paths.values():
        text = open(path).read()
        assert _absolute_paths(text) == [], path
        assert not re.search(r"\b1795\d{6}\.\d+", text), path
    md = open(paths["markdown"]).read()
    assert "5 of 6 red: discourse custom, mattermost-lts backup\\_restore, mumble custom, bluesky-pds promote, " \
           "gitea promote" in md
    assert "genuine — isolated 2 of 2 red, same error (p=1" in md


# ---------------------------------------------------------------- M1

def test_m1_has_the_fix_column_and_relative_paths(sweep, classifications, tmp_path):
    redfix = Redfix.__new__(Redfix)
    redfix.redfix_id, redfix.dir = "redfix-20261128053124-36ad75", str(tmp_path)
    redfix.doc = {"sweeps": {"reproduce": {"sweep_id": sweep["sweep_id"]}}}
    for c in classifications:
        c.pop("fix")
    sweep["recipes"][4]["promote"]["detail"] += "; evidence: /work/main/results/%s/%s/runs/g/promote.json" % (
        redfix.redfix_id, sweep["sweep_id"])
    by_recipe = {c["recipe"]: c for c in classifications}
    redfix.write_m1(sweep, by_recipe)
    before = (tmp_path / "M1.md").read_text()
    assert [line.rsplit("|", 2)[1].strip() for line in before.splitlines()
            if line.startswith("| gitea")] == ["—"]                        # no fix yet: "—"
    by_recipe["gitea"]["fix"] = {"kind": "harness-setting", "ref": "warm_drift", "verified": "1/1 promote green"}
    redfix.write_m1(sweep, by_recipe)
    after = (tmp_path / "M1.md").read_text()
    gitea = next(line for line in after.splitlines() if line.startswith("| gitea"))
    assert gitea.rstrip(" |").endswith("harness-setting: warm\\_drift (verified: 1/1 promote green)")
    assert "evidence: %s/runs/g/promote.json" % sweep["sweep_id"] in gitea and "/work/" not in after


def test_a_harness_error_tier_is_drawn_and_named_apart_from_the_reds(sweep):
    import copy
    sweep = copy.deepcopy(sweep)
    keycloak = next(e for e in sweep["recipes"] if e["recipe"] == "keycloak")
    tier = next(t for t in keycloak["cold"]["tiers"] if t["name"] == "install")
    tier.update(outcome="harness-error", error="harness error (template) in task 'install - deploy': 'x' is undefined")
    bars = {b["gid"]: b for b in timeline._bars(sweep, timeline.sweep_origin(sweep))}
    svg = timeline.timeline_svg(sweep)
    root = ET.fromstring(svg.encode())
    groups = {g.get("id"): g for g in root.iter(SVG_NS + "g") if g.get("id")}
    label = groups["label-bar-tier-5-keycloak-install"]
    assert "install harness-error" in "".join(label.itertext())
    inks = {el.get("style") or "" for el in label.iter()} | {el.get("fill") or "" for el in label.iter()}
    assert any("#5b2c83" in ink for ink in inks) and not any("#8b0000" in ink for ink in inks), inks
    assert timeline.TIER_COLOURS["harness-error"] != timeline.TIER_COLOURS["fail"]
    assert bars["bar-tier-5-keycloak-install"]["colour"] == timeline.TIER_COLOURS["harness-error"]
