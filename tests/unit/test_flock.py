"""The one flock wrapper (module_utils/_flock.py): waiting, refusing at once, the holder's text."""
import os
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._flock import Busy, flocked, holder_of


def test_a_second_holder_is_refused_at_once_and_gets_the_lock_after_release(tmp_path):
    path = str(tmp_path / "a.lock")
    with flocked(path):
        with pytest.raises(Busy) as busy:
            with flocked(path, wait=False):
                pytest.fail("two holders at once")
        assert busy.value.holder == "" and busy.value.path == path
    with flocked(path, wait=False) as fh:
        assert not fh.closed


def test_a_waiting_holder_gets_the_lock_when_the_first_lets_go(tmp_path):
    path = str(tmp_path / "a.lock")
    order = []

    def second():
        with flocked(path):
            order.append("second in")

    with flocked(path):
        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.3)
        assert order == [] and waiter.is_alive()
        order.append("first out")
    waiter.join(timeout=5)
    assert order == ["first out", "second in"]


def test_the_holder_text_is_in_the_file_while_held_and_gone_after(tmp_path):
    path = str(tmp_path / "a.lock")
    with flocked(path, holder="a sweep by pid 42"):
        with open(path) as fh:
            assert fh.read() == "a sweep by pid 42"
        assert holder_of(path) == "a sweep by pid 42"
        with pytest.raises(Busy, match="held: a sweep by pid 42") as busy:
            with flocked(path, wait=False):
                pass
        assert busy.value.holder == "a sweep by pid 42"
    with open(path) as fh:
        assert fh.read() == ""
    assert holder_of(path) is None


def test_a_new_holder_replaces_the_text_of_the_last(tmp_path):
    path = str(tmp_path / "a.lock")
    with open(path, "w") as fh:
        fh.write("a much longer text left by a holder that was killed")
    with flocked(path, holder="short"):
        with open(path) as fh:
            assert fh.read() == "short"


def test_a_loser_waits_for_the_winners_name_only_when_asked(tmp_path):
    path = str(tmp_path / "a.lock")
    with flocked(path) as fh:
        writer = threading.Timer(0.3, lambda: (fh.write("the winner"), fh.flush()))
        writer.start()
        try:
            with pytest.raises(Busy) as at_once:
                with flocked(path, wait=False):
                    pass
            assert at_once.value.holder == ""
            with pytest.raises(Busy) as patient:
                with flocked(path, wait=False, holder_wait=2.0):
                    pass
            assert patient.value.holder == "the winner"
        finally:
            writer.join()


def test_the_lock_is_released_when_the_block_raises(tmp_path):
    path = str(tmp_path / "a.lock")
    with pytest.raises(RuntimeError):
        with flocked(path, holder="me"):
            raise RuntimeError("boom")
    assert holder_of(path) is None
    with open(path) as fh:
        assert fh.read() == ""


def test_holder_of_a_missing_file_is_none_and_creates_nothing(tmp_path):
    path = str(tmp_path / "none.lock")
    assert holder_of(path) is None
    assert not os.path.exists(path)


def test_the_lock_dies_with_a_killed_holder(tmp_path):
    path = str(tmp_path / "a.lock")
    code = ("import fcntl, sys, time; fh = open(sys.argv[1], 'a+'); fcntl.flock(fh, fcntl.LOCK_EX); "
            "fh.write('pid holder'); fh.flush(); print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code, path], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        assert holder_of(path) == "pid holder"
        proc.kill()
        proc.wait(timeout=10)
        with flocked(path, wait=False, holder="next"):
            assert holder_of(path) == "next"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
