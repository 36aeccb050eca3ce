#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: warm_domain
short_description: Allocate a collision-free canonical warm domain and lease it to a run
description:
  - Canonical warm deploys live in their own namespace, C(warm-canon-<recipe>.<base_domain>), or
    C(wc-<10 hex>.<base_domain>) (the first 10 hex digits of the SHA-256 of C(server|recipe))
    when the readable name breaks a rule.
    The name is deterministic per recipe and server, so a re-run finds the same canonical.
  - Before a domain is handed out it is checked against DNS (labels up to 63, names up to 253,
    letters, digits and inner hyphens), the 64-character certificate common name, abra's
    45-character stack name, swarm's name budgets for the recipe's own compose names, the
    protected domains (and everything under them), every app C(.env) under the shared
    C(ABRA_DIR)'s C(servers/) and every deployed stack (compared by stack name). A refusal
    fails with every rule the domain broke.
  - An explicit I(domain) gets the same checks.
  - C(state=leased) then leases the domain to I(run_id) under the ledger's mutex. While a live
    run (or the canonical registry of another recipe) holds it, or holds a domain with the same
    45-character stack name, the lease is refused, naming the holder. A stale lease (its run dead
    or gone) is taken over.
  - C(state=released) releases one lease, by its id.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_canon
  - coopcloud.canon.canon
  - coopcloud.canon.abra.docker_context
attributes:
  check_mode:
    support: full
    description: Computes and checks the domain and reports whether a lease would be taken; takes none.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Leasing a domain the run already holds, or releasing a lease that is gone, changes nothing.
options:
  recipe:
    description: The recipe whose canonical warm domain this is.
    type: str
    required: true
  server:
    description: The abra server.
    type: str
    default: default
  base_domain:
    description: Warm domains are made under this domain.
    type: str
    required: true
  abra_dir:
    description: The shared C(ABRA_DIR); every C(servers/*/<domain>.env) in it is an app whose domain is taken.
    type: path
    required: true
  docker_bin:
    description: The docker CLI (C(docker stack ls) lists the deployed stacks).
    type: path
    default: docker
  protected_domains:
    description: Live services; never handed out, nor any domain under them.
    type: list
    elements: str
    default: []
  domain:
    description: Ask for this domain instead of the namespace's own (still checked).
    type: str
  run_id:
    description: The run the lease is for. Required for C(state=leased).
    type: str
  state:
    description: C(leased) allocates and leases; C(released) releases I(lease_id).
    type: str
    choices: [leased, released]
    default: leased
  lease_id:
    description: The lease to release (C(state=released)).
    type: str
  compose_names:
    description:
      - The recipe's own names, for swarm's name budgets -
        C(services), C(networks) (lists of names), C(secrets), C(configs) (lists of C([name, version])).
    type: dict
"""

EXAMPLES = r"""
- name: The canonical warm domain of keycloak, leased to this run
  coopcloud.canon.warm_domain:
    recipe: keycloak
    base_domain: bench.canon.test
    state_dir: /var/lib/canon-bench/state
    abra_dir: /var/lib/canon-bench/abra
    protected_domains: [warm-keycloak.bench.canon.test]
    run_id: "{{ canon_run.run_id }}"
    compose_names:
      services: [app, db]
      secrets: [[db_password, v1], [admin_password, v1]]
  register: warm

- name: Release it
  coopcloud.canon.warm_domain:
    recipe: keycloak
    base_domain: bench.canon.test
    state_dir: /var/lib/canon-bench/state
    abra_dir: /var/lib/canon-bench/abra
    state: released
    lease_id: "{{ warm.lease_id }}"
"""

RETURN = r"""
domain:
  description: The warm domain (for C(state=released), the released lease's domain, if any).
  type: str
  returned: always
  sample: warm-canon-keycloak.bench.canon.test
lease_id:
  description: The lease (null in check mode when no lease is held yet).
  type: str
  returned: always
reused:
  description: The run already held this lease, or the domain is this recipe's existing canonical (its app or the registry records it).
  type: bool
  returned: always
hashed:
  description: The C(wc-<hex>) fallback was used because the readable name breaks a rule.
  type: bool
  returned: when state is leased
checks:
  description: The checks the domain passed, in words.
  type: list
  elements: str
  returned: when state is leased
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, validate_run_id
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import (
    LeaseRefused, WarmRefused, env_domains, lease_held_by, plan_warm_domain, read_canonical, read_lease,
    release_lease, take_lease_ex)


def released(m, ledger: Ledger) -> dict:
    lease_id = m.params["lease_id"]
    if not lease_id:
        raise LeaseRefused("state=released needs lease_id (leases are released by id only)")
    before = read_lease(ledger, lease_id)
    if before and not m.check_mode:
        release_lease(ledger, lease_id)
    return dict(changed=before is not None, domain=(before or {}).get("domain"), lease_id=lease_id, reused=False)


def leased(m, ledger: Ledger) -> dict:
    p = m.params
    if not p["run_id"]:
        raise LeaseRefused("state=leased needs run_id: a lease belongs to a run")
    validate_run_id(p["run_id"])
    canonical = read_canonical(ledger, p["server"], p["recipe"])

    def plan_with(envs, stacks):
        return plan_warm_domain(
            p["recipe"], p["server"], p["base_domain"], protected=p["protected_domains"],
            existing_env_domains=envs, deployed_stacks=stacks,
            compose_names=p["compose_names"], domain=p["domain"], canonical_domain=canonical.get("domain"))

    plan_with({}, ())   # the input's own rules (names, budgets, protected) first: a bad input runs nothing
    stacks = set(m.docker.stack_names())
    plan = plan_with(env_domains(p["abra_dir"]), stacks)
    held = lease_held_by(ledger, plan.domain, p["run_id"])
    reused = plan.reused or canonical.get("domain") == plan.domain or held is not None
    result = dict(domain=plan.domain, hashed=plan.hashed, checks=plan.checks, reused=reused)
    if m.check_mode:
        return dict(result, changed=held is None, lease_id=(held or {}).get("lease_id"))
    lease_id, taken = take_lease_ex(ledger, plan.domain, p["recipe"], p["server"], p["run_id"])
    return dict(result, changed=taken, lease_id=lease_id, reused=reused or not taken)


def main():
    m = CanonModule(AnsibleModule, dict(
        recipe=dict(type="str", required=True),
        server=dict(type="str", default="default"),
        base_domain=dict(type="str", required=True),
        abra_dir=dict(type="path", required=True),
        docker_bin=dict(type="path", default="docker"),
        docker_context=dict(type="str", default=""),
        protected_domains=dict(type="list", elements="str", default=[]),
        domain=dict(type="str"),
        run_id=dict(type="str"),
        state=dict(type="str", default="leased", choices=["leased", "released"]),
        lease_id=dict(type="str"),
        compose_names=dict(type="dict"),
    ), groups=("canon",), required_if=[("state", "released", ["lease_id"]), ("state", "leased", ["run_id"])],
        supports_check_mode=True)
    ledger = Ledger(m.params["state_dir"])
    try:
        result = leased(m, ledger) if m.params["state"] == "leased" else released(m, ledger)
    except (WarmRefused, LeaseRefused, NameError_) as exc:
        # the plan checks the names (its own rules) before any command; each rule broken is a reason
        m.fail(exc, reasons=getattr(exc, "reasons", [str(exc)]))
    except CommandError as exc:
        m.fail(exc)
    m.exit(**result)


if __name__ == "__main__":
    main()
