#!/usr/bin/env python3
"""Benchmark: interrupt isolate, sweep and promote at 20 points with SIGINT, SIGTERM and SIGKILL,
then count what the interrupted run left behind.

For every case (point x signal) it starts the command that reaches the point (``isolate.yml``
of custom-html with a short tier order, ``canon sweep custom-html``, ``promote.yml``), watches
until the point is reached (the playbook's task lines, the run's ``abra`` processes, the ledger,
the leases, the swarm), sends the signal, waits for the guardian's teardown, runs the janitor
(``playbooks/teardown.yml -e run_id=...``) when the run is still in the ledger with no guardian,
and then looks for leaks of that run: stack, service, volume, secret, config, network, container,
``.env``, run record, lock, lease, processes, the driver lock; for the points that touch a warm
canonical, the registry's version must be the old or the new release and the warm app must run
exactly that version and answer with its own content (never half). Processes (and their start
times, from ``/proc/stat``'s boot time) are looked for in this machine's ``/proc``: the bench's
server is this machine, so the controller, the modules, the guardians and abra all run here.

Signals: ``SIGINT`` goes to the controller's process group, as a terminal's Ctrl-C does (the
controller, its workers and the modules and abra they run); ``SIGTERM`` and ``SIGKILL`` go to the
controller's pid alone (a service manager's stop; a parent killed). The controller is
``ansible-playbook`` for isolate and promote points and the ``canon`` process for sweep points.

Each case takes ``flock /tmp/canon-bench.lock`` itself, so others can use the bench between
cases. Results: benchmarks/results/interrupt-matrix.json. Usage::

    python3 benchmarks/interrupt_matrix.py                 # the whole matrix (about 60 cases)
    python3 benchmarks/interrupt_matrix.py --points app-new,fallback --signals SIGKILL
    python3 benchmarks/interrupt_matrix.py --list
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import glob
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._flock import flocked, holder_of  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import guardian_alive  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._teardown import domain_leftovers  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import hashed_warm_domain  # noqa: E402

BENCH_ROOT = os.environ.get("CANON_BENCH_ROOT", "/var/lib/canon-bench")
STATE_DIR = os.path.join(BENCH_ROOT, "state")
ABRA_DIR = os.path.join(BENCH_ROOT, "abra")
ABRA_BIN = os.path.join(BENCH_ROOT, "bin", "abra")
SERVER = "default"
BASE_DOMAIN = "bench.canon.test"
PROXY = "http://127.0.0.1:8480"
BENCH_LOCK = "/tmp/canon-bench.lock"
RESULTS = os.path.join(ROOT, "benchmarks", "results", "interrupt-matrix.json")

SIGNALS = ("SIGINT", "SIGTERM", "SIGKILL")
# The controller and its guardian both SIGKILLed (an OOM kill of both, a crash of the machine's
# processes): nothing of the run survives to tear it down, so the janitor must. Run at these points.
GUARDIAN_KILLED = "SIGKILL+guardian"
JANITOR_POINTS = ("app-new", "secret-generation", "install-deploy", "upgrade-upgrade", "restore", "teardown",
                  "sweep-promote", "in-place-deploy")
REACH_TIMEOUT = 1200       # seconds to reach a point (a sweep's gitea cold run comes first)
EXIT_TIMEOUT = 120         # seconds for a signalled ansible-playbook to exit
CANON_EXIT_TIMEOUT = 420   # canon waits for its runs' teardown (TEARDOWN_GRACE 300 s) before it exits
TEARDOWN_TIMEOUT = 120     # seconds for the guardian's teardown before the janitor is considered
SETTLE_TIMEOUT = 180       # seconds for a warm stack's rolling update to settle before it is judged

# The releases the warm points move between, and the content each app answers with. custom-html's
# canonical is put on the namespace's hashed name explicitly: promote.yml gives warm_domain no
# compose names, so it picks the readable warm-canon-custom-html.bench.canon.test, on which abra
# refuses the secret initial_admin_password (65 characters with the stack name).
WARM = {
    "custom-html": {"old": "1.0.0+1.36", "new": "1.1.0+1.37", "marker": "<h1>custom-html</h1>", "path": "/",
                    "warm_domain": hashed_warm_domain("custom-html", SERVER, BASE_DOMAIN)},
    "gitea": {"old": "3.5.3+1.24.2-rootless", "new": "3.6.0+1.25.0-rootless", "marker": "<h1>gitea</h1>",
              "path": "/", "warm_domain": None},
}

_docker = DockerClient(timeout=120)


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def log(msg: str) -> None:
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


@contextlib.contextmanager
def bench_lock(path: str = BENCH_LOCK):
    """The bench's shared lock (what ``flock /tmp/canon-bench.lock`` takes), held for one case."""
    t0 = time.monotonic()
    with flocked(path):
        waited = time.monotonic() - t0
        if waited > 1:
            log("waited %.0f s for %s" % (waited, path))
        yield


def live_runs() -> list:
    """Harness runs in progress on the bench (anyone's): running, with a live guardian or starting."""
    return [r["run_id"] for r in ledger_records().values() if r.get("status") == "running"
            and (guardian_alive(r.get("guardian_pid"), r["run_id"])
                 or (r.get("guardian_pid") is None and time.time() - r.get("started_epoch", 0) < 120))]


def wait_bench_idle(timeout: float = 900) -> None:
    """Even under the bench lock, a run someone started before releasing it may still be
    finishing; isolation would refuse to start beside it."""
    deadline = time.monotonic() + timeout
    busy = live_runs()
    if busy:
        log("waiting for live runs to finish: %s" % ", ".join(busy))
    while busy and time.monotonic() < deadline:
        time.sleep(2)
        busy = live_runs()
    if busy:
        raise RuntimeError("the bench stayed busy for %d s: %s" % (timeout, ", ".join(busy)))


def ansible_env(**extra) -> dict:
    env = dict(os.environ)
    env.update({"ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
                # ansible-core 2.18 no longer flushes every line; the watcher reads task lines live
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def playbook_argv(playbook: str, results_dir: str, **extra_vars) -> list:
    return ["ansible-playbook", os.path.join(ROOT, "playbooks", playbook),
            "-e", json.dumps(dict(extra_vars, canon_results_dir=results_dir))]


# canon_run (and canon) refusing because another harness run is live on the server
REFUSED_BUSY = ("refusing to start: ", "is in an isolation run", "is busy: ")


def refused_busy(output: str) -> str | None:
    """The refusal in ``output`` when the server was busy with someone else's run."""
    for marker in REFUSED_BUSY:
        if marker in output:
            return output.split(marker, 1)[1][:200]
    return None


def run_playbook(playbook: str, results_dir: str, timeout: int = 1200, **extra_vars) -> subprocess.CompletedProcess:
    """Run a playbook to its end; when canon_run refused because someone else's run is live on
    the bench (not everyone takes the bench lock), wait for it and try again."""
    for attempt in range(4):
        res = subprocess.run(playbook_argv(playbook, results_dir, **extra_vars), cwd=ROOT, env=ansible_env(),
                             capture_output=True, text=True, timeout=timeout)
        if res.returncode == 0 or not refused_busy(res.stdout + res.stderr) or attempt == 3:
            return res
        wait_bench_idle()
    return res


# -- reading the bench ---------------------------------------------------------------------------
def read_json(path: str):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def ledger_records() -> dict:
    """The ledger's runs on this server (the matrix's): another server's runs (a test session on
    the second server, tests/integration/split.py) are neither a case's runs nor a busy bench."""
    out = {}
    for path in glob.glob(os.path.join(STATE_DIR, "runs", "*", "run.json")):
        rec = read_json(path)
        if rec and rec.get("run_id") and rec.get("server", SERVER) == SERVER:
            out[rec["run_id"]] = rec
    return out


def run_dirs() -> set:
    d = os.path.join(STATE_DIR, "runs")
    return set(os.listdir(d)) if os.path.isdir(d) else set()


def held_by(kind: str, run_ids) -> list:
    """Locks (``locks``) or leases (``leases``) whose holder is one of ``run_ids``."""
    found = []
    for path in sorted(glob.glob(os.path.join(STATE_DIR, kind, "*.json"))):
        held = read_json(path) or {}
        if held.get("run_id") in run_ids:
            found.append(os.path.basename(path)[:-5])
    return found


def registry(recipe: str) -> dict:
    return read_json(os.path.join(STATE_DIR, "canon", SERVER, recipe + ".json")) or {}


def _cmdline(pid: str) -> list:
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def _environ_has(pid: str, needles) -> str | None:
    try:
        with open("/proc/%s/environ" % pid, "rb") as fh:
            env = fh.read().split(b"\0")
    except OSError:
        return None
    for n in needles:
        if n in env:
            return n.decode()
    return None


def _state(pid) -> str:
    try:
        with open("/proc/%s/stat" % pid) as fh:
            return fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "?"


def run_processes(run_ids, cmd_filter=None) -> list:
    """Live processes (pid, argv) carrying ``CANON_RUN_ID=<one of run_ids>``, optionally only those
    whose command line ``cmd_filter`` accepts."""
    needles = [("CANON_RUN_ID=%s" % r).encode() for r in run_ids]
    if not needles:
        return []
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        cmd = _cmdline(pid)
        if not cmd or (cmd_filter and not cmd_filter(cmd)):
            continue
        if _environ_has(pid, needles) and _state(pid) != "Z":
            out.append((int(pid), cmd))
    return out


def processes_with(marker: str) -> list:
    """Live processes whose command line mentions ``marker`` (a case's private results folder)."""
    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            cmd = _cmdline(pid)
            if any(marker in c for c in cmd) and _state(pid) != "Z":
                out.append((int(pid), cmd))
    return out


def proc_start_epoch(pid) -> float:
    """When ``pid`` started (seconds since the epoch), from /proc."""
    try:
        with open("/proc/%s/stat" % pid) as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/stat") as fh:
            btime = next(int(ln.split()[1]) for ln in fh if ln.startswith("btime"))
    except (OSError, IndexError, ValueError, StopIteration):
        return float("inf")
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def pid_is(pid, word: str) -> bool:
    return bool(pid) and _state(pid) not in ("Z", "?") and any(word in c for c in _cmdline(str(pid))[:3])


def services_of(domain: str) -> list:
    stack = stack_name(domain)
    return [n for n in _docker.run(["service", "ls", "--format", "{{.Name}}"], check=False).stdout.split()
            if n.startswith(stack + "_")]


def leftovers(domains) -> dict:
    """Everything of these apps that still exists: swarm objects by their stack's label and name
    prefix, probe containers, stacks, ``.env`` files on every server of the shared ABRA_DIR, and
    backups in the shared ABRA_DIR."""
    left = {}
    stacks = {stack_name(d) for d in domains}
    for d in domains:
        for kind, names in domain_leftovers(_docker, ABRA_DIR, SERVER, d).items():
            left.setdefault(kind, set()).update(names)
    for kind, args in (("service", ["service", "ls", "--format", "{{.Name}}"]),
                       ("volume", ["volume", "ls", "--format", "{{.Name}}"]),
                       ("secret", ["secret", "ls", "--format", "{{.Name}}"]),
                       ("config", ["config", "ls", "--format", "{{.Name}}"]),
                       ("network", ["network", "ls", "--format", "{{.Name}}"]),
                       ("container", ["ps", "-a", "--format", "{{.Names}}"]),
                       ("stack", ["stack", "ls", "--format", "{{.Name}}"])):
        names = [n for n in _docker.run(args, check=False).stdout.split()
                 if n in stacks or any(n.startswith(s + "_") for s in stacks)]
        if names:
            left.setdefault(kind, set()).update(names)
    for d in domains:
        for env in glob.glob(os.path.join(ABRA_DIR, "servers", "*", d + ".env")):
            left.setdefault("env", set()).add(env)
        if os.path.isdir(os.path.join(ABRA_DIR, "backups", d)):   # a run's backups live in its own ABRA_DIR
            left.setdefault("backup", set()).add(os.path.join(ABRA_DIR, "backups", d))
    return {k: sorted(v) for k, v in left.items() if v}


def http_get(domain: str, path: str = "/") -> tuple:
    req = urllib.request.Request(PROXY + path, headers={"Host": domain})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return 0, ""


# -- the warm canonical: old or new, never half -------------------------------------------------
def warm_services(domain: str) -> list:
    names = services_of(domain)
    if not names:
        return []
    return json.loads(_docker.run(["service", "inspect"] + names).stdout)


def warm_settled(domain: str) -> bool:
    for svc in warm_services(domain):
        state = (svc.get("UpdateStatus") or {}).get("State", "")
        if state in ("updating", "rollback_started"):
            return False
    return True


def warm_state(recipe: str) -> dict:
    """What the registry says and what runs: version labels, replicas, the HTTP answer."""
    reg = registry(recipe)
    domain = reg.get("domain") or ""
    state = {"registry_status": reg.get("status"), "registry_version": reg.get("version"),
             "registry_target": (reg.get("target") or {}).get("version"), "domain": domain,
             "deployed": [], "replicas": {}, "update_states": {}, "http": None, "content": False, "env": False}
    if not domain:
        return state
    stack = stack_name(domain)
    for svc in warm_services(domain):
        name = svc["Spec"]["Name"]
        label = svc["Spec"].get("Labels", {}).get("coop-cloud.%s.version" % stack, "")
        state["deployed"].append(label)
        state["update_states"][name] = (svc.get("UpdateStatus") or {}).get("State", "")
        tasks = _docker.run(["service", "ps", name, "--filter", "desired-state=running", "--format",
                             "{{.CurrentState}}"], check=False).stdout.split("\n")
        running = sum(1 for t in tasks if t.startswith("Running"))
        want = ((svc["Spec"].get("Mode") or {}).get("Replicated") or {}).get("Replicas", 1)
        state["replicas"][name] = "%d/%d" % (running, want)
    state["deployed"] = sorted(set(state["deployed"]))
    state["env"] = os.path.exists(os.path.join(ABRA_DIR, "servers", SERVER, domain + ".env"))
    code, body = http_get(domain, WARM.get(recipe, {}).get("path", "/"))
    state["http"] = code
    state["content"] = WARM.get(recipe, {}).get("marker", "\0") in body
    return state


def warm_problems(recipe: str, old: str, new: str, wait: float = SETTLE_TIMEOUT) -> tuple:
    """``(problems, state)``: the canonical must be exactly the old or the new release: the
    registry live at it (not left 'deploying'), every service of the warm stack labelled with it
    and running, its ``.env`` present, and the app answering with its own content."""
    domain = registry(recipe).get("domain") or ""
    deadline = time.monotonic() + wait
    while domain and time.monotonic() < deadline and not warm_settled(domain):
        time.sleep(2)
    # an app that just converged may need a few seconds behind the proxy
    deadline = time.monotonic() + 60
    while True:
        st = warm_state(recipe)
        ok = (st["deployed"] and all(r.split("/")[0] == r.split("/")[1] for r in st["replicas"].values())
              and st["http"] == 200 and st["content"])
        if ok or time.monotonic() > deadline:
            break
        time.sleep(2)
    problems = []
    v = st["registry_version"]
    st["unverified"] = st["registry_status"] == "failed" and registry(recipe).get("failure", {}).get("verified") is False
    if st["unverified"]:
        # An advance interrupted after its deploy began: the registry names the release that runs
        # (or none), unverified. It must be exactly what runs; answering is for the next promote
        # to establish (run_case runs it: the recovery).
        if v not in (old, new, None):
            problems.append("registry version %s is neither the old %s nor the new %s" % (v, old, new))
        if st["deployed"] != ([v] if v else []):
            problems.append("warm app deployed at %s, registry says %s (unverified)" % (st["deployed"] or "nothing", v))
        return problems, st
    if st["registry_status"] == "deploying":
        problems.append("registry left 'deploying' (live %s, target %s)" % (v, st["registry_target"]))
    if v not in (old, new):
        problems.append("registry version %s is neither the old %s nor the new %s" % (v, old, new))
    if not st["domain"]:
        problems.append("registry has no warm domain")
        return problems, st
    if st["deployed"] != [v]:
        problems.append("warm app deployed at %s, registry says %s" % (st["deployed"] or "nothing", v))
    if any(r.split("/")[0] != r.split("/")[1] for r in st["replicas"].values()):
        problems.append("warm services not all running: %s" % st["replicas"])
    if any(s in ("updating", "rollback_started") for s in st["update_states"].values()):
        problems.append("warm update still in progress: %s" % st["update_states"])
    if not st["env"]:
        problems.append("warm app's .env is gone")
    if not (st["http"] == 200 and st["content"]):
        problems.append("warm app does not answer with its content (HTTP %s)" % st["http"])
    return problems, st


# -- seeds: green cold results and a warm canonical at the old release -------------------------
class Seeds:
    """Green cold results (install tier only) of the releases the warm points promote, made once
    per matrix run, and the warm canonicals put back at the old release before a warm case."""

    def __init__(self, workdir: str):
        self.dir = os.path.join(workdir, "seeds")
        os.makedirs(self.dir, exist_ok=True)
        self.index_path = os.path.join(self.dir, "index.json")
        self.index = read_json(self.index_path) or {}

    def cold_result(self, recipe: str, version: str) -> str:
        key = "%s@%s" % (recipe, version)
        path = self.index.get(key)
        if path and os.path.exists(path):
            return path
        log("seed: cold run of %s %s (install tier)" % (recipe, version))
        res = run_playbook("isolate.yml", self.dir, recipe=recipe, version=version, canon_tier_order=["install"])
        if res.returncode != 0:
            raise RuntimeError("seed cold run of %s %s failed:\n%s" % (recipe, version, res.stdout[-3000:]))
        docs = [read_json(p) for p in glob.glob(os.path.join(self.dir, "*", "result.json"))]
        doc = max((d for d in docs if d and d.get("recipe") == recipe and d.get("outcome") == "pass"
                   and (d.get("versions") or {}).get("head") == version), key=lambda d: d.get("run_id"))
        path = os.path.join(self.dir, doc["run_id"], "result.json")
        self.index[key] = path
        with open(self.index_path, "w") as fh:
            json.dump(self.index, fh, indent=2)
        return path

    def canonical_at(self, recipe: str, version: str) -> None:
        """The recipe's warm canonical live at ``version``, deployed at it and answering."""
        problems, st = warm_problems(recipe, version, version, wait=30)
        if not problems and st["registry_version"] == version and st["registry_status"] == "live":
            return
        log("seed: warm %s to %s (was %s, %s)" % (recipe, version, st["registry_version"], "; ".join(problems)))
        if registry(recipe):
            res = run_playbook("warm_teardown.yml", self.dir, recipe=recipe)
            if res.returncode != 0:
                raise RuntimeError("warm_teardown of %s failed:\n%s" % (recipe, res.stdout[-3000:]))
        extra = {"warm_domain": WARM[recipe]["warm_domain"]} if WARM[recipe]["warm_domain"] else {}
        res = run_playbook("promote.yml", self.dir, recipe=recipe, version=version,
                           cold_result=self.cold_result(recipe, version), **extra)
        problems, st = warm_problems(recipe, version, version, wait=60)
        if res.returncode != 0 or problems or st["registry_version"] != version:
            raise RuntimeError("seeding warm %s at %s failed: %s\n%s" % (recipe, version, problems, res.stdout[-3000:]))


# -- launching and watching ---------------------------------------------------------------------
def _default_signals():
    """In the child: SIGINT and SIGTERM as a terminal would leave them. A shell that starts this
    script in the background sets SIGINT to ignored, and an ignored signal stays ignored across
    exec: ansible-playbook would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


class Launched:
    """A command started in its own session (its pgid is its pid), its output read live."""

    def __init__(self, argv: list, env: dict):
        self.argv = argv
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, bufsize=1, start_new_session=True, preexec_fn=_default_signals)
        self.lines: list = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def task_lines(self) -> list:
        return [ln for _, ln in self.lines if ln.startswith("TASK [")]

    def saw(self, text: str, start: int = 0) -> int | None:
        """Index (in task lines) of the first task line from ``start`` that contains ``text``."""
        tasks = self.task_lines()
        for i in range(start, len(tasks)):
            if text in tasks[i]:
                return i
        return None

    def output(self, tail: int = 60) -> str:
        return "\n".join(ln for _, ln in self.lines[-tail:])

    def signal(self, name: str) -> str:
        sig = getattr(signal, name)
        if name == "SIGINT":
            os.killpg(self.pid, sig)      # as a terminal's Ctrl-C: the whole foreground group
            return "process group %d" % self.pid
        os.kill(self.pid, sig)
        return "pid %d" % self.pid

    def ignores(self, name: str) -> bool:
        """Whether the process ignores signal ``name`` (from /proc/<pid>/status SigIgn)."""
        try:
            with open("/proc/%d/status" % self.pid) as fh:
                mask = int(next(ln.split()[1] for ln in fh if ln.startswith("SigIgn:")), 16)
        except (OSError, StopIteration, ValueError):
            return False
        return bool(mask & (1 << (getattr(signal, name) - 1)))

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.proc.wait()


class Watch:
    """What a case's command is doing: its task lines, its runs in the ledger (every record read
    while it runs is kept), the run's ``abra`` and other processes, and its apps' services."""

    def __init__(self, launched: Launched, before: set, recipe: str):
        self.l = launched
        self.before = set(before)
        self.recipe = recipe
        self.records: dict = {}          # run_id -> last record read
        self.interrupted_seen: set = set()
        self.steps: dict = {}            # trigger state: named steps already passed
        self.detail = ""

    def poll(self):
        for rid, rec in ledger_records().items():
            if rid in self.before or rec.get("recipe") != self.recipe:
                continue
            self.records[rid] = rec
            if rec.get("interrupted"):
                self.interrupted_seen.add(rid)

    @property
    def run_ids(self) -> list:
        return sorted(self.records)

    def runs(self, kind: str | None = None) -> list:
        """The case's runs: ``cold`` (an isolate run: base and upgrade domains) or ``promote``
        (canon_run gives a promote run a base domain it never deploys on, and no upgrade one)."""
        recs = sorted(self.records.values(), key=lambda r: r.get("started_epoch", 0))
        if kind == "cold":
            return [r for r in recs if "upgrade" in (r.get("domains") or {})]
        if kind == "promote":
            return [r for r in recs if "upgrade" not in (r.get("domains") or {})]
        return recs

    def domains(self) -> list:
        """Every domain the case's runs claimed (cold and promote)."""
        return sorted({d for r in self.records.values() for d in (r.get("domains") or {}).values()})

    def domain(self, role: str = "base") -> str | None:
        cold = self.runs("cold")
        return cold[-1]["domains"].get(role) if cold else None

    def live(self) -> list:
        """Case runs still in the ledger now."""
        present = run_dirs()
        return [r for r in self.run_ids if r in present]

    def abra(self, *words, domain: str | None = None) -> bool:
        """An ``abra`` of the case's runs is running with all these words in its command line."""
        def match(cmd):
            return (any(c.endswith("/abra") or c == "abra" for c in cmd[:2]) and all(w in cmd for w in words)
                    and (domain is None or domain in cmd))
        found = run_processes(self.live(), match)
        if found:
            self.detail = " ".join(found[0][1][1:] if found[0][1][0].startswith("python") else found[0][1])[:200]
        return bool(found)

    def process(self, word: str) -> bool:
        found = run_processes(self.live(), lambda cmd: any(word in c for c in cmd))
        if found:
            self.detail = " ".join(found[0][1])[:200]
        return bool(found)

    def line(self, text: str, after: str | None = None) -> bool:
        """A task line containing ``text`` was printed (after the step ``after`` passed)."""
        start = self.steps.get(after, 0) if after else 0
        if after and after not in self.steps:
            return False
        i = self.l.saw(text, start)
        if i is not None:
            self.detail = self.l.task_lines()[i][:200]
        return i is not None

    def step(self, name: str, cond) -> bool:
        """Remember that ``cond`` held once (the task-line index it held at)."""
        if name in self.steps:
            return True
        if cond():
            self.steps[name] = len(self.l.task_lines()) - 1
            return True
        return False


# -- the points -----------------------------------------------------------------------------------
@dataclass
class Point:
    name: str
    kind: str                    # isolate, sweep, promote
    what: str                    # where the signal lands, in words
    trigger: object              # Watch -> bool
    recipe: str = "custom-html"
    tiers: list = field(default_factory=lambda: ["install"])
    warm: str | None = None      # the warm recipe whose canonical must be old-or-new
    warm_drift: bool = True


POINTS = [
    # isolate.yml (custom-html): the install tier's one abra_app task runs app new, secret
    # generate and deploy; each is caught while its abra process runs.
    Point("app-new", "isolate", "abra app new running (install tier)",
          lambda w: w.abra("app", "new")),
    Point("secret-generation", "isolate", "abra app secret generate running (the .env exists, no secret yet)",
          lambda w: w.abra("secret", "generate")),
    Point("install-deploy", "isolate", "install: abra app deploy running, or the stack's service converging",
          lambda w: w.abra("app", "deploy", domain=w.domain()) or
          (w.line("install - watch") and bool(services_of(w.domain())))),
    Point("install-readiness", "isolate", "install: the app-answers check (GET / through the proxy)",
          lambda w: w.line("install - GET /")),
    Point("upgrade-deploy-old", "isolate", "upgrade: the older release (1.0.0+1.36) deploying on the upgrade domain",
          lambda w: w.step("old", lambda: w.line("upgrade - deploy 1.0.0+1.36 on")) and
          (w.abra("app", "deploy", domain=w.domain("upgrade")) or w.line("upgrade - watch", after="old")),
          tiers=["upgrade"]),
    Point("upgrade-upgrade", "isolate", "upgrade: abra upgrading the app to the head (1.1.0+1.37)",
          lambda w: w.step("new", lambda: w.line("upgrade - deploy 1.1.0+1.37 on")) and
          (w.abra("app", "deploy", domain=w.domain("upgrade")) or w.abra("app", "upgrade", domain=w.domain("upgrade"))
           or w.line("upgrade - watch", after="new")),
          tiers=["upgrade"]),
    Point("backup", "isolate", "backup_restore: abra app backup create running",
          lambda w: w.step("b", lambda: w.line("backup_restore - take a backup")) and
          (w.abra("backup", "create") or w.line("backup_restore - note the re-takes", after="b")),
          tiers=["install", "backup_restore"]),
    Point("restore", "isolate", "backup_restore: abra app restore running",
          lambda w: w.step("r", lambda: w.line("backup_restore - restore")) and
          (w.abra("restore") or w.line("backup_restore - readiness probes on", after="r")),
          tiers=["install", "backup_restore"]),
    Point("custom", "isolate", "custom: the recipe's pytest suite running against the app",
          lambda w: w.step("c", lambda: w.line("custom - pytest")) and
          (w.process("pytest") or w.line("custom - keep the suite", after="c")),
          tiers=["install", "custom"]),
    Point("lint", "isolate", "lint: the lint rules task started",
          lambda w: w.line("lint - the head release passes"), tiers=["install", "lint"]),
    Point("teardown", "isolate", "the run's own teardown: abra undeploy/remove running in canon_teardown",
          lambda w: w.step("t", lambda: w.line("Tear down what this run created")) and
          (w.abra("undeploy") or w.abra("app", "remove") or w.line("Add the teardown to the result", after="t"))),
    Point("evidence", "isolate", "evidence capture before teardown (canon_evidence running)",
          lambda w: w.step("e", lambda: w.line("Capture evidence before teardown")) and
          (w.process("canon_evidence") or w.line("Write the result", after="e"))),
    # promote.yml: custom-html canonical at 1.0.0+1.36 advanced to 1.1.0+1.37 in place; gitea
    # 3.5.3 -> 3.6.0 with warm_drift=false, whose in-place advance crash-loops into the fallback.
    Point("warm-lease", "promote", "promote: the run's lease on the warm domain was just taken",
          lambda w: bool(held_by("leases", w.live())), warm="custom-html"),
    Point("in-place-deploy", "promote", "promote: abra deploying 1.1.0+1.37 on the warm domain",
          lambda w: w.step("d", lambda: w.line("promote - deploy 1.1.0+1.37 on")) and
          (w.abra("app", "deploy") or w.abra("app", "upgrade") or w.line("promote - watch", after="d")),
          warm="custom-html"),
    Point("identity", "promote", "promote: routing identity (20 samples through the proxy) after the advance",
          lambda w: w.line("answers from this stack"), warm="custom-html"),
    Point("fallback", "promote", "promote fallback: the failed warm app removed, the clean re-deploy running",
          lambda w: w.step("f", lambda: w.line("promote - clean re-deploy")) and
          (w.abra("app", "deploy") or w.line("promote - watch", after="f")),
          recipe="gitea", warm="gitea", warm_drift=False),
    Point("registry-update", "promote", "promote: recording the promotion in the registry",
          lambda w: w.line("Record the promotion"), warm="custom-html"),
    # canon sweep: custom-html (not enrolled warm: cold only) for the cold point; gitea (enrolled
    # warm, its canonical seeded at 3.5.3) where the sweep goes on to promote 3.6.0 in place.
    Point("sweep-cold", "sweep", "canon sweep custom-html: the cold run's install deploy (its service exists)",
          lambda w: bool(w.domain()) and bool(services_of(w.domain()))),
    Point("sweep-between", "sweep", "canon sweep gitea: the cold run finished and tore down, the promote not "
          "claimed yet", lambda w: w.step("cold", lambda: bool(w.runs("cold"))) and not w.live()
          and not w.runs("promote"), recipe="gitea", warm="gitea"),
    Point("sweep-promote", "sweep", "canon sweep gitea: the promote run advancing the canonical in place "
          "(registry 'deploying')", lambda w: bool(w.runs("promote")) and bool(w.live())
          and registry("gitea").get("status") == "deploying", recipe="gitea", warm="gitea"),
]
POINT_NAMES = [p.name for p in POINTS]


def point(name: str) -> Point:
    return next(p for p in POINTS if p.name == name)


# -- one case -----------------------------------------------------------------------------------
def start_command(p: Point, case_dir: str, seeds: Seeds | None) -> Launched:
    if p.kind == "isolate":
        argv = playbook_argv("isolate.yml", case_dir, recipe=p.recipe, canon_tier_order=p.tiers)
        return Launched(argv, ansible_env())
    if p.kind == "promote":
        w = WARM[p.warm]
        extra = {"warm_domain": w["warm_domain"]} if w["warm_domain"] else {}
        argv = playbook_argv("promote.yml", case_dir, recipe=p.recipe, version=w["new"],
                             cold_result=seeds.cold_result(p.recipe, w["new"]), warm_drift=p.warm_drift, **extra)
        return Launched(argv, ansible_env())
    # the bench inventory's enrolment: gitea warm (its promote follows the cold run), custom-html not
    argv = [sys.executable, "-m", "canon", "sweep", p.recipe, "--results", case_dir]
    return Launched(argv, ansible_env())


def wait_teardown(w: Watch, timeout: float, unguarded_grace: float = 5) -> tuple:
    """Poll until the case's runs are gone from the ledger and their apps from the swarm.
    Returns ``(seconds, runs still there)``: early when no guardian is left to tear them down
    (the janitor's turn, after ``unguarded_grace``), else after ``timeout``, or twice that while a
    guardian still works."""
    t0 = time.monotonic()
    unguarded_since = None
    while True:
        w.poll()
        left = w.live()
        if not left:
            domains = w.domains()
            if not domains or not leftovers(domains):
                return time.monotonic() - t0, []
        elapsed = time.monotonic() - t0
        guarded = [r for r in left if guardian_alive(w.records[r].get("guardian_pid"), r)]
        if left and not guarded:
            unguarded_since = unguarded_since or time.monotonic()
            if time.monotonic() - unguarded_since >= unguarded_grace:
                return elapsed, left
        else:
            unguarded_since = None
        if elapsed > (timeout * 2 if guarded else timeout):
            return elapsed, left
        time.sleep(0.2)


def janitor(run_ids, results_dir: str) -> dict:
    out = {}
    for rid in run_ids:
        res = run_playbook("teardown.yml", results_dir, run_id=rid, timeout=600)
        out[rid] = {"rc": res.returncode, "changed": "changed=1" in res.stdout}
    return out


def find_leaks(w: Watch, launched: Launched, marker: str, p: Point) -> dict:
    """What the case's runs left: swarm objects, .env, run records, locks, leases, processes."""
    leaks = {}
    for kind, names in leftovers(w.domains()).items():
        leaks[kind] = names
    ids = w.run_ids
    present = run_dirs()
    if any(r in present for r in ids):
        leaks["run-record"] = [r for r in ids if r in present]
    for kind in ("locks", "leases"):
        held = held_by(kind, ids)
        if held:
            leaks[kind[:-1]] = held
    # Processes: the guardian and anything of the run exit shortly after the teardown.
    deadline = time.monotonic() + 30
    while True:
        procs = dict(run_processes(ids))
        procs.update(processes_with(marker))
        for r in w.records.values():
            g, c = r.get("guardian_pid"), r.get("controller_pid")
            if g and guardian_alive(g, r["run_id"]):
                procs[int(g)] = _cmdline(str(g))
            # the controller (for a sweep, the ansible-playbook ansible-runner started): alive and
            # older than the run's record, so not a recycled pid
            if c and pid_is(c, "ansible-playbook") and proc_start_epoch(c) <= r.get("started_epoch", 0):
                procs[int(c)] = _cmdline(str(c))
        if launched.proc.poll() is None:
            procs[launched.pid] = launched.argv
        if not procs or time.monotonic() > deadline:
            break
        time.sleep(1)
    if procs:
        leaks["process"] = ["%d %s" % (pid, " ".join(cmd)[:160]) for pid, cmd in sorted(procs.items())]
    if p.kind == "sweep":
        lock = os.path.join(STATE_DIR, "driver-%s.lock" % SERVER)
        holder = holder_of(lock)
        if holder is not None:
            leaks["driver-lock"] = [holder or lock]
    return leaks


def clean_up(w: Watch, results_dir: str) -> None:
    """After a leaky case: remove what is left so the next case starts clean."""
    left = [r for r in w.run_ids if r in run_dirs()]
    if left:
        janitor(left, results_dir)
    from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraClient
    from ansible_collections.coopcloud.canon.plugins.module_utils._teardown import teardown_domain
    abra = AbraClient(binary=ABRA_BIN, abra_dir=ABRA_DIR, timeout=600)
    for d in w.domains():
        with contextlib.suppress(Exception):
            teardown_domain(d, SERVER, ABRA_DIR, abra, _docker)


def run_case(p: Point, sig: str, workdir: str, seeds: Seeds | None = None, lock: bool = True) -> dict:
    """One interruption: start, reach the point, signal, wait for the teardown (janitor when the
    design needs it), look for leaks. Holds the bench lock for the whole case unless ``lock`` is
    false (a caller that already holds it, such as a test suite run under ``flock``)."""
    seeds = seeds or Seeds(workdir)
    case_dir = tempfile.mkdtemp(prefix="%s-%s-" % (p.name, sig), dir=workdir)
    case = {"point": p.name, "kind": p.kind, "what": p.what, "signal": sig, "recipe": p.recipe,
            "tiers": p.tiers if p.kind == "isolate" else None, "started": now_iso(), "results_dir": case_dir}
    with (bench_lock() if lock else contextlib.nullcontext()):
        wait_bench_idle()
        warm = WARM.get(p.warm) if p.warm else None
        if warm:
            seeds.cold_result(p.recipe, warm["new"])
            seeds.canonical_at(p.warm, warm["old"])
            case["warm_before"] = {"old": warm["old"], "new": warm["new"]}
        for attempt in range(4):
            wait_bench_idle()
            before = run_dirs()
            launched = start_command(p, case_dir, seeds)
            case["command"] = " ".join(launched.argv if p.kind == "sweep" else launched.argv[:4])
            w = Watch(launched, before, p.recipe)
            reached = False
            t0 = time.monotonic()
            while time.monotonic() - t0 < REACH_TIMEOUT and launched.proc.poll() is None:
                w.poll()
                try:
                    reached = bool(p.trigger(w))
                except Exception as exc:  # a docker call failing mid-poll is not the point being reached
                    w.detail = "trigger error: %s" % exc
                    reached = False
                if reached:
                    break
                time.sleep(0.03)
            busy = None if reached or launched.proc.poll() is None else refused_busy(launched.output(400))
            if not busy:
                break
            # someone else's run got onto the server first (they did not take the bench lock)
            case.setdefault("restarts", []).append(busy)
        case["time_to_point"] = round(time.monotonic() - t0, 1)
        case["reached"] = reached
        case["point_detail"] = w.detail
        if not reached:
            case["error"] = "point not reached (command %s): %s" % (
                "exited rc=%s" % launched.proc.returncode if launched.proc.poll() is not None else "still running",
                launched.output(15))
            launched.kill()
            w.poll()
            wait_teardown(w, TEARDOWN_TIMEOUT)
            case["leaks"] = find_leaks(w, launched, case_dir, p)
            if case["leaks"]:
                clean_up(w, case_dir)
            return case
        if sig != GUARDIAN_KILLED and launched.ignores(sig):
            launched.kill()
            raise RuntimeError("the controller ignores %s: the case would prove nothing" % sig)
        t_sig = time.monotonic()
        if sig == GUARDIAN_KILLED:
            guardians = [int(r["guardian_pid"]) for r in w.records.values()
                         if guardian_alive(r.get("guardian_pid"), r["run_id"])]
            for pid in guardians:
                os.kill(pid, signal.SIGKILL)
            case["target"] = "guardian pid(s) %s, then %s" % (
                guardians, ("canon " if p.kind == "sweep" else "ansible-playbook ") + launched.signal("SIGKILL"))
        else:
            case["target"] = ("canon " if p.kind == "sweep" else "ansible-playbook ") + launched.signal(sig)
        case["live_runs_at_signal"] = w.live()
        case["last_task"] = (launched.task_lines() or [""])[-1][:200]
        rc = launched.wait(CANON_EXIT_TIMEOUT if p.kind == "sweep" else EXIT_TIMEOUT)
        case["controller_exit"] = {"rc": rc, "seconds": round(time.monotonic() - t_sig, 1)}
        if rc is None:
            case["controller_exit"]["note"] = "did not exit after %s; killed" % sig
            launched.kill()
        # With the guardian killed too, the janitor starts at once: the harshest timing, while
        # what the killed controller had started may still be running.
        secs, left = wait_teardown(w, TEARDOWN_TIMEOUT, unguarded_grace=0 if sig == GUARDIAN_KILLED else 5)
        case["teardown_seconds"] = round(time.monotonic() - t_sig, 1)
        if left:
            case["stray_at_janitor"] = ["%d %s" % (pid, " ".join(cmd)[:120]) for pid, cmd in run_processes(left)]
            case["janitor"] = janitor(left, case_dir)
            secs, left = wait_teardown(w, 60)
            case["teardown_seconds"] = round(time.monotonic() - t_sig, 1)
            case["torn_down_by"] = "janitor"
        elif w.interrupted_seen:
            case["torn_down_by"] = "guardian"
        elif not case["live_runs_at_signal"]:
            case["torn_down_by"] = "own" if w.run_ids else "nothing to tear down"
        elif launched.saw("Tear down what this run created") is not None or \
                launched.saw("Tear down the run's own state") is not None:
            case["torn_down_by"] = "own (the playbook's always: ran)" if sig != "SIGKILL" else "guardian"
        else:
            case["torn_down_by"] = "guardian"
        case["run_ids"] = w.run_ids
        case["domains"] = w.domains()
        case["leaks"] = find_leaks(w, launched, case_dir, p)
        if warm:
            problems, st = warm_problems(p.warm, warm["old"], warm["new"])
            case["warm"] = st
            if problems:
                case["leaks"]["warm-half"] = problems
            elif st.get("unverified"):
                case["recovery"] = recover(p, warm, seeds, case_dir)
                if case["recovery"]["problems"]:
                    case["leaks"]["warm-unrecovered"] = case["recovery"]["problems"]
        case["tail"] = launched.output(8)
        if case["leaks"]:
            clean_up(w, case_dir)
    case["finished"] = now_iso()
    return case


def recover(p: Point, warm: dict, seeds: Seeds, case_dir: str) -> dict:
    """The next promote of the new release after an interrupted advance left it unverified: it
    must verify it (or fall back, or deploy it fresh when nothing runs) and leave the canonical
    live at it and answering."""
    extra = {"warm_domain": warm["warm_domain"]} if warm["warm_domain"] else {}
    t0 = time.monotonic()
    res = run_playbook("promote.yml", case_dir, recipe=p.warm, version=warm["new"],
                       cold_result=seeds.cold_result(p.recipe, warm["new"]), warm_drift=p.warm_drift, **extra)
    docs = sorted(glob.glob(os.path.join(case_dir, "*", "promote.json")), key=os.path.getmtime)
    doc = read_json(docs[-1]) if docs else {}
    problems, st = warm_problems(p.warm, warm["new"], warm["new"], wait=60)
    if res.returncode != 0:
        problems.insert(0, "the recovery promote failed (rc %s): %s" % (res.returncode, res.stdout[-300:]))
    if st["registry_status"] != "live":
        problems.append("after the recovery promote the registry is %s, not live" % st["registry_status"])
    return {"rc": res.returncode, "mode": doc.get("mode"), "outcome": doc.get("outcome"),
            "seconds": round(time.monotonic() - t0, 1), "problems": problems, "warm": st}


def count_leaks(case: dict) -> int:
    return sum(len(v) for v in (case.get("leaks") or {}).values())


def summary(cases: list) -> dict:
    reached = [c for c in cases if c.get("reached")]
    leaks = sum(count_leaks(c) for c in cases)
    return {"interruptions": len(reached), "not_reached": len(cases) - len(reached), "leaks": leaks,
            "cases_with_leaks": sum(1 for c in cases if count_leaks(c)),
            "torn_down_by": {who: sum(1 for c in reached if c.get("torn_down_by") == who)
                             for who in sorted({c.get("torn_down_by") for c in reached})},
            "by_signal": {sig: {"interruptions": sum(1 for c in reached if c["signal"] == sig),
                                "leaks": sum(count_leaks(c) for c in cases if c["signal"] == sig)}
                          for sig in sorted({c["signal"] for c in cases})},
            "teardown_seconds_max": max((c.get("teardown_seconds", 0) for c in reached), default=0),
            "teardown_seconds_median": sorted(c.get("teardown_seconds", 0) for c in reached)[len(reached) // 2]
            if reached else 0}


def harness_commit() -> str:
    return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()


def earlier_cases(out: str) -> tuple:
    """The cases (each with the harness commit it ran on) and start time of an earlier document."""
    try:
        with open(out) as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return [], None
    cases = doc.get("cases") or []
    for c in cases:
        c.setdefault("harness_commit", doc.get("harness_commit"))
    return cases, doc.get("started")


def write(out: str, cases: list, started: str) -> None:
    doc = {"benchmark": "interrupt-matrix", "started": started, "finished": now_iso(),
           "host": platform.node(), "cpus": os.cpu_count(),
           "harness_commit": harness_commit(),
           "harness_commits": sorted({c.get("harness_commit") for c in cases if c.get("harness_commit")}),
           "points": [{"name": p.name, "kind": p.kind, "what": p.what} for p in POINTS],
           "summary": summary(cases), "cases": cases}
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    os.replace(tmp, out)


def markdown(out: str) -> str:
    """Per point: the signals it was interrupted with, who tore down, the slowest teardown, leaks."""
    cases, _started = earlier_cases(out)
    rows = ["| point | kind | what was running | signals | torn down by | teardown s (max) | leaks |",
            "|---|---|---|---|---|---|---|"]
    for p in POINTS:
        mine = [c for c in cases if c.get("point") == p.name]
        if not mine:
            rows.append("| `%s` | %s | %s | not run | | | |" % (p.name, p.kind, p.what))
            continue
        reached = [c for c in mine if c.get("reached")]
        who = sorted({"%s (%s)" % (c.get("torn_down_by"), c["signal"]) if c["signal"] == GUARDIAN_KILLED
                      else str(c.get("torn_down_by")) for c in reached})
        rows.append("| `%s` | %s | %s | %s | %s | %s | %d |" % (
            p.name, p.kind, p.what,
            ", ".join(c["signal"] + ("" if c.get("reached") else " (not reached)") for c in mine),
            ", ".join(who), max((c.get("teardown_seconds") or 0 for c in reached), default=0),
            sum(count_leaks(c) for c in mine)))
    s = summary(cases)
    rows.append("")
    rows.append("%d interruptions at %d of %d points, %d leaks (%s)." % (
        s["interruptions"], len({c["point"] for c in cases if c.get("reached")}), len(POINTS), s["leaks"],
        ", ".join("%s %d" % (sig, v["interruptions"]) for sig, v in s["by_signal"].items())))
    return "\n".join(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", help="comma-separated point names (default: all 20)")
    ap.add_argument("--signals", help="comma-separated among %s (default: the three signals at every point, "
                    "and %s at %s)" % (", ".join(SIGNALS + (GUARDIAN_KILLED,)), GUARDIAN_KILLED,
                                       ", ".join(JANITOR_POINTS)))
    ap.add_argument("--cases", help="explicit point:signal pairs, comma-separated (instead of --points/--signals)")
    ap.add_argument("--append", action="store_true",
                    help="keep the cases already in --out; a new case replaces an older one of the same point and signal")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--workdir", help="where cases keep their results (default: a new folder under /tmp)")
    ap.add_argument("--list", action="store_true", help="list the points and exit")
    ap.add_argument("--markdown", action="store_true", help="print --out's cases as the table docs/hardening.md shows, and exit")
    args = ap.parse_args(argv)
    if args.markdown:
        print(markdown(args.out))
        return 0
    if args.list:
        for p in POINTS:
            print("%-20s %-8s %s" % (p.name, p.kind, p.what))
        return 0
    names = args.points.split(",") if args.points else POINT_NAMES
    unknown = [n for n in names if n not in POINT_NAMES]
    sigs = args.signals.split(",") if args.signals else list(SIGNALS)
    bad = [s for s in sigs if s not in SIGNALS + (GUARDIAN_KILLED,)]
    if unknown or bad:
        ap.error("unknown point(s) %s or signal(s) %s" % (unknown, bad))
    plan = [(n, s) for n in names for s in sigs]
    if not args.signals:
        plan += [(n, GUARDIAN_KILLED) for n in names if n in JANITOR_POINTS]
    if args.cases:
        plan = [tuple(pair.rsplit(":", 1)) for pair in args.cases.split(",")]
        bad_pairs = [pair for pair in plan if len(pair) != 2 or pair[0] not in POINT_NAMES
                     or pair[1] not in SIGNALS + (GUARDIAN_KILLED,)]
        if bad_pairs:
            ap.error("unknown point:signal pair(s) %s" % (bad_pairs,))
    workdir = args.workdir or tempfile.mkdtemp(prefix="canon-interrupt-")
    os.makedirs(workdir, exist_ok=True)
    seeds = Seeds(workdir)
    started = now_iso()
    kept = []
    if args.append:
        kept, first = earlier_cases(args.out)
        started = first or started
        kept = [c for c in kept if (c.get("point"), c.get("signal")) not in set(plan)]
    commit = harness_commit()
    cases = []
    for name, sig in plan:
        log("case %s / %s" % (name, sig))
        try:
            case = run_case(point(name), sig, workdir, seeds)
        except Exception as exc:
            case = {"point": name, "signal": sig, "reached": False, "error": "%s: %s" % (type(exc).__name__, exc)}
        case["harness_commit"] = commit
        cases.append(case)
        log("  reached=%s in %ss, %s, teardown %ss by %s, leaks: %s" % (
            case.get("reached"), case.get("time_to_point"), case.get("point_detail", "")[:80],
            case.get("teardown_seconds"), case.get("torn_down_by"), case.get("leaks") or "none"))
        if case.get("recovery"):
            r = case["recovery"]
            log("  left unverified (registry %s); the next promote: %s (%s) in %ss%s" % (
                case["warm"].get("registry_version"), r.get("outcome"), r.get("mode"), r.get("seconds"),
                ", problems: %s" % r["problems"] if r["problems"] else ""))
        if case.get("error"):
            log("  error: %s" % case["error"][:600])
        write(args.out, kept + cases, started)
    s = summary(kept + cases)
    print("%d interruptions, %d leaks" % (s["interruptions"], s["leaks"]))
    if s["not_reached"]:
        print("(%d case(s) did not reach their point; see %s)" % (s["not_reached"], args.out))
    print("results: %s; case folders: %s" % (args.out, workdir))
    return 0 if s["leaks"] == 0 and not s["not_reached"] else 1


if __name__ == "__main__":
    sys.exit(main())
