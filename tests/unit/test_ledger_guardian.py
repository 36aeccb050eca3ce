import os
import subprocess
import sys
import time

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _guardian, _ledger, _run_processes


def test_atomic_write_and_read(tmp_path):
    p = str(tmp_path / "x" / "a.json")
    _ledger.write_json_atomic(p, {"a": 1})
    assert _ledger.read_json(p) == {"a": 1}
    assert [f for f in os.listdir(tmp_path / "x") if f.startswith(".tmp")] == []


def test_lock_held_by_live_run_is_refused_and_stale_is_taken(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running", "guardian_pid": None})
    assert led.try_lock("app-a", "r1") == (True, None)
    # r1 has no live guardian: its lock is stale and r2 takes it over.
    assert led.try_lock("app-a", "r2") == (True, None)
    assert led.locks()["app-a"]["run_id"] == "r2"
    # A run whose guardian lives holds its lock.
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", _ledger.GUARDIAN_MARK, "r3"])
    try:
        led.put({"run_id": "r3", "status": "running", "guardian_pid": proc.pid})
        assert led.is_live(led.get("r3"))
        assert led.try_lock("heavy", "r3") == (True, None)
        assert led.try_lock("heavy", "r4") == (False, "r3")
        assert led.release_locks("r3") == ["heavy"]
    finally:
        proc.kill()
        proc.wait()
    assert not led.is_live(led.get("r3"))


def test_guardian_alive_rejects_recycled_pid():
    assert not _ledger.guardian_alive(os.getpid(), "r1")
    assert not _ledger.pid_alive(0)


def test_run_processes_found_by_environment():
    env = dict(os.environ, CANON_RUN_ID="unit-run-xyz")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], env=env)
    try:
        time.sleep(0.2)
        assert proc.pid in _run_processes.run_processes("unit-run-xyz")
        assert _run_processes.kill_run_processes("unit-run-xyz", grace=2) == []
        proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_watch_returns_when_controller_dies(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})
    ctl = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    assert _guardian.watch(led, "r1", ctl.pid, None, poll=0.1) == "controller-died"
    ctl.wait()


def test_watch_returns_done_when_run_finishes(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "finished"})
    assert _guardian.watch(led, "r1", os.getpid(), None, poll=0.1) == "done"


def test_deadline_sends_sigterm(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})
    ctl = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    assert _guardian.watch(led, "r1", ctl.pid, time.time() + 0.3, poll=0.1) == "deadline"
    assert ctl.wait(timeout=5) == -15
    assert led.get("r1")["deadline_hit"]


class FakeDocker:
    """Answers ``services(stack)`` with services labelled at the given release."""

    def __init__(self, version):
        self.version = version
        self.asked = []

    def services(self, stack):
        self.asked.append(stack)
        if not self.version:
            return []
        return [{"Spec": {"Name": stack + "_app", "Labels": {"coop-cloud.%s.version" % stack: self.version}}}]


def _promote_run_mid_advance(tmp_path, run_id="gitea-20261127000000-aaaaaa"):
    """A promote run that recorded its attempt (registry 'deploying' under its own lease) and
    stopped before recording the outcome."""
    from ansible_collections.coopcloud.canon.plugins.module_utils import _warm
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": run_id, "recipe": "gitea", "server": "default", "status": "running",
             "domains": {}, "guardian_pid": None, "interrupted": "controller-died"})
    domain = "warm-canon-gitea.bench.canon.test"
    lease = _warm.take_lease(led, domain, "gitea", "default", run_id)
    _warm.record_deploying(led, "default", "gitea", "3.5.3+1.24.2-rootless", domain=domain, lease=lease)
    _warm.record_promoted(led, "default", "gitea", "3.5.3+1.24.2-rootless", None,
                          {"outcome": "pass", "versions": {"head": "3.5.3+1.24.2-rootless"}, "recipe": "gitea",
                           "server": "default", "run_id": "cold-1"})
    _warm.record_deploying(led, "default", "gitea", "3.6.0+1.25.0-rootless", lease=lease)
    return led, run_id


def test_teardown_closes_the_advance_its_run_left_open(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _teardown, _warm
    led, run_id = _promote_run_mid_advance(tmp_path)
    docker = FakeDocker("3.5.3+1.24.2-rootless")
    closed = _teardown.close_open_attempt(led, led.get(run_id), docker)
    assert docker.asked == ["warm-canon-gitea_bench_canon_test"]
    canonical = _warm.read_canonical(led, "default", "gitea")
    assert closed == canonical
    assert canonical["status"] == "failed" and canonical["target"] is None
    assert canonical["version"] == "3.5.3+1.24.2-rootless"          # the live version stays
    assert canonical["failure"]["attempted"] == "3.6.0+1.25.0-rootless"
    assert canonical["failure"]["reason"] == (
        "interrupted: promote run %s lost its controller during the advance to 3.6.0+1.25.0-rootless; "
        "the warm app now runs 3.5.3+1.24.2-rootless" % run_id)
    # a second teardown changes nothing
    assert _teardown.close_open_attempt(led, led.get(run_id), docker) is None


def test_teardown_says_when_the_warm_app_moved_or_is_gone(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _teardown, _warm
    led, run_id = _promote_run_mid_advance(tmp_path)
    _teardown.close_open_attempt(led, led.get(run_id), FakeDocker("3.6.0+1.25.0-rootless"))
    canonical = _warm.read_canonical(led, "default", "gitea")
    assert canonical["failure"]["reason"].endswith("the warm app now runs 3.6.0+1.25.0-rootless")
    # the registry names what runs, never a release the warm domain no longer runs: the new one,
    # unverified, with the last good one kept as the floor
    assert canonical["status"] == "failed" and canonical["version"] == "3.6.0+1.25.0-rootless"
    assert canonical["failure"]["verified"] is False
    assert canonical["failure"]["previous_version"] == "3.5.3+1.24.2-rootless"
    assert canonical["last_known_good"]["version"] == "3.5.3+1.24.2-rootless"
    assert "runs 3.6.0+1.25.0-rootless, unverified" in canonical["failure"]["message"]
    assert "last known good: 3.5.3+1.24.2-rootless" in canonical["failure"]["message"]
    # a promote of the last good release is not "moving back" from an unverified one
    cold = {"outcome": "pass", "versions": {"head": "3.5.3+1.24.2-rootless"}, "recipe": "gitea",
            "server": "default", "run_id": "cold-2"}
    assert _warm.advance_refusal(canonical, cold) is None
    # nothing runs: the registry says so
    led2, run2 = _promote_run_mid_advance(tmp_path / "b")
    _teardown.close_open_attempt(led2, led2.get(run2), FakeDocker(None))
    gone = _warm.read_canonical(led2, "default", "gitea")
    assert gone["failure"]["reason"].endswith("runs nothing")
    assert gone["version"] is None and gone["failure"]["verified"] is False
    assert "runs nothing, unverified" in gone["failure"]["message"]


def test_teardown_leaves_another_runs_advance_alone(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _teardown, _warm
    led, run_id = _promote_run_mid_advance(tmp_path)
    other = {"run_id": "gitea-20261127000000-bbbbbb", "recipe": "gitea", "server": "default", "status": "running"}
    led.put(dict(other))
    assert _teardown.close_open_attempt(led, other, FakeDocker("3.5.3+1.24.2-rootless")) is None
    assert _warm.read_canonical(led, "default", "gitea")["status"] == "deploying"
    # nor a finished advance
    _warm.record_failed(led, "default", "gitea", "broken")
    assert _teardown.close_open_attempt(led, led.get(run_id), FakeDocker("x")) is None


def test_teardown_run_closes_the_open_advance_before_releasing_the_lease(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _teardown, _warm
    led, run_id = _promote_run_mid_advance(tmp_path)
    led.update(run_id, abra_bin="/bin/true", abra_dir=str(tmp_path / "abra"), docker_bin=str(tmp_path / "docker"))
    fake = tmp_path / "docker"   # `docker service ls` finds nothing: the warm app is gone
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    res = _teardown.teardown_run(led, run_id)
    assert res["closed_attempt"]["status"] == "failed"
    assert res["locks"] == ["lease:warm-canon-gitea.bench.canon.test"]
    assert led.get(run_id) is None
    assert _warm.read_canonical(led, "default", "gitea")["failure"]["reason"].endswith("runs nothing")


def test_janitor_stops_what_a_dead_run_left_running_before_it_reads_the_swarm(tmp_path):
    """An abra a killed run started goes on (an upgrade of the warm app, say); the janitor's
    teardown stops it first, so nothing of the run moves the swarm after the teardown read it.
    A run's own teardown leaves its processes alone."""
    from ansible_collections.coopcloud.canon.plugins.module_utils import _teardown
    led, run_id = _promote_run_mid_advance(tmp_path)
    led.update(run_id, abra_bin="/bin/true", abra_dir=str(tmp_path / "abra"), docker_bin=str(tmp_path / "docker"))
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    stray = subprocess.Popen(["sleep", "60"], env=dict(os.environ, CANON_RUN_ID=run_id))
    try:
        res = _teardown.teardown_run(led, run_id, kill_strays=False)
        assert stray.poll() is None                     # not the janitor: left alone
        assert res["closed_attempt"]["status"] == "failed"
        led2, run2 = _promote_run_mid_advance(tmp_path / "b", run_id=run_id)
        led2.update(run_id, abra_bin="/bin/true", abra_dir=str(tmp_path / "abra"), docker_bin=str(fake))
        _teardown.teardown_run(led2, run_id, kill_strays=True)
        assert stray.wait(timeout=10) is not None       # the janitor stopped it
        assert led2.get(run_id) is None
    finally:
        if stray.poll() is None:
            stray.kill()


class FakeTime:
    """A clock that only moves when the guardian sleeps; ``on_sleep`` runs after each sleep."""

    def __init__(self, on_sleep=None):
        self.now = 1000.0
        self.on_sleep = on_sleep

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(self.now)


def test_lease_holds_while_the_run_has_processes_and_expires_lease_seconds_after_the_last(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})
    t = FakeTime()
    # a task of the run is seen on the server for the first 20 s, then never again
    why = _guardian.watch(led, "r1", 0, None, poll=1, lease=10, activity=lambda: t.now < 1020,
                          clock=t.clock, sleep=t.sleep)
    assert why == "lease-expired"
    assert t.now == 1030   # last seen at 1019; expired the first time more than 10 s had passed
    assert led.get("r1")["lease_seen"]   # recorded for whoever reads the ledger


def test_a_lease_that_is_renewed_never_expires_and_the_run_ending_ends_the_watch(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})

    def finish(now):
        if now >= 1100:   # the run's own teardown recorded its end, long after several leases
            led.update("r1", status="finished")
    t = FakeTime(on_sleep=finish)
    # seen every 8th second only: the gaps are shorter than the lease
    why = _guardian.watch(led, "r1", 0, None, poll=1, lease=10, activity=lambda: int(t.now) % 8 == 0,
                          clock=t.clock, sleep=t.sleep)
    assert why == "done" and t.now == 1100


def test_a_lease_past_the_deadline_stops_the_run_although_it_is_active(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})
    t = FakeTime()
    why = _guardian.watch(led, "r1", 0, 1005.5, poll=1, lease=10, activity=lambda: True,
                          clock=t.clock, sleep=t.sleep)
    assert why == "deadline" and t.now == 1006
    assert led.get("r1")["deadline_hit"]


def test_a_guardian_needs_a_controller_or_a_lease(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "r1", "status": "running"})
    with pytest.raises(ValueError, match="lease"):
        _guardian.watch(led, "r1", 0, None, lease=0)


def test_the_lease_sees_the_runs_processes_by_their_environment(tmp_path):
    led = _ledger.Ledger(str(tmp_path))
    led.put({"run_id": "unit-lease-run", "status": "running"})
    task = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"],
                            env=dict(os.environ, CANON_RUN_ID="unit-lease-run"))
    started = time.monotonic()
    try:
        assert _guardian.watch(led, "unit-lease-run", 0, None, poll=0.1, lease=1.0) == "lease-expired"
    finally:
        task.kill()
        task.wait()
    # held while the task ran (1.5 s), then expired a lease (1 s) after it ended
    assert 2.4 <= time.monotonic() - started < 6


# -- an interrupted run leaves its record (issue 17 item 9) ----------------------------------

def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def _claimed(tmp_path, results, run_id="ledgerapp-20261206200000-abc123", tier="backup_restore", keep=False):
    led = _ledger.Ledger(str(tmp_path / "state"))
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    led.put({"run_id": run_id, "recipe": "ledgerapp", "server": "default", "status": "running",
             "abra_bin": "/bin/true", "docker_bin": str(fake), "abra_dir": str(tmp_path / "abra"),
             "run_abra_dir": str(tmp_path / "abra"), "domains": {}, "protected": [],
             "started": "2026-12-06T20:00:00Z", "started_epoch": time.time(), "keep_on_failure": keep,
             "results_dir": str(results) if results else None})
    os.makedirs(led.run_dir(run_id), exist_ok=True)
    with open(os.path.join(led.run_dir(run_id), "redact"), "w") as fh:
        fh.write("s3cret-value-xyz\n")
    if results and tier:
        os.makedirs(results / run_id, exist_ok=True)
        (results / run_id / "tier").write_text(tier + "\n")
    return led, run_id


def _guardian_main(argv):
    import signal
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGHUP)}
    try:
        return _guardian.main(argv)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


@pytest.mark.parametrize("keep", [False, True])
def test_a_killed_controller_leaves_an_interrupted_result(tmp_path, keep):
    results = tmp_path / "results"
    led, run_id = _claimed(tmp_path, results, keep=keep)
    assert _guardian_main([run_id, led.state_dir, str(_dead_pid()), "0"]) == 0
    doc = _ledger.read_json(str(results / run_id / "result.json"))
    assert doc["outcome"] == "interrupted" and doc["run_id"] == run_id and doc["recipe"] == "ledgerapp"
    assert doc["interrupted"]["why"] == "controller-died" and doc["interrupted"]["tier"] == "backup_restore"
    assert "controller" in doc["interrupted"]["what"]
    assert doc["teardown"]["by"] == "guardian" and doc["teardown"]["removed"] == {}
    assert doc["level_text"].startswith("INTERRUPTED in backup_restore")
    assert (led.get(run_id) is None) is (not keep)      # torn down and forgotten, or kept on request


def test_an_interrupted_result_keeps_what_the_run_wrote_and_is_redacted(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder
    results = tmp_path / "results"
    led, run_id = _claimed(tmp_path, results, tier="lint")
    own = _ladder.result_document({"run_id": run_id, "recipe": "ledgerapp"},
                                  [{"name": "install", "outcome": "fail", "error": "token s3cret-value-xyz refused"}])
    _ledger.write_json_atomic(str(results / run_id / "result.json"), own)
    record = led.get(run_id)
    redact = _guardian.load_redactor(os.path.join(led.run_dir(run_id), "redact"))
    path = _guardian.record_interruption(led, record, "deadline", {"removed": {"a.test": {"stack": ["a_test"]}}},
                                         redact)
    doc = _ledger.read_json(path)
    assert doc["outcome"] == "fail" and doc["tiers"][0]["name"] == "install"   # the run's verdict stands
    assert doc["interrupted"]["why"] == "deadline" and doc["interrupted"]["tier"] == "lint"
    assert doc["teardown"]["removed"] == {"a.test": {"stack": ["a_test"]}}
    assert "s3cret-value-xyz" not in open(path).read()


def test_no_results_folder_no_record(tmp_path):
    led, run_id = _claimed(tmp_path, None)
    assert _guardian.record_interruption(led, led.get(run_id), "lease-expired", {}) is None


def test_the_janitor_records_the_dead_run_it_reaps(tmp_path):
    from ansible_collections.coopcloud.canon.plugins.module_utils import _run
    results = tmp_path / "results"
    led, run_id = _claimed(tmp_path, results, tier="upgrade")
    led.update(run_id, controller_pid=_dead_pid(), guardian_pid=_dead_pid())
    assert _run.reap_dead_runs(led) == [run_id]
    assert led.get(run_id) is None
    doc = _ledger.read_json(str(results / run_id / "result.json"))
    assert doc["outcome"] == "interrupted" and doc["interrupted"]["why"] == "janitor"
    assert doc["teardown"]["by"] == "janitor" and doc["interrupted"]["tier"] == "upgrade"
