# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one flock(2) wrapper: every lock of the harness, the driver and the benchmarks.

An flock dies with the process that holds it (crash, SIGKILL), so a lock is never left held by
a dead holder. ``flock /tmp/canon-bench.lock CMD`` from a shell takes the same lock.

- ``flocked(path)`` waits for the lock and holds it for a ``with`` block;
- ``flocked(path, wait=False)`` raises ``Busy`` at once when another process holds it;
- ``flocked(path, holder="...")`` also writes who holds it into the file while held (cleared on
  release), and a ``Busy`` carries that text, so a loser can say who it lost to;
- ``holder_of(path)`` tells whether someone holds the lock now, and what they wrote.

Standard library only, no Ansible import, so it unit-tests directly.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time


class Busy(Exception):
    """Another process holds the lock; ``holder`` is what it wrote in the file ('' for nothing)."""

    def __init__(self, path: str, holder: str):
        super().__init__("%s is held%s" % (path, (": " + holder) if holder else ""))
        self.path = path
        self.holder = holder


def _read_holder(fh, wait: float) -> str:
    # a winner that writes who it is does so just after it takes the lock: a loser that lost by a
    # hair reads an empty file for a moment, so it looks again for up to ``wait`` seconds
    deadline = time.monotonic() + wait
    while True:
        fh.seek(0)
        text = fh.read().strip()
        if text or time.monotonic() >= deadline:
            return text
        time.sleep(0.05)


@contextlib.contextmanager
def flocked(path: str, wait: bool = True, holder: str | None = None, holder_wait: float = 0.0):
    """Hold an exclusive flock on ``path`` (created if missing) for the ``with`` block; yields the
    open file. ``wait=False``: raise ``Busy`` instead of waiting, with the holder's text (read again
    for up to ``holder_wait`` seconds while the file is still empty). ``holder``: the text written
    into the file while it is held, and cleared on release."""
    fh = open(path, "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise Busy(path, _read_holder(fh, holder_wait)) from None
        if holder is not None:
            fh.seek(0)
            fh.truncate()
            fh.write(holder)
            fh.flush()
        try:
            yield fh
        finally:
            if holder is not None:
                fh.seek(0)
                fh.truncate()
            fcntl.flock(fh, fcntl.LOCK_UN)
    finally:
        fh.close()


def holder_of(path: str) -> str | None:
    """None when nobody holds the lock on ``path`` (or there is no such file); else what the holder
    wrote in it ('' for nothing). Looking takes the lock for an instant when it is free."""
    if not os.path.exists(path):
        return None
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fh, 0.0)
        fcntl.flock(fh, fcntl.LOCK_UN)
    return None
