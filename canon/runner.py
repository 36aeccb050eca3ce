"""One playbook run through the ansible-runner API.

Each run gets its own private data dir and ident, explicit timeouts, and its results are
gathered from the event stream (the ``canon_run``, ``canon_result`` and promote records the
playbooks produce). The private data dir holds the extra vars ansible-runner writes to disk;
it is removed in ``finally``, whatever happened.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field

import ansible_runner

from canon import ROOT

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words

PLAYBOOKS = os.path.join(ROOT, "playbooks")
# A failed task's message as the job keeps it: cut at a word with "…" (the run's evidence is whole).
MSG_LIMIT = 2000


@dataclass
class JobResult:
    ident: str
    playbook: str
    status: str                     # successful, failed, timeout, canceled, error
    rc: int
    started: float
    finished: float
    run_ids: list = field(default_factory=list)       # every canon_run claimed by the job
    domains: dict = field(default_factory=dict)       # run id -> the domains it claimed
    results: list = field(default_factory=list)       # canon_result documents, in order
    promotions: list = field(default_factory=list)    # promote records (promote.json content)
    failures: list = field(default_factory=list)      # {task, msg} of failed tasks outside rescue
    tiers_seen: list = field(default_factory=list)    # (time, tier) as the job climbed
    deprecations: list = field(default_factory=list)  # ansible-core's deprecation warnings, whole

    @property
    def duration(self) -> float:
        return round(self.finished - self.started, 1)


class Job:
    """``ansible-playbook <playbook>`` on the controller, watched through its events."""

    def __init__(self, playbook: str, extravars: dict, ident: str, inventory: str, timeout: int,
                 cancel: threading.Event | None = None, on_progress=None, envvars: dict | None = None,
                 on_tier=None):
        self.playbook = playbook
        self.extravars = dict(extravars)
        self.ident = ident
        self.inventory = inventory
        self.timeout = int(timeout)
        self.cancel = cancel or threading.Event()
        self.on_progress = on_progress
        self.on_tier = on_tier  # called with each tier record as the lifecycle role writes it
        self._tiers_told = 0
        self.envvars = dict(envvars or {})
        self.result = JobResult(ident=ident, playbook=playbook, status="pending", rc=-1, started=0.0, finished=0.0)
        self._lock = threading.Lock()

    # -- events ----------------------------------------------------------------------------
    def _event(self, event: dict) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        res = data.get("res") or {}
        task = data.get("task") or ""
        action = data.get("resolved_action") or data.get("task_action") or ""
        with self._lock:
            # A deprecation today is an error with the next ansible-core: keep each one to report.
            if "[DEPRECATION WARNING]" in (event.get("stdout") or ""):
                self.result.deprecations.append(event["stdout"].strip())
            if kind == "playbook_on_task_start" and " - " in task:
                tier = task.split(" - ", 1)[0].strip()
                if tier and (not self.result.tiers_seen or self.result.tiers_seen[-1][1] != tier):
                    self.result.tiers_seen.append((time.time(), tier))
                    if self.on_progress:
                        self.on_progress(self.ident, tier)
            if kind == "runner_on_ok":
                if action.endswith("canon_run") and res.get("run_id"):
                    if res["run_id"] not in self.result.run_ids:
                        self.result.run_ids.append(res["run_id"])
                    self.result.domains[res["run_id"]] = dict(res.get("domains") or {})
                elif action.endswith("canon_result") and isinstance(res.get("result"), dict):
                    doc = res["result"]
                    # The role writes the result twice (before and after teardown): keep the last.
                    self.result.results = [d for d in self.result.results if d.get("run_id") != doc.get("run_id")]
                    self.result.results.append(doc)
                elif action.endswith("set_fact") and isinstance(res.get("ansible_facts"), dict):
                    promos = res["ansible_facts"].get("canon_promotions")
                    if isinstance(promos, list):
                        self.result.promotions = list(promos)
                    self._tell_tiers(res["ansible_facts"].get("canon_tiers"))
            if kind == "runner_on_failed" and not data.get("ignore_errors"):
                self.result.failures.append({"task": task, "msg": clip_words(res.get("msg", ""), MSG_LIMIT)})
        return False  # the events are not kept on disk beyond the job

    def _tell_tiers(self, tiers) -> None:
        """The tier records the role appended since the last call (its ``canon_tiers`` fact
        only grows within a run; a shorter list is a new run of the same job)."""
        if not isinstance(tiers, list):
            return
        if len(tiers) < self._tiers_told:
            self._tiers_told = 0
        new, self._tiers_told = tiers[self._tiers_told:], len(tiers)
        if self.on_tier:
            for tier in new:
                if isinstance(tier, dict):
                    self.on_tier(self.ident, tier)

    # -- run -------------------------------------------------------------------------------
    def run(self) -> JobResult:
        private = tempfile.mkdtemp(prefix="canon-runner-")
        self.result.started = time.time()
        try:
            envvars = {
                "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
                "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_NOCOLOR": "1",
            }
            envvars.update(self.envvars)
            runner = ansible_runner.run(
                private_data_dir=private,
                project_dir=ROOT,
                playbook=os.path.join(PLAYBOOKS, self.playbook),
                inventory=self.inventory,
                extravars=self.extravars,
                envvars=envvars,
                ident=self.ident,
                quiet=True,
                timeout=self.timeout,
                event_handler=self._event,
                cancel_callback=self.cancel.is_set,
                settings={"suppress_ansible_output": True},
            )
            self.result.status = runner.status
            self.result.rc = runner.rc if runner.rc is not None else -1
        except Exception as exc:  # ansible-runner itself failed (not the playbook)
            self.result.status = "error"
            self.result.failures.append({"task": "ansible-runner", "msg": "%s: %s" % (type(exc).__name__, exc)})
        finally:
            self.result.finished = time.time()
            shutil.rmtree(private, ignore_errors=True)
        return self.result
