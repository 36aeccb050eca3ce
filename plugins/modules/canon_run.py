#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_run
short_description: Claim a harness run - id, private ABRA_DIR, cold domains, ledger entry, guardian
description:
  - Validates the recipe name, server, domains and the abra binary before anything is created;
    a bad input fails with the reason and leaves nothing behind.
  - Reaps runs whose controller died without tearing down (the janitor), then refuses to start
    while other harness runs are live on the server when I(exclusive=true) (isolation).
  - Allocates short cold domains C(<recipe[:4]>-<6 hex>.<base_domain>) that are checked against
    DNS and certificate limits, protected domains, every app C(.env) on every server, every
    deployed stack and every domain another run claimed.
  - >-
    Records the run in the ledger (before anything is deployed) and starts the run guardian: a
    detached process that tears the run down if the controller dies (SIGINT, SIGTERM, SIGKILL)
    and sends the controller SIGTERM when the run deadline passes.
  - >-
    On a server reached over SSH no C(ansible-playbook) process is above the module, so the
    guardian holds the run on a lease instead (I(lease)): every task of the run carries
    C(CANON_RUN_ID) in its environment, and while one of them is seen running on the server the
    run is live. Once none has been seen for I(lease) seconds the controller is taken for gone
    and the run is torn down; past the deadline the guardian stops the run's processes itself.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_canon
  - coopcloud.canon.canon
attributes:
  check_mode:
    support: full
    description: Validates and plans the domains; records nothing and starts no guardian.
  diff_mode:
    support: none
  idempotent:
    support: none
    description: Not idempotent; every call claims a new run.
options:
  recipe:
    description: The recipe to run.
    type: str
    required: true
  server:
    description: The abra server.
    type: str
    default: default
  abra_dir:
    description: The shared C(ABRA_DIR); the run gets its own with a link to its C(servers/).
    type: path
    required: true
  abra_bin:
    description: The abra binary.
    type: path
    default: abra
  docker_bin:
    description: The docker CLI.
    type: path
    default: docker
  docker_context:
    description:
      - The docker context that reaches the server's swarm; recorded with the run so its teardown reaches the same engine (abra reaches a server through the
        docker context named after it). Empty means docker's own current context.
    type: str
    default: ""
  base_domain:
    description: Cold domains are made under this domain.
    type: str
    required: true
  domain:
    description: Use this domain for the base app instead of a generated one (still checked).
    type: str
  domain_roles:
    description: One cold domain is allocated per role (C(base) for the install tier, C(upgrade) for the upgrade tier).
    type: list
    elements: str
    default: [base]
  protected_domains:
    description: Live services the harness may never touch or deploy onto.
    type: list
    elements: str
    default: []
  exclusive:
    description: Refuse to start while other harness runs are live on the server.
    type: bool
    default: true
  keep_on_failure:
    description: Recorded for the guardian; an interrupted run is then kept, not torn down.
    type: bool
    default: false
  deadline:
    description: Seconds after which the guardian stops the run (SIGTERM to the controller). 0 for none.
    type: int
    default: 3600
  lease:
    description:
      - Seconds a run with no C(ansible-playbook) above the module (a server reached over SSH)
        stays live while no process of the run is running on the server. Longer than the longest
        step the controller runs on its own between two tasks on the server (a custom suite runs
        on the controller).
      - C(0) starts no guardian for such a run; it is then live for its first 120 seconds only.
    type: int
    default: 900
  run_id:
    description: An explicit run id; generated when omitted.
    type: str
  watch_pid:
    description: The controller pid the guardian watches; found automatically (the top-most C(ansible-playbook) ancestor).
    type: int
  results_dir:
    description:
      - The folder that holds the run's results folder (C(<results_dir>/<run_id>/result.json)) on this host.
      - When the run is interrupted (its controller died, its lease expired, its deadline passed) the guardian,
        or the next run's janitor, writes C(result.json) there with outcome C(interrupted), what stopped it,
        the tier it was in and what its teardown removed. Without it an interrupted run leaves no result.
    type: path
"""

EXAMPLES = r"""
- name: Claim a run
  coopcloud.canon.canon_run:
    recipe: custom-html
    state_dir: /var/lib/canon-bench/state
    abra_dir: /var/lib/canon-bench/abra
    abra_bin: /var/lib/canon-bench/bin/abra
    base_domain: bench.canon.test
    domain_roles: [base, upgrade]
  register: run
"""

RETURN = r"""
run_id:
  description: The run's id.
  type: str
  returned: always
run_dir:
  description: The run's private state directory.
  type: str
  returned: always
run_abra_dir:
  description: The run's own C(ABRA_DIR).
  type: str
  returned: always
redact_file:
  description: The run's private list of secret values to scrub.
  type: str
  returned: always
domains:
  description: Domain per role.
  type: dict
  returned: always
guardian_pid:
  description: The guardian's pid; null when no guardian was started (no controller above the module and I(lease=0)).
  type: int
  returned: success
guardian_mode:
  description: C(controller) (it watches the C(ansible-playbook) above the module) or C(lease) (see I(lease)).
  type: str
  returned: when a guardian was started
reaped:
  description: Runs of dead controllers that were torn down first.
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_
from ansible_collections.coopcloud.canon.plugins.module_utils._run import RunRefused, check_inputs, start_run


def main():
    m = CanonModule(AnsibleModule, dict(
        recipe=dict(type="str", required=True),
        server=dict(type="str", default="default"),
        abra_dir=dict(type="path", required=True),
        abra_bin=dict(type="path", default="abra"),
        docker_bin=dict(type="path", default="docker"),
        docker_context=dict(type="str", default=""),
        base_domain=dict(type="str", required=True),
        domain=dict(type="str"),
        domain_roles=dict(type="list", elements="str", default=["base"]),
        protected_domains=dict(type="list", elements="str", default=[]),
        exclusive=dict(type="bool", default=True),
        keep_on_failure=dict(type="bool", default=False),
        deadline=dict(type="int", default=3600),
        lease=dict(type="int", default=900),
        run_id=dict(type="str"),
        watch_pid=dict(type="int"),
        results_dir=dict(type="path"),
    ), groups=("canon",), supports_check_mode=True)
    with m.failing(NameError_, RunRefused):
        check_inputs(m.params)   # the names and every other input first: a bad input runs nothing
        run = start_run(m.params, set(m.docker.stack_names()), check_mode=m.check_mode)
    m.exit(changed=not m.check_mode, **run)


if __name__ == "__main__":
    main()
