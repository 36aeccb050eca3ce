"""Integration tests drive the real bench swarm through the collection's own playbooks.

The bench must be up (``make bench``; ``make test`` does it first).

A session runs on one abra server, ``CANON_TEST_SERVER`` (default: the bench's own, ``default``;
or the second one, ``bench2.canon.test``): its playbooks target that server's inventory host, its
docker commands that server's engine, its proxy checks that server's proxy, its ledger readings
that server's runs. ``tests/integration/split.py`` runs two sessions at once, one per server
(docs/bench.md, "The second server").
"""
from __future__ import annotations

import contextlib
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
SERVER = os.environ.get("CANON_TEST_SERVER") or "default"


def _inventory_vars(*path) -> dict:
    import yaml
    with open(os.path.join(ROOT, "inventory", *path)) as fh:
        return yaml.safe_load(fh)


def _servers() -> dict:
    """Per server: its docker context (None: the host's own engine), the inventory and host its
    playbooks run on, its proxy as seen from the host; read from the bench inventories
    (inventory/bench/group_vars/bench.yml, inventory/bench-two/host_vars/bench2.yml), which
    the playbooks read too, so the bench's addresses have one source."""
    bench = _inventory_vars("bench", "group_vars", "bench.yml")
    second = _inventory_vars("bench-two", "host_vars", "bench2.yml")
    return {
        "default": {"context": None, "inventory": None, "host": None,
                    "proxy": "http://127.0.0.1:%d" % int(bench["bench_proxy_port"])},
        second["canon_server"]: {"context": second["canon_docker_context"], "host": "bench2",
                                 "inventory": os.path.join(ROOT, "inventory", "bench-two", "hosts.yml"),
                                 "proxy": second["canon_proxy_url"]},
    }


SERVERS = _servers()
SECOND = next(name for name in SERVERS if name != "default")    # bench2.canon.test
if SERVER not in SERVERS:
    raise SystemExit("CANON_TEST_SERVER=%s: the bench has the servers %s" % (SERVER, ", ".join(SERVERS)))
CONTEXT = SERVERS[SERVER]["context"]
PROXY = SERVERS[SERVER]["proxy"]
ON_DEFAULT = SERVER == "default"
HOST_ENGINE = None      # docker(..., context=HOST_ENGINE): the host's own engine, whatever the session's server
_SESSION = object()


def docker(*args, check=True, context=_SESSION) -> str:
    """The docker CLI on the session server's engine, or on another's (``context``: a docker
    context name, or None for the host's own engine)."""
    if context is _SESSION:
        context = CONTEXT
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


def playbook_argv(playbook: str, results_dir: str, extra_vars: dict) -> list:
    """ansible-playbook on the session's server: its inventory, and ``canon_hosts`` naming its
    host (the playbooks' ``hosts:``), unless the test names its own."""
    server = SERVERS[SERVER]
    extra = dict(extra_vars, canon_results_dir=results_dir)
    argv = ["ansible-playbook", os.path.join(ROOT, "playbooks", playbook)]
    if server["inventory"]:
        argv += ["-i", server["inventory"]]
        extra.setdefault("canon_hosts", server["host"])
    return argv + ["-e", json.dumps(extra)]


def run_playbook(playbook: str, results_dir: str, timeout: int = 900, **extra_vars) -> Playbook:
    argv = playbook_argv(playbook, results_dir, extra_vars)
    res = subprocess.run(argv, cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=timeout)
    assert_no_deprecation(playbook, res.stdout, res.stderr)
    return Playbook(res.returncode, res.stdout, res.stderr, results_dir)


def assert_no_deprecation(playbook: str, *streams) -> None:
    """Every playbook runs clean on the tested ansible-core: a deprecation today is a failure with
    the next release (2.18's "conditional result of type str" warning became 2.19's error)."""
    for stream in streams:
        assert "[DEPRECATION WARNING]" not in (stream or ""), "%s printed a deprecation warning:\n%s" % (
            playbook, "\n".join(line for line in stream.splitlines() if "DEPRECATION" in line))


def default_signals() -> None:
    """In the child: SIGINT and SIGTERM as a terminal's process has them. A suite started in the
    background by a non-interactive shell inherits SIGINT ignored, and ansible-playbook keeps an
    ignored SIGINT ignored, so a test sending it would prove nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_playbook(playbook: str, results_dir: str, **extra_vars) -> subprocess.Popen:
    argv = playbook_argv(playbook, results_dir, extra_vars)
    return subprocess.Popen(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=default_signals)


def ledger_runs(server=_SESSION) -> list:
    """The ledger's runs on ``server`` (default: the session's; None: every server's). The other
    session of a split run claims runs on the other server meanwhile."""
    if server is _SESSION:
        server = SERVER
    runs = []
    for path in glob.glob(os.path.join(STATE_DIR, "runs", "*", "run.json")):
        try:
            with open(path) as fh:
                run = json.load(fh)
        except (OSError, ValueError):     # released (or being written) by a run on another server
            continue
        if server is None or run.get("server") == server:
            runs.append(run)
    return runs


def leftovers(domains, context=_SESSION) -> dict:
    """Everything of these apps that still exists on the session server's engine (or on the
    engine of the docker ``context``): swarm objects and .env files."""
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


CONVERGE_PREFIX = "cvg-"     # test_swarm_converge.py's own stacks, deployed with docker alone


def remove_stack(client, stack: str, timeout: float = 180) -> dict:
    """``docker stack rm`` and then, as the harness's own teardown does (module_utils/_teardown),
    remove by the stack's label what the engine left: under load, an engine's own `stack rm`
    sometimes removes the services but not the network ("cannot assign requested address" on
    the network's load balancer endpoint, in dockerd's log). What is still there at the end."""
    deadline = time.monotonic() + timeout
    client.stack_rm(stack)
    client.wait_gone(stack, kinds=("service",), timeout=timeout)
    while True:
        left = {k: v for k, v in client.stack_objects(stack).items() if v}
        if not left or time.monotonic() > deadline:
            return left
        for kind in ("service", "secret", "config", "volume", "network"):
            if left.get(kind):
                client.remove(kind, left[kind])
        time.sleep(1)


def converge_stacks(client) -> list:
    """The stacks of test_swarm_converge.py on the engine (by the stack label)."""
    names = set()
    for kind in ("service", "network"):
        res = client.run([kind, "ls", "--filter", "label=com.docker.stack.namespace",
                          "--format", '{{.Label "com.docker.stack.namespace"}}'], check=False)
        names |= {n for n in res.stdout.split() if n.startswith(CONVERGE_PREFIX)}
    return sorted(names)


def left_by_an_earlier_session() -> list:
    """Undo what an earlier, killed session's fixtures (or a benchmark) left on the bench: warm
    canonicals on the session's server (a benchmark's, a killed session's: the tests seed the ones
    they need; the live keycloak is bench.yml's own deploy, never in the registry), and, by the
    session on the bench's own server only (the one whose tests make them), apps on the suite's
    own ``coll-`` domains (abra-made, so the harness janitor does not own them) and tags the bench
    sources do not release (a fix release a fixture was tagging). What was removed."""
    import tempfile

    from scenario import released_tags_only, remove_app
    removed = released_tags_only() if ON_DEFAULT else []
    registry = os.path.join(STATE_DIR, "canon", SERVER)
    for name in sorted(os.listdir(registry)) if os.path.isdir(registry) else []:
        if name.endswith(".json"):
            with tempfile.TemporaryDirectory() as results:
                res = run_playbook("warm_teardown.yml", results, recipe=name[:-len(".json")])
            if res.rc != 0:
                pytest.fail("%s holds a warm canonical that warm_teardown.yml could not remove:\n%s"
                            % (SERVER, res.stdout[-2000:]))
            removed.append("canonical " + name[:-len(".json")])
    if ON_DEFAULT:
        from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
        client = DockerClient()
        for stack in converge_stacks(client):
            left = remove_stack(client, stack)
            if left:
                pytest.fail("an earlier session's stack %s could not be removed: %s left" % (stack, left))
            removed.append("stack " + stack)
    envs = os.path.join(ABRA_DIR, "servers", SERVER)
    for name in sorted(os.listdir(envs)) if ON_DEFAULT and os.path.isdir(envs) else []:
        if name.startswith("coll-") and name.endswith(".env"):
            remove_app(name[:-len(".env")])
            removed.append(name[:-len(".env")])
    return removed


SERVER_LOCK = "/tmp/canon-test-server-%s.lock"


@pytest.fixture(scope="session", autouse=True)
def server_to_this_session():
    """The session holds its server's lock for its whole run (tests/integration/split.py runs one
    session per server at once). A test that deploys on another server too (a sweep of both) takes
    that server's lock first with ``other_servers_held``, so it waits for the session there to end
    rather than meeting its harness runs mid-way (a server in an isolation run refuses a sweep)."""
    from ansible_collections.coopcloud.canon.plugins.module_utils._flock import flocked
    with flocked(SERVER_LOCK % SERVER, holder="pytest session on %s (pid %d)" % (SERVER, os.getpid())):
        yield


@pytest.fixture
def other_servers_held():
    """Every bench server but the session's own, held for the test: waits for another session that
    runs there (never the other way round, so two sessions never wait on each other)."""
    from ansible_collections.coopcloud.canon.plugins.module_utils._flock import Busy, flocked
    with contextlib.ExitStack() as stack:
        for server in sorted(s for s in SERVERS if s != SERVER):
            holder = "a test of the %s session (pid %d)" % (SERVER, os.getpid())
            try:
                stack.enter_context(flocked(SERVER_LOCK % server, wait=False, holder=holder))
            except Busy as busy:
                t0 = time.monotonic()
                print("\nwaiting for %s: %s" % (server, busy.holder or "held"), flush=True)
                stack.enter_context(flocked(SERVER_LOCK % server, holder=holder))
                print("%s free after %.0f s" % (server, time.monotonic() - t0), flush=True)
        yield


@pytest.fixture(scope="session", autouse=True)
def bench_is_up(server_to_this_session):
    # under the server's lock: what an earlier session left is removed only when no other
    # session runs on this server
    res = subprocess.run(["docker", *(["--context", CONTEXT] if CONTEXT else []), "info", "--format",
                          "{{.Swarm.LocalNodeState}}"], capture_output=True, text=True)
    if res.returncode != 0 or res.stdout.strip() != "active":
        pytest.fail("the swarm of %s is not up: run `make bench` (make test does it first)" % SERVER)
    if not os.path.exists(os.path.join(BENCH_ROOT, "bin", "abra")):
        pytest.fail("the bench is not provisioned: run `make bench`")
    removed = left_by_an_earlier_session()
    if removed:
        print("\nbench (%s): removed what an earlier session left: %s" % (SERVER, ", ".join(removed)))


@pytest.fixture
def results_dir(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    return str(d)


LIVE_KEYCLOAK = "warm-keycloak.bench.canon.test"


def live_keycloak_fingerprint() -> dict:
    """The live keycloak's service specs and the bytes of its volume, to prove nothing touched it."""
    stack = LIVE_KEYCLOAK.replace(".", "_")
    names = [n for n in docker("service", "ls", "--format", "{{.Name}}", context=HOST_ENGINE).split()
             if n.startswith(stack + "_")]
    specs = {}
    for svc in json.loads(docker("service", "inspect", *names, context=HOST_ENGINE)) if names else []:
        specs[svc["Spec"]["Name"]] = {"spec": svc["Spec"], "version": svc["Version"]["Index"]}
    volumes = {}
    for vol in [v for v in docker("volume", "ls", "--format", "{{.Name}}", context=HOST_ENGINE).split()
                if v.startswith(stack + "_")]:
        mount = json.loads(docker("volume", "inspect", vol, context=HOST_ENGINE))[0]["Mountpoint"]
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
