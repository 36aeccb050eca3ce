# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verdict over a playbook's runs (or promotions), with an exit code of its own for INFRA.

A module cannot choose ``ansible-playbook``'s exit code; an action plugin can mark the host
unreachable, which makes ansible-playbook exit 4 (HOST_UNREACHABLE) instead of 2 (a failed
host): the server could not take the run, which is what INFRA means. See the module's docs
(plugins/modules/canon_outcome.py)."""
from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import promote_runs, runs_verdict

KINDS = ("run", "promote")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("outcomes", "kind"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        outcomes = self._task.args.get("outcomes")
        if not isinstance(outcomes, list) or not all(isinstance(o, dict) for o in outcomes):
            raise AnsibleActionFail("outcomes must be a list of dicts (canon_outcomes), got %r" % (outcomes,))
        kind = self._task.args.get("kind", "run")
        if kind not in KINDS:
            raise AnsibleActionFail("kind must be one of %s, got %r" % (", ".join(KINDS), kind))
        verdict = runs_verdict(promote_runs(outcomes) if kind == "promote" else outcomes)
        result.update(changed=False, msg=verdict["msg"], status=verdict["status"])
        if verdict["status"] == "infra":
            result["unreachable"] = True
        elif verdict["status"] == "red":
            result["failed"] = True
        return result
