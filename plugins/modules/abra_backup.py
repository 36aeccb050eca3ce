#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: abra_backup
short_description: Take or restore a Co-op Cloud app's backup through abra
description:
  - C(state=created) runs C(abra app backup create); C(state=restored) runs C(abra app restore).
  - Both are actions, not states that can be read back, so both always report a change; in
    check mode nothing runs.
author: coopcloud.canon contributors
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Reports the change without running abra.
  diff_mode:
    support: none
  idempotent:
    description: Not idempotent, by nature; every run takes (or restores) a backup.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  state:
    description: C(created) takes a backup, C(restored) restores the latest one.
    type: str
    choices: [created, restored]
    required: true
"""

EXAMPLES = r"""
- name: Take a backup
  coopcloud.canon.abra_backup:
    domain: cust-1a2b3c.bench.canon.test
    state: created
"""

RETURN = r"""
stdout:
  description: abra's output (scrubbed of secret values).
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.coopcloud.canon.plugins.module_utils._common import (  # noqa: E402
    clients, common_argument_spec, fail_from)
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, validate_domain  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError  # noqa: E402


def main():
    spec = common_argument_spec()
    spec.update(domain=dict(type="str", required=True),
                state=dict(type="str", required=True, choices=["created", "restored"]))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        validate_domain(p["domain"])
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    if module.check_mode:
        module.exit_json(changed=True)
    abra, _docker, _evidence = clients(module)
    try:
        res = abra.backup_create(p["domain"]) if p["state"] == "created" else abra.restore(p["domain"])
    except CommandError as exc:
        fail_from(module, exc)
    module.exit_json(changed=True, stdout=abra.redactor(res.stdout))


if __name__ == "__main__":
    main()
