"""The convergence watcher's state machine, driven by synthetic observation sequences."""
import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._converge import (
    Observation, ServiceObs, TaskObs, Watcher, normalise_log_line, parse_time, service_from_inspect,
    split_log_line, task_from_inspect)

T0 = 1_800_000_000.0  # epoch of the first observation
POLL = 2.0
STACK = "app_example_org"
LABEL = "coop-cloud.%s.version" % STACK


def svc(name="app", desired=1, update=None, pending=False, version=None, message=""):
    labels = {LABEL: version} if version else {}
    return ServiceObs(name=name, desired=desired, update_state=update, update_message=message,
                      update_pending=pending, labels=labels)


def task(tid, state="running", service="app", desired="running", at=0.0, exit_code=None, error="", health=None):
    return TaskObs(id=tid, service=service, state=state, desired_state=desired, slot=1, timestamp=T0 + at,
                   exit_code=exit_code, error=error, health=health)


def run(world, timeout=3600, window=60, restarts=3, version=None, until=None):
    """Feed the watcher the world's observation every POLL seconds; return (verdict, time, watcher)."""
    w = Watcher(timeout, window, restarts, version=version, stack=STACK)
    t = 0.0
    limit = until if until is not None else timeout + 10
    while t <= limit:
        services, tasks, logs = world(t)
        verdict = w.feed(Observation(T0 + t, services, tasks, {k: [(T0 + t, line) for line in v]
                                                               for k, v in logs.items()}))
        if verdict:
            return verdict, t, w
        t += POLL
    return None, t, w


# -- worlds: what the swarm looks like at time t ------------------------------------------------
def slow_but_progressing(t):
    """A first boot printing a new step every 10 s (longer than nothing for 60 s), healthy at 1200 s."""
    if t < 1200:
        return [svc()], [task("t1", "starting", health="starting")], {"app": ["migrating: step %d/120" % (t // 10)]}
    return [svc()], [task("t1", "running", health="healthy", at=1200)], {"app": ["listening on :80"]}


def stuck_repeating(t):
    """The same line forever, a healthcheck that never passes."""
    return [svc()], [task("t1", "starting", health="starting")], {"app": [] if t == 0 else [
        "2026-11-27T16:17:%02dZ waiting for smtp.invalid:25 ..." % (t % 60)]}


def crashing(t):
    """Exits 1 at start; swarm restarts it every 5 s."""
    n = int(t // 5) + 1
    tasks = [task("t%d" % i, "failed", desired="shutdown", at=(i + 1) * 5 - 4, exit_code=1,
                  error="task: non-zero exit (1)") for i in range(n) if (i + 1) * 5 - 4 <= t]
    return [svc()], tasks + [task("t%d" % n, "starting", at=t)], {}


def busy_forever(t):
    return [svc()], [task("t1", "starting")], {"app": ["step %d" % t]}


def converged_at_once(t):
    """Running (and healthy) for a minute already when the watch begins."""
    return [svc(), svc("db")], [task("t1", at=-60), task("t2", service="db", health="healthy", at=-60)], {}


def just_started(t):
    """Running since the watch began: converged once it has stayed up for the settle time (5 s)."""
    return [svc()], [task("t1", at=0)], {}


def version_moves_at_20(t):
    return [svc(version="1.0.0+1" if t < 20 else "1.1.0+1")], [task("t1")], {}


def version_never_moves(t):
    return [svc(version="1.0.0+1")], [task("t1")], {}


@pytest.mark.parametrize("world,kw,verdict,low,high", [
    (slow_but_progressing, dict(timeout=1500, window=60), "converged", 1204, 1206),  # healthy + settled
    (stuck_repeating, dict(timeout=3600, window=60), "wedged", 60, 64),
    (crashing, dict(timeout=3600, window=60), "crashloop", 11, 12),
    (busy_forever, dict(timeout=100, window=60), "timeout", 100, 100),
    (converged_at_once, dict(), "converged", 0, 0),
    (just_started, dict(), "converged", 6, 6),
    (version_moves_at_20, dict(version="1.1.0+1"), "converged", 20, 20),
    (version_never_moves, dict(version="1.1.0+1", window=30), "wedged", 30, 30),
])
def test_verdicts(world, kw, verdict, low, high):
    got, at, _w = run(world, **kw)
    assert got is not None and got.name == verdict, got
    assert low <= at <= high, (got, at)


def test_slow_but_progressing_is_never_wedged_within_the_timeout():
    # the same deploy that would converge at 1200 s, watched only until 1199 s: no verdict at all
    got, _at, w = run(slow_but_progressing, timeout=1500, window=60, until=1198)
    assert got is None
    assert w.event_count >= 100 and w.report()["last_progress_age"] <= 10
    assert w.report()["longest_quiet"] == 10


def test_wedged_message_names_the_last_progress_and_its_age():
    got, at, w = run(stuck_repeating, timeout=3600, window=60)
    assert got.message == "wedged: no progress for 60 s (last: 'waiting for smtp.invalid:25 ...' 60 s ago)"
    rep = w.report()
    assert rep["verdict"] == "wedged" and rep["progress_events"]["count"] == 1 and rep["longest_quiet"] == 60
    assert rep["last_log_lines"]["app"][-1].endswith("waiting for smtp.invalid:25 ...")


def test_crashloop_is_declared_at_the_third_failed_task_not_the_timeout():
    seen = []

    def world(t):
        services, tasks, logs = crashing(t)
        seen.append(len([x for x in tasks if x.state == "failed"]))
        return services, tasks, logs
    got, _at, w = run(world, timeout=3600, window=60, restarts=3)
    assert got.name == "crashloop" and seen[-1] == 3 and seen[-2] == 2
    assert got.message == "crashloop: 3 tasks of app failed within 60 s (last error: task: non-zero exit (1))"
    assert w.report()["task_errors"] == {"app": ["task: non-zero exit (1)"]}


@pytest.mark.parametrize("state,how", [
    ("rollback_started", "rolled back"), ("rollback_completed", "rolled back"),
    ("rollback_paused", "rolled back"), ("paused", "paused"),
])
def test_rollback_states_fail_fast(state, how):
    def world(t):
        return [svc(update=state if t >= 6 else "updating", message="update rolled back due to failure")], \
            [task("t1")], {"app": ["line %d" % t]}
    got, at, _w = run(world)
    assert got.name == "rolled-back" and at == 6
    assert got.message == "rolled-back: app update %s (%s): update rolled back due to failure" % (how, state)


@pytest.mark.parametrize("services,tasks,why", [
    ([svc(update="updating")], [task("t1")], "update in progress (updating)"),
    ([svc(pending=True)], [task("t1")], "update not started yet"),
    ([svc()], [task("t1", "starting", health="starting")], "0/1 running (starting)"),
    ([svc()], [task("t1", health="unknown")], "health unknown"),
    ([svc(desired=2)], [task("t1")], "1/2 running"),
    ([svc()], [task("t1", desired="shutdown"), task("t2", "preparing")], "0/1 running (preparing)"),
])
def test_not_converged(services, tasks, why):
    w = Watcher(300, 60, stack=STACK)
    assert w.feed(Observation(T0, services, tasks)) is None
    assert w.waiting_for == {"app": why}


def test_completed_update_and_jobs_converge():
    w = Watcher(300, 60, stack=STACK)
    got = w.feed(Observation(T0, [svc(update="completed"), svc("migrate", desired=None)], [task("t1", at=-60)]))
    assert got.name == "converged"


def test_version_mismatch_keeps_waiting():
    w = Watcher(300, 60, version="1.1.0+1", stack=STACK)
    assert w.feed(Observation(T0, [svc(version="1.0.0+1")], [task("t1", at=-60)])) is None
    assert w.waiting_for == {"app": "version 1.0.0+1, want 1.1.0+1"}
    assert w.feed(Observation(T0 + 2, [svc()], [task("t1")])) is None
    assert w.waiting_for == {"(stack)": "no service carries %s=1.1.0+1" % LABEL}
    assert w.feed(Observation(T0 + 4, [svc(version="1.1.0+1"), svc("db")],
                              [task("t1"), task("t2", service="db", at=-60)])).name == "converged"


def test_no_services():
    got = Watcher(300, 60).feed(Observation(T0, [], []))
    assert got.name == "no-services"


@pytest.mark.parametrize("failed,counted", [
    ([task("a", "failed", at=-100, exit_code=1)], 0),  # before the watch (an earlier deploy)
    ([task("a", "failed", at=-10, exit_code=1)], 1),  # just before the watch started: this deploy
    ([task("a", "rejected", at=1)], 1),
    ([task("a", "shutdown", desired="shutdown", at=1, exit_code=137)], 0),  # swarm stopped it
    ([task("a", "shutdown", desired="shutdown", at=1, exit_code=0)], 0),
    ([task("a", "shutdown", desired="shutdown", at=1, exit_code=2)], 1),
    ([task("a", "complete", desired="shutdown", at=1, exit_code=0)], 0),
])
def test_what_counts_as_a_failed_task(failed, counted):
    w = Watcher(300, 60, crashloop_restarts=5)
    w.feed(Observation(T0 + 2, [svc()], failed + [task("b", "starting")]))
    assert w.report()["failures_in_window"].get("app", 0) == counted


def test_failures_outside_the_window_do_not_count():
    w = Watcher(3600, 20, crashloop_restarts=3)
    tasks = []
    verdict = None
    for i in range(12):  # one failure every 15 s: a slow restart loop, never 3 within 20 s
        tasks.append(task("f%d" % i, "failed", desired="shutdown", at=i * 15, exit_code=1))
        verdict = w.feed(Observation(T0 + i * 15, [svc()], list(tasks) + [task("n%d" % i, "starting", at=i * 15)]))
        if verdict:
            break
    assert verdict is None or verdict.name != "crashloop"


def test_progress_kinds():
    w = Watcher(300, 60, stack=STACK)
    w.feed(Observation(T0, [svc(update="updating")], [task("t1", "preparing")], {"app": [(T0, "boot")]}))
    w.feed(Observation(T0 + 2, [svc(update="updating")], [task("t1", "starting", health="starting")],
                       {"app": [(T0 + 1, "boot")]}))
    w.feed(Observation(T0 + 4, [svc(update="completed")],
                       [task("t1", "running", health="healthy"), task("t2", "new", desired="running")], {}))
    # t=2: preparing -> starting, health none -> starting ("boot" again is no progress);
    # t=4: starting -> running, starting -> healthy, t2 new, 0 -> 1 running, updating -> completed
    assert w.event_count == 7
    assert [e.kind for e in w.events] == ["task-state", "health", "task-state", "health", "task-new",
                                          "replicas", "update"]
    assert [e["kind"] for e in w.report()["progress_events"]["last"]] == [e.kind for e in w.events][-5:]


@pytest.mark.parametrize("a,b,same", [
    ("waiting for smtp.invalid:25 ...", "waiting for smtp.invalid:25 ...", True),
    ("2026-11-27T16:17:40.513Z waiting for db", "2026-11-27T16:18:41.000Z waiting for db", True),
    ("[2026-11-27 16:17:40,513] INFO waiting", "[2026-11-27 16:19:02,001] INFO waiting", True),
    ("Nov 27 16:17:40 host sshd: retry", "Nov 27 16:18:02 host sshd: retry", True),
    ("Fri Nov 27 16:17:40 UTC 2026 waiting", "Fri Nov 27 16:18:02 UTC 2026 waiting", True),  # date(1)
    ("Fri Nov 27 16:17:40 UTC 2026 waiting", "waiting", True),
    ("I, [16:17:40.123] retry", "I, [16:18:22.456] retry", True),
    ("10.0.0.1 - - [27/Nov/2026:16:17:40 +0000] \"GET / HTTP/1.1\" 503",
     "10.0.0.1 - - [27/Nov/2026:16:17:42 +0000] \"GET / HTTP/1.1\" 503", True),
    ("ts=1795000000.123 waiting", "ts=1795000002.456 waiting", True),
    ("\x1b[32mwaiting\x1b[0m  for db", "waiting for db", True),
    ("step 7/20", "step 8/20", False),
    ("migrated 120 rows", "migrated 240 rows", False),
    ("listening on port 3000", "listening on port 3001", False),
])
def test_normalise_log_line(a, b, same):
    assert (normalise_log_line(a) == normalise_log_line(b)) is same


def test_split_log_line_and_parse_time():
    stamp, text = split_log_line("2026-11-27T16:17:40.798922749Z step 1/20 at 10:00")
    assert text == "step 1/20 at 10:00" and stamp == pytest.approx(parse_time("2026-11-27T16:17:40.798922Z"))
    assert split_log_line("no timestamp here") == (None, "no timestamp here")
    assert parse_time("0001-01-01T00:00:00Z") is None and parse_time("") is None
    assert parse_time("2026-11-27T16:17:40Z") - parse_time("2026-11-27T17:17:40+01:00") == 0


# -- parsers, against documents recorded from Docker 20.10 ------------------------------------------
SERVICE_20_10 = {
    "ID": "eaoxrpx0ani025ajpn70cr8q0",
    "Spec": {"Name": "app_example_org_app", "Labels": {LABEL: "1.1.0+1", "com.docker.stack.namespace": STACK},
             "TaskTemplate": {"ContainerSpec": {"Image": "canon-bench/busybox:1.37",
                                                "Healthcheck": {"Interval": 3000000000, "Test": ["CMD-SHELL", "true"]}},
                              "ForceUpdate": 0},
             "Mode": {"Replicated": {"Replicas": 2}}},
    "PreviousSpec": {"Name": "app_example_org_app",
                     "TaskTemplate": {"ContainerSpec": {"Image": "canon-bench/busybox:1.36"}, "ForceUpdate": 0},
                     "Mode": {"Replicated": {"Replicas": 2}}},
}
TASK_20_10 = {
    "ID": "cmefrqx0ani025ajpn70cr8q0", "ServiceID": "eaoxrpx0ani025ajpn70cr8q0", "Slot": 1,
    "DesiredState": "shutdown",
    "Status": {"Timestamp": "2026-11-27T16:17:42.741483574Z", "State": "failed", "Message": "started",
               "Err": "task: non-zero exit (1)",
               "ContainerStatus": {"ContainerID": "2c8f3947743d", "PID": 0, "ExitCode": 1}, "PortStatus": {}},
}
CONTAINER_20_10 = {"Id": "2c8f3947743d", "State": {"Health": {"Status": "unhealthy", "FailingStreak": 3, "Log": [
    {"Start": "2026-11-27T16:17:38.378640422Z", "ExitCode": 1, "Output": "probe says no\n"},
    {"Start": "2026-11-27T16:17:40.58116295Z", "ExitCode": 1, "Output": "smtp.invalid:25 unreachable\n"}]}}}


def test_service_from_inspect():
    s = service_from_inspect(SERVICE_20_10, STACK)
    assert (s.name, s.desired, s.update_state, s.update_pending) == ("app", 2, None, True)
    assert s.labels[LABEL] == "1.1.0+1"
    started = dict(SERVICE_20_10, UpdateStatus={"State": "updating", "Message": "update in progress"})
    assert service_from_inspect(started, STACK).update_pending is False
    fresh = {k: v for k, v in SERVICE_20_10.items() if k != "PreviousSpec"}
    assert service_from_inspect(fresh, STACK).update_pending is False
    same = dict(SERVICE_20_10, PreviousSpec=SERVICE_20_10["Spec"])
    assert service_from_inspect(same, STACK).update_pending is False
    # after a rollback swarm keeps the template without the CLI's defaults: not a pending update
    cli = {"ContainerSpec": {"Image": "x:1", "DNSConfig": {}, "Privileges": {"NoNewPrivileges": False}},
           "RestartPolicy": {"Condition": "any", "Delay": 5000000000, "MaxAttempts": 0}, "ForceUpdate": 0}
    stored = {"ContainerSpec": {"Image": "x:1", "Privileges": {"NoNewPrivileges": False}}, "ForceUpdate": 0}
    redeployed = dict(SERVICE_20_10, Spec=dict(SERVICE_20_10["Spec"], TaskTemplate=cli),
                      PreviousSpec=dict(SERVICE_20_10["PreviousSpec"], TaskTemplate=stored))
    assert service_from_inspect(redeployed, STACK).update_pending is False
    glob = {"ID": "g", "Spec": {"Name": STACK + "_agent", "Mode": {"Global": {}}}}
    assert service_from_inspect(glob, STACK, [{"DesiredState": "running"}] * 3).desired == 3
    job = {"ID": "j", "Spec": {"Name": STACK + "_migrate", "Mode": {"ReplicatedJob": {}}}}
    assert service_from_inspect(job, STACK).desired is None


def test_task_from_inspect():
    t = task_from_inspect(TASK_20_10, {"eaoxrpx0ani025ajpn70cr8q0": "app"}, {"2c8f3947743d": CONTAINER_20_10})
    assert (t.service, t.state, t.desired_state, t.exit_code, t.error) == (
        "app", "failed", "shutdown", 1, "task: non-zero exit (1)")
    assert (t.health, t.health_output) == ("unhealthy", "smtp.invalid:25 unreachable")
    assert t.timestamp == pytest.approx(parse_time("2026-11-27T16:17:42.741483Z"))
    live = dict(TASK_20_10, Status=dict(TASK_20_10["Status"], State="running"))
    assert task_from_inspect(live, {"eaoxrpx0ani025ajpn70cr8q0": "app"}, {}, {"app"}).health == "unknown"
    assert task_from_inspect(live, {"eaoxrpx0ani025ajpn70cr8q0": "app"}, {}, set()).health is None


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError):
        Watcher(0, 60)
    with pytest.raises(ValueError):
        Watcher(60, 60, crashloop_restarts=0)


def test_an_update_swarm_never_starts_stops_blocking_after_the_grace():
    w = Watcher(300, 60, stack=STACK, pending_grace=15)
    for t in (0, 2, 14):
        assert w.feed(Observation(T0 + t, [svc(pending=True)], [task("t1", at=-60)])) is None
    assert w.feed(Observation(T0 + 16, [svc(pending=True)], [task("t1", at=-60)])).name == "converged"


def test_a_task_running_for_an_instant_is_not_converged():
    """Exit 1 right after start: swarm reports "running" for a moment, then the task fails."""
    w = Watcher(3600, 60, stack=STACK)
    assert w.feed(Observation(T0, [svc()], [task("t1", at=0)])) is None
    assert w.waiting_for == {"app": "running for less than 5 s"}
    assert w.feed(Observation(T0 + 2, [svc()], [task("t1", "failed", desired="shutdown", at=1, exit_code=1),
                                                task("t2", "ready", at=2)])) is None
    assert w.feed(Observation(T0 + 4, [svc()], [task("t1", "failed", desired="shutdown", at=1, exit_code=1),
                                                task("t2", at=3)])) is None
    assert w.waiting_for == {"app": "running for less than 5 s"}


def never_allocated(t):
    """The allocator never takes the task: it stays in swarm's new state."""
    return [svc(), svc("db")], [task("t1", "new"), task("t2", service="db", at=-60)], {}


def never_scheduled(t):
    """Allocated but no node fits: pending, which a recipe's constraints can cause."""
    return [svc()], [task("t1", "pending", error="no suitable node")], {}


def test_tasks_never_allocated_are_named_in_the_verdict_and_read_as_infra():
    from canon.verdict import infra_signature
    got, at, _w = run(never_allocated, window=60)
    assert got.name == "wedged" and 60 <= at <= 62
    assert got.message.endswith("; 1 task(s) stuck in swarm's new state (never allocated: app)")
    assert infra_signature(got.message) == "allocator-stuck"
    got, _at, _w = run(never_allocated, timeout=30, window=60)
    assert got.name == "timeout" and infra_signature(got.message) == "allocator-stuck"


def test_tasks_pending_are_not_an_allocator_fault():
    from canon.verdict import infra_signature
    got, _at, _w = run(never_scheduled, window=60)
    assert got.name == "wedged" and "new state" not in got.message
    assert infra_signature(got.message) is None


def _running_obs(t, started, monitor_ns=None):
    from ansible_collections.coopcloud.canon.plugins.module_utils._converge import (
        Observation, ServiceObs, TaskObs)
    return Observation(time=t, services=[ServiceObs(name="app", monitor=None if monitor_ns is None else monitor_ns / 1e9)],
                       tasks=[TaskObs(id="t1", service="app", state="running", timestamp=started)])


@pytest.mark.parametrize("monitor_ns, settle", [(None, 5.0), (30 * 10**9, 30.0), (10**9, 1.0)])
def test_a_task_counts_once_it_has_run_for_its_services_monitor_period(monitor_ns, settle):
    from ansible_collections.coopcloud.canon.plugins.module_utils._converge import CONVERGED, Watcher
    w = Watcher(timeout=600, wedge_window=120)
    assert w.feed(_running_obs(1000.0, 1000.0, monitor_ns)) is None
    assert w.settled_at == pytest.approx(1000.0 + settle)     # only the period is missing: when it ends
    assert w.feed(_running_obs(1000.0 + settle - 0.1, 1000.0, monitor_ns)) is None
    assert w.feed(_running_obs(1000.0 + settle, 1000.0, monitor_ns)).name == CONVERGED


def test_the_watch_looks_again_when_the_settle_period_ends_not_at_the_next_poll():
    from ansible_collections.coopcloud.canon.plugins.module_utils import _converge
    clock = [1000.0]
    slept = []

    class Observer:
        def __init__(self, *a, **k):
            pass

        def observe(self):
            return _running_obs(clock[0], 1000.0)

    def sleep(seconds):
        slept.append(round(seconds, 2))
        clock[0] += seconds
    real = _converge.SwarmObserver
    _converge.SwarmObserver = Observer
    try:
        report, _ = _converge.watch(None, "a.example.org", timeout=600, wedge_window=120, poll=2,
                                    clock=lambda: clock[0], sleep=sleep)
    finally:
        _converge.SwarmObserver = real
    assert report["verdict"] == "converged"
    assert slept == [2, 2, 1.05]          # 5 s after the task started, not at 6 s


def test_no_early_look_while_something_besides_the_settle_period_is_missing():
    from ansible_collections.coopcloud.canon.plugins.module_utils._converge import (
        Observation, ServiceObs, TaskObs, Watcher)
    w = Watcher(timeout=600, wedge_window=120)
    obs = Observation(time=1000.0, services=[ServiceObs(name="app", desired=2)],
                      tasks=[TaskObs(id="t1", service="app", state="running", timestamp=1000.0)])
    assert w.feed(obs) is None
    assert w.settled_at is None
