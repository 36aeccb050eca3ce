#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_outcome
short_description: Say whether a playbook's runs passed, were red, or could not say (INFRA)
description:
  - Reads the runs' outcomes (C(canon_outcomes), which the lifecycle role collects) and ends the
    play with the verdict C(canon isolate) gives - every run passed; a run could not say anything
    about the recipe (its outcome is C(infra) - the server failed - or C(harness-error) - the
    harness's own task broke); or red.
  - With I(kind=promote) it reads promote records instead (C(canon_promotions), which the promote
    role collects; the keys of C(promote.json)) - C(promoted), C(promoted-by-fallback) and
    C(current) pass; C(infra) and C(harness-error) could not say anything about the recipe, as
    the C(canon) sweep reads them; C(failed), C(refused) and any other outcome are red.
    C(playbooks/promote.yml) ends with it.
  - Runs on the controller as an action plugin. For INFRA it marks the host unreachable, so
    C(ansible-playbook) exits C(4) (its HOST_UNREACHABLE code) instead of C(2) (a failed host) -
    a code of its own, as C(canon) has C(3) for infra. The message says C(INFRA (<signature>)) or
    C(HARNESS ERROR in <tier> task '<task>') (C(promote) for a promotion).
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
attributes:
  check_mode:
    support: full
    description: It only reads its input.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: It changes nothing.
options:
  outcomes:
    description:
      - I(kind=run) - the runs, each with C(outcome), C(results), and C(infra), C(harness_error), C(level_text) when known.
      - I(kind=promote) - the promote records, each with C(outcome), C(results) (the path of its
        C(promote.json)) or C(run_id), and C(infra), C(harness_error), C(in_place_error),
        C(fallback_error) when known.
    type: list
    elements: dict
    required: true
  kind:
    description: What I(outcomes) are - lifecycle runs or promote records.
    type: str
    choices: [run, promote]
    default: run
"""

EXAMPLES = r"""
- name: Every run passed
  coopcloud.canon.canon_outcome:
    outcomes: "{{ canon_outcomes }}"

- name: Promotion is its own outcome
  coopcloud.canon.canon_outcome:
    kind: promote
    outcomes: "{{ canon_promotions }}"
"""

RETURN = r"""
status:
  description: C(pass), C(red) or C(infra).
  type: str
  returned: always
msg:
  description: The runs (or promotions) that did not pass and why, or the ones that passed.
  type: str
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import promote_runs, runs_verdict
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule


def main():
    # Reached only when the action plugin is bypassed: the same verdict, without the exit code.
    m = CanonModule(AnsibleModule, dict(
        outcomes=dict(type="list", elements="dict", required=True),
        kind=dict(type="str", default="run", choices=["run", "promote"]),
    ), supports_check_mode=True)
    outcomes = m.params["outcomes"]
    verdict = runs_verdict(promote_runs(outcomes) if m.params["kind"] == "promote" else outcomes)
    if verdict["status"] != "pass":
        m.fail(msg=verdict["msg"], status=verdict["status"])
    m.exit(changed=False, msg=verdict["msg"], status=verdict["status"])


if __name__ == "__main__":
    main()
