"""The load arm and the load fingerprint.

Load is what runs beside a recipe on the same server: busy containers (CPU), a disk writer
(IO), and other recipes' deploys. Host-side busy loops barely slow containers on a swarm node
(each container gets its own CPU share), so CPU load is made of containers.

The sampler records, every few seconds, what the server was going through: the stacks deployed
and the task churn (container starts and deaths), asked of the server's own engine through its
docker context; and the load average and memory in use, which the driver reads from its own
``/proc``. Those two are the controller's: they are recorded only when the server's engine runs
on the controller (its endpoint is a unix socket here), where they are that server's machine's
too, and left out (``None``) for an engine reached over ssh or tcp. The fingerprint attached to a
run summarises the samples taken while it ran and says whose load average it holds (``host``).
"""
from __future__ import annotations

import os
import re
import threading
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import endpoint_is_local
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError

LOAD_LABEL = "coopcloud.canon.load"
SPEC_RE = re.compile(r"^(cpu|io)=([A-Za-z0-9,._-]+)$")


class LoadError(Exception):
    pass


def parse_spec(items) -> dict:
    """``["cpu=6", "io=1"]`` -> ``{"cpu": 6, "io": 1, "deploys": []}``.

    Other recipes' deploys are the load a sweep's own neighbours make (up to the cap); the load
    arm adds CPU and disk work beside them."""
    spec = {"cpu": 0, "io": 0, "deploys": []}
    for item in items or []:
        m = SPEC_RE.match(item.strip())
        if not m:
            raise LoadError("load spec %r: use cpu=N or io=N" % item)
        key, value = m.groups()
        if not value.isdigit() or not 0 <= int(value) <= 64:
            raise LoadError("load spec %r: N must be 0..64" % item)
        spec[key] = int(value)
    return spec


# whose load average and memory a fingerprint holds
HOST_CONTROLLER = "controller"    # the driver's machine, where the server's engine runs too
HOST_NOT_MEASURED = "not measured"  # the engine is on another machine: its load is not known here


# A run counts as isolated only on a machine that was not this busy: the share of all its CPUs'
# time spent working over the run (docs/classification.md, "What isolated means"). The load
# average is no measure of that: it lags a minute behind, so a run right after a loaded one
# would inherit the loaded arm's load.
BUSY_CPU_PCT = 90.0


def engine_on_controller(server) -> bool:
    """Whether ``server``'s docker engine runs on the machine the driver runs on (its endpoint,
    from its docker host or context, is a unix socket), so that the driver's ``/proc`` is that
    server's machine's."""
    return endpoint_is_local(server.docker(timeout=20).endpoint())


def controller_cpu() -> tuple:
    """The controller's CPU time since boot, ``(busy, total)`` in clock ticks, from /proc/stat;
    idle and iowait are not busy."""
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    total = sum(fields[:8])     # user nice system idle iowait irq softirq steal (guest is in user)
    return total - fields[3] - fields[4], total


def controller_load() -> tuple:
    """The controller's 1-minute load average and percentage of memory in use, from its /proc."""
    with open("/proc/loadavg") as fh:
        load1 = float(fh.read().split()[0])
    mem = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            k, v = line.split(":", 1)
            mem[k] = int(v.split()[0])
    used = 100.0 * (1 - mem.get("MemAvailable", 0) / max(mem.get("MemTotal", 1), 1))
    return load1, round(used, 1)


class Sampler(threading.Thread):
    """Samples the server every ``interval`` seconds until stopped."""

    def __init__(self, server, interval: float = 5.0):
        super().__init__(daemon=True, name="canon-sampler")
        self.server, self.interval = server, interval
        self.local = None   # whether the server's engine runs on the controller, asked once
        self.samples: list = []
        self._halt = threading.Event()
        self._last = time.time()

    def sample(self) -> dict:
        now = time.time()
        if self.local is None:
            self.local = engine_on_controller(self.server)
        load1, mem_used = controller_load() if self.local else (None, None)
        cpu = list(controller_cpu()) if self.local else None
        docker = self.server.docker()
        try:
            stacks = len(docker.stack_names())
        except CommandError:
            stacks = None
        events = docker.container_events(self._last, now)
        self._last = now
        return {"t": round(now, 2), "load1": load1, "mem_used_pct": mem_used, "cpu": cpu, "stacks": stacks,
                "tasks_changed": len(events.stdout.split()) if events.ok else None}

    def run(self):
        while not self._halt.is_set():
            try:
                self.samples.append(self.sample())
            except (OSError, ValueError):
                pass  # a missed sample is not a failed sweep
            self._halt.wait(self.interval)

    def stop(self):
        self._halt.set()
        self.join(timeout=30)


def fingerprint(samples: list, start: float | None = None, end: float | None = None) -> dict:
    """What the server went through between ``start`` and ``end``. ``host`` says whose load
    average and memory it holds: the controller's (its engine runs there), or not measured."""
    window = [s for s in samples if (start is None or s["t"] >= start - 5) and (end is None or s["t"] <= end + 5)]
    if not window:
        return {"samples": 0}
    loads = [s["load1"] for s in window if s.get("load1") is not None]
    mems = [s["mem_used_pct"] for s in window if s.get("mem_used_pct") is not None]
    stacks = [s["stacks"] for s in window if s.get("stacks") is not None]
    churn = [s["tasks_changed"] for s in window if s.get("tasks_changed") is not None]
    span = max(window[-1]["t"] - window[0]["t"], 1.0)
    cpus = [s["cpu"] for s in window if s.get("cpu")]
    worked = cpus[-1][1] - cpus[0][1] if len(cpus) > 1 else 0
    return {"samples": len(window),
            # the share of the CPUs' time spent working between the first and the last sample
            "cpu_busy_pct": round(100.0 * (cpus[-1][0] - cpus[0][0]) / worked, 1) if worked > 0 else None,
            "load1_mean": round(sum(loads) / len(loads), 2) if loads else None,
            "load1_max": max(loads) if loads else None,
            "mem_used_pct_max": max(mems) if mems else None,
            "host": HOST_CONTROLLER if loads or mems else HOST_NOT_MEASURED,
            "stacks_max": max(stacks) if stacks else None,
            "task_churn_per_min": round(sum(churn) * 60.0 / span, 1) if churn else None}


class LoadArm:
    """Starts and stops the load beside a run. Everything it starts carries the load label and
    is removed in :meth:`stop`, on every exit path of the caller (use it as a context manager)."""

    def __init__(self, server, spec: dict, probe_image: str, deploy_runner=None):
        self.server, self.spec, self.image = server, spec, probe_image
        self.deploy_runner = deploy_runner   # callable(recipe, stop_event) that loops deploys
        self.containers: list = []
        self._halt = threading.Event()
        self._threads: list = []

    @property
    def active(self) -> bool:
        return bool(self.spec.get("cpu") or self.spec.get("io") or self.spec.get("deploys"))

    def start(self):
        for _ in range(self.spec.get("cpu", 0)):
            self._container("sh", "-c", "while :; do :; done")
        for _ in range(self.spec.get("io", 0)):
            self._container("sh", "-c", "while :; do dd if=/dev/zero of=/tmp/canon-io bs=1M count=256 "
                                        "conv=fsync 2>/dev/null; rm -f /tmp/canon-io; done")
        for recipe in self.spec.get("deploys", []):
            if self.deploy_runner is None:
                raise LoadError("deploy load needs a deploy runner")
            t = threading.Thread(target=self.deploy_runner, args=(recipe, self._halt), daemon=True,
                                 name="canon-load-%s" % recipe)
            t.start()
            self._threads.append(t)
        return self

    def _container(self, *cmd):
        try:
            cid = self.server.docker().run_detached(self.image, list(cmd), "none", {LOAD_LABEL: os.getpid()})
        except CommandError as exc:
            raise LoadError("cannot start a load container: %s" % exc.result.stderr.strip()) from exc
        self.containers.append(cid)

    def stop(self):
        self._halt.set()
        if self.containers:
            self.server.docker().remove_containers(self.containers, timeout=120)
            self.containers = []
        for t in self._threads:
            t.join(timeout=900)
        self._threads = []

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


def reap_orphans(server) -> list:
    """Load containers whose driver process is gone (a killed ``canon``)."""
    docker = server.docker()
    gone = []
    for info in docker.containers_labelled(LOAD_LABEL):
        labels = dict(kv.split("=", 1) for kv in info.get("Labels", "").split(",") if "=" in kv)
        owner = labels.get(LOAD_LABEL, "")
        if not owner.isdigit() or os.path.exists("/proc/%s" % owner):
            continue  # not ours to judge, or its driver still runs
        gone.append(info["ID"])
    if gone:
        docker.remove_containers(gone, timeout=120)
    return gone
