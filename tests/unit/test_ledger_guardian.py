import os
import subprocess
import sys
import time

from ansible_collections.coopcloud.canon.plugins.module_utils import _guardian, _ledger


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
        assert proc.pid in _guardian.run_processes("unit-run-xyz")
        assert _guardian.kill_run_processes("unit-run-xyz", grace=2) == []
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
