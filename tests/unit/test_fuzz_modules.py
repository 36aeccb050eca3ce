"""Bad input to every module: a clear refusal, no traceback, no command run, nothing created.

Each module's ``main()`` runs in this process with its arguments given by ansible-core's own
``ansible.module_utils.testing.patch_module_args``, the way Ansible hands them over, and the JSON it prints is read back. A baseline of valid arguments is
kept and one option at a time is replaced by a bad value: recipe names with shell and path
characters, NUL, newlines, unicode and 5000 characters; domains with labels over 63 characters,
over 253 in all, or under a protected domain; versions, run ids, lease ids, branch names, image
and network names, URLs and ``.env`` settings that would reach a command line or a file; and
values of the wrong type. The values come from a fixed list per kind of option plus hypothesis
(seeded, ``derandomize``) inserting bad characters into valid names.

For every input the module must exit through ``fail_json`` with a message that names the option
or the value, with no ``exception`` (a traceback) in its result, while:

- ``subprocess.Popen`` (which ``_proc.run`` and everything else use to run a command),
  ``os.system``, ``os.posix_spawn*``, ``os.fork``, ``os.exec*`` and ``socket.connect`` raise and
  record the attempt (a BaseException, so no ``except Exception`` in a module can swallow it);
- the module's ``state_dir``, ``abra_dir``, ``evidence_dir``, results and repository paths point
  into a temporary tree (binaries, a registered server, an empty ledger, cold results) whose
  listing (names, sizes) must be the same afterwards; the tree is reused for the next input only
  because of that.

The baseline itself is checked to get past validation (it runs a command, writes something or
succeeds), so a refusal is the bad value's doing.

Options not fuzzed, because any value is legitimate or the value never reaches a command, a path or
a URL:

- paths the user names (``abra_bin``, ``docker_bin``, ``git_bin``, ``abra_dir``, ``state_dir``,
  ``evidence_dir``, ``redact_file``, ``token_file``, canon_result's ``path``, fix_branch's ``tree``):
  any path is a path; a missing one fails where it is used. (canon_registry's ``cold_result`` *is*
  fuzzed, with files that are not a green cold result of the recipe.)
- free text: canon_registry ``reason`` and ``commit`` (recorded in the registry as given),
  gitea_pull_request ``title``, ``body`` and ``context`` (JSON bodies and a compared string),
  routing_identity ``expect`` and app_marker ``value`` (compared or written through stdin),
  readiness probe ``send``/``expect`` (argv to ``printf``, compared), fix_branch ``commit_message``,
  ``author_name``, ``author_email`` and ``patch`` (a commit message, an identity in the environment,
  a diff that ``git apply`` judges).
- canon_evidence ``label``: a sub-folder name that Evidence sanitises (``..``, ``/`` dropped).
- canon_run ``domain_roles``: role names only salt the generated domain's hash.
- canon_teardown ``current_run_id``: only compared with the ledger's run ids.
- the ``server`` of modules that never use it (abra_backup, app_marker, canon_evidence, readiness,
  swarm_converge: the abra option group, whose names the module base refuses for every member;
  tests/unit/test_module_base.py).
"""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible.module_utils.testing import patch_module_args

# Real processes (a forge server, git, hundreds of module runs): `make test` runs these;
# `make unit` keeps to the fast ones.
pytestmark = pytest.mark.slow

PKG = "ansible_collections.coopcloud.canon.plugins.modules."
DOMAIN = "cust-1a2b3c.bench.canon.test"
BASE_DOMAIN = "bench.canon.test"
PROTECTED = ["warm-keycloak.bench.canon.test", "live.example.org"]
RUN_ID = "gitea-20260101000000-abcdef"
VERSION = "1.1.0+1.37"

# -- what counts: every input tried, per module, for docs/hardening.md ---------------------------
COUNTS: dict = {}
EXAMPLES = int(os.environ.get("CANON_FUZZ_EXAMPLES", "30"))   # hypothesis examples per option


@pytest.fixture(scope="module", autouse=True)
def report_counts(request):
    yield
    total = sum(COUNTS.values())
    if not total:
        return
    line = "bad-input fuzzing: %d inputs over %d modules (%s)" % (
        total, len(COUNTS), ", ".join("%s %d" % kv for kv in sorted(COUNTS.items())))
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter and capture:
        with capture.global_and_fixture_disabled():
            reporter.write_line("\n" + line)
    if os.environ.get("CANON_FUZZ_COUNTS"):
        with open(os.environ["CANON_FUZZ_COUNTS"], "w") as fh:
            json.dump({"total": total, "modules": COUNTS}, fh, indent=1, sort_keys=True)


# -- running a module in-process -----------------------------------------------------------------
class CommandAttempted(BaseException):
    """Raised by the recorder; a BaseException so a module's ``except Exception`` cannot hide it."""


_TARGETS: list = []


def recorded_targets() -> list:
    """(object, attribute) of everything that runs a command or opens a connection."""
    if not _TARGETS:
        # In one process with controller code (another test file imported ansible.errors), a
        # module's exit_json serialises through ansible-core's controller map, whose first use
        # imports ansible.utils.display, which runs `ldconfig -p` (ctypes.util.find_library).
        # That is this process's import, not a module's command: import it before recording.
        importlib.import_module("ansible.utils.display")
        _TARGETS.extend([(subprocess, "Popen"), (os, "system"), (os, "posix_spawn"), (os, "posix_spawnp"),
                         (os, "fork"), (os, "execv"), (os, "execve"), (os, "execvp"), (os, "execvpe"),
                         (socket.socket, "connect"), (socket.socket, "connect_ex"), (socket, "create_connection")])
        proc = importlib.import_module("ansible_collections.coopcloud.canon.plugins.module_utils._proc")
        _TARGETS.append((proc, "run"))
        # Anyone holding _proc.run under its own name gets the recorder too.
        for mod in list(sys.modules.values()):
            if getattr(mod, "__name__", "").startswith("ansible_collections.coopcloud.canon.") \
                    and mod is not proc and getattr(mod, "run", None) is proc.run:
                _TARGETS.append((mod, "run"))
    return _TARGETS


@contextlib.contextmanager
def recorder():
    """Every way to run a command or open a connection records the attempt and raises."""
    attempts = []
    saved = []

    def refuse(what):
        def _refuse(*args, **_kwargs):
            attempts.append("%s %r" % (what, args[:2]))
            raise CommandAttempted(what)
        return _refuse

    for obj, name in recorded_targets():
        if hasattr(obj, name):
            saved.append((obj, name, getattr(obj, name)))
            setattr(obj, name, refuse("%s.%s" % (getattr(obj, "__name__", obj), name)))
    try:
        yield attempts
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def run_module(name: str, args: dict) -> tuple:
    """``(exit code, result dict, raw stdout)`` of ``name``'s main() with ``args``."""
    mod = importlib.import_module(PKG + name)
    out = io.StringIO()
    code = None
    try:
        with patch_module_args(args), contextlib.redirect_stdout(out):
            mod.main()
    except SystemExit as exc:
        code = exc.code
    raw = out.getvalue()
    lines = [ln for ln in raw.splitlines() if ln.startswith("{")]
    return code, (json.loads(lines[-1]) if lines else {}), raw


def listing(root: str) -> list:
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            found.append((os.path.relpath(os.path.join(dirpath, d), root), "dir"))
        for f in filenames:
            p = os.path.join(dirpath, f)
            found.append((os.path.relpath(p, root), os.path.getsize(p)))
    return sorted(found)


def bench_tree() -> str:
    """A temporary stand-in for the bench's directories: binaries that are never run, an ABRA_DIR
    with the server registered, an empty ledger and a green cold result of gitea."""
    root = tempfile.mkdtemp(prefix="canon-fuzz-")
    os.makedirs(os.path.join(root, "bin"))
    for b in ("abra", "docker"):
        path = os.path.join(root, "bin", b)
        with open(path, "w") as fh:
            fh.write("#!/bin/sh\ntouch %s/RAN\n" % root)
        os.chmod(path, 0o755)
    os.makedirs(os.path.join(root, "abra", "servers", "default"))
    with open(os.path.join(root, "abra", "servers", "default", DOMAIN + ".env"), "w") as fh:
        fh.write("TYPE=custom-html:%s\nDOMAIN=%s\n" % (VERSION, DOMAIN))
    os.makedirs(os.path.join(root, "state"))
    os.makedirs(os.path.join(root, "repo", ".git"))
    os.makedirs(os.path.join(root, "cold"))
    cold = {"gitea.json": {"recipe": "gitea", "run_id": RUN_ID, "outcome": "pass", "server": "default",
                           "versions": {"head": VERSION}},
            "other-recipe.json": {"recipe": "custom-html", "run_id": "custom-html-20260101000000-abcdef",
                                  "outcome": "pass", "versions": {"head": VERSION}},
            "failed.json": {"recipe": "gitea", "run_id": RUN_ID, "outcome": "fail", "versions": {"head": VERSION}},
            "other-version.json": {"recipe": "gitea", "run_id": RUN_ID, "outcome": "pass",
                                   "versions": {"head": "1.0.0+1.36"}},
            "list.json": [1, 2], "string.json": "pass", "no-versions.json": {"recipe": "gitea", "outcome": "pass"}}
    for fname, doc in cold.items():
        with open(os.path.join(root, "cold", fname), "w") as fh:
            json.dump(doc, fh)
    with open(os.path.join(root, "cold", "not-json.json"), "w") as fh:
        fh.write("outcome: pass\n")
    return root


# -- the modules, a valid baseline each, and the options fuzzed ------------------------------------
def common(root):
    return dict(abra_bin=root + "/bin/abra", docker_bin=root + "/bin/docker", abra_dir=root + "/abra",
                evidence_dir=root + "/evidence", redact_file=root + "/redact")


BASELINES = {
    "abra_app": lambda r: dict(common(r), domain=DOMAIN, recipe="custom-html", version=VERSION,
                               env={"COMPOSE_FILE": "compose.yml"}),
    "abra_app_info": lambda r: dict(common(r), domain=DOMAIN),
    "abra_backup": lambda r: dict(common(r), domain=DOMAIN, state="created",
                                  verify={"command": ["test", "-s", "/backup.sql"]}),
    "abra_recipe": lambda r: dict(common(r), recipe="custom-html", version=VERSION, domain=DOMAIN,
                                  env={"COMPOSE_FILE": "compose.yml"}),
    "app_marker": lambda r: dict(common(r), domain=DOMAIN, service="app", path="/srv/marker", value="v1"),
    "canon_evidence": lambda r: dict(common(r), domains=[DOMAIN]),
    "canon_lock": lambda r: dict(name="warm-gitea", run_id=RUN_ID, state_dir=r + "/state"),
    "canon_registry": lambda r: dict(state_dir=r + "/state", recipe="gitea", state="deploying", version=VERSION,
                                     domain="warm-gitea.bench.canon.test"),
    "canon_result": lambda r: dict(path=r + "/results/" + RUN_ID,
                                   run={"run_id": RUN_ID, "recipe": "gitea", "started_epoch": 1700000000.0},
                                   tiers=[{"name": "install", "outcome": "pass"}]),
    "canon_run": lambda r: dict(recipe="custom-html", state_dir=r + "/state", abra_dir=r + "/abra",
                                abra_bin=r + "/bin/abra", docker_bin=r + "/bin/docker", base_domain=BASE_DOMAIN,
                                domain_roles=["base", "upgrade"], protected_domains=PROTECTED, watch_pid=1),
    "canon_teardown": lambda r: dict(state_dir=r + "/state", recipe="custom-html", protected_domains=PROTECTED),
    "env_drift": lambda r: dict(common(r), domain=DOMAIN, recipe="custom-html", version=VERSION),
    "fix_branch": lambda r: dict(repo=r + "/repo", remote="mirror", base="main", branch="canon/fix-gitea",
                                 files={"compose.yml": "version: '3.8'\n"}, commit_message="fix", tag="1.1.1+1.37",
                                 git_bin=r + "/bin/git"),
    "gitea_pull_request": lambda r: dict(api_url="http://127.0.0.1:8490/api/v1", owner="canon", repo="custom-html",
                                         head="fix/healthcheck", base="main", title="fix", token="t0k3n-t0k3n"),
    "readiness": lambda r: dict(common(r), domain=DOMAIN, proxy_url="http://127.0.0.1:8480",
                                probes=[{"type": "tcp", "service": "app", "port": 80, "interval": 1, "timeout": 1}],
                                probe_image="busybox:stable", network="proxy"),
    "routing_identity": lambda r: dict(domain=DOMAIN, path="/", proxy_url="http://127.0.0.1:8480", samples=1,
                                       timeout=1),
    "swarm_converge": lambda r: dict(common(r), domain=DOMAIN, version=VERSION, timeout=5, wedge_window=5),
    "warm_domain": lambda r: dict(recipe="gitea", base_domain=BASE_DOMAIN, state_dir=r + "/state",
                                  abra_dir=r + "/abra", docker_bin=r + "/bin/docker", protected_domains=PROTECTED,
                                  run_id=RUN_ID),
}

# Bad characters: shell, path, whitespace, control, unicode look-alikes and direction marks.
SHELL = [";", "$(", "`", "|", "&", ">", "<", "'", '"', "\\", "*", "?", "~", "#", "!", "{", "}", "$"]
PATHISH = ["/", "..", "../", "/..", "./"]
PATH_SEP = ["/", "../", "/..", "./"]   # for names where ".." alone is fine (docker networks: "p..roxy")
SPACE = [" ", "\t", "\n", "\r", "\x00", "\x7f", "\x1b"]
UNICODE = ["é", "ß", "İ", "ı", "\u202e", "\u200b", "\uff0f", "中", "😀", "\u0430"]
UPPER_ETC = ["A", "Z", "_", "=", ":", "@", "%", ",", "+"]


def inserted(bases, bad):
    """A valid name with one bad piece inserted anywhere."""
    return st.builds(lambda b, x, at: b[:at % (len(b) + 1)] + x + b[at % (len(b) + 1):],
                     st.sampled_from(bases), st.sampled_from(bad), st.integers(0, 200))


def wrong_types(*extra):
    """Values of the wrong type; Ansible turns them into strings ("['a', 'b']") for a str option.
    (True becomes "True", a valid service, branch or image name, so only the recipe list has it.)"""
    return st.sampled_from([["a", "b"], {"a": 1}] + list(extra))


def kind(fixed, *generated):
    return fixed, st.one_of(st.sampled_from(fixed), *generated)


RECIPE_BASES = ["custom-html", "gitea", "a", "mattermost-lts"]
RECIPE_BAD = SHELL + PATHISH + SPACE + UNICODE + UPPER_ETC + ["."]
RECIPE = kind(
    ["", " ", "-", "a-", "-a", "custom-html;id", "custom-html$(id)", "`id`", "../custom-html", "custom-html/..",
     "a/b", "a b", "a\nb", "a\x00b", "Custom-Html", "custom_html", "custom.html", "ünicode", "a" * 64, "a" * 5000,
     "custom-html\n", "--help", "custom-html -n", "../../etc/passwd", ["custom-html"], {"name": "x"}, True],
    inserted(RECIPE_BASES, RECIPE_BAD),
    st.integers(64, 5000).map(lambda n: "a" * n),
    wrong_types())
DOMAIN_BAD = SHELL + ["/", "..", "_", "=", ":", "@", "%", ",", "+"] + SPACE + UNICODE + ["A"]
DOMAIN_KIND = kind(
    ["", "localhost", "a" * 64 + ".example.org", ".".join(["a" * 63] * 4) + ".org", "x." * 127 + "org",
     "cust..bench.canon.test", "-cust.bench.canon.test", "cust-.bench.canon.test", "Cust.bench.canon.test",
     "cust.bench.canon.test.", ".cust.bench.canon.test", "cust;id.bench.canon.test", "$(id).example.org",
     "../etc/passwd", "cust/../x.example.org", "cust bench.example.org", "cust\n.example.org",
     "cust\x00.example.org", "bücher.example.org", "cust_1.example.org", "a" * 65 + ".org",
     "abcdefghij-abcdefghij-abcdefghij.abcdefghij-abcdefghij.example.org", ["a.example.org"], {"d": 1}, 7],
    inserted([DOMAIN, "a.example.org", "warm-gitea.bench.canon.test"], DOMAIN_BAD),
    st.integers(64, 300).map(lambda n: "a" * n + ".example.org"),
    st.integers(29, 60).map(lambda n: ".".join(["abcdefgh"] * n) + ".org"),   # over 253 in all
    wrong_types())
PROTECTED_KIND = kind(
    ["warm-keycloak.bench.canon.test", "live.example.org", "x.live.example.org", "a.b.live.example.org"],
    st.builds(lambda sub, p: sub + "." + p, st.from_regex(r"\A[a-z0-9]{1,20}\Z"), st.sampled_from(PROTECTED)))
VERSION_KIND = kind(
    ["", "latest", "1.2", "v1.1.0+1.37", "1.1.0", "1.1.0+", "+1.37", "1.1.0+1.37;id", "1.1.0+$(id)",
     "1.1.0+1.37 --chaos", "1.1.0+../../x", "1.1.0+1..37", "1.1.0+..", "1.1.0+1.37\n", "1.1.0+1.37\x00",
     "1.1.0+1.37/..", "1.1.0+ü", "--chaos", "1.1.0+1.37:compose.yml", "1.1.0+1.37^", "1.1.0+1.37~1",
     "1.1.0+1.37@{0}", ["1.1.0+1.37"], {"v": 1}, 1.5, 7],
    inserted([VERSION, "0.3.1+0.4.107", "3.6.0+1.25.0-rootless"],
             SHELL + ["/", "..", " ", "\n", "\x00", "\t", ":", "^", "@", "[", "é", "\u202e"]),
    wrong_types())
# empty is docker's current context, so not among them
DOCKER_CONTEXT_KIND = kind(
    ["a", "-", "-H", "--help", "_x", ".x", "a b", "ctx;id", "$(id)", "`id`", "../x", "a/b", "x\n", "x\x00", "ünicode",
     "bench2.canon.test\n", ["bench2.canon.test"], {"c": 1}],
    inserted(["bench2.canon.test", "default"], SHELL + ["/", ":", "@"] + SPACE + UNICODE))
SERVER_KIND = kind(
    ["", "..", "../x", "a/b", "default;id", "$(id)", "de fault", "default\n", "default\x00", "Default", "-default",
     "default-", "a" * 300, "default/../..", ["default"], {"s": 1}],
    inserted(["default", "bench.canon.test"], SHELL + ["/", "..", "_", ":", "A"] + SPACE + UNICODE),
    wrong_types())
RUN_ID_KIND = kind(
    ["", "ab", "../x", "a/b", RUN_ID + ";id", "$(id)-x", RUN_ID + "\n", RUN_ID + "\x00", RUN_ID.upper(),
     "-" + RUN_ID, "a" * 64, "a" * 5000, RUN_ID + "/..", ["x"], {"r": 1}],
    inserted([RUN_ID, "abc"], SHELL + PATHISH + SPACE + UNICODE + ["A", "_", ".", ":"]),
    wrong_types())
LOCK_KIND = kind(
    ["", "../x", "warm-gitea/..", "warm gitea", "warm-gitea\n", "warm-gitea\x00", "Warm", "-warm", "a" * 64,
     "$(id)", ["x"], {"l": 1}],
    inserted(["warm-gitea", "x"], SHELL + PATHISH + SPACE + UNICODE + ["A", "_", ".", ":"]),
    wrong_types())
LEASE_KIND = kind(
    ["", "lease-", "lease-0123456789abcdeg", "lease-0123456789abcdef0", "../lease-0123456789abcdef",
     "lease-0123456789abcdef/..", "lease-0123456789ABCDEF", "lease-0123456789abcdef\n", ["x"]],
    inserted(["lease-0123456789abcdef"], SHELL + PATHISH + SPACE + UNICODE + ["A", "_"]),
    wrong_types())
ENV_KIND = kind(
    [{"A\nB": "x"}, {"COMPOSE_FILE": "compose.yml\nEVIL=1"}, {"X": "a\rb"}, {"X": "a\x00b"}, {"": "x"},
     {"1X": "y"}, {"A-B": "x"}, {"A B": "x"}, {"A=B": "x"}, {"#A": "x"}, {"A;B": "x"}, {"$(id)": "x"},
     {"X": ["a"]}, {"X": {"a": 1}}, {"X": None}, {"Ä": "x"}],
    st.builds(lambda k, v: {k: v}, st.sampled_from(["COMPOSE_FILE", "TIMEOUT"]),
              st.builds(lambda a, x, b: a + x + b, st.text(max_size=10), st.sampled_from(["\n", "\r", "\x00"]),
                        st.text(max_size=10))),
    st.builds(lambda k: {k: "x"}, inserted(["COMPOSE_FILE", "X"], SHELL + PATHISH + SPACE + UNICODE
                                           + ["-", "=", ".", ":"])))
SERVICE_KIND = kind(
    ["", "-app", "app;id", "app\n", "app\x00", "a/b", "..", "app name", "$(id)", "a" * 64, ["app"]],
    inserted(["app", "db"], SHELL + PATH_SEP + SPACE + UNICODE + ["=", ":", "@"]),
    wrong_types())
ABS_PATH_KIND = kind(
    ["", "marker", "./marker", "../marker", "/srv/../etc/shadow", "/srv/marker\x00", "/srv/mark\ner", "srv/marker",
     "/srv/marker\r", ["/srv/marker"]],
    inserted(["/srv/marker"], ["\x00", "\n", "\r", "/../", "\x1b"]),
    st.text(min_size=1, max_size=20).filter(lambda s: not s.startswith("/")))
URL_KIND = kind(
    ["file:///etc/passwd", "ftp://127.0.0.1/", "127.0.0.1:8480", "http://", "http:// 127.0.0.1", "http://a b/",
     "http://127.0.0.1:8480\n", "http://127.0.0.1:8480/\x00", "gopher://x", "javascript:alert(1)", "//x",
     "http://user:pw@127.0.0.1/", "-http://x", ["http://x"], {"u": 1}],
    inserted(["http://127.0.0.1:8480", "https://git.coopcloud.tech/api/v1"], [" ", "\n", "\r", "\x00", "\t",
                                                                              "\x1b"]),
    st.builds(lambda s, h: s + "://" + h, st.sampled_from(["file", "ftp", "ssh", "data", "unix", "HTTP!"]),
              st.sampled_from(["127.0.0.1", "x"])))
URL_PATH_KIND = kind(
    ["", "x", "index.html", "/a b", "/a\nb", "/a\rHost: evil", "/\x00", "/\t", "http://evil/", "//evil/",
     "/" + "a" * 5000, ["/"], {"p": 1}],
    inserted(["/", "/healthz"], [" ", "\n", "\r", "\x00", "\t", "\x1b", "\x7f"]))
FORGE_NAME_KIND = kind(
    ["", ".", "..", "../admin", "a/b", "owner;id", "own er", "owner\n", "owner\x00", "$(id)", "a" * 101, "ü",
     "?x=1", "#x", "%2e%2e", ["x"], {"o": 1}],
    inserted(["canon", "custom-html"], SHELL + PATHISH + SPACE + UNICODE + ["%", ":", "@", ",", "+", "="]),
    wrong_types())
BRANCH_KIND = kind(
    ["", "-main", "/main", "main/", "ma..in", "main.lock", "fix//x", "fix/.x", "ma in", "main\n", "main\x00",
     "main~1", "main^", "ma:in", "ma?in", "ma*in", "ma[in", "ma\\in", "@", "main@{0}", ".main", "main.",
     "a" * 256, ["main"], {"b": 1}],
    inserted(["main", "fix/healthcheck"], [" ", "\n", "\x00", "\t", "\x7f", "~", "^", ":", "?", "*", "[", "\\", "..",
                                           "@{", "//"]),
    wrong_types())
REPO_KIND = kind(
    ["", "repo", "./repo", "/srv/../repo", "-u/x", "--upload-pack=touch /tmp/x", "ext::sh -c touch% /tmp/x",
     "fd::0", "/srv/re po", "/srv/repo\n", "/srv/repo\x00", "ftp://host/repo", "data://x", "https://", ["/r"]],
    inserted(["/srv/repo", "https://git.coopcloud.tech/coop-cloud/gitea.git"], [" ", "\n", "\x00", "\t", "\x1b"]),
    st.builds(lambda s: s + "::x", st.from_regex(r"\A[a-z]{1,8}\Z")))
REMOTE_KIND = kind(
    ["", "-u", "--upload-pack", "mir ror", "mirror\n", "mirror\x00", "a/b", "../x", "$(id)", "mirror;id",
     "a" * 101, ["mirror"], {"r": 1}],
    inserted(["mirror", "origin"], SHELL + PATH_SEP + SPACE + UNICODE + [":", "@", "="]),
    wrong_types())
FILES_KIND = kind(
    [{"/etc/passwd": "x"}, {"../x": "x"}, {"a/../../x": "x"}, {".git/config": "x"}, {"a\x00b": "x"},
     {"": "x"}, {"a//b": "x"}, {"./a": "x"}, {"a\\b": "x"}, {"x": 1}, {"x": ["a"]}, {}],
    st.builds(lambda pre, p: {pre + p: "x"}, st.sampled_from(["../", "/", "a/../../", ".git/", "./", "a//"]),
              st.sampled_from(["compose.yml", "release/1.1.1"])),
    st.builds(lambda p: {p: "x"}, inserted(["compose.yml", "release/1.1.1"], ["\x00", "\\", "/../"])))
IMAGE_KIND = kind(
    ["", "--privileged", "-v", "busybox:stable --privileged", "busy box", "busybox\n", "busybox\x00", "$(id)",
     "busybox;id", "a" * 300, ["busybox"], {"i": 1}],
    inserted(["busybox:stable", "canon-bench/busybox:1.36"], SHELL + SPACE + UNICODE + [" -", "=", ","]),
    wrong_types())
NETWORK_KIND = kind(
    ["", "--privileged", "-x", "pro xy", "proxy\n", "proxy\x00", "$(id)", "proxy;id", "a/b", "a" * 100, ["proxy"],
     {"n": 1}],
    inserted(["proxy", "bench_default"], SHELL + PATH_SEP + SPACE + UNICODE + ["=", ",", ":", "@"]),
    wrong_types())
PROBES_KIND = kind(
    [[{"type": "udp"}], [{"service": "app;id"}], [{"service": "-app"}], [{"service": "a b"}], [{"port": 0}],
     [{"port": 70000}], [{"port": "80"}], [{"path": "x"}], [{"path": "/a b"}], [{"path": "/a\nb"}],
     [{"stable": 0}], [{"interval": -1}], [{"timeout": 0}], [{"codes": "200"}], [{"bogus": 1}], ["probe"], [7],
     [{"type": "tcp", "service": "$(id)", "port": 80}], [{"type": "tcp", "service": "../x", "port": 80}],
     [{"type": "exec"}], [{"type": "exec", "command": "id"}], [{"type": "exec", "command": ["id"], "send": "x"}],
     [{"type": "tls", "send": "x"}], [{"type": "tcp", "command": ["id"]}]],
    st.builds(lambda svc: [{"type": "tcp", "service": svc, "port": 80}], SERVICE_KIND[1]),
    st.builds(lambda p: [{"type": "http", "path": p}], URL_PATH_KIND[1]))
VERIFY_KIND = kind(
    [{"command": "test -s /x"}, {"command": []}, {"command": [1, 2]}, {"command": ["true"], "attempts": 0},
     {"command": ["true"], "attempts": -1}, {"command": ["true"], "settle": -5}, {"command": ["true"], "bogus": 1},
     {"command": ["true"], "service": "app;id"}, {"command": ["true"], "service": "../x"},
     {"command": ["true"], "attempts": "3"}, {"command": ["true"], "attempts": True}],
    st.builds(lambda svc: {"command": ["true"], "service": svc}, SERVICE_KIND[1]),
    st.builds(lambda n: {"command": ["true"], "attempts": n}, st.integers(-1000, 0)))
COLD_KIND = kind(
    ["/nonexistent/result.json", "{root}/cold", "{root}/cold/not-json.json", "{root}/cold/list.json",
     "{root}/cold/string.json", "{root}/cold/other-recipe.json", "{root}/cold/failed.json",
     "{root}/cold/other-version.json", "{root}/cold/no-versions.json", "", "{root}/cold/missing.json"])
RUN_DICT_KIND = kind(
    [{"run_id": RUN_ID, "recipe": "gitea", "started_epoch": "yesterday"},
     {"run_id": RUN_ID, "recipe": "gitea", "started_epoch": [1]},
     {"run_id": RUN_ID, "recipe": "gitea", "started_epoch": {"t": 1}},
     {"recipe": "gitea"}, {"run_id": RUN_ID}, {}],
    st.builds(lambda t: {"run_id": RUN_ID, "recipe": "gitea", "started_epoch": t},
              st.text(min_size=1, max_size=12).filter(lambda s: not _floatish(s))))
TIERS_KIND = kind(
    [[{"name": "install", "outcome": "maybe"}], [{"name": "install"}], [{"outcome": "pass"}],
     [{"name": "install", "outcome": None}], [{"name": "install", "outcome": ["pass"]}], ["install"], [1]],
    st.builds(lambda o: [{"name": "install", "outcome": o}],
              st.text(max_size=12).filter(lambda s: s not in ("pass", "fail", "skip", "blocked", "na",
                                                              "not_applicable", "error"))))


def _floatish(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


INT_BAD = kind(["x", "1.5", "", ["1"], {"n": 1}, "1e3x", "0x"])
INT_LIST_BAD = kind(["x", ["x"], [{"n": 1}], ["1.5"], [[1]], {"n": 1}])
FLOAT_BAD = kind(["x", "", ["1"], {"n": 1}, "1.5.1", "0x"])
BOOL_BAD = kind(["maybe", "2", "", ["yes"], {"b": 1}, "yess"])
SECONDS_BAD = kind(INT_BAD[0] + [-1, "-30"], st.integers(max_value=-1))   # not a whole number of seconds >= 0

# module -> option -> (kind, words the message may use to name the option; the value itself also counts)
FUZZ = {
    "abra_app": {"domain": (DOMAIN_KIND, ["domain"]), "recipe": (RECIPE, ["recipe"]),
                 "version": (VERSION_KIND, ["version", "release"]), "server": (SERVER_KIND, ["server"]),
                 "env": (ENV_KIND, ["env"]), "timeout": (INT_BAD, ["timeout"]), "force": (BOOL_BAD, ["force"])},
    "abra_app_info": {"domain": (DOMAIN_KIND, ["domain"]), "server": (SERVER_KIND, ["server"]),
                      "image_ids": (BOOL_BAD, ["image_ids"])},
    "abra_backup": {"domain": (DOMAIN_KIND, ["domain"]), "verify": (VERIFY_KIND, ["verify"])},
    "abra_recipe": {"recipe": (RECIPE, ["recipe"]), "version": (VERSION_KIND, ["version", "release"]),
                    "domain": (DOMAIN_KIND, ["domain"]), "env": (ENV_KIND, ["env"])},
    "app_marker": {"domain": (DOMAIN_KIND, ["domain"]), "service": (SERVICE_KIND, ["service"]),
                   "path": (ABS_PATH_KIND, ["path"])},
    "canon_evidence": {"domains": (None, ["domain"]), "log_lines": (INT_BAD, ["log_lines"])},
    "canon_lock": {"name": (LOCK_KIND, ["lock name", "name"]), "run_id": (RUN_ID_KIND, ["run id", "run_id"]),
                   "wait": (INT_BAD, ["wait"])},
    "canon_registry": {"recipe": (RECIPE, ["recipe"]), "server": (SERVER_KIND, ["server"]),
                       "version": (VERSION_KIND, ["version", "release"]), "domain": (DOMAIN_KIND, ["domain"]),
                       "lease_id": (LEASE_KIND, ["lease"]), "cold_result": (COLD_KIND, ["cold"])},
    "canon_result": {"run": (RUN_DICT_KIND, ["run", "started_epoch"]), "tiers": (TIERS_KIND, ["tier"])},
    "canon_run": {"docker_context": (DOCKER_CONTEXT_KIND, ["docker_context"]),
                  "recipe": (RECIPE, ["recipe"]), "server": (SERVER_KIND, ["server"]),
                  "base_domain": (DOMAIN_KIND, ["domain"]), "domain": (DOMAIN_KIND, ["domain"]),
                  "run_id": (RUN_ID_KIND, ["run id", "run_id"]), "deadline": (SECONDS_BAD, ["deadline"]),
                  "lease": (SECONDS_BAD, ["lease"]), "protected": (PROTECTED_KIND, ["protected"])},
    "canon_teardown": {"recipe": (RECIPE, ["recipe"]), "run_id": (RUN_ID_KIND, ["run id", "run_id"]),
                       "keep": (BOOL_BAD, ["keep"])},
    "env_drift": {"domain": (DOMAIN_KIND, ["domain"]), "recipe": (RECIPE, ["recipe"]),
                  "version": (VERSION_KIND, ["version", "release"]), "server": (SERVER_KIND, ["server"])},
    "fix_branch": {"repo": (REPO_KIND, ["repo"]), "remote": (REMOTE_KIND, ["remote"]),
                   "base": (BRANCH_KIND, ["base"]), "branch": (BRANCH_KIND, ["branch"]),
                   "tag": (BRANCH_KIND, ["tag"]), "files": (FILES_KIND, ["files"]), "timeout": (INT_BAD, ["timeout"])},
    "gitea_pull_request": {"api_url": (URL_KIND, ["api_url"]), "owner": (FORGE_NAME_KIND, ["owner"]),
                           "repo": (FORGE_NAME_KIND, ["repo"]), "head": (BRANCH_KIND, ["head", "branch"]),
                           "base": (BRANCH_KIND, ["base", "branch"]), "wait": (INT_BAD, ["wait"])},
    "readiness": {"domain": (DOMAIN_KIND, ["domain"]), "probes": (PROBES_KIND, ["probes"]),
                  "proxy_url": (URL_KIND, ["proxy_url"]), "probe_image": (IMAGE_KIND, ["probe_image", "image"]),
                  "network": (NETWORK_KIND, ["network"])},
    "routing_identity": {"domain": (DOMAIN_KIND, ["domain"]), "path": (URL_PATH_KIND, ["path"]),
                         "proxy_url": (URL_KIND, ["proxy_url"]), "samples": (INT_BAD, ["samples"]),
                         "codes": (INT_LIST_BAD, ["codes"])},
    "swarm_converge": {"docker_context": (DOCKER_CONTEXT_KIND, ["docker_context"]), "domain": (DOMAIN_KIND, ["domain"]),
                       "version": (VERSION_KIND, ["version", "release"]),
                       "timeout": (INT_BAD, ["timeout"]), "poll": (FLOAT_BAD, ["poll"])},
    "warm_domain": {"docker_context": (DOCKER_CONTEXT_KIND, ["docker_context"]),
                    "recipe": (RECIPE, ["recipe"]), "server": (SERVER_KIND, ["server"]),
                    "base_domain": (DOMAIN_KIND, ["domain"]), "domain": (DOMAIN_KIND, ["domain"]),
                    "run_id": (RUN_ID_KIND, ["run id", "run_id"]), "protected": (PROTECTED_KIND, ["protected"])},
}
# canon_evidence takes a list of domains: one bad domain among good ones.
FUZZ["canon_evidence"]["domains"] = (
    ([[v] for v in DOMAIN_KIND[0]] + [[DOMAIN, v] for v in DOMAIN_KIND[0][:6]],
     st.builds(lambda v, at: [DOMAIN] * at + [v], DOMAIN_KIND[1], st.integers(0, 2))), ["domain"])

# Every module in plugins/modules is here, or here with the reason it is not fuzzed.
NOT_FUZZED = {
    # takes no name, path, domain or run id: a list of outcome dicts it only reads; it runs no
    # command and writes nothing (tests/unit/test_ladder_settings.py tests its verdict)
    "canon_outcome": "reads a list of outcomes, runs and writes nothing",
}


# Imported before any recorder is installed: a module imported under the recorder would keep the
# recorder's stand-in for _proc.run as its own ``run``.
for _name in FUZZ:
    importlib.import_module(PKG + _name)


def test_every_module_is_fuzzed():
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    modules = {f[:-3] for f in os.listdir(os.path.join(root, "plugins", "modules"))
               if f.endswith(".py") and not f.startswith("_")}
    assert modules == set(FUZZ) | set(NOT_FUZZED)
    assert set(BASELINES) == set(FUZZ)


def args_with(module: str, option: str, value, root: str) -> dict:
    """The baseline with one option replaced. ``protected`` stands for a requested domain that is,
    or lies under, a protected domain; ``cold_result`` for a promote with that file."""
    args = BASELINES[module](root)
    if option == "protected":
        args["domain"] = value
    elif option == "cold_result":
        args.update(state="promoted", cold_result=value.replace("{root}", root))
        args.pop("domain")
    else:
        args[option] = value
    return args


def names_it(msg: str, words, value) -> bool:
    low = msg.lower()
    if any(w in low for w in words):
        return True
    return isinstance(value, str) and bool(value) and (value in msg or repr(value) in msg)


class _Captured(Exception):
    pass


def _capture(*_args, **kwargs):
    raise _Captured(kwargs)


SPECS: dict = {}


def spec_of(module: str) -> dict:
    """The argument spec main() hands AnsibleModule (captured without running anything else)."""
    if module not in SPECS:
        mod = importlib.import_module(PKG + module)
        real = mod.AnsibleModule
        mod.AnsibleModule = _capture
        try:
            mod.main()
        except _Captured as exc:
            SPECS[module] = exc.args[0]["argument_spec"]
        finally:
            mod.AnsibleModule = real
    return SPECS[module]


def omitted(module: str, option: str, value) -> bool:
    """An empty string for an optional option without a default is the option left out
    (playbooks pass ``{{ x | default('') }}``): not a bad input."""
    entry = spec_of(module).get(option)
    return (value == "" and entry is not None and not entry.get("required")
            and entry.get("default") in (None, ""))


@contextlib.contextmanager
def shared_tree():
    """One bench tree for many inputs: each must leave it as it found it, so it can be reused."""
    root = bench_tree()
    try:
        yield root, listing(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_refused(module: str, option: str, value, tree) -> None:
    """Run ``module`` with ``option`` set to ``value``; fail with the reason unless it is refused
    cleanly with nothing run and nothing created. ``tree``: (root, its listing) from shared_tree."""
    if omitted(module, option, value):
        return
    words = FUZZ[module][option][1]
    root, before = tree
    args = args_with(module, option, value, root)
    where = "%s %s=%r" % (module, option, value if not isinstance(value, str) or len(value) < 120
                          else value[:60] + "...(%d chars)" % len(value))
    with recorder() as attempts:
        try:
            code, result, raw = run_module(module, args)
        except CommandAttempted:
            code, result, raw = None, {}, ""
        except Exception as exc:  # a traceback in a real run
            pytest.fail("%s: uncaught %s: %s" % (where, type(exc).__name__, exc))
    assert not attempts, "%s: ran %s" % (where, attempts)
    assert listing(root) == before, "%s: created %s" % (where, sorted(set(listing(root)) - set(before)))
    assert code == 1 and result.get("failed"), "%s: accepted (exit %s): %s" % (where, code, raw[-400:])
    assert "Traceback" not in raw and "exception" not in result, "%s: traceback: %s" % (where, raw[-600:])
    msg = result.get("msg")
    assert isinstance(msg, str) and msg.strip(), "%s: no message: %s" % (where, raw[-400:])
    assert names_it(msg, words, value), "%s: the message names neither the option nor the value: %s" % (where, msg)
    COUNTS[module] = COUNTS.get(module, 0) + 1


PAIRS = [(m, o) for m in sorted(FUZZ) for o in FUZZ[m]]


@pytest.mark.parametrize("module", sorted(FUZZ))
def test_baseline_gets_past_validation(module):
    """The valid baseline runs a command, writes something, or succeeds: the fuzzed refusals are the
    bad value's doing, and the recorder does catch what the module runs."""
    root = bench_tree()
    try:
        before = listing(root)
        with recorder() as attempts:
            try:
                code, result, raw = run_module(module, BASELINES[module](root))
            except CommandAttempted:
                code, result, raw = None, {}, ""
        assert attempts or listing(root) != before or code == 0, \
            "%s: the baseline was refused: %s" % (module, result.get("msg") or raw[-400:])
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("module,option", PAIRS)
def test_fixed_bad_inputs(module, option):
    with shared_tree() as tree:
        for value in FUZZ[module][option][0][0]:
            check_refused(module, option, value, tree)


@pytest.mark.parametrize("module,option", PAIRS)
def test_generated_bad_inputs(module, option):
    strategy = FUZZ[module][option][0][1]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(value=strategy)
    def fuzz(value):
        check_refused(module, option, value, tree)

    with shared_tree() as tree:
        fuzz()
