# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a fix's unified diff does to the tests it touches: the rule that a fix never weakens a test.

A stale test is fixed by changing what it expects, never by asserting less. :func:`weakened_assertions`
reads a unified diff (``git diff`` or ``diff -u``) and returns one finding per place where, in a
test file, the diff

- ``removed``: deletes assertions and adds none in their place (in that file; or in that hunk
  when the file as a whole ends up with fewer assertions than it had);
- ``trivial``: replaces assertions only with ones that cannot fail (``assert True``,
  ``self.assertTrue(True)``, ``expect(true).toBe(true)``);
- ``weakened``: replaces a comparison with a bare truth test of its left side
  (``assert a == b`` -> ``assert a``, ``self.assertEqual(a, b)`` -> ``self.assertTrue(a)``);
- ``skipped``: adds a skip or expected-failure marker (``@pytest.mark.skip``, ``pytest.xfail(``, ...).

A diff that changes an assertion's expected value (one removed, one added) is fine.
:func:`assertion_only_deletion` is the refusal: true when there is any finding. Test files are
those under a ``tests``/``test``/``suites``/``spec`` directory, ``test_*.py``, ``*_test.py``,
``*_test.go``, ``*.test.js``/``*.spec.ts`` and the like. Commented-out lines are not assertions.
Pure Python, standard library only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

TEST_DIRS = frozenset(("tests", "test", "suites", "spec", "__tests__", "testing"))
_TEST_NAME = re.compile(
    r"^(test_.*\.py|.*_test\.py|conftest\.py|.*_test\.go|.*\.(test|spec)\.(js|jsx|ts|tsx|mjs|cjs)"
    r"|.*_spec\.rb|test_.*\.rb|.*\.bats)$")

# An assertion line, tried on the line without its indentation (re.search).
_ASSERTION = re.compile(
    r"^assert\b"                                    # python assert statement
    r"|\bself\.assert\w*\s*\("                      # unittest
    r"|\bpytest\.raises\b|\bpytest\.warns\b"        # pytest context managers
    r"|\bassert_\w*\s*\(|\bassert\w*That\s*\("      # assert_called_with(, np.testing.assert_equal(, assertThat(
    r"|\.assert_\w+\s*\("                           # mock.assert_called_once_with(
    r"|\bexpect\s*\(|\bassert\s*\(|\bassert\.\w+\s*\(|\.should\b"   # JS (jest, chai, node:assert)
    r"|\b(require|assert)\.\w+\s*\(|\bt\.(Error|Errorf|Fatal|Fatalf|Fail|FailNow)\b"   # Go
    r"|^assert_\w+\b")                             # bats-assert: assert_output, assert_success

# Assertions that cannot fail: adding one asserts nothing.
_TRIVIAL = re.compile(
    r"^assert\s*\(?\s*(True|1|not\s+(False|None|0)|\"[^\"]+\"|'[^']+')\s*\)?\s*(,.*)?$"
    r"|^self\.assert(True|Truthy)\s*\(\s*(True|1)\s*[,)]"
    r"|^self\.assertEqual\s*\(\s*(?P<a>\w+)\s*,\s*(?P=a)\s*[,)]"
    r"|^expect\s*\(\s*(true|1)\s*\)\s*\.\s*(toBe\s*\(\s*(true|1)\s*\)|toBeTruthy\s*\(\s*\))"
    r"|^assert\s*\(\s*true\s*\)")

# Skip / expected-failure markers: an added one switches a test (or its verdict) off.
_SKIP = re.compile(
    r"@pytest\.mark\.(skip|skipif|xfail)\b|\bpytest\.(skip|xfail)\s*\(|@unittest\.(skip|skipIf|skipUnless|"
    r"expectedFailure)\b|\bself\.skipTest\s*\(|\b(it|test|describe)\.skip\s*\(|^\s*x(it|describe)\s*\("
    r"|\bt\.Skip(f|Now)?\s*\(|^skip\b")

_COMMENT = re.compile(r"^(#|//|--|;|/\*|\*)")
_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@(.*)$")
_COMPARISON = re.compile(r"^(?P<left>.+?)\s*(==|!=|<=|>=|<|>|\bnot\s+in\b|\bin\b|\bis\s+not\b|\bis\b)\s*(?P<right>.+)$")


@dataclass
class Hunk:
    header: str
    removed: list = field(default_factory=list)   # line texts, without the leading "-"
    added: list = field(default_factory=list)     # line texts, without the leading "+"


@dataclass
class FileDiff:
    old_path: str | None    # None for a new file
    new_path: str | None    # None for a deleted file
    hunks: list = field(default_factory=list)

    @property
    def path(self) -> str:
        return self.new_path or self.old_path or ""


# -- parsing -----------------------------------------------------------------------------------
def _header_path(raw: str) -> str | None:
    """The path of a ``---``/``+++`` header: without a/ b/, a timestamp after a tab, or quotes."""
    raw = raw.split("\t", 1)[0].rstrip("\r\n")
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        raw = raw[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape")
    if raw == "/dev/null":
        return None
    if raw[:2] in ("a/", "b/"):
        raw = raw[2:]
    return raw


def parse_diff(diff_text: str) -> list:
    """The files of a unified diff with their hunks' removed and added lines.

    A ``---`` line inside a hunk is a removed line starting with ``--``, not a header: hunks are
    read by their line counts.
    """
    files: list = []
    current: FileDiff | None = None
    hunk: Hunk | None = None
    old_left = new_left = 0
    pending_old: str | None = None
    saw_old = False
    for line in (diff_text or "").splitlines():
        if old_left > 0 or new_left > 0:
            if line.startswith("\\"):          # "\ No newline at end of file"
                continue
            tag, text = (line[:1], line[1:]) if line else (" ", "")
            if tag == "-":
                hunk.removed.append(text)
                old_left -= 1
            elif tag == "+":
                hunk.added.append(text)
                new_left -= 1
            elif tag == " ":
                old_left -= 1
                new_left -= 1
            else:                                # a truncated hunk: fall through to headers
                old_left = new_left = 0
            if old_left > 0 or new_left > 0 or tag in "-+ ":
                continue
        if line.startswith("diff --git "):
            current, hunk, pending_old, saw_old = None, None, None, False
            continue
        if line.startswith("--- "):
            pending_old, saw_old = _header_path(line[4:]), True
            continue
        if line.startswith("+++ ") and saw_old:
            current = FileDiff(old_path=pending_old, new_path=_header_path(line[4:]))
            files.append(current)
            saw_old = False
            continue
        m = _HUNK.match(line)
        if m and current is not None:
            old_left = int(m.group(2)) if m.group(2) is not None else 1
            new_left = int(m.group(4)) if m.group(4) is not None else 1
            hunk = Hunk(header=line)
            current.hunks.append(hunk)
    return files


# -- what a line is ------------------------------------------------------------------------------
def is_test_path(path: str) -> bool:
    """Whether path names a test file (by its directories or its name)."""
    if not path:
        return False
    parts = [p for p in path.replace("\\", "/").split("/") if p]
    if not parts:
        return False
    return any(p.lower() in TEST_DIRS for p in parts[:-1]) or bool(_TEST_NAME.match(parts[-1]))


def _code(line: str) -> str:
    return line.strip()


def is_assertion(line: str) -> bool:
    """Whether a source line (not a comment) asserts something."""
    code = _code(line)
    return bool(code) and not _COMMENT.match(code) and bool(_ASSERTION.search(code))


def is_trivial_assertion(line: str) -> bool:
    """An assertion that cannot fail."""
    return is_assertion(line) and bool(_TRIVIAL.search(_code(line)))


def is_skip(line: str) -> bool:
    code = _code(line)
    return bool(code) and not code.startswith("#") and bool(_SKIP.search(code))


def _assert_expr(line: str) -> str | None:
    """The expression of a python ``assert EXPR[, msg]`` or the first argument of a unittest
    ``assertEqual``/``assertTrue(...)`` call, whitespace-normalised; None for other lines."""
    code = _code(line)
    m = re.match(r"^assert\s+(.*)$", code)
    if m:
        return _strip_message(m.group(1))
    m = re.match(r"^self\.assert(Equal|Equals|In|Is|Greater\w*|Less\w*|True|IsNotNone)\s*\((.*)\)\s*$", code)
    if m:
        args = _split_args(m.group(2))
        if m.group(1) in ("True", "IsNotNone"):
            return " ".join(args[0].split()) if args else None
        if len(args) >= 2:
            return " ".join(args[0].split()) + " == " + " ".join(args[1].split())
    return None


def _split_args(text: str) -> list:
    """Top-level comma-separated parts of an argument list (brackets and quotes respected)."""
    parts, depth, quote, cur = [], 0, "", []
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def _strip_message(expr: str) -> str:
    parts = _split_args(expr)
    return " ".join((parts[0] if parts else expr).split())


def weaker_than(added: str, removed: str) -> bool:
    """Whether assertion ``added`` only checks the left side of the comparison ``removed`` did."""
    a, r = _assert_expr(added), _assert_expr(removed)
    if not a or not r:
        return False
    m = _COMPARISON.match(r)
    if not m:
        return False
    left = m.group("left").strip()
    return a in (left, "bool(%s)" % left, "%s is not None" % left)


# -- the rule ---------------------------------------------------------------------------------------
def _finding(path, hunk, kind, removed, added, reason) -> dict:
    return {"path": path, "hunk": hunk, "kind": kind, "removed": list(removed), "added": list(added),
            "reason": reason}


def _plural(n: int, word: str) -> str:
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def weakened_assertions(diff_text: str) -> list:
    """Every place where the diff weakens a test (see the module's description), in diff order.

    Each finding: ``path``, ``hunk`` (its ``@@`` header, or None for the whole file), ``kind``
    (removed, trivial, weakened, skipped), the assertion lines ``removed`` and ``added`` it is
    about, and a ``reason`` in words. An assertion removed from one test file and added, the same
    line, to another (a test moved or a file renamed) is not removed.
    """
    files = [f for f in parse_diff(diff_text)
             if is_test_path(f.new_path or "") or is_test_path(f.old_path or "")]
    # Assertions added per file, to recognise one moved from another file.
    added_by_file = {id(f): Counter(_code(line) for h in f.hunks for line in h.added
                                    if is_assertion(line) and not is_trivial_assertion(line)) for f in files}
    findings = []
    for f in files:
        path = f.path
        elsewhere = Counter()
        for other in files:
            if other is not f:
                elsewhere.update(added_by_file[id(other)])
        per_hunk = []
        for h in f.hunks:
            removed = []
            for line in h.removed:
                if not is_assertion(line):
                    continue
                if elsewhere[_code(line)] > 0:      # moved to another file
                    elsewhere[_code(line)] -= 1
                    continue
                removed.append(line)
            added_all = [line for line in h.added if is_assertion(line)]
            added = [line for line in added_all if not is_trivial_assertion(line)]
            per_hunk.append((h, removed, added_all, added))
            for line in h.added:
                if is_skip(line):
                    findings.append(_finding(path, h.header, "skipped", [], [line],
                                             "adds a skip/expected-failure marker to a test: %s" % line.strip()))
        file_removed = sum(len(r) for _h, r, _al, _a in per_hunk)
        file_added = sum(len(a) for _h, _r, _al, a in per_hunk)
        file_trivial = sum(len(al) - len(a) for _h, _r, al, a in per_hunk)
        if file_removed and not file_added:
            all_removed = [line for _h, r, _al, _a in per_hunk for line in r]
            all_trivial = [line for _h, _r, al, a in per_hunk for line in al if line not in a]
            if file_trivial:
                findings.append(_finding(path, None, "trivial", all_removed, all_trivial,
                                         "replaces %s with assertions that cannot fail"
                                         % _plural(file_removed, "assertion")))
            else:
                findings.append(_finding(path, None, "removed", all_removed, [],
                                         "removes %s and adds none" % _plural(file_removed, "assertion")))
            continue
        for h, removed, _added_all, added in per_hunk:
            if removed and not added and file_added < file_removed:
                findings.append(_finding(path, h.header, "removed", removed, [],
                                         "removes %s in this hunk, adds none in it, and the file ends up "
                                         "with %d fewer" % (_plural(len(removed), "assertion"),
                                                            file_removed - file_added)))
                continue
            unmatched = list(removed)
            for a in added:
                weaker = next((r for r in unmatched if weaker_than(a, r)), None)
                if weaker is not None and not any(_assert_expr(r) == _assert_expr(a) for r in removed):
                    unmatched.remove(weaker)
                    findings.append(_finding(path, h.header, "weakened", [weaker], [a],
                                             "replaces the comparison `%s` with the truth test `%s`"
                                             % (weaker.strip(), a.strip())))
    return findings


def assertion_only_deletion(diff_text: str) -> bool:
    """Whether a fix with this diff must be refused: it deletes, trivialises, weakens or skips
    assertions in test files (any :func:`weakened_assertions` finding)."""
    return bool(weakened_assertions(diff_text))


def describe(findings: list) -> str:
    """One line per finding, for an error message."""
    return "; ".join("%s%s: %s" % (f["path"], (" " + f["hunk"].split("@@")[1].strip()) if f.get("hunk") else "",
                                   f["reason"]) for f in findings)


# -- the names a fix branch uses ---------------------------------------------------------------------
_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")   # \Z: "$" would let "mirror\n" through
_URL = re.compile(r"^(?P<scheme>[a-z][a-z0-9+.-]*)://(?P<rest>.*)$")
_SCP = re.compile(r"^(?P<user>[A-Za-z0-9._-]+@)?(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/].*|/.*)$")
URL_SCHEMES = ("https", "http", "ssh", "git", "file")


def ref_name_problem(name, what: str = "branch") -> str | None:
    """Why ``name`` is not a branch or tag name git accepts (``git check-ref-format --branch``
    rules), or None. Checked before any git command sees it."""
    if not isinstance(name, str) or not name:
        return "%s must be a non-empty string" % what
    if len(name) > 255:
        return "%s is longer than 255 characters" % what
    if name.startswith("-"):
        return "%s %r starts with '-'" % (what, name)
    if _REF_BAD_CHARS.search(name):
        return "%s %r holds a space, a control character or one of ~^:?*[\\" % (what, name)
    if ".." in name or "@{" in name or name == "@" or "//" in name:
        return "%s %r holds '..', '@{' or '//', or is '@'" % (what, name)
    if name.startswith("/") or name.endswith("/") or name.endswith("."):
        return "%s %r starts or ends with '/' or ends with '.'" % (what, name)
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return "%s %r has a component that starts with '.' or ends with '.lock'" % (what, name)
    return None


def remote_name_problem(name) -> str | None:
    """Why ``name`` is not a plain git remote name (letters, digits, . _ -), or None."""
    if not isinstance(name, str) or not _REMOTE_NAME.match(name):
        return "remote must be a remote's name (letters, digits, '.', '_', '-'): %r" % (name,)
    return None


def repo_problem(repo) -> str | None:
    """Why ``repo`` is neither an absolute local path nor a git URL this module may use, or None.

    Allowed: an absolute path; ``https``/``http``/``ssh``/``git``/``file`` URLs; scp-like
    ``user@host:path``. Refused: other transports (``ext::`` runs commands), anything starting
    with '-', whitespace and control characters.
    """
    if not isinstance(repo, str) or not repo:
        return "repo must be a non-empty string"
    if repo.startswith("-") or re.search(r"[\x00-\x20\x7f]", repo):
        return "repo %r starts with '-' or holds whitespace or control characters" % repo
    if repo.startswith("/"):
        return None if ".." not in repo.split("/") else "repo %r holds a '..' component" % repo
    m = _URL.match(repo)
    if m:
        if m.group("scheme") not in URL_SCHEMES:
            return "repo %r uses the transport %r; allowed: %s" % (repo, m.group("scheme"), ", ".join(URL_SCHEMES))
        if not m.group("rest") or m.group("rest").startswith("-"):
            return "repo %r has no host or path" % repo
        return None
    if "::" in repo:
        return "repo %r names a remote helper transport (<transport>::<address>), which is refused" % repo
    if _SCP.match(repo):
        return None
    return "repo %r is neither an absolute path nor a git URL (https://, ssh://, git://, file://, user@host:path)" % repo


def scrub_url(url: str) -> str:
    """url without the credentials of its userinfo (https://user:token@host -> https://host)."""
    m = _URL.match(url or "")
    if not m:
        return url
    rest = m.group("rest")
    host, slash, path = rest.partition("/")
    if "@" in host:
        host = host.rsplit("@", 1)[1]
    return "%s://%s%s%s" % (m.group("scheme"), host, slash, path)


def url_secret(url: str) -> str | None:
    """The userinfo of a URL (what scrub_url removes), or None."""
    m = _URL.match(url or "")
    if not m:
        return None
    host = m.group("rest").partition("/")[0]
    return host.rsplit("@", 1)[0] if "@" in host else None


def files_problem(files) -> str | None:
    """Why a ``files`` mapping (relative path -> content, or None to delete) cannot be written
    into a repository's work tree, or None."""
    if not isinstance(files, dict) or not files:
        return "files must be a non-empty mapping of relative path to content"
    for path, content in files.items():
        if not isinstance(path, str) or not path or path.startswith("/") or "\x00" in path or "\\" in path:
            return "files: %r is not a relative path" % (path,)
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts) or parts[0] == ".git":
            return "files: %r leaves the work tree or names .git" % path
        if content is not None and not isinstance(content, str):
            return "files: the content of %r must be a string (or null to delete it)" % path
    return None
