"""Integration tests drive the real bench swarm through the collection's own playbooks.

The bench must be up (``make bench``; ``make test`` does it first).
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_ROOT = os.environ.get("CANON_BENCH_ROOT", "/var/lib/canon-bench")
STATE_DIR = os.path.join(BENCH_ROOT, "state")
ABRA_DIR = os.path.join(BENCH_ROOT, "abra")
SERVER = "default"
PROXY = "http://127.0.0.1:8480"


def docker(*args, check=True, context=None) -> str:
    """The docker CLI on the bench's engine, or on another server's through its docker context."""
    res = subprocess.run(["docker", *(["--context", context] if context else []), *args],
                         capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError("docker %s failed: %s" % (" ".join(args), res.stderr))
    return res.stdout


def ansible_env(**extra) -> dict:
    env = dict(os.environ)
    env["ANSIBLE_CONFIG"] = os.path.join(ROOT, "ansible.cfg")
    env["ANSIBLE_FORCE_COLOR"] = "0"
    # One JSON line per result: messages are not folded or re-quoted as YAML would.
    env["ANSIBLE_CALLBACK_RESULT_FORMAT"] = "json"
    env.update(extra)
    return env


class Playbook:
    def __init__(self, rc, stdout, stderr, results_dir):
        self.rc, self.stdout, self.stderr, self.results_dir = rc, stdout, stderr, results_dir

    @property
    def results(self) -> list:
        docs = []
        for path in sorted(glob.glob(os.path.join(self.results_dir, "*", "result.json"))):
            with open(path) as fh:
                docs.append(json.load(fh))
        return docs

    def tier(self, name, index=0) -> dict:
        return next(t for t in self.results[index]["tiers"] if t["name"] == name)


def run_playbook(playbook: str, results_dir: str, timeout: int = 900, **extra_vars) -> Playbook:
    argv = ["ansible-playbook", os.path.join(ROOT, "playbooks", playbook),
            "-e", json.dumps(dict(extra_vars, canon_results_dir=results_dir))]
    res = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout)
    # Every playbook runs clean on the tested ansible-core: a deprecation today is a failure with
    # the next release (2.18's "conditional result of type str" warning became 2.19's error).
    for stream in (res.stdout, res.stderr):
        assert "[DEPRECATION WARNING]" not in stream, "%s printed a deprecation warning:\n%s" % (
            playbook, "\n".join(line for line in stream.splitlines() if "DEPRECATION" in line))
    return Playbook(res.returncode, res.stdout, res.stderr, results_dir)


def default_signals() -> None:
    """In the child: SIGINT and SIGTERM as a terminal's process has them. A suite started in the
    background by a non-interactive shell inherits SIGINT ignored, and ansible-playbook keeps an
    ignored SIGINT ignored, so a test sending it would prove nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_playbook(playbook: str, results_dir: str, **extra_vars) -> subprocess.Popen:
    argv = ["ansible-playbook", os.path.join(ROOT, "playbooks", playbook),
            "-e", json.dumps(dict(extra_vars, canon_results_dir=results_dir))]
    return subprocess.Popen(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=default_signals)


def ledger_runs() -> list:
    runs = []
    for path in glob.glob(os.path.join(STATE_DIR, "runs", "*", "run.json")):
        with open(path) as fh:
            runs.append(json.load(fh))
    return runs


def leftovers(domains, context=None) -> dict:
    """Everything of these apps that still exists on the bench (or on the engine of the docker
    ``context``): swarm objects and .env files."""
    left = {}
    stacks = [d.replace(".", "_") for d in domains]
    for kind, args in (("service", ["service", "ls", "--format", "{{.Name}}"]),
                       ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
                       ("secret", ["secret", "ls", "--format", "{{.Name}}"]),
                       ("config", ["config", "ls", "--format", "{{.Name}}"]),
                       ("network", ["network", "ls", "--format", "{{.Name}}"]),
                       ("container", ["ps", "-a", "--format", "{{.Names}}"])):
        names = [n for n in docker(*args, context=context).split() if any(n.startswith(s + "_") or n == s for s in stacks)]
        if names:
            left[kind] = names
    stack_ls = docker("stack", "ls", "--format", "{{.Name}}", context=context).split()
    if any(s in stack_ls for s in stacks):
        left["stack"] = [s for s in stacks if s in stack_ls]
    envs = [p for d in domains for p in glob.glob(os.path.join(ABRA_DIR, "servers", "*", d + ".env"))]
    if envs:
        left["env"] = envs
    return left


def deploying(domain) -> bool:
    """The app on ``domain`` has a service on the swarm: its deploy has started."""
    stack = domain.replace(".", "_")
    return any(n.startswith(stack + "_") for n in docker("service", "ls", "--format", "{{.Name}}").split())


def run_processes(run_id) -> list:
    """The /proc environ files of every process carrying ``CANON_RUN_ID=<run_id>`` (read
    independently of the guardian's own search)."""
    out = subprocess.run(["grep", "-l", "CANON_RUN_ID=%s" % run_id] +
                         ["/proc/%s/environ" % p for p in os.listdir("/proc") if p.isdigit()],
                         capture_output=True, text=True)
    return out.stdout.split()


def wait_for(predicate, timeout=60, interval=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


@pytest.fixture(scope="session", autouse=True)
def secret_journal(tmp_path_factory):
    """The bench's abra appends every secret value it generates during the session to this file
    (roles/bench/files/abra, journal_secret): ansible-playbook, its modules on localhost and the
    abra they run inherit the variable. test_zz_secret_scan.py searches every result for them."""
    from secret_scan import JOURNAL_ENV
    path = str(tmp_path_factory.getbasetemp() / "secret-journal")
    previous = os.environ.get(JOURNAL_ENV)
    os.environ[JOURNAL_ENV] = path
    yield path
    if previous is None:
        os.environ.pop(JOURNAL_ENV, None)
    else:
        os.environ[JOURNAL_ENV] = previous


def pytest_configure(config):
    """SIGTERM stops the suite the way Ctrl-C does. pytest runs no fixture teardown on SIGTERM, so
    a suite terminated by a CI timeout left what its fixtures had made (a colliding stack, a fix
    release tag on a bench repo) and the next session started on a bench that was not the bench.
    As a KeyboardInterrupt, pytest ends the session and tears every active fixture down."""
    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)   # a second SIGTERM ends it at once
        raise KeyboardInterrupt("SIGTERM")
    signal.signal(signal.SIGTERM, terminate)


def left_by_an_earlier_session() -> list:
    """Undo what an earlier, killed session's fixtures (or a benchmark) left on the bench: apps on
    the suite's own ``coll-`` domains (abra-made, so the harness janitor does not own them), tags
    the bench sources do not release (a fix release a fixture was tagging) and warm canonicals
    (the live keycloak is bench.yml's own deploy, never in the registry). What was removed."""
    import tempfile

    from scenario import playbook, released_tags_only, remove_app
    removed = released_tags_only()
    # warm canonicals (a benchmark's, a killed session's): the tests seed the ones they need
    registry = os.path.join(STATE_DIR, "canon", SERVER)
    for name in sorted(os.listdir(registry)) if os.path.isdir(registry) else []:
        if name.endswith(".json"):
            with tempfile.TemporaryDirectory() as results:
                res = playbook("warm_teardown.yml", results, recipe=name[:-len(".json")])
            if res.returncode != 0:
                pytest.fail("the bench holds a warm canonical that warm_teardown.yml could not remove:\n%s"
                            % res.stdout[-2000:])
            removed.append("canonical " + name[:-len(".json")])
    envs = os.path.join(ABRA_DIR, "servers", SERVER)
    for name in sorted(os.listdir(envs)) if os.path.isdir(envs) else []:
        if name.startswith("coll-") and name.endswith(".env"):
            remove_app(name[:-len(".env")])
            removed.append(name[:-len(".env")])
    return removed


@pytest.fixture(scope="session", autouse=True)
def bench_is_up():
    res = subprocess.run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True)
    if res.returncode != 0 or res.stdout.strip() != "active":
        pytest.fail("the bench swarm is not up: run `make bench` (make test does it first)")
    if not os.path.exists(os.path.join(BENCH_ROOT, "bin", "abra")):
        pytest.fail("the bench is not provisioned: run `make bench`")
    removed = left_by_an_earlier_session()
    if removed:
        print("\nbench: removed what an earlier session left: %s" % ", ".join(removed))


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    return str(d)


LIVE_KEYCLOAK = "warm-keycloak.bench.canon.test"


def live_keycloak_fingerprint() -> dict:
    """The live keycloak's service specs and the bytes of its volume, to prove nothing touched it."""
    stack = LIVE_KEYCLOAK.replace(".", "_")
    names = [n for n in docker("service", "ls", "--format", "{{.Name}}").split() if n.startswith(stack + "_")]
    specs = {}
    for svc in json.loads(docker("service", "inspect", *names)) if names else []:
        specs[svc["Spec"]["Name"]] = {"spec": svc["Spec"], "version": svc["Version"]["Index"]}
    volumes = {}
    for vol in [v for v in docker("volume", "ls", "--format", "{{.Name}}").split() if v.startswith(stack + "_")]:
        mount = json.loads(docker("volume", "inspect", vol))[0]["Mountpoint"]
        digest = subprocess.run(["sh", "-c", "cd %s && find . -type f -print0 | sort -z | xargs -0 sha256sum" % mount],
                                capture_output=True, text=True).stdout
        volumes[vol] = digest
    return {"services": specs, "volumes": volumes}


@pytest.fixture(scope="session", autouse=True)
def live_keycloak_untouched(bench_is_up):
    """Every test in the suite runs between these two readings: they must be equal."""
    before = live_keycloak_fingerprint()
    assert before["services"] and before["volumes"], "the bench's live keycloak is not deployed"
    yield
    after = live_keycloak_fingerprint()
    assert after == before, "the live keycloak was touched"


@pytest.fixture
def cpu_load():
    """Six busy loops in containers beside the run (host loops barely slow containers here:
    each container gets its own CPU share)."""
    ids = []
    try:
        for _ in range(6):
            ids.append(docker("run", "-d", "--rm", "--network", "none", "--label", "coopcloud.canon.load=test",
                              "canon-bench/busybox:1.36", "sh", "-c", "while :; do :; done").strip())
        yield ids
    finally:
        if ids:
            docker("rm", "-f", *ids, check=False)
