#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: abra_app
short_description: Create, deploy, undeploy and remove a Co-op Cloud app through abra
description:
  - Takes an abra app (one deploy of a recipe on a domain) to a wanted state by running
    C(abra app new), C(abra app secret generate --all), C(abra app deploy), C(abra app upgrade),
    C(abra app undeploy) and C(abra app remove), always with C(-n).
  - The current state is read from the app's C(.env) and the swarm before anything runs;
    C(changed) comes from comparing it with the state afterwards.
  - Docker's stack removal, which C(abra app undeploy) uses, removes the services and then at once
    the networks; a task still stopping holds its network (C(network ... is in use by task ...)).
    When that is the only reason the undeploy failed, the module waits up to 60 s for the stack's
    containers to stop, removes the networks abra could not, and says so in a warning.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Reports the abra steps that would run without running them.
  diff_mode:
    support: full
    description: Shows the app's observed state before and after.
  idempotent:
    support: partial
    description: A second run with the same arguments runs no abra command, unless I(force=true).
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  recipe:
    description: The recipe, needed when the app does not exist yet.
    type: str
  state:
    description:
      - C(present) the app exists (its C(.env)); C(deployed) it runs at I(version);
        C(undeployed) it exists and is not deployed; C(absent) it is undeployed and removed
        (secrets, volumes, C(.env)).
    type: str
    choices: [present, deployed, undeployed, absent]
    default: deployed
  version:
    description:
      - Release to create or deploy, e.g. C(1.1.0+1.37). A deployed app at an older version is
        upgraded with C(abra app upgrade); an in-place downgrade is refused.
    type: str
  secrets:
    description:
      - Generate the app's secrets when creating it (C(abra app secret generate --all --machine)).
      - The generated values are added to the run's redaction list (I(redact_file)) and never logged.
    type: bool
    default: true
  chaos:
    description: Deploy the recipe checkout as it is (C(--chaos)), ignoring the pinned version.
    type: bool
    default: false
  force:
    description: Redeploy even when already deployed (C(--force)); always reports a change.
    type: bool
    default: false
  converge_checks:
    description: Let abra wait for convergence (off means C(--no-converge-checks)).
    type: bool
    default: true
  env:
    description: Settings written into the app's C(.env) (e.g. C(COMPOSE_FILE), C(TIMEOUT)).
    type: dict
    default: {}
  timeout:
    description: Seconds allowed for one abra command before it is killed.
    type: int
    default: 3600
"""

EXAMPLES = r"""
- name: Deploy gitea 3.5.3 on a cold domain
  coopcloud.canon.abra_app:
    domain: gite-1a2b3c.example.org
    recipe: gitea
    version: 3.5.3+1.24.2-rootless
    server: example.org
    state: deployed

- name: Remove it, secrets and volumes included
  coopcloud.canon.abra_app:
    domain: gite-1a2b3c.example.org
    server: example.org
    state: absent
"""

RETURN = r"""
steps:
  description: The abra steps that ran (or would run in check mode).
  type: list
  elements: str
  returned: always
  sample: [new, deploy]
state:
  description: The app's observed state afterwards.
  type: dict
  returned: always
  contains:
    exists:
      description: Whether the app's C(.env) exists.
      type: bool
    deployed:
      description: Whether the app's stack has services.
      type: bool
    version:
      description: The deployed version label (or the C(.env) TYPE version when undeployed).
      type: str
    services:
      description: Each service's name, image, version label and update state.
      type: list
      elements: dict
stack:
  description: The swarm stack name.
  type: str
  returned: always
  sample: gite-1a2b3c_example_org
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import env_file_path
from ansible_collections.coopcloud.canon.plugins.module_utils._app import (
    env_changes, observe, plan, undeploy, write_env)
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import add_redactions
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule


def apply(m, steps):
    p = m.params
    domain = p["domain"]
    abra = m.abra
    for step in steps:
        if step == "new":
            abra.app_new(p["recipe"], p["server"], domain, version=p["version"])
            if p["secrets"]:
                abra.secret_generate(domain)
                add_redactions(p.get("redact_file"), abra.redactor.values)
        elif step == "env":
            write_env(env_file_path(m.abra_dir, p["server"], domain), p["env"])
        elif step == "deploy":
            abra.deploy(domain, version=p["version"], chaos=p["chaos"], converge_checks=p["converge_checks"],
                        timeout=p["timeout"])
        elif step == "redeploy":
            abra.deploy(domain, version=p["version"], chaos=p["chaos"], force=True,
                        converge_checks=p["converge_checks"], timeout=p["timeout"])
        elif step == "upgrade":
            abra.upgrade(domain, version=p["version"], converge_checks=p["converge_checks"], timeout=p["timeout"])
        elif step == "undeploy":
            networks = undeploy(abra, m.docker, domain)
            if networks:
                m.warn("abra app undeploy %s: swarm was still stopping a task on %s; removed once it had stopped"
                       % (domain, ", ".join(networks)))
        elif step == "remove":
            abra.remove(domain)


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True),
        recipe=dict(type="str"),
        state=dict(type="str", default="deployed", choices=["present", "deployed", "undeployed", "absent"]),
        version=dict(type="str"),
        secrets=dict(type="bool", default=True),
        chaos=dict(type="bool", default=False),
        force=dict(type="bool", default=False),
        converge_checks=dict(type="bool", default=True),
        env=dict(type="dict", default={}),
        timeout=dict(type="int", default=3600),
    ), groups=("abra",), names=("domain", "server", "recipe", "version", "env"), supports_check_mode=True)
    p = m.params
    with m.failing(ValueError, domain=p["domain"]):
        before = observe(m.abra_dir, p["server"], p["domain"], m.docker)
        if not before["exists"] and p["state"] in ("present", "deployed", "undeployed") and not p["recipe"]:
            m.fail(msg="%s does not exist; recipe is needed to create it" % p["domain"])
        env_path = env_file_path(m.abra_dir, p["server"], p["domain"])
        env_diff = env_changes(env_path, p["env"]) if before["exists"] else dict(p["env"])
        steps = plan(before, p["state"], version=p["version"], force=p["force"], env_diff=env_diff)
        if not m.check_mode:
            apply(m, steps)
            after = observe(m.abra_dir, p["server"], p["domain"], m.docker)
        else:
            after = before
    changed = bool(steps) and (m.check_mode or p["force"] or after != before or "env" in steps)
    result = dict(changed=changed, steps=steps, state=after, stack=before["stack"])
    if m.diff:
        result["diff"] = dict(before=before, after=after)
    m.exit(**result)


if __name__ == "__main__":
    main()
