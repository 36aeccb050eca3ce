# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A run's processes on this host: finding them (by ``CANON_RUN_ID`` in their environment, or
the ``ansible-playbook`` controller above this process) and stopping them.

Its own module because both the guardian (which stops a run whose controller died) and the
teardown (which stops a dead run's strays before reaping) need it, and the guardian also calls
the teardown: kept in either of them it made the two import each other.
"""

from __future__ import annotations

import os
import signal
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import pid_alive

RUN_ENV = "CANON_RUN_ID"


def _proc_cmdline(pid: int) -> list:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return [p.decode(errors="replace") for p in fh.read().split(b"\0") if p]
    except OSError:
        return []


def _proc_ppid(pid: int) -> int:
    try:
        with open("/proc/%d/stat" % pid) as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def controller_pid(start: int | None = None) -> int:
    """The top-most ``ansible-playbook`` (or ansible-runner) ancestor of this process.

    Ansible forks a worker per task with the same command line, so the *top-most* match is the
    controller; the worker exits after every task.
    """
    pid = start or os.getpid()
    found = 0
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        cmd = _proc_cmdline(pid)
        if any(os.path.basename(c) in ("ansible-playbook", "ansible-runner") for c in cmd[:3]):
            found = pid
        pid = _proc_ppid(pid)
    return found


def run_processes(run_id: str, exclude=()) -> list:
    """Pids of every process carrying ``CANON_RUN_ID=<run_id>`` in its environment."""
    needle = ("%s=%s" % (RUN_ENV, run_id)).encode()
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        if pid in exclude:
            continue
        try:
            with open("/proc/%d/environ" % pid, "rb") as fh:
                if needle in fh.read().split(b"\0"):
                    pids.append(pid)
        except OSError:
            continue
    return pids


def ancestry(pid: int | None = None) -> set:
    """This process and every ancestor of it."""
    pid = pid or os.getpid()
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        pid = _proc_ppid(pid)
    return seen


def kill_run_processes(run_id: str, grace: float = 5.0) -> list:
    """SIGTERM, then SIGKILL, every process of the run (never this process or its ancestors);
    the pids still alive after both."""
    me = ancestry()
    pids = run_processes(run_id, exclude=me)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.2)
        pids = [p for p in run_processes(run_id, exclude=me) if pid_alive(p)]
        if not pids:
            break
    return pids
