"""_fixdiff: a fix's diff may change what a test expects, never assert less.

Table-driven cases on hand-written diffs, the bench's real discourse test fix, and diffs made by
real ``git diff`` (so the parser reads what git writes, including a removed SQL comment line that
starts with ``--`` inside a hunk).
"""
from __future__ import annotations

import os
import subprocess

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._fixdiff import (
    assertion_only_deletion, describe, is_assertion, is_test_path, parse_diff, weakened_assertions, weaker_than)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DISCOURSE_PATCH = os.path.join(ROOT, "roles", "bench", "files", "test-fixes", "discourse.patch")


def diff(path: str, removed=(), added=(), context=("def test_x(get):",)) -> str:
    """A one-hunk git-style diff of path."""
    lines = ["diff --git a/%s b/%s" % (path, path), "--- a/%s" % path, "+++ b/%s" % path,
             "@@ -1,%d +1,%d @@" % (len(context) + len(removed), len(context) + len(added))]
    lines += [" " + c for c in context] + ["-" + r for r in removed] + ["+" + a for a in added]
    return "\n".join(lines) + "\n"


# -- which files are tests ------------------------------------------------------------------------
@pytest.mark.parametrize("path,expected", [
    ("tests/suites/discourse/test_about.py", True),
    ("discourse/test_about.py", True),
    ("suites/discourse/helpers.py", True),
    ("pkg/thing_test.py", True),
    ("pkg/handler_test.go", True),
    ("web/src/app.spec.ts", True),
    ("web/src/app.test.js", True),
    ("spec/models/user_spec.rb", True),
    ("compose.yml", False),
    ("abra.sh", False),
    ("release/2.1.1+9.11.5", False),
    ("src/attestation.py", False),
    ("", False),
])
def test_test_paths(path, expected):
    assert is_test_path(path) is expected


@pytest.mark.parametrize("line,expected", [
    ("    assert status == 200", True),
    ("assert x", True),
    ("        self.assertEqual(a, b)", True),
    ("    with pytest.raises(ValueError):", True),
    ("    mock_run.assert_called_once_with(['git'])", True),
    ("  expect(res.status).toBe(200);", True),
    ("  assert.equal(a, b)", True),
    ("\trequire.NoError(t, err)", True),
    ("\t\tt.Fatalf(\"got %v\", x)", True),
    ("    # assert status == 200", False),
    ("  // expect(x).toBe(1)", False),
    ("    status, body = get('/')", False),
    ("    assertion_count = 3", False),
    ("", False),
])
def test_assertion_lines(line, expected):
    assert is_assertion(line) is expected


# -- refused ------------------------------------------------------------------------------------------
REFUSED = {
    "the stale assertion deleted": diff(
        "discourse/test_about.py",
        removed=['    assert "version" in about, "no top-level version"', '    assert about["version"] == v()']),
    "one of two assertions deleted, nothing else": diff(
        "tests/test_api.py", removed=["    assert body == 'ok'"], context=("def test_x():", "    assert status == 200")),
    "an assertion commented out": diff(
        "tests/test_api.py", removed=["    assert body == 'ok'"], added=["    # assert body == 'ok'"]),
    "replaced by assert True": diff(
        "tests/test_api.py", removed=["    assert body == 'ok'"], added=["    assert True"]),
    "replaced by self.assertTrue(True)": diff(
        "tests/test_api.py", removed=["        self.assertEqual(body, 'ok')"], added=["        self.assertTrue(True)"]),
    "jest expectation replaced by expect(true)": diff(
        "web/app.test.js", removed=["  expect(res.body).toEqual({ok: true});"], added=["  expect(true).toBe(true);"]),
    "comparison replaced by a truth test": diff(
        "tests/test_api.py", removed=['    assert about["version"] == v()'], added=['    assert about["version"]']),
    "assertEqual replaced by assertTrue of its left side": diff(
        "tests/test_api.py", removed=["        self.assertEqual(resp.status, 200)"],
        added=["        self.assertTrue(resp.status)"]),
    "pytest.raises removed": diff(
        "tests/test_api.py", removed=["    with pytest.raises(ValueError):", "        parse('x')"],
        added=["    parse('x')"]),
    "a skip marker added": diff(
        "tests/test_api.py", added=['@pytest.mark.skip(reason="flaky")'], context=("import pytest", "")),
    "an xfail added inside the test": diff(
        "tests/test_api.py", added=['    pytest.xfail("stale")'], context=("def test_x():",)),
    "a go assertion deleted": diff(
        "pkg/api_test.go", removed=["\trequire.Equal(t, 200, res.StatusCode)"], context=("func TestX(t *testing.T) {",)),
    "deleted in one test file, an unrelated one added in another": (
        diff("tests/test_a.py", removed=["    assert a() == 1"]) + diff("tests/test_b.py", added=["    assert b() == 2"])),
    "a whole test file deleted": (
        "diff --git a/tests/suites/discourse/test_about.py b/tests/suites/discourse/test_about.py\n"
        "deleted file mode 100644\n--- a/tests/suites/discourse/test_about.py\n+++ /dev/null\n"
        "@@ -1,3 +0,0 @@\n-def test_front_page(get):\n-    status, body = get('/')\n-    assert status == 200\n"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name):
    text = REFUSED[name]
    findings = weakened_assertions(text)
    assert findings, name
    assert assertion_only_deletion(text) is True
    assert describe(findings)


def test_the_finding_says_what_and_where():
    [f] = weakened_assertions(REFUSED["the stale assertion deleted"])
    assert f["path"] == "discourse/test_about.py" and f["kind"] == "removed" and f["hunk"] is None
    assert f["removed"] == ['    assert "version" in about, "no top-level version"', '    assert about["version"] == v()']
    assert f["reason"] == "removes 2 assertions and adds none"
    [t] = weakened_assertions(REFUSED["replaced by assert True"])
    assert t["kind"] == "trivial" and t["added"] == ["    assert True"]
    [w] = weakened_assertions(REFUSED["comparison replaced by a truth test"])
    assert w["kind"] == "weakened" and "truth test" in w["reason"]
    [s] = weakened_assertions(REFUSED["a skip marker added"])
    assert s["kind"] == "skipped"


def test_a_hunk_that_only_deletes_is_refused_when_the_file_loses_assertions():
    text = ("--- a/tests/test_api.py\n+++ b/tests/test_api.py\n"
            "@@ -1,3 +1,2 @@\n def test_a():\n-    assert a() == 1\n-    assert a() == 2\n"
            "@@ -10,2 +9,3 @@\n def test_b():\n     x = 1\n+    assert b() == 3\n")
    [f] = weakened_assertions(text)
    assert f["kind"] == "removed" and f["hunk"].startswith("@@ -1,3 +1,2 @@") and "1 fewer" in f["reason"]


# -- accepted ----------------------------------------------------------------------------------------
ACCEPTED = {
    "the expected value changed": diff(
        "discourse/test_about.py", removed=['    assert about["version"] == v()'],
        added=['    assert about["about"]["version"] == v()']),
    "a message reworded": diff(
        "tests/test_api.py", removed=["    assert ok, 'bad'"], added=["    assert ok, 'the API said no'"]),
    "an assertion added": diff("tests/test_api.py", added=["    assert body.endswith('\\n')"]),
    "an assertion moved to another hunk (no net loss)": (
        "--- a/tests/test_api.py\n+++ b/tests/test_api.py\n"
        "@@ -1,2 +1,1 @@\n def test_a():\n-    assert a() == 1\n"
        "@@ -10,1 +9,2 @@\n def test_b():\n+    assert a() == 1\n"),
    "asserts removed outside test files": diff(
        "src/canon/guard.py", removed=["    assert isinstance(x, int)"]),
    "a recipe fix (compose and release notes)": (
        "diff --git a/compose.yml b/compose.yml\n--- a/compose.yml\n+++ b/compose.yml\n"
        "@@ -1,2 +1,3 @@\n services:\n-  app:\n+  pds:\n+    networks: [internal]\n"
        "diff --git a/release/0.3.1 b/release/0.3.1\nnew file mode 100644\n--- /dev/null\n+++ b/release/0.3.1\n"
        "@@ -0,0 +1 @@\n+Fix: the PDS is renamed.\n"),
    "a test file renamed with its assertions": (
        "--- a/tests/test_old.py\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-def test_x():\n-    assert f() == 1\n"
        "--- /dev/null\n+++ b/tests/test_new.py\n@@ -0,0 +1,2 @@\n+def test_x():\n+    assert f() == 1\n"),
    "comparison tightened (truth test to comparison)": diff(
        "tests/test_api.py", removed=['    assert about["version"]'], added=['    assert about["version"] == v()']),
    "empty diff": "",
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name):
    assert weakened_assertions(ACCEPTED[name]) == []
    assert assertion_only_deletion(ACCEPTED[name]) is False


def test_the_bench_discourse_test_fix_is_accepted():
    with open(DISCOURSE_PATCH) as fh:
        text = fh.read()
    [f] = parse_diff(text)
    assert f.path == "discourse/test_about.py"
    assert sum(len(h.removed) for h in f.hunks) == 6 and sum(len(h.added) for h in f.hunks) == 4
    assert weakened_assertions(text) == []


def test_the_discourse_fix_without_its_added_lines_is_refused():
    """The same patch with the replacement assertions left out: what a lazy fix would be."""
    with open(DISCOURSE_PATCH) as fh:
        lines = fh.read().splitlines()
    lazy = [line for line in lines if not line.startswith("+    assert")]
    lazy = [line.replace("@@ -27,5 +25,5 @@", "@@ -27,5 +25,3 @@") for line in lazy]
    findings = weakened_assertions("\n".join(lazy) + "\n")
    assert [f["kind"] for f in findings] == ["removed"]
    assert findings[0]["removed"][1].strip() == 'assert about["version"] == upstream_version()'


@pytest.mark.parametrize("added,removed,expected", [
    ('assert a["v"]', 'assert a["v"] == v()', True),
    ("assert x is not None", "assert x == 3", True),
    ("self.assertTrue(r.status)", "self.assertEqual(r.status, 200)", True),
    ('assert a["about"]["v"] == v()', 'assert a["v"] == v()', False),
    ("assert x", "assert x", False),
    ("assert y", "assert x == 3", False),
])
def test_weaker_than(added, removed, expected):
    assert weaker_than(added, removed) is expected


# -- what git writes -----------------------------------------------------------------------------------
def git_diff(tmp_path, before: dict, after: dict) -> str:
    a, b = tmp_path / "a", tmp_path / "b"
    for root, files in ((a, before), (b, after)):
        for name, content in files.items():
            p = root / name
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(content)
    a.mkdir(exist_ok=True)
    b.mkdir(exist_ok=True)
    res = subprocess.run(["git", "diff", "--no-index", "--no-color", "a", "b"], cwd=tmp_path,
                         capture_output=True, text=True)
    assert res.returncode == 1, res.stderr   # 1: there are differences
    return res.stdout


def test_real_git_diff_of_a_deleted_assertion(tmp_path):
    test = "def test_x(get):\n    status, body = get('/')\n    assert status == 200\n    assert 'ok' in body\n"
    text = git_diff(tmp_path, {"tests/test_x.py": test}, {"tests/test_x.py": test.replace("    assert 'ok' in body\n", "")})
    [f] = weakened_assertions(text)
    assert f["path"] == "b/tests/test_x.py" or f["path"].endswith("tests/test_x.py")
    assert f["removed"] == ["    assert 'ok' in body"]


def test_a_removed_sql_comment_is_not_a_header(tmp_path):
    """'--- file: x' inside a hunk is the removed line '-- file: x', and the hunk goes on after it."""
    sql_before = "-- dump\n-- file: users.tbl\nid\n-- dump complete\n"
    sql_after = "-- dump\nid\n-- dump complete\n"
    test_before = "def test_dump():\n    assert load() == 1\n"
    text = git_diff(tmp_path, {"fixtures/dump.sql": sql_before, "tests/test_dump.py": test_before},
                    {"fixtures/dump.sql": sql_after, "tests/test_dump.py": "def test_dump():\n    load()\n"})
    files = parse_diff(text)
    assert [f.path.split("/", 1)[1] for f in files] == ["fixtures/dump.sql", "tests/test_dump.py"]
    assert files[0].hunks[0].removed == ["-- file: users.tbl"]
    [finding] = weakened_assertions(text)
    assert finding["path"].endswith("tests/test_dump.py")


def test_no_newline_markers_and_quoted_paths(tmp_path):
    text = git_diff(tmp_path, {"tests/test a.py": "assert f() == 1"}, {"tests/test a.py": "f()"})
    assert "\\ No newline at end of file" in text
    [finding] = weakened_assertions(text)
    assert finding["removed"] == ["assert f() == 1"]
