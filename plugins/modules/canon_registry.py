#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_registry
short_description: Read or record a recipe's canonical warm deploy (domain, live version, last known good)
description:
  - The registry keeps one record per recipe and server, C(<state_dir>/canon/<server>/<recipe>.json),
    written atomically under the ledger's mutex - its domain, the version that is live, its status
    (C(none), C(deploying), C(live), C(failed)), the last known good version and the last 20 events.
  - C(deploying) records an attempt to advance to I(version); the live I(version) does not change
    until C(promoted). The registry takes its own lease on the canonical domain (holder
    C(registry:<server>/<recipe>)), kept across runs and never reaped as stale, so no other
    recipe's run can take that domain.
  - C(promoted) is refused unless I(cold_result) is a green cold run (C(outcome=pass)) of exactly
    I(version) (C(versions.head)), of this recipe on this server; a canonical never moves back.
  - C(failed) records why an advance failed; the live version stays the previous one and the
    record says so.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_canon
  - coopcloud.canon.canon
attributes:
  check_mode:
    support: full
    description: Computes the record that would be written (with every refusal) and writes nothing.
  diff_mode:
    support: full
    description: The record before and after.
  idempotent:
    support: full
    description: Recording the same state twice changes nothing the second time.
options:
  server:
    description: The abra server.
    type: str
    default: default
  recipe:
    description: The recipe.
    type: str
    required: true
  state:
    description:
      - C(read) only reads; C(deploying), C(promoted) and C(failed) record; C(absent) forgets the
        canonical and releases the registry's hold on its domain (remove the app first).
    type: str
    choices: [read, deploying, promoted, failed, absent]
    default: read
  version:
    description: The release being deployed (C(deploying)) or promoted (C(promoted)); for C(failed), the attempted one (defaults to the recorded attempt).
    type: str
  commit:
    description: The recipe commit of I(version).
    type: str
  domain:
    description: The canonical warm domain (C(deploying); defaults to the recorded one).
    type: str
  lease_id:
    description: The run's lease on I(domain) (from M(coopcloud.canon.warm_domain)); checked to name that domain, recipe and server.
    type: str
  reason:
    description: Why the advance failed (C(failed)).
    type: str
  cold_result:
    description: Path to the C(result.json) of the cold run that justifies a promotion. Required for C(promoted).
    type: path
"""

EXAMPLES = r"""
- name: Where is the canonical keycloak, and what runs there
  coopcloud.canon.canon_registry:
    state_dir: /var/lib/canon-bench/state
    recipe: keycloak
  register: canonical

- name: An advance starts
  coopcloud.canon.canon_registry:
    state_dir: /var/lib/canon-bench/state
    recipe: keycloak
    state: deploying
    version: 2.1.0+26.0.5
    domain: "{{ warm.domain }}"
    lease_id: "{{ warm.lease_id }}"

- name: Promoted, on the strength of a green cold run of the same release
  coopcloud.canon.canon_registry:
    state_dir: /var/lib/canon-bench/state
    recipe: keycloak
    state: promoted
    version: 2.1.0+26.0.5
    commit: 3f2c1e0
    cold_result: "{{ cold_run_dir }}/result.json"

- name: The advance failed; the canonical stays on its previous release
  coopcloud.canon.canon_registry:
    state_dir: /var/lib/canon-bench/state
    recipe: keycloak
    state: failed
    reason: "swarm rolled the update back"
"""

RETURN = r"""
canonical:
  description:
    - The record - recipe, server, domain, version, commit, status, updated, lease (the registry's
      hold on the domain), target (the version being deployed), last_known_good (version, commit,
      at, cold_run), failure (attempted, reason, kept_version, message), history (last 20 events).
  type: dict
  returned: always
message:
  description: What the record now says, in a sentence.
  type: str
  returned: always
"""

import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import (
    LeaseRefused, RegistryRefused, advance_refusal, forget_canonical, lease_path, read_canonical, record_deploying,
    record_failed, record_promoted)


def load_cold_result(path):
    if not path:
        raise RegistryRefused("state=promoted needs cold_result: a canonical only advances after a green "
                              "cold run of that version")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError) as exc:
        raise RegistryRefused("cold_result %s cannot be read: %s" % (path, exc))
    if not isinstance(doc, dict) or not isinstance(doc.get("versions", {}), dict):
        raise RegistryRefused("cold_result %s is not a result.json (a JSON object with its versions)" % path)
    return doc


def describe(rec: dict) -> str:
    where = "%s/%s" % (rec["server"], rec["recipe"])
    if rec["status"] == "none":
        return "no canonical for %s" % where
    if rec["status"] == "failed":
        return rec.get("failure", {}).get("message") or "canonical %s failed" % where
    if rec["status"] == "deploying":
        return "canonical %s on %s: deploying %s (live: %s)" % (
            where, rec["domain"], rec["target"]["version"], rec["version"] or "none")
    return "canonical %s on %s: live at %s" % (where, rec["domain"], rec["version"])


def main():
    m = CanonModule(AnsibleModule, dict(
        server=dict(type="str", default="default"),
        recipe=dict(type="str", required=True),
        state=dict(type="str", default="read", choices=["read", "deploying", "promoted", "failed", "absent"]),
        version=dict(type="str"),
        commit=dict(type="str"),
        domain=dict(type="str"),
        lease_id=dict(type="str"),
        reason=dict(type="str"),
        cold_result=dict(type="path"),
    ), groups=("canon",), names=("server", "recipe", "version", "domain"),
        required_if=[("state", "deploying", ["version"]), ("state", "promoted", ["version"]),
                     ("state", "failed", ["reason"])], supports_check_mode=True)
    p = m.params
    ledger = Ledger(p["state_dir"])
    dry = m.check_mode
    try:
        before = read_canonical(ledger, p["server"], p["recipe"])
        # Every check that needs no lock first: a bad input creates nothing, not even the mutex.
        if p["lease_id"]:
            lease_path(ledger, p["lease_id"])
        if p["state"] == "promoted":
            cold = load_cold_result(p["cold_result"])
            why = advance_refusal(before, cold, p["version"])
            if why:
                raise RegistryRefused("refusing to promote canonical %s/%s to %s: %s"
                                      % (p["server"], p["recipe"], p["version"], why))
        if p["state"] == "read":
            after, changed = before, False
        elif p["state"] == "deploying":
            after, changed = record_deploying(ledger, p["server"], p["recipe"], p["version"], p["commit"],
                                              domain=p["domain"], lease=p["lease_id"], dry_run=dry)
        elif p["state"] == "promoted":
            after, changed = record_promoted(ledger, p["server"], p["recipe"], p["version"], p["commit"],
                                             cold, dry_run=dry)
        elif p["state"] == "absent":
            _old, changed = forget_canonical(ledger, p["server"], p["recipe"], dry_run=dry)
            after = read_canonical(ledger, p["server"], p["recipe"]) if not dry else before
        else:
            after, changed = record_failed(ledger, p["server"], p["recipe"], p["reason"], version=p["version"],
                                           dry_run=dry)
    except (RegistryRefused, LeaseRefused, NameError_) as exc:
        m.fail(exc)
    result = dict(changed=changed, canonical=after, message=describe(after))
    if m.diff:
        result["diff"] = dict(before=before, after=after)
    m.exit(**result)


if __name__ == "__main__":
    main()
