#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: abra_recipe
short_description: Fetch a recipe, list its releases and preflight its compose chain
description:
  - Runs C(abra recipe fetch) into I(abra_dir) (a run's own C(ABRA_DIR), so runs never share a
    checkout), lists the release tags, picks the head release (I(version), else the newest) and
    the previous one (the newest older than the head).
  - Parses the head's C(.env.sample) (a malformed line is an error) and the compose files its
    C(COMPOSE_FILE) chains (with I(env) applied), and reports findings before anything is
    deployed - services referenced but not defined, services without an image, and swarm name
    budgets for I(domain) (service and network names up to 63 characters, secret and config names
    up to 64), and short names that are ambiguous on a shared network (I(shared_networks)).
  - An unknown recipe fails with abra's own message.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Runs the same; fetching only fills abra's recipe cache and changes no app.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never reports a change.
options:
  recipe:
    description: The recipe.
    type: str
    required: true
  version:
    description: The head release; the newest when omitted. Must be one of the recipe's tags.
    type: str
  domain:
    description: The domain the recipe will be deployed on, for the name budgets.
    type: str
  env:
    description: Settings the app's C(.env) will carry on top of the sample (e.g. C(COMPOSE_FILE)).
    type: dict
    default: {}
  shared_networks:
    description:
      - >-
        Check short names a service uses to reach a sibling (C(app:3000) in its environment)
        against the services other stacks run on the shared external networks (e.g. C(proxy)):
        a name another stack also answers to there is ambiguous.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Preflight custom-html
  coopcloud.canon.abra_recipe:
    recipe: custom-html
    domain: cust-1a2b3c.bench.canon.test
    abra_dir: "{{ canon_run.run_abra_dir }}"
  register: recipe
"""

RETURN = r"""
versions:
  description: Release tags, oldest first.
  type: list
  elements: str
  returned: always
head:
  description: The release the run deploys.
  type: str
  returned: always
previous:
  description: The newest release older than the head (null when none).
  type: str
  returned: always
compose_files:
  description: The compose files chained for the head.
  type: list
  elements: str
  returned: always
findings:
  description: Preflight findings, each with check, file and message.
  type: list
  elements: dict
  returned: always
lint:
  description: Lint findings on the head release, each with rule, file and message.
  type: list
  elements: dict
  returned: always
lint_rules:
  description: The lint rules checked.
  type: list
  elements: str
  returned: always
env_sample:
  description: The head's C(.env.sample) keys with their defaults (secret lengths included).
  type: dict
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraError
from ansible_collections.coopcloud.canon.plugins.module_utils._common import (
    abra_home, clients, common_argument_spec, fail_from)
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    NameError_, stack_name, validate_domain, validate_env, validate_recipe, validate_version)
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import (
    LINT_RULES, RecipeError, compose_findings, git_show, lint_findings, git_tags, load_compose_chain, parse_env_sample, previous_version)


def main():
    spec = common_argument_spec()
    spec.update(recipe=dict(type="str", required=True), version=dict(type="str"), domain=dict(type="str"),
                env=dict(type="dict", default={}), shared_networks=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        validate_recipe(p["recipe"])
        if p["version"]:
            validate_version(p["version"])
        if p["domain"]:
            validate_domain(p["domain"])
        validate_env(p["env"])
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    abra, docker, _evidence = clients(module)
    abra_dir = abra_home(p["abra_dir"])
    try:
        abra.recipe_fetch(p["recipe"])
    except AbraError as exc:
        fail_from(module, exc, msg="unknown recipe %s: %s" % (p["recipe"], exc.fata or exc))
    checkout = os.path.join(abra_dir, "recipes", p["recipe"])
    try:
        versions = git_tags(checkout)
        if not versions:
            raise RecipeError("recipe %s has no release tags" % p["recipe"])
        head = p["version"] or versions[-1]
        if head not in versions:
            raise RecipeError("recipe %s has no release %s (releases: %s)" % (p["recipe"], head, ", ".join(versions)))
        sample_text = git_show(checkout, head, ".env.sample")
        if sample_text is None:
            raise RecipeError("release %s of %s has no .env.sample" % (head, p["recipe"]))
        sample = parse_env_sample(sample_text)
        env = {k: v["value"] for k, v in sample.items() if not v["commented"]}
        env.update({k: str(v) for k, v in p["env"].items()})
        domain = p["domain"] or "%s.example.com" % p["recipe"]
        env.update(DOMAIN=domain, STACK_NAME=stack_name(domain))
        files, docs = load_compose_chain(checkout, head, env)
        shared = sorted({(v or {}).get("name") or k for d in docs.values()
                         for k, v in (d.get("networks") or {}).items() if (v or {}).get("external")})
        aliases = docker.network_aliases(shared) if p["shared_networks"] and shared else {}
        findings = compose_findings(docs, domain, env, shared_aliases=aliases)
        lint = lint_findings(docs, sample, p["recipe"], head, env["STACK_NAME"])
    except RecipeError as exc:
        module.fail_json(msg=str(exc))
    except CommandError as exc:
        fail_from(module, exc)
    module.exit_json(changed=False, versions=versions, head=head, previous=previous_version(versions, head),
                     compose_files=files, findings=findings, env_sample=sample, lint=lint,
                     lint_rules=["%s %s" % kv for kv in sorted(LINT_RULES.items())])


if __name__ == "__main__":
    main()
