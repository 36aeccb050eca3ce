#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: swarm_converge
short_description: Watch a deployed stack converge, and tell a slow deploy from a wedged one
description:
  - Polls the app's stack (services, tasks, task containers' health and logs) until it
    converges or one of the failure verdicts is reached. Meant to run after
    C(abra app deploy --no-converge-checks), instead of abra's timeout-only wait.
  - Converged means every service runs its desired replicas, healthy where a healthcheck exists,
    with no update in progress and, when I(version) is given, the C(coop-cloud.<stack>.version)
    label as expected.
  - Progress is a task state change, a new task, a change of running replicas, a health status
    change, an update state change, or a new distinct log line (timestamps stripped, so a line
    printed again is not progress, while C(step 7/20) then C(step 8/20) is). No progress for
    I(wedge_window) seconds is C(wedged), however long I(timeout) is.
  - A crash loop (I(crashloop_restarts) failed tasks of one service within I(wedge_window)) and a
    rolled back or paused update fail as soon as they are seen, not at the timeout.
  - On any verdict but C(converged) it writes evidence into I(evidence_dir)/converge/<domain>/
    (C(docker service ps --no-trunc), task errors, health probe output, last log lines, the
    verdict), scrubbed of the run's secret values, and fails with a message naming the verdict.
  - Never changes anything.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Only reads the swarm; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes anything (C(changed=false)).
options:
  domain:
    description: The app's domain; its stack is the domain with dots turned into underscores, cut to 45 characters.
    type: str
    required: true
  timeout:
    description: Seconds to wait for convergence while the deploy keeps progressing.
    type: int
    default: 300
  wedge_window:
    description:
      - Seconds without any progress after which the deploy is declared C(wedged).
      - Also the window in which failed tasks count towards a crash loop.
    type: int
    default: 120
  crashloop_restarts:
    description: Failed tasks of one service within I(wedge_window) that make a crash loop.
    type: int
    default: 3
  poll:
    description: Seconds between two observations of the stack.
    type: float
    default: 2
  version:
    description:
      - The C(coop-cloud.<stack>.version) label the services must carry to count as converged
        (the release being deployed). Not checked when unset.
    type: str
notes:
  - Log lines come from the task containers' own logs (C(docker logs --since)), read
    incrementally, because C(docker service logs) shows nothing of a task whose healthcheck has not
    passed yet, which is where a slow first boot spends its time. A container on another
    node falls back to C(docker service logs --since --timestamps --raw).
"""

EXAMPLES = r"""
- name: Deploy without abra's timeout-only wait
  coopcloud.canon.abra_app:
    domain: disc-1a2b3c.ci.example.org
    state: deployed
    converge_checks: false

- name: Wait for it, failing fast on a wedge, a crash loop or a rollback
  coopcloud.canon.swarm_converge:
    domain: disc-1a2b3c.ci.example.org
    timeout: 2400
    wedge_window: 300
    version: 3.2.0+v3.3.1
    evidence_dir: "{{ canon_run_results }}/evidence"
  register: converge
"""

RETURN = r"""
verdict:
  description: converged, wedged, crashloop, rolled-back, timeout or no-services.
  type: str
  returned: always
  sample: wedged
msg:
  description: The verdict with its evidence, and where the evidence was written.
  sample: "wedged: no progress for 60 s (last: 'waiting for smtp.invalid:25' 61 s ago); evidence: /r/converge/d.example.org"
  type: str
  returned: always
elapsed:
  description: Seconds from the first observation to the verdict.
  type: float
  returned: always
polls:
  description: How many times the stack was observed.
  type: int
  returned: always
progress_events:
  description: How many progress events were seen, and the last few (kind, service, detail, time in seconds since the start).
  type: dict
  returned: always
  sample: {"count": 12, "last": [{"kind": "log", "service": "app", "detail": "step 8/20", "time": 16.2}]}
last_progress_age:
  description: Seconds since the last progress event when the verdict was reached.
  type: float
  returned: always
longest_quiet:
  description: The longest stretch, in seconds, without progress during the watch (how close a slow deploy came to I(wedge_window)).
  type: float
  returned: always
replicas:
  description: Per service, running, desired and healthy task counts, update state and version label.
  type: dict
  returned: always
  sample: {"app": {"running": 1, "desired": 1, "healthy": 1, "update_state": null, "version": "1.1.0+1.37"}}
waiting_for:
  description: Per service, why it had not converged at the last observation (empty once converged).
  type: dict
  returned: always
task_errors:
  description: Per service, the distinct task errors swarm reported.
  type: dict
  returned: always
last_health_output:
  description: Per service, the output of the newest healthcheck probe.
  type: dict
  returned: always
last_log_lines:
  description: Per service, the last log lines seen (timestamps stripped by docker's prefix only).
  type: dict
  returned: always
failures_in_window:
  description: Per service, the failed tasks counted towards a crash loop at the last observation.
  type: dict
  returned: always
stack:
  description: The stack watched.
  type: str
  returned: always
evidence:
  description: The evidence files written (only when the verdict is not converged and evidence_dir is set).
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._converge import (
    CONVERGED, watch, write_evidence)
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError


def _redact(value, redactor):
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, dict):
        return {k: _redact(v, redactor) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact(v, redactor) for v in value]
    return value


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True), timeout=dict(type="int", default=300),
        wedge_window=dict(type="int", default=120), crashloop_restarts=dict(type="int", default=3),
        poll=dict(type="float", default=2), version=dict(type="str"),
    ), groups=("abra",), names=("domain", "version"), supports_check_mode=True)
    p = m.params
    if p["timeout"] <= 0 or p["wedge_window"] <= 0 or p["crashloop_restarts"] < 1 or p["poll"] <= 0:
        m.fail(msg="timeout, wedge_window and poll must be positive, crashloop_restarts at least 1")
    docker, evidence = m.docker, m.evidence
    try:
        report, observer = watch(docker, p["domain"], p["timeout"], p["wedge_window"], p["crashloop_restarts"],
                                 p["poll"], p["version"])
        files = []
        if report["verdict"] != CONVERGED:
            files = write_evidence(docker, evidence, p["domain"], report, observer)
    except CommandError as exc:
        m.fail(exc)
    report = _redact(report, evidence.redactor)
    msg = report.pop("message")
    if report["verdict"] != CONVERGED:
        if evidence.directory:
            msg += "; evidence: %s" % evidence.path("converge", p["domain"])
        m.fail(msg=msg, changed=False, evidence=files, **report)
    m.exit(msg=msg, changed=False, evidence=files, **report)


if __name__ == "__main__":
    main()
