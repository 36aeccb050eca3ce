#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_teardown
short_description: Remove what harness runs created, from the ledger - idempotently
description:
  - For each run in scope, every domain the run recorded is undeployed and removed through abra
    (C(app undeploy), C(app remove)); whatever its stack still owns afterwards (services,
    volumes, secrets, configs, networks, by the C(com.docker.stack.namespace) label and the
    stack's secret prefix) and its C(.env) are removed; the run's locks are released and its
    private state deleted. Returns only after swarm has removed the networks.
  - Acts only on what the ledger records, never on names it guesses. Live runs (their guardian
    is alive) are left alone unless it is the calling run itself. Protected domains are refused.
  - A second run changes nothing.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_canon
  - coopcloud.canon.canon
attributes:
  check_mode:
    support: full
    description: Lists what would be removed.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Yes; a second run reports no change.
options:
  run_id:
    description: Tear down this run only.
    type: str
  recipe:
    description: Tear down every (not live) run of this recipe.
    type: str
  current_run_id:
    description: The run calling this module; it may tear itself down while its guardian is alive.
    type: str
  keep:
    description: Keep-on-failure - leave the run's resources in place, mark the run C(kept) and release its locks.
    type: bool
    default: false
  protected_domains:
    description: Domains that must never be touched.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Tear down everything the harness owns that no live run holds
  coopcloud.canon.canon_teardown:
    state_dir: /var/lib/canon-bench/state
"""

RETURN = r"""
removed:
  description: Per run, per domain, the objects removed (by kind).
  type: dict
  returned: always
skipped_live:
  description: Runs left alone because they are live.
  type: list
  elements: str
  returned: always
kept:
  description: Runs kept on purpose (keep-on-failure).
  type: list
  elements: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import STATUS_KEPT, Ledger
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._teardown import (
    ProtectedError, reapable_runs, teardown_run)


def main():
    m = CanonModule(AnsibleModule, dict(
        run_id=dict(type="str"),
        recipe=dict(type="str"),
        current_run_id=dict(type="str"),
        keep=dict(type="bool", default=False),
        protected_domains=dict(type="list", elements="str", default=[]),
    ), groups=("canon",), names=("run_id", "recipe"), supports_check_mode=True,
        mutually_exclusive=[["run_id", "recipe"]])
    p = m.params
    ledger = Ledger(p["state_dir"])
    act, skipped = reapable_runs(ledger, scope_run_id=p["run_id"], scope_recipe=p["recipe"],
                                 own_run_id=p["current_run_id"])
    removed, kept, changed = {}, [], False
    with m.failing(ProtectedError, RuntimeError, removed=removed):
        for run_id in act:
            if p["keep"]:
                if not m.check_mode:
                    ledger.release_locks(run_id)
                    ledger.update(run_id, status=STATUS_KEPT)
                kept.append(run_id)
                changed = True
                continue
            res = teardown_run(ledger, run_id, protected=p["protected_domains"], check_mode=m.check_mode,
                               kill_strays=run_id != p["current_run_id"])
            if res["removed"]:
                removed[run_id] = res["removed"]
            changed = changed or res["changed"]
    m.exit(changed=changed, removed=removed, skipped_live=skipped, kept=kept)


if __name__ == "__main__":
    main()
