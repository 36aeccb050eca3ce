#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_evidence
short_description: Capture an app's swarm state and logs into the run's evidence bundle
description:
  - For each domain, writes C(abra app ps), C(docker service ps --no-trunc) and
    C(docker service inspect) of every service, every task's error, and the last service log
    lines into I(evidence_dir)/I(label)/<domain>/, scrubbed of the run's secret values.
  - Meant to run before teardown, on success and failure alike.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  idempotent:
    support: none
    description: Writes files into the bundle; the swarm is only read.
options:
  domains:
    description: The apps to capture.
    type: list
    elements: str
    required: true
  label:
    description: Subdirectory of the bundle, e.g. the tier or step the capture belongs to.
    type: str
    default: final
  log_lines:
    description: Log lines kept per service.
    type: int
    default: 500
"""

EXAMPLES = r"""
- name: Capture evidence before teardown
  coopcloud.canon.canon_evidence:
    domains: "{{ canon_run.domains.values() | list }}"
    evidence_dir: "{{ canon_run_results }}/evidence"
"""

RETURN = r"""
files:
  description: The files written.
  type: list
  elements: str
  returned: always
task_errors:
  description: Per service, the non-empty task errors swarm reported.
  type: dict
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name


def main():
    m = CanonModule(AnsibleModule, dict(
        domains=dict(type="list", elements="str", required=True),
        label=dict(type="str", default="final"), log_lines=dict(type="int", default=500),
    ), groups=("abra",), names=(("domains", "domain"),), supports_check_mode=False)
    p = m.params
    if not p["evidence_dir"]:
        m.fail(msg="evidence_dir (or CANON_EVIDENCE_DIR) is required")
    abra, docker, evidence = m.abra, m.docker, m.evidence
    abra.log = None  # the captures below are the evidence; no per-command copies
    files, task_errors = [], {}
    with m.failing():
        for domain in p["domains"]:
            sub = "%s/%s" % (p["label"], domain)
            ps = abra.ps(domain)
            files.append(evidence.write("abra-app-ps.txt", "exit %d\n%s\n%s" % (ps.rc, ps.stdout, ps.stderr), sub))
            services = docker.services(stack_name(domain))
            if not services:
                files.append(evidence.write("services.txt", "no services deployed for %s\n" % domain, sub))
            for svc in services:
                name = svc["Spec"]["Name"]
                files.append(evidence.write("%s.service-ps.txt" % name, docker.service_ps(name), sub))
                files.append(evidence.write("%s.inspect.json" % name, json.dumps(svc, indent=2), sub))
                files.append(evidence.write("%s.logs.txt" % name, docker.service_logs(name, p["log_lines"]), sub))
                errors = sorted({t.get("Error", "") for t in docker.service_tasks(name) if t.get("Error")})
                if errors:
                    task_errors[name] = [evidence.redactor(e) for e in errors]
    m.exit(changed=True, files=[f for f in files if f], task_errors=task_errors)


if __name__ == "__main__":
    main()
