#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_lock
short_description: Take or release a harness lock on a server (e.g. the heavy-recipe lock)
description:
  - >-
    Two heavy recipes (a first boot that eats the node for minutes) never deploy at once: a run
    takes the C(heavy) lock before its deploy and waits while another live run holds it.
  - A lock belongs to a run in the ledger. A lock whose run is no longer live (its guardian is
    gone) is stale and is taken over. Every lock of a run is released by its teardown, on every
    exit path, so releasing here is an optimisation, not a duty.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_canon
  - coopcloud.canon.canon
attributes:
  check_mode:
    support: full
    description: Reports whether the lock is free without taking it.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Taking a lock the run already holds changes nothing.
options:
  name:
    description: The lock, e.g. C(heavy).
    type: str
    required: true
  run_id:
    description: The run taking or releasing it.
    type: str
    required: true
  state:
    description: C(acquired) or C(released).
    type: str
    choices: [acquired, released]
    default: acquired
  wait:
    description: Seconds to wait for a lock another live run holds before failing.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Heavy recipes deploy one at a time
  coopcloud.canon.canon_lock:
    name: heavy
    run_id: "{{ canon_run.run_id }}"
    state_dir: /var/lib/canon-bench/state
"""

RETURN = r"""
waited:
  description: Seconds spent waiting for the lock.
  type: float
  returned: always
holders:
  description: The runs that held it while this one waited.
  type: list
  elements: str
  returned: always
"""

import re
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule


def main():
    m = CanonModule(AnsibleModule, dict(
        name=dict(type="str", required=True), run_id=dict(type="str", required=True),
        state=dict(type="str", default="acquired", choices=["acquired", "released"]),
        wait=dict(type="int", default=3600),
    ), groups=("canon",), names=("run_id",), supports_check_mode=True)
    p = m.params
    if not re.match(r"^[a-z0-9][a-z0-9-]{0,62}\Z", p["name"]):
        m.fail(msg="lock name %r: lowercase letters, digits and hyphens only" % p["name"])
    ledger = Ledger(p["state_dir"])
    held = (ledger.locks().get(p["name"]) or {}).get("run_id")
    if p["state"] == "released":
        if held != p["run_id"]:
            m.exit(changed=False, waited=0.0, holders=[])
        if not m.check_mode:
            ledger.release_lock(p["name"], p["run_id"])
        m.exit(changed=True, waited=0.0, holders=[])
    if held == p["run_id"]:
        m.exit(changed=False, waited=0.0, holders=[])
    if m.check_mode:
        m.exit(changed=True, waited=0.0, holders=[held] if held else [])
    start = time.monotonic()
    holders = []
    while True:
        ok, holder = ledger.try_lock(p["name"], p["run_id"])
        if ok:
            break
        if holder not in holders:
            holders.append(holder)
        if time.monotonic() - start > p["wait"]:
            m.fail(msg="lock %s still held by %s after %d s" % (p["name"], holder, p["wait"]),
                   holders=holders, waited=round(time.monotonic() - start, 1))
        time.sleep(2)
    m.exit(changed=True, waited=round(time.monotonic() - start, 1), holders=holders)


if __name__ == "__main__":
    main()
