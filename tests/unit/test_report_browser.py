"""index.html in a real browser: headless Chromium (Debian's ``chromium``; the bench role installs
it) renders the page of the recorded sweep, and a probe script, added to a copy of the page by
this test only, reports what the laid-out page shows. Every red tier must be named on the
timeline and in the banner, and every reason must be visible (its first words) and readable
whole once its disclosure is opened. Marked slow: it starts a browser (make test runs it)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from canon import report
from tests.unit.test_report_glance import recorded

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--window-size=1280,2600"]

# Runs in the page once it is laid out; its answer goes into a <pre> that --dump-dom prints.
PROBE = """<script>
(function () {
  function shown(el) {
    var r = el.getBoundingClientRect(), cs = getComputedStyle(el);
    return r.width > 0 && r.height > 0 && cs.visibility !== "hidden" && cs.display !== "none";
  }
  var svg = document.querySelector("figure svg"), box = svg.getBoundingClientRect(), out = {labels: {}, titles: {}};
  document.querySelectorAll("svg g[id^='label-bar-']").forEach(function (g) {
    var text = g.querySelector("text"), r = g.getBoundingClientRect();
    var inside = r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    out.labels[g.id] = {text: text ? text.textContent : "", shown: !!text && shown(text) && inside};
  });
  document.querySelectorAll("svg g[id^='bar-'] > title").forEach(function (t) { out.titles[t.parentNode.id] = t.textContent; });
  var banner = document.getElementById("banner");
  out.banner = banner && shown(banner) ? banner.innerText : "";
  out.closed = document.body.innerText;
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  out.opened = document.body.innerText;
  var pre = document.createElement("pre");
  pre.id = "canon-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def probe(page_path: str, tmp_path, extra_css: str = "") -> dict:
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `apt-get install chromium` (the bench role installs it)")
    page = open(page_path, encoding="utf-8").read()
    copy = tmp_path / "probed.html"
    copy.write_text(page.replace("</body>", (("<style>%s</style>" % extra_css) if extra_css else "") + PROBE
                                 + "</body>"), encoding="utf-8")
    res = subprocess.run([CHROMIUM] + FLAGS + ["--user-data-dir=%s" % (tmp_path / "profile"), "--dump-dom",
                                               copy.as_uri()], capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="canon-probe">(.*?)</pre>', res.stdout, re.S)
    assert found, "no probe answer from chromium (rc %s): %s" % (res.returncode, res.stderr[-2000:])
    import html
    return json.loads(html.unescape(found.group(1)))


def expected_red(sweep: dict) -> list[dict]:
    """From the sweep document itself (not the page): each red recipe's failing bar, its label and reason."""
    reds = []
    for lane, entry in enumerate(sweep["recipes"]):
        recipe, cold, promote = entry["recipe"], entry["cold"], entry["promote"]
        if cold["outcome"] == "fail":
            tier = cold["failure"]["tier"]
            reds.append({"recipe": recipe, "where": tier, "gid": "bar-tier-%d-%s-%s" % (lane, recipe, tier),
                         "label": "%s fail" % {"backup_restore": "backup"}.get(tier, tier),
                         "reason": "%s: %s" % (tier, cold["failure"]["error"]), "detail": cold["failure"]["error"]})
        elif promote["outcome"] in ("failed", "refused", "promoted-by-fallback"):
            reds.append({"recipe": recipe, "where": "promote", "gid": "bar-promote-%d-%s" % (lane, recipe),
                         "label": "promote %s" % promote["outcome"],
                         "reason": "promote: %s — %s" % (promote["outcome"], promote["detail"]),
                         "detail": promote["detail"]})
    return reds


def _flat(text: str) -> str:
    return " ".join(text.split())


def missing(seen: dict, reds: list[dict], roots: dict) -> list[str]:
    """What the rendered page fails to show, one line each (empty: everything is there)."""
    problems = []
    closed, opened = _flat(seen["closed"]), _flat(seen["opened"])
    for red in reds:
        reason = _flat(report.relative_text(report.clean_text(red["reason"]), roots))
        label = seen["labels"].get("label-" + red["gid"]) or {}
        if not (label.get("shown") and label.get("text") == red["label"]):
            problems.append("%s: timeline label %r not shown (%r)" % (red["recipe"], red["label"], label))
        if "%s %s" % (red["recipe"], red["where"]) not in seen["banner"]:
            problems.append("%s: not in the banner %r" % (red["recipe"], seen["banner"]))
        if reason[:60] not in closed:
            problems.append("%s: reason not visible: %r" % (red["recipe"], reason[:60]))
        if reason not in opened:
            problems.append("%s: reason not whole once opened" % red["recipe"])
        detail = _flat(report.relative_text(report.clean_text(red["detail"]), roots))
        if detail not in _flat(seen["titles"].get(red["gid"], "")):
            problems.append("%s: no hover title with the reason" % red["recipe"])
    return problems


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    sweep, classifications = recorded()
    folder = tmp_path_factory.mktemp("page")
    report.write_all(sweep, classifications, str(folder))
    return sweep, str(folder / "index.html"), report.roots_for(str(folder), sweep)


def test_every_red_tier_and_its_reason_are_visible(rendered, tmp_path):
    sweep, page, roots = rendered
    reds = expected_red(sweep)
    assert [r["recipe"] + " " + r["where"] for r in reds] == [
        "discourse custom", "mattermost-lts backup_restore", "mumble custom", "bluesky-pds promote", "gitea promote"]
    assert missing(probe(page, tmp_path), reds, roots) == []


@pytest.mark.parametrize("css, broken", [
    ("svg g[id^='label-bar-'] text{display:none}", "timeline label"),     # red bars unnamed
    ("details.reason summary{visibility:hidden}", "reason not visible"),  # reasons hidden
    ("details.reason pre{display:none}", "reason not whole"),             # whole reasons unreadable
    ("#banner{display:none}", "not in the banner"),
])
def test_the_check_sees_a_page_that_hides_them(rendered, tmp_path, css, broken):
    sweep, page, roots = rendered
    problems = missing(probe(page, tmp_path, css), expected_red(sweep), roots)
    assert problems and all(broken in p for p in problems), problems


def test_a_screenshot_of_the_page(rendered, tmp_path):
    _sweep, page, _roots = rendered
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: `apt-get install chromium` (the bench role installs it)")
    shot = tmp_path / "index.png"
    subprocess.run([CHROMIUM] + FLAGS + ["--user-data-dir=%s" % (tmp_path / "profile"), "--screenshot=%s" % shot,
                                         "file://" + os.path.abspath(page)], capture_output=True, timeout=120, check=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


def test_a_harness_errors_task_and_error_are_visible_not_only_on_hover(tmp_path):
    """A harness error is not a red of the recipe (the banner counts it as infra), but its task and
    error are shown like any reason: first words visible, whole once the disclosure is opened."""
    sweep, classifications = recorded()
    keycloak = next(e for e in sweep["recipes"] if e["recipe"] == "keycloak")
    error = ("AnsibleUndefinedVariable: 'dict object' has no attribute 'table'. The error appears to be in "
             "'roles/lifecycle/tasks/upgrade.yml': line 12, column 3, but may be elsewhere in the file depending on "
             "the exact syntax problem.")
    keycloak["cold"].update(outcome="infra", infra="harness-error", level_text=None,
                            failure={"tier": "upgrade", "task": "upgrade - render the env", "error": error})
    keycloak["promote"] = {"outcome": "skipped", "detail": "the cold run was not green (infra)"}
    report.write_all(sweep, classifications, str(tmp_path))
    seen = probe(str(tmp_path / "index.html"), tmp_path)
    reason = "infra: harness-error in upgrade task 'upgrade - render the env': " + error
    assert reason[:80] in _flat(seen["closed"]) and reason in _flat(seen["opened"])
    assert "1 infra: keycloak (harness-error in upgrade)" in seen["banner"] and "keycloak promote" not in seen["banner"]
