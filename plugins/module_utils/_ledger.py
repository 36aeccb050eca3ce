# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The harness's ledger: what each run created, and the locks it holds.

Layout under the state directory (one per abra host)::

    state/
      .mutex                    flock'd around every read-modify-write
      runs/<run-id>/run.json    the run record: recipe, server, domains it claimed, status,
                                its guardian's pid; written *before* anything is created
      runs/<run-id>/abra/       the run's own ABRA_DIR (fresh recipes/, shared servers/)
      runs/<run-id>/redact      values to scrub from evidence (mode 0600, removed on release)
      locks/<name>.json         a lock: which run holds it

A run is *live* while its guardian process runs. Teardown and the janitor only ever act on
what a ledger records, and never on a live run that is not their own.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile

from ansible_collections.coopcloud.canon.plugins.module_utils._flock import flocked

GUARDIAN_MARK = "canon-guardian"

STATUS_RUNNING = "running"
STATUS_FINISHED = "finished"      # the run ended and tore down what it created
STATUS_KEPT = "kept"              # keep-on-failure: resources left on purpose
STATUS_TORN_DOWN = "torn-down"    # torn down by the guardian or the janitor after the run died


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_json_atomic(path: str, data, mode: int = 0o644) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_json(path: str, default=None):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return default


def pid_alive(pid) -> bool:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as fh:
            if fh.read().split(")")[-1].split()[0] == "Z":
                return False
    except OSError:
        pass
    return True


def guardian_alive(pid, run_id: str) -> bool:
    """True when ``pid`` is the guardian of ``run_id`` (not a recycled pid)."""
    if not pid_alive(pid):
        return False
    try:
        with open("/proc/%d/cmdline" % int(pid), "rb") as fh:
            cmd = fh.read().split(b"\0")
    except OSError:
        return False
    return GUARDIAN_MARK.encode() in cmd and run_id.encode() in cmd


class Ledger:
    def __init__(self, state_dir: str):
        self.state_dir = os.path.abspath(state_dir)
        self.runs_dir = os.path.join(self.state_dir, "runs")
        self.locks_dir = os.path.join(self.state_dir, "locks")

    # -- mutual exclusion --------------------------------------------------------------------
    @contextlib.contextmanager
    def mutex(self):
        os.makedirs(self.state_dir, exist_ok=True)
        with flocked(os.path.join(self.state_dir, ".mutex")):
            yield

    # -- runs ------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> str:
        return os.path.join(self.runs_dir, run_id)

    def run_path(self, run_id: str) -> str:
        return os.path.join(self.run_dir(run_id), "run.json")

    def get(self, run_id: str) -> dict | None:
        return read_json(self.run_path(run_id))

    def put(self, record: dict) -> None:
        record["updated"] = now_iso()
        write_json_atomic(self.run_path(record["run_id"]), record)

    def update(self, run_id: str, **changes) -> dict:
        with self.mutex():
            record = self.get(run_id)
            if record is None:
                raise KeyError("no run %s in the ledger" % run_id)
            record.update(changes)
            self.put(record)
            return record

    def add_domain(self, run_id: str, domain: str, role: str) -> dict:
        """Record a domain *before* anything is created on it."""
        with self.mutex():
            record = self.get(run_id)
            if record is None:
                raise KeyError("no run %s in the ledger" % run_id)
            domains = record.setdefault("domains", {})
            if domains.get(role) != domain:
                domains[role] = domain
                self.put(record)
            return record

    def runs(self) -> list:
        if not os.path.isdir(self.runs_dir):
            return []
        out = []
        for name in sorted(os.listdir(self.runs_dir)):
            rec = self.get(name)
            if rec:
                out.append(rec)
        return out

    def is_live(self, record: dict) -> bool:
        return record.get("status") == STATUS_RUNNING and guardian_alive(record.get("guardian_pid"), record["run_id"])

    def live_runs(self, server: str | None = None, exclude: str | None = None) -> list:
        return [r for r in self.runs() if self.is_live(r) and r["run_id"] != exclude
                and (server is None or r.get("server") == server)]

    def forget(self, run_id: str) -> None:
        """Remove a run's directory (its private ABRA_DIR, redaction list); keeps nothing."""
        shutil.rmtree(self.run_dir(run_id), ignore_errors=True)

    # -- locks -----------------------------------------------------------------------------
    def lock_path(self, name: str) -> str:
        return os.path.join(self.locks_dir, name + ".json")

    def try_lock(self, name: str, run_id: str) -> tuple:
        """Take lock ``name`` for ``run_id``. Returns ``(True, None)`` or ``(False, holder)``.

        A lock whose holder run is no longer live is stale and is taken over.
        """
        with self.mutex():
            path = self.lock_path(name)
            held = read_json(path)
            if held and held.get("run_id") != run_id:
                holder = self.get(held["run_id"])
                if holder and self.is_live(holder):
                    return False, held["run_id"]
            if not held or held.get("run_id") != run_id:
                write_json_atomic(path, {"run_id": run_id, "since": now_iso()})
            return True, None

    def release_lock(self, name: str, run_id: str) -> bool:
        """Release lock ``name`` if ``run_id`` holds it."""
        with self.mutex():
            held = read_json(self.lock_path(name))
            if held and held.get("run_id") == run_id:
                os.unlink(self.lock_path(name))
                return True
        return False

    def release_locks(self, run_id: str) -> list:
        released = []
        with self.mutex():
            if not os.path.isdir(self.locks_dir):
                return released
            for fname in sorted(os.listdir(self.locks_dir)):
                path = os.path.join(self.locks_dir, fname)
                held = read_json(path)
                if held and held.get("run_id") == run_id:
                    os.unlink(path)
                    released.append(fname[:-5])
        return released

    def locks(self) -> dict:
        if not os.path.isdir(self.locks_dir):
            return {}
        return {f[:-5]: read_json(os.path.join(self.locks_dir, f)) for f in sorted(os.listdir(self.locks_dir))
                if f.endswith(".json")}
