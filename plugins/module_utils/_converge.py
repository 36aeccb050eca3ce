# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The convergence watcher: a state machine that tells "slow but progressing" from "stuck".

abra's own convergence check only knows a timeout, so a wedged deploy and a legitimately slow
first boot look the same until the timeout fires. This watcher is fed one :class:`Observation`
of a stack per poll and returns a :class:`Verdict` as soon as there is one:

- ``converged``   every service at its desired replicas with running tasks, healthy where a
                  healthcheck exists, no update in progress, the version label as expected;
- ``rolled-back`` an update rolled back or paused (declared as soon as it is seen);
- ``crashloop``   ``crashloop_restarts`` tasks of a service failed within the window (as soon as
                  it is seen);
- ``wedged``      no progress for ``wedge_window`` seconds;
- ``timeout``     progressing, but not converged after ``timeout`` seconds;
- ``no-services`` the stack has no services at all.

Progress is any task state change, a new task, a change of running replicas, a health status
change, an update state change, or a *new distinct* log line (timestamps stripped, so a line
repeated verbatim is not progress, but ``step 7/20`` -> ``step 8/20`` is).

The state machine and the parsers that turn ``docker inspect`` JSON into observations are pure
logic. At the end, :class:`SwarmObserver` and :func:`watch` poll a stack through the docker
client they are given (the ``swarm_converge`` module's, or ``benchmarks/wedge.py``'s) and feed
the watcher; no Ansible here either.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name

CONVERGED = "converged"
WEDGED = "wedged"
CRASHLOOP = "crashloop"
ROLLED_BACK = "rolled-back"
TIMEOUT = "timeout"
NO_SERVICES = "no-services"
VERDICTS = (CONVERGED, WEDGED, CRASHLOOP, ROLLED_BACK, TIMEOUT, NO_SERVICES)

# UpdateStatus.State values: swarm rolled an update back, or stopped it half way.
ROLLBACK_STATES = ("rollback_started", "rollback_completed", "rollback_paused", "paused")
UPDATE_IN_PROGRESS = ("updating", "rollback_started")
FAILED_TASK_STATES = ("failed", "rejected")
# A task swarm itself stopped (update, scale down, stack rm) exits on SIGTERM or SIGKILL; that is
# the orchestrator's doing, not a crash.
STOP_EXIT_CODES = (0, 137, 143)

# swarm's UpdateConfig.Monitor when a service's spec leaves it out (`docker service inspect
# --pretty` shows "Monitoring Period: 5s"); docker's service progress waits this long after the
# tasks run before it says "Service converged", and abra's converge check is built on it
DOCKER_MONITOR_DEFAULT = 5.0
EVENTS_KEPT = 10
LOG_LINES_KEPT = 20
SEEN_LINES_MAX = 20000
DETAIL_MAX = 160


# -- observations -------------------------------------------------------------------------
@dataclass
class TaskObs:
    id: str
    service: str
    state: str
    desired_state: str = "running"
    slot: int | None = None
    timestamp: float | None = None  # epoch seconds of the task's last state change
    exit_code: int | None = None
    error: str = ""
    container_id: str | None = None
    # starting / healthy / unhealthy; "unknown" when the spec has a healthcheck but the
    # container could not be inspected; None when there is no healthcheck.
    health: str | None = None
    health_output: str = ""


@dataclass
class ServiceObs:
    name: str
    desired: int | None = 1  # None: a job, which has no replica target
    update_state: str | None = None
    update_message: str = ""
    # the task template changed but swarm has not started the rolling update yet
    update_pending: bool = False
    labels: dict = field(default_factory=dict)
    # UpdateConfig.Monitor in seconds; None when the spec leaves it to swarm's default
    monitor: float | None = None


@dataclass
class Observation:
    time: float
    services: list
    tasks: list = field(default_factory=list)
    # service -> log lines new since the previous observation: (epoch or None, text)
    logs: dict = field(default_factory=dict)


@dataclass
class Verdict:
    name: str
    message: str
    service: str | None = None


@dataclass
class Event:
    time: float
    kind: str  # task-new, task-state, replicas, health, update, log
    service: str
    detail: str


# -- parsing docker's JSON ------------------------------------------------------------------
_RFC3339_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})?$")


def parse_time(text) -> float | None:
    """Docker's RFC 3339 timestamps (nanoseconds, ``Z``) as epoch seconds; None for zero/empty."""
    if not isinstance(text, str):
        return None
    m = _RFC3339_RE.match(text.strip())
    if not m or m.group(1).startswith("0001-"):
        return None
    frac = (m.group(3) or "0")[:6].ljust(6, "0")
    tz = m.group(4) or "Z"
    stamp = _dt.datetime.fromisoformat("%sT%s.%s%s" % (m.group(1), m.group(2), frac,
                                                       "+00:00" if tz == "Z" else tz))
    return stamp.timestamp()


def short_service_name(full: str, stack: str) -> str:
    prefix = stack + "_"
    return full[len(prefix):] if stack and full.startswith(prefix) else full


def has_healthcheck(service_json: dict) -> bool:
    hc = service_json.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {}).get("Healthcheck") or {}
    test = hc.get("Test") or []
    return bool(test) and test[0] != "NONE"


_DEFAULT_RESTART = {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0}


def _comparable(value):
    """A task template with empty fields and the default restart policy dropped.

    The spec swarm keeps after a rollback omits what the CLI fills in (``DNSConfig: {}``, the
    default ``RestartPolicy``), so the same template can read differently.
    """
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            v = _comparable(v)
            if v in (None, {}, [], "", 0, False) or (k == "RestartPolicy" and v == _comparable(_DEFAULT_RESTART)):
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def service_from_inspect(svc: dict, stack: str = "", tasks: list | None = None) -> ServiceObs:
    """A ``docker service inspect`` document as a :class:`ServiceObs`.

    ``tasks`` (raw task documents of this service) give a global service its desired count.
    """
    spec = svc.get("Spec", {})
    mode = spec.get("Mode", {})
    if "Replicated" in mode:
        desired = int((mode.get("Replicated") or {}).get("Replicas", 1))
    elif "Global" in mode:
        desired = len([t for t in tasks or () if t.get("DesiredState") == "running"]) or 1
    else:  # ReplicatedJob / GlobalJob: run to completion, no replica target
        desired = None
    us = svc.get("UpdateStatus") or {}
    previous = svc.get("PreviousSpec")
    # `docker stack deploy` resets UpdateStatus when it changes a service; until swarm starts
    # the rolling update, the old tasks are still running and must not count as converged.
    pending = (not us and previous is not None and desired not in (None, 0)
               and _comparable(previous.get("TaskTemplate")) != _comparable(spec.get("TaskTemplate")))
    monitor_ns = (spec.get("UpdateConfig") or {}).get("Monitor") or 0
    return ServiceObs(name=short_service_name(spec.get("Name", ""), stack), desired=desired,
                      update_state=us.get("State") or None, update_message=us.get("Message", ""),
                      update_pending=pending, labels=dict(spec.get("Labels") or {}),
                      monitor=monitor_ns / 1e9 if monitor_ns else None)


def task_from_inspect(task: dict, service_names: dict, containers: dict | None = None,
                      healthchecked: set | None = None) -> TaskObs:
    """A ``docker inspect --type task`` document as a :class:`TaskObs`.

    ``service_names`` maps service ids to short names; ``containers`` maps container ids to
    ``docker inspect --type container`` documents (health); ``healthchecked`` names the
    services whose spec has a healthcheck.
    """
    status = task.get("Status", {})
    cstatus = status.get("ContainerStatus") or {}
    cid = cstatus.get("ContainerID") or None
    service = service_names.get(task.get("ServiceID"), task.get("ServiceID", ""))
    health, output = None, ""
    container = (containers or {}).get(cid) if cid else None
    if container is not None:
        h = (container.get("State") or {}).get("Health")
        if h:
            health = h.get("Status")
            log = h.get("Log") or []
            if log:
                output = (log[-1].get("Output") or "").strip()
    elif service in (healthchecked or ()) and status.get("State") in ("starting", "running"):
        health = "unknown"
    exit_code = cstatus.get("ExitCode")
    return TaskObs(id=task.get("ID", ""), service=service, state=status.get("State", ""),
                   desired_state=task.get("DesiredState", ""), slot=task.get("Slot"),
                   timestamp=parse_time(status.get("Timestamp")),
                   exit_code=int(exit_code) if exit_code is not None else None,
                   error=status.get("Err", "") or "", container_id=cid, health=health,
                   health_output=output)


def split_log_line(raw: str) -> tuple:
    """``<RFC3339Nano> <text>`` (``--timestamps``) as (epoch or None, text)."""
    head, _space, rest = raw.partition(" ")
    stamp = parse_time(head)
    if stamp is None:
        return None, raw
    return stamp, rest


_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_VOLATILE_RES = (
    # ISO 8601 / RFC 3339 date-times, with or without fraction and zone
    re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?"),
    # syslog and ctime style: "Nov 27 16:16:22", "Fri Nov 27 16:16:22 2026"
    re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)?\s*(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
               r"\s+\d{1,2}\s+\d{2}:\d{2}:\d{2}(?:\s+[A-Z]{2,5})?(?:\s+\d{4})?"),
    re.compile(r"\d{1,2}/(?:\w{3}|\d{1,2})/\d{2,4}[: ]\d{2}:\d{2}:\d{2}(?:\s*[+-]\d{4})?"),  # nginx/apache
    re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),  # clock times
    re.compile(r"\b1[5-9]\d{8}(?:\d{3})?(?:\.\d+)?\b"),  # unix epoch seconds/milliseconds
)
_SPACE_RE = re.compile(r"\s+")


def normalise_log_line(text: str) -> str:
    """A log line with its timestamps stripped, so that a line printed again is the same line.

    Plain counters stay: ``step 7/20`` and ``step 8/20`` are different lines.
    """
    text = _ANSI_RE.sub("", text)
    for rx in _VOLATILE_RES:
        text = rx.sub("", text)
    return _SPACE_RE.sub(" ", text).strip()


def _short(text: str, limit: int = DETAIL_MAX) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _age(seconds: float) -> str:
    return "%d s" % int(round(seconds))


# -- the state machine ----------------------------------------------------------------------
class Watcher:
    """Feed it observations with :meth:`feed`; it returns a :class:`Verdict` once there is one.

    ``since`` (epoch): task failures before it are not counted towards a crash loop (they belong
    to an earlier deploy); by default the first observation's time minus ``failure_slack``.
    """

    def __init__(self, timeout: float, wedge_window: float, crashloop_restarts: int = 3,
                 version: str | None = None, stack: str = "", since: float | None = None,
                 failure_slack: float = 30.0, pending_grace: float = 15.0, settle: float | None = None):
        if timeout <= 0 or wedge_window <= 0 or crashloop_restarts < 1:
            raise ValueError("timeout and wedge_window must be positive, crashloop_restarts at least 1")
        self.timeout = timeout
        self.wedge_window = wedge_window
        self.crashloop_restarts = crashloop_restarts
        self.version = version
        self.version_label = "coop-cloud.%s.version" % stack
        self.since = since
        self.failure_slack = failure_slack
        # swarm starts a rolling update within a second of the spec change; a template change it
        # never acts on (no task is dirty by its own comparison) stops counting as pending after this
        self.pending_grace = pending_grace
        # a task that exits right after starting is "running" for an instant: a running task
        # counts once it has been running this long (the first crash of a crash loop otherwise
        # looks converged). None: each service's own update monitor period, swarm's 5 s when
        # unset, which is the rule docker's service progress (and so abra) applies
        self.settle = settle
        # when the last task still settling will have settled, if nothing else is missing: the
        # moment to look again instead of the next fixed poll
        self.settled_at: float | None = None
        self._running_since: dict = {}  # task id -> when it was first seen running
        self._pending_since: dict = {}  # service -> time its update was first seen pending
        self.start: float | None = None
        self.now: float | None = None
        self.last_progress: float | None = None
        self.verdict: Verdict | None = None
        self.events: deque = deque(maxlen=EVENTS_KEPT)
        self.event_count = 0
        self.longest_quiet = 0.0  # the longest stretch without progress: the margin under the window
        self._tasks: dict = {}  # id -> (state, health)
        self._replicas: dict = {}  # service -> running
        self._updates: dict = {}  # service -> update state
        self._seen_lines: dict = {}  # service -> OrderedDict of normalised lines
        self.last_log_lines: dict = {}
        self.task_errors: dict = {}
        self.last_health_output: dict = {}
        self.replicas: dict = {}
        self.waiting_for: dict = {}
        self.failures: dict = {}  # service -> [(timestamp, task id, error)] inside the window
        self.services: list = []

    # -- progress ---------------------------------------------------------------------------
    def _progress(self, now: float, kind: str, service: str, detail: str) -> None:
        self.longest_quiet = max(self.longest_quiet, now - self.last_progress)
        self.events.append(Event(now, kind, service, _short(detail)))
        self.event_count += 1
        self.last_progress = now

    def _see_line(self, service: str, text: str) -> bool:
        seen = self._seen_lines.setdefault(service, OrderedDict())
        key = normalise_log_line(text)
        if not key:
            return False
        if key in seen:
            seen.move_to_end(key)
            return False
        seen[key] = True
        if len(seen) > SEEN_LINES_MAX:
            seen.popitem(last=False)
        return True

    def _track(self, obs: Observation, baseline: bool) -> None:
        now = obs.time
        running = {s.name: 0 for s in obs.services}
        for t in obs.tasks:
            if t.desired_state == "running" and t.state == "running":
                running[t.service] = running.get(t.service, 0) + 1
            old = self._tasks.get(t.id)
            if not baseline:
                label = "%s.%s" % (t.service, t.slot) if t.slot else t.service
                if old is None:
                    self._progress(now, "task-new", t.service, "task %s %s: new, %s" % (label, t.id[:12], t.state))
                else:
                    if old[0] != t.state:
                        self._progress(now, "task-state", t.service,
                                       "task %s %s: %s -> %s" % (label, t.id[:12], old[0], t.state))
                    if old[1] != t.health and t.health is not None:
                        self._progress(now, "health", t.service,
                                       "task %s %s: health %s -> %s" % (label, t.id[:12], old[1] or "none", t.health))
            self._tasks[t.id] = (t.state, t.health)
            if t.state != "running":
                self._running_since.pop(t.id, None)
            elif t.id not in self._running_since:
                # swarm's timestamp of the task's last state change: when it became running
                self._running_since[t.id] = now if t.timestamp is None else min(now, t.timestamp)
            if t.error:
                errors = self.task_errors.setdefault(t.service, [])
                if t.error not in errors:
                    errors.append(t.error)
        for s in obs.services:
            if not baseline:
                if self._replicas.get(s.name, 0) != running[s.name]:
                    self._progress(now, "replicas", s.name, "%s: %d -> %d running" % (
                        s.name, self._replicas.get(s.name, 0), running[s.name]))
                if self._updates.get(s.name) != s.update_state:
                    self._progress(now, "update", s.name, "%s: update %s -> %s" % (
                        s.name, self._updates.get(s.name) or "none", s.update_state or "none"))
            self._replicas[s.name] = running[s.name]
            self._updates[s.name] = s.update_state
        for service, lines in sorted(obs.logs.items()):
            newest = None
            kept = self.last_log_lines.setdefault(service, deque(maxlen=LOG_LINES_KEPT))
            for _stamp, text in lines:
                kept.append(text)
                if self._see_line(service, text):
                    newest = normalise_log_line(text)
            if newest is not None and not baseline:
                self._progress(now, "log", service, newest)
        # the newest health probe output of each service's latest task that has one
        for t in sorted(obs.tasks, key=lambda t: t.timestamp or 0):
            if t.health_output:
                self.last_health_output[t.service] = t.health_output

    # -- verdicts ---------------------------------------------------------------------------
    def _crashloop(self, obs: Observation) -> Verdict | None:
        floor = self.since if self.since is not None else self.start - self.failure_slack
        self.failures = {}
        for t in obs.tasks:
            crashed = t.state in FAILED_TASK_STATES or (
                t.state == "shutdown" and t.exit_code is not None and t.exit_code not in STOP_EXIT_CODES)
            when = t.timestamp if t.timestamp is not None else obs.time
            if crashed and when >= floor and obs.time - when <= self.wedge_window:
                self.failures.setdefault(t.service, []).append((when, t.id, t.error or t.state))
        for service, fails in sorted(self.failures.items()):
            if len(fails) >= self.crashloop_restarts:
                last = max(fails)[2]
                return Verdict(CRASHLOOP, "crashloop: %d tasks of %s failed within %s (last error: %s)" % (
                    len(fails), service, _age(self.wedge_window), _short(last)), service)
        return None

    def _rolled_back(self, obs: Observation) -> Verdict | None:
        for s in obs.services:
            if s.update_state in ROLLBACK_STATES:
                how = "paused" if s.update_state == "paused" else "rolled back"
                msg = "rolled-back: %s update %s (%s)" % (s.name, how, s.update_state)
                if s.update_message:
                    msg += ": %s" % _short(s.update_message)
                return Verdict(ROLLED_BACK, msg, s.name)
        return None

    def settle_of(self, service: ServiceObs) -> float:
        if self.settle is not None:
            return self.settle
        return service.monitor if service.monitor is not None else DOCKER_MONITOR_DEFAULT

    def _why_not_converged(self, obs: Observation) -> dict:
        why = {}
        self.replicas = {}
        version_seen = False
        settling, waiting_on_more = [], False
        for s in obs.services:
            tasks = [t for t in obs.tasks if t.service == s.name and t.desired_state == "running"]
            running = [t for t in tasks if t.state == "running"]
            unhealthy = [t for t in running if t.health not in (None, "healthy")]
            self.replicas[s.name] = {"running": len(running), "desired": s.desired,
                                     "healthy": len(running) - len(unhealthy),
                                     "update_state": s.update_state, "version": s.labels.get(self.version_label)}
            reasons = []
            if not s.update_pending:
                self._pending_since.pop(s.name, None)
            pending = s.update_pending and (
                obs.time - self._pending_since.setdefault(s.name, obs.time) < self.pending_grace)
            if pending:
                reasons.append("update not started yet")
            elif s.update_state in UPDATE_IN_PROGRESS:
                reasons.append("update in progress (%s)" % s.update_state)
            if s.desired is not None and len(running) != s.desired:
                states = sorted({t.state for t in tasks if t.state != "running"})
                reasons.append("%d/%d running%s" % (len(running), s.desired,
                                                    " (%s)" % ", ".join(states) if states else ""))
            if unhealthy:
                reasons.append("health %s" % ", ".join(sorted({t.health for t in unhealthy})))
            if self.version is not None and self.version_label in s.labels:
                version_seen = True
                if s.labels[self.version_label] != self.version:
                    reasons.append("version %s, want %s" % (s.labels[self.version_label], self.version))
            settle = self.settle_of(s)
            unsettled = [t for t in running if obs.time - self._running_since.get(t.id, obs.time) < settle]
            if unsettled and not reasons:
                reasons.append("running for less than %s" % _age(settle))
                due = max(self._running_since.get(t.id, obs.time) + settle for t in unsettled)
                settling.append(due)
            elif reasons:
                waiting_on_more = True
            if reasons:
                why[s.name] = "; ".join(reasons)
        if self.version is not None and not version_seen:
            why["(stack)"] = "no service carries %s=%s" % (self.version_label, self.version)
            waiting_on_more = True
        self.settled_at = max(settling) if settling and not waiting_on_more else None
        return why

    def _last_progress_text(self, now: float) -> str:
        if not self.events:
            return "none since the watch began %s ago" % _age(now - self.start)
        ev = self.events[-1]
        detail = "'%s'" % ev.detail if ev.kind == "log" else ev.detail
        return "%s %s ago" % (detail, _age(now - ev.time))

    def feed(self, obs: Observation) -> Verdict | None:
        """Take one observation; return the verdict once there is one (and keep returning it)."""
        if self.verdict is not None:
            return self.verdict
        baseline = self.start is None
        if baseline:
            self.start = self.last_progress = obs.time
        self.now = obs.time
        self.services = [s.name for s in obs.services]
        self._track(obs, baseline)
        self.waiting_for = self._why_not_converged(obs)
        elapsed = obs.time - self.start
        if not obs.services:
            self.verdict = Verdict(NO_SERVICES, "no-services: the stack has no services")
        else:
            self.verdict = self._rolled_back(obs) or self._crashloop(obs)
        if self.verdict is None and not self.waiting_for:
            self.verdict = Verdict(CONVERGED, "converged after %s" % _age(elapsed))
        if self.verdict is None and obs.time - self.last_progress >= self.wedge_window:
            self.verdict = Verdict(WEDGED, "wedged: no progress for %s (last: %s)%s" % (
                _age(obs.time - self.last_progress), self._last_progress_text(obs.time), self._unallocated(obs)))
        if self.verdict is None and elapsed >= self.timeout:
            waiting = "; ".join("%s: %s" % kv for kv in sorted(self.waiting_for.items()))
            self.verdict = Verdict(TIMEOUT, "timeout: not converged after %s (%s; last progress: %s)%s" % (
                _age(elapsed), waiting, self._last_progress_text(obs.time), self._unallocated(obs)))
        return self.verdict

    @staticmethod
    def _unallocated(obs: Observation) -> str:
        """When every task that should run but does not is still in swarm's ``new`` state, the
        swarm's allocator never took them (a stuck allocator, or no addresses left): nothing a
        recipe does keeps a task there, so the verdict says so and classification reads it as the
        bench's failure (``canon/verdict.INFRA_SIGNATURES``: ``allocator-stuck``)."""
        waiting = [t for t in obs.tasks if t.desired_state == "running" and t.state != "running"]
        if not waiting or any(t.state != "new" for t in waiting):
            return ""
        return "; %d task(s) stuck in swarm's new state (never allocated: %s)" % (
            len(waiting), ", ".join(sorted({t.service for t in waiting})))

    # -- what the module returns ------------------------------------------------------------
    def report(self) -> dict:
        now = self.now if self.now is not None else 0.0
        start = self.start if self.start is not None else now
        return {
            "verdict": self.verdict.name if self.verdict else None,
            "message": self.verdict.message if self.verdict else "",
            "elapsed": round(now - start, 1),
            "progress_events": {
                "count": self.event_count,
                "last": [{"kind": e.kind, "service": e.service, "detail": e.detail,
                          "time": round(e.time - start, 1)} for e in list(self.events)[-5:]],
            },
            "last_progress_age": round(now - (self.last_progress if self.last_progress is not None else now), 1),
            "longest_quiet": round(max(self.longest_quiet,
                                       now - (self.last_progress if self.last_progress is not None else now)), 1),
            "replicas": self.replicas,
            "waiting_for": self.waiting_for,
            "task_errors": self.task_errors,
            "last_health_output": self.last_health_output,
            "last_log_lines": {k: list(v) for k, v in self.last_log_lines.items()},
            "failures_in_window": {k: len(v) for k, v in self.failures.items()},
        }


# -- polling a real stack ----------------------------------------------------------------
LOG_TAIL = 200  # log lines read per container per poll, at most
EVIDENCE_LOG_LINES = 200
RECENT_KEYS = 2000


class SwarmObserver:
    """Turns the swarm's state into :class:`Observation` objects, reading logs incrementally."""

    def __init__(self, docker, stack: str, clock=time.time, log_tail: int = LOG_TAIL):
        self.docker = docker
        self.stack = stack
        self.clock = clock
        self.log_tail = log_tail
        self._since = {}  # log source -> (epoch, RFC 3339 string) of the newest line read
        self._recent = {}  # log source -> (deque, set) of lines read, to drop the inclusive --since overlap
        self._last_poll = None
        self.log_lines = {}  # service -> deque of raw lines, for the evidence
        self.health_logs = {}  # service -> the newest containers' full health probe logs
        self.services_full = []  # full service names

    def _read(self, source: str, reader) -> list | None:
        since = self._since.get(source)
        res = reader(since[1] if since else None)
        if not res.ok:
            return None
        seen, keys = self._recent.setdefault(source, (deque(maxlen=RECENT_KEYS), set()))
        lines = []
        for raw in (res.stdout + "\n" + res.stderr).splitlines():
            if not raw.strip() or raw in keys:
                continue
            if len(seen) == seen.maxlen:
                keys.discard(seen[0])
            seen.append(raw)
            keys.add(raw)
            stamp, text = split_log_line(raw)
            lines.append((stamp, text, raw))
            if stamp is not None and (since is None or stamp > since[0]):
                since = (stamp, raw.partition(" ")[0])
        if since:
            self._since[source] = since
        return lines

    def _logs(self, tasks: list, names: dict) -> dict:
        logs = {}
        fallback = set()
        for t in tasks:
            cid = t.container_id
            if not cid:
                continue
            ended_recently = (t.timestamp is not None and self._last_poll is not None
                              and t.timestamp >= self._last_poll - 5)
            if t.desired_state != "running" and self._last_poll is not None and not ended_recently:
                continue  # an old task's container: read once, at the first poll or when it ended
            lines = self._read(cid, lambda since, c=cid: self.docker.container_logs(c, since, self.log_tail))
            if lines is None:
                if t.desired_state == "running":
                    fallback.add(t.service)
                continue
            logs.setdefault(t.service, []).extend(lines)
        for service in sorted(fallback):
            full = names.get(service, service)
            lines = self._read("service:" + full,
                               lambda since, s=full: self.docker.service_logs_since(s, since, self.log_tail))
            if lines:
                logs.setdefault(service, []).extend(lines)
        out = {}
        for service, lines in logs.items():
            lines.sort(key=lambda x: x[0] or 0)
            self.log_lines.setdefault(service, deque(maxlen=EVIDENCE_LOG_LINES)).extend(x[2] for x in lines)
            out[service] = [(x[0], x[1]) for x in lines]
        return out

    def observe(self) -> Observation:
        now = self.clock()
        raw_services = self.docker.services(self.stack)
        self.services_full = [s["Spec"]["Name"] for s in raw_services]
        raw_tasks = self.docker.inspect(self.docker.task_ids(self.services_full), "task")
        names = {s["ID"]: short_service_name(s["Spec"]["Name"], self.stack) for s in raw_services}
        full_names = {short_service_name(n, self.stack): n for n in self.services_full}
        healthchecked = {names[s["ID"]] for s in raw_services if has_healthcheck(s)}
        services = [service_from_inspect(s, self.stack, [t for t in raw_tasks if t.get("ServiceID") == s["ID"]])
                    for s in raw_services]
        # health of the live tasks and of the newest task of each slot (the one that just died)
        newest = {}
        for t in raw_tasks:
            key = (t.get("ServiceID"), t.get("Slot") or t.get("NodeID"))
            stamp = parse_time((t.get("Status") or {}).get("Timestamp")) or 0
            if key not in newest or stamp > newest[key][0]:
                newest[key] = (stamp, t)
        wanted = {t["ID"] for t in raw_tasks if t.get("DesiredState") == "running"}
        wanted |= {t["ID"] for _s, t in newest.values()}
        cids = sorted({((t.get("Status") or {}).get("ContainerStatus") or {}).get("ContainerID")
                       for t in raw_tasks if t["ID"] in wanted} - {None, ""})
        containers = {c["Id"]: c for c in self.docker.inspect(cids, "container")}
        tasks = [task_from_inspect(t, names, containers, healthchecked) for t in raw_tasks]
        for svc_id, short in names.items():
            probes = []
            for cid, c in containers.items():
                if (c.get("Config", {}).get("Labels") or {}).get("com.docker.swarm.service.id") != svc_id:
                    continue
                for entry in ((c.get("State") or {}).get("Health") or {}).get("Log") or []:
                    output = (entry.get("Output") or "").strip()
                    probes.append("%s %s exit %s: %s" % (entry.get("Start", ""), cid[:12], entry.get("ExitCode"), output))
            if probes:
                self.health_logs[short] = "\n".join(sorted(probes)) + "\n"
        logs = self._logs(tasks, full_names)
        self._last_poll = now
        return Observation(time=now, services=services, tasks=tasks, logs=logs)


def watch(docker, domain: str, timeout: float, wedge_window: float, crashloop_restarts: int = 3,
          poll: float = 2, version: str | None = None, clock=time.time, sleep=time.sleep):
    """Observe the stack of ``domain`` every ``poll`` seconds until the watcher has a verdict.

    Returns (report dict, observer); the observer holds what the evidence is made of.
    """
    stack = stack_name(domain)
    watcher = Watcher(timeout, wedge_window, crashloop_restarts, version=version, stack=stack)
    observer = SwarmObserver(docker, stack, clock=clock)
    polls = 0
    while True:
        started = clock()
        polls += 1
        if watcher.feed(observer.observe()) is not None:
            break
        wait = poll - (clock() - started)
        if watcher.settled_at is not None:
            # only the settle period is missing: look again the moment it has passed
            wait = min(wait, watcher.settled_at - clock() + 0.05)
        sleep(max(0.0, wait))
    report = watcher.report()
    report.update(stack=stack, polls=polls)
    return report, observer


def write_evidence(docker, evidence, domain: str, report: dict, observer: SwarmObserver) -> list:
    """The evidence of a verdict other than converged, into converge/<domain>/ of the bundle."""
    sub = "converge/%s" % domain
    files = [evidence.write("verdict.json", json.dumps(report, indent=2, sort_keys=True) + "\n", sub)]
    for full in observer.services_full:
        files.append(evidence.write("%s.service-ps.txt" % full, docker.service_ps(full), sub))
    errors = "".join("%s: %s\n" % (svc, err) for svc, errs in sorted(report["task_errors"].items()) for err in errs)
    files.append(evidence.write("task-errors.txt", errors or "no task errors\n", sub))
    for svc, text in sorted(observer.health_logs.items()):
        files.append(evidence.write("%s.health.txt" % svc, text, sub))
    for svc, lines in sorted(observer.log_lines.items()):
        files.append(evidence.write("%s.logs.txt" % svc, "\n".join(lines) + "\n", sub))
    return [f for f in files if f]
