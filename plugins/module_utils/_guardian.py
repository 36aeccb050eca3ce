# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run guardian: a small detached process per run that tears the run down when the
controller (``ansible-playbook``) dies before the run's own teardown finished.

Ansible does not run ``always:`` blocks when it is interrupted (SIGINT, SIGTERM, SIGKILL), so
the guardian is what makes every exit path tear down. It also enforces the run deadline: past
it, the controller is sent SIGTERM and the run is recorded as timed out.

On a server reached over SSH there is no controller process to watch: the module's ancestors
are sshd's, not ``ansible-playbook``. There the guardian holds the run on a *lease* instead:
every task of the run's block carries ``CANON_RUN_ID=<run id>`` in its environment, so while
the controller is alive a process of the run keeps appearing on the server. The lease is
renewed each time one is seen; once none has been seen for ``lease`` seconds the controller is
taken for gone (``lease-expired``) and the run is torn down. Past the deadline a lease-mode
guardian has no controller to signal, so it stops the run's processes itself.

It runs from a copy of the module payload (see :func:`spawn`), so it needs nothing from the
controller once started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import load_redactor
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import interrupted_document
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import (
    GUARDIAN_MARK, STATUS_RUNNING, STATUS_TORN_DOWN, Ledger, now_iso, pid_alive, read_json, write_json_atomic)
from ansible_collections.coopcloud.canon.plugins.module_utils._run_processes import (
    RUN_ENV, ancestry, kill_run_processes, run_processes)
from ansible_collections.coopcloud.canon.plugins.module_utils._teardown import teardown_run


def watch(ledger: Ledger, run_id: str, watch_pid: int, deadline: float | None, poll: float = 0.5,
          lease: float = 0.0, activity=None, clock=time.time, sleep=time.sleep) -> str:
    """Wait until the run ends by itself (returns ``"done"``) or its controller is gone.

    With a controller to watch (``watch_pid``): ``"controller-died"`` when it dies; past
    ``deadline`` it is sent SIGTERM, and ``"deadline"`` is returned once it has exited.

    With none (``watch_pid`` 0, a server reached over SSH): ``"lease-expired"`` once ``lease``
    seconds pass in which ``activity()`` never said a process of the run was running (by
    default: one carrying ``CANON_RUN_ID=<run_id>``, see :func:`run_processes`), and
    ``"deadline"`` at once past ``deadline``.
    """
    if not watch_pid and lease <= 0:
        raise ValueError("a guardian needs a controller pid to watch or a lease")
    if activity is None:
        def activity():
            return bool(run_processes(run_id, exclude=ancestry()))
    sent_term = False
    last_seen = clock()
    recorded = float("-inf")
    while True:
        record = ledger.get(run_id)
        if record is None or record.get("status") != STATUS_RUNNING:
            return "done"
        now = clock()
        if watch_pid:
            if not pid_alive(watch_pid):
                return "deadline" if sent_term else "controller-died"
            if deadline and not sent_term and now > deadline:
                ledger.update(run_id, deadline_hit=now_iso())
                try:
                    os.kill(watch_pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                sent_term = True
        else:
            if activity():
                last_seen = now
                if now - recorded >= 30:  # for people reading the ledger; not what liveness reads
                    try:
                        ledger.update(run_id, lease_seen=now_iso())
                    except KeyError:   # the run's own teardown forgot it a moment ago
                        return "done"
                    recorded = now
            if deadline and now > deadline:
                ledger.update(run_id, deadline_hit=now_iso())
                return "deadline"
            if now - last_seen > lease:
                return "lease-expired"
        sleep(poll)


def main(argv=None) -> int:
    # argv: canon-guardian <run_id> <state_dir> <watch_pid or 0> <deadline epoch or 0> [<lease s>]
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == GUARDIAN_MARK:
        argv = argv[1:]
    run_id, state_dir, watch_pid, deadline = argv[0], argv[1], int(argv[2]), float(argv[3])
    lease = float(argv[4]) if len(argv) > 4 else 0.0
    ledger = Ledger(state_dir)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C must not stop the guardian
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    why = watch(ledger, run_id, watch_pid, deadline or None, poll=0.5 if watch_pid else 1.0, lease=lease)
    if why == "done":
        return 0
    left = kill_run_processes(run_id)
    record = ledger.get(run_id) or {}
    ledger.update(run_id, interrupted=why, interrupted_at=now_iso(), stray_processes=left)
    if record.get("keep_on_failure"):
        ledger.update(run_id, status="kept")
        record_interruption(ledger, record, why, {"removed": {}, "locks": []})
        return 0
    redact = load_redactor(os.path.join(ledger.run_dir(run_id), "redact"))  # teardown forgets the run dir
    removed = teardown_run(ledger, run_id, final_status=STATUS_TORN_DOWN)
    record_interruption(ledger, record, why, removed, redact)
    return 0


TIER_MARK = "tier"   # <results>/<run id>/tier: the tier the lifecycle is in (roles/lifecycle/tasks/tier.yml)


def record_interruption(ledger: Ledger, record: dict, why: str, teardown: dict, redact=None) -> str | None:
    """Write the interrupted run's ``result.json`` into its results folder (the ledger's
    ``results_dir``, given by the lifecycle to canon_run), so the run does not vanish from every
    record once the teardown forgot it. Returns the path, or None when the run has no results
    folder on this host (a claim without ``results_dir``)."""
    results = record.get("results_dir")
    run_id = record.get("run_id")
    if not results or not run_id:
        return None
    folder = os.path.join(results, run_id)
    try:
        with open(os.path.join(folder, TIER_MARK), encoding="utf-8") as fh:
            tier = fh.read().strip() or None
    except OSError:
        tier = None
    path = os.path.join(folder, "result.json")
    doc = interrupted_document(record, why, now_iso(), tier, teardown, read_json(path, None))
    if redact is not None:
        doc = json.loads(redact(json.dumps(doc)))
    os.makedirs(folder, exist_ok=True)
    write_json_atomic(path, doc)
    return path


def payload_root(module_file: str) -> str:
    """The directory or zip file that holds ``ansible_collections`` for ``module_file``."""
    marker = os.sep + "ansible_collections" + os.sep
    idx = module_file.rfind(marker)
    if idx < 0:
        raise RuntimeError("cannot locate ansible_collections above %s" % module_file)
    return module_file[:idx]


def spawn(ledger: Ledger, run_id: str, watch_pid: int, deadline: float, lease: float = 0.0) -> int:
    """Start the guardian detached from Ansible (new session, no inherited pipes). With
    ``watch_pid`` 0 it holds the run on a ``lease`` (see :func:`watch`)."""
    root = payload_root(os.path.abspath(__file__))
    run_dir = ledger.run_dir(run_id)
    if os.path.isfile(root):  # running from an AnsiballZ payload zip, which Ansible deletes after the task
        copy = os.path.join(run_dir, "guardian-payload.zip")
        shutil.copyfile(root, copy)
        root = copy
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            "from ansible_collections.coopcloud.canon.plugins.module_utils._guardian import main; "
            "sys.exit(main(sys.argv[2:]))")
    env = {k: v for k, v in os.environ.items() if k != RUN_ENV and not k.startswith("ANSIBLE_")}
    log = open(os.path.join(run_dir, "guardian.log"), "ab")
    proc = subprocess.Popen(
        [sys.executable, "-c", code, root, GUARDIAN_MARK, run_id, ledger.state_dir, str(watch_pid),
         str(deadline or 0), str(lease or 0)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True, close_fds=True,
        cwd="/")
    log.close()
    return proc.pid
