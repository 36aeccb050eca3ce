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
  - >-
    With I(verify), a backup must be shown to hold real data: after C(backup create) the
    recipe's check runs in the service's container (e.g. the dump is non-empty and complete).
    A failed check waits I(verify.settle) seconds for the app to settle and takes the backup
    again, up to I(verify.attempts) times; every attempt is returned and written to the
    evidence. A backup that "succeeds" but holds nothing is a failure, not a pass.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Reports the change without running abra.
  diff_mode:
    support: none
  idempotent:
    support: none
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
  verify:
    description:
      - Only with C(state=created). C(service) (default C(app)), C(command) (argv run in its
        container; exit 0 means the captured data is real), C(attempts) (default 3), C(settle)
        (seconds before a re-take, default 5).
    type: dict
"""

EXAMPLES = r"""
- name: Take a backup
  coopcloud.canon.abra_backup:
    domain: cust-1a2b3c.bench.canon.test
    state: created
"""

RETURN = r"""
attempts:
  description: With I(verify), each attempt's backup output and check result.
  type: list
  elements: dict
  returned: when verify is set
stdout:
  description: abra's output (scrubbed of secret values).
  type: str
  returned: success
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, stack_name, validate_service
from ansible_collections.coopcloud.canon.plugins.module_utils._settings import (
    BACKUP_VERIFY_DEFAULTS, SettingsError, BACKUP_VERIFY_TYPES, check_types)

import time


def verified_backup(abra, docker, evidence, domain, verify, sleep=time.sleep):
    """Take backups until the recipe's check passes or the attempts run out."""
    attempts = []
    for n in range(1, verify["attempts"] + 1):
        res = abra.backup_create(domain)
        container = docker.running_container(stack_name(domain), verify["service"])
        if container is None:
            check = {"rc": None, "output": "no running container of %s" % verify["service"]}
        else:
            out = docker.exec(container, verify["command"], check=False)
            check = {"rc": out.rc, "output": (out.stdout + out.stderr).strip()[-500:]}
        ok = check["rc"] == 0
        attempts.append({"attempt": n, "backup": abra.redactor(res.stdout.strip()[-300:]), "verified": ok,
                         "check": check})
        if ok:
            break
        if n < verify["attempts"]:
            sleep(verify["settle"])
    evidence.write("backup-verify.txt", "\n".join(
        "attempt %(attempt)d: %(verified)s\n  backup: %(backup)s\n  check: %(check)s" % a for a in attempts) + "\n",
        subdir="backup/%s" % domain)
    return attempts


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True),
        state=dict(type="str", required=True, choices=["created", "restored"]),
        verify=dict(type="dict"),
    ), groups=("abra",), names=("domain",), supports_check_mode=True)
    p = m.params
    verify = None
    if p["verify"]:
        try:
            check_types("verify", p["verify"], BACKUP_VERIFY_TYPES)
        except SettingsError as exc:
            m.fail(exc)
        verify = dict(BACKUP_VERIFY_DEFAULTS, **p["verify"])
        if not verify["command"] or p["state"] != "created":
            m.fail(msg="verify needs a command, and only applies to state=created")
        if not all(isinstance(a, str) for a in verify["command"]):
            m.fail(msg="verify.command must be an argv list of strings, not %r" % (verify["command"],))
        if verify["attempts"] < 1 or verify["settle"] < 0:
            m.fail(msg="verify.attempts must be at least 1 and verify.settle not negative (%d, %d)"
                   % (verify["attempts"], verify["settle"]))
        try:
            validate_service(verify["service"], "verify.service")
        except NameError_ as exc:
            m.fail(exc)
    if m.check_mode:
        m.exit(changed=True)
    with m.failing():
        if verify:
            attempts = verified_backup(m.abra, m.docker, m.evidence, p["domain"], verify)
            if not attempts[-1]["verified"]:
                m.fail(msg="the backup never held real data: %d attempt(s), the check %s kept failing: %s"
                       % (len(attempts), " ".join(verify["command"])[:120], attempts[-1]["check"]["output"]),
                       attempts=attempts)
            m.exit(changed=True, attempts=attempts, stdout=attempts[-1]["backup"])
        res = m.abra.backup_create(p["domain"]) if p["state"] == "created" else m.abra.restore(p["domain"])
    m.exit(changed=True, stdout=m.abra.redactor(res.stdout))


if __name__ == "__main__":
    main()
