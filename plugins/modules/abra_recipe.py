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
  - Reads the head's C(.env.sample) with abra's rules (a malformed file is an error naming the
    line; commented C(COMPOSE_FILE) and secret lines are the recipe's overlays) and the
    C(export) lines of its C(abra.sh), then loads the compose files its C(COMPOSE_FILE) chains
    (with I(env) applied) by docker's own loader, C(docker stack config) (docker CLI 23 or later;
    an older client fails naming its version), in a copy of the release's files.
  - Reports findings on the merged stack before anything is deployed - services, secrets,
    configs, networks and volumes referenced but not defined, services without an image, swarm
    name budgets for I(domain) with the real names (service and network names up to 63
    characters, secret and config names up to 64), and short names that are ambiguous on a shared
    network (I(shared_networks)), over environment, command, entrypoint and config templates.
  - A recipe without C(X.Y.Z+upstream) release tags fails with a message naming the tags it has.
  - An unknown recipe fails with abra's own message.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
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
  description:
    - Error-level lint findings on the head release (abra's error rules and the harness's L rules),
      each with rule, level and message. The lint tier fails when this is not empty.
  type: list
  elements: dict
  returned: always
lint_warnings:
  description: Warning-level lint findings (abra's C(warn) rules), each with rule, level and message.
  type: list
  elements: dict
  returned: always
lint_skipped:
  description: Rules not checked, each with the reason (R013 needs the network; R010 without a DOMAIN).
  type: list
  elements: dict
  returned: always
lint_results:
  description: One result per rule with rule, level, description, outcome (pass, fail, skip) and messages.
  type: list
  elements: dict
  returned: always
lint_rules:
  description: The lint rules checked, C(<id> <description>), abra's R001-R015 then L001-L003.
  type: list
  elements: str
  returned: always
overlays:
  description: The C(COMPOSE_FILE) values of the head's commented-out lines (optional overlays).
  type: list
  elements: str
  returned: always
env_sample:
  description: The head's C(.env.sample) keys with their defaults (secret lengths included).
  type: dict
  returned: always
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraError
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import (
    RecipeError, all_tags, compose_findings, compose_file_versions, inspect_release, no_release_message,
    parse_env_sample, previous_version, read_text, sort_versions)
from ansible_collections.coopcloud.canon.plugins.module_utils._lint import (
    RULES, findings as lint_of_level, gather_facts, lint_recipe, skipped)


def main():
    m = CanonModule(AnsibleModule, dict(
        recipe=dict(type="str", required=True), version=dict(type="str"), domain=dict(type="str"),
        env=dict(type="dict", default={}), shared_networks=dict(type="bool", default=True),
    ), groups=("abra",), names=("recipe", "version", "domain", "env"), supports_check_mode=True)
    p = m.params
    abra, docker, abra_dir = m.abra, m.docker, m.abra_dir
    try:
        abra.recipe_fetch(p["recipe"])
    except AbraError as exc:
        m.fail(exc, msg="unknown recipe %s: %s" % (p["recipe"], exc.fata or exc))
    checkout = os.path.join(abra_dir, "recipes", p["recipe"])
    workdir = tempfile.mkdtemp(prefix="canon-recipe-")
    try:
        tags = all_tags(checkout)
        versions = sort_versions(tags)
        if not versions:
            raise RecipeError(no_release_message(p["recipe"], tags))
        head = p["version"] or versions[-1]
        if head not in versions:
            raise RecipeError("recipe %s has no release %s (releases: %s)" % (p["recipe"], head, ", ".join(versions)))
        domain = p["domain"] or "%s.example.com" % p["recipe"]
        release = inspect_release(docker, checkout, head, domain, p["env"], workdir=workdir)
        if not release["sample_found"]:
            raise RecipeError("release %s of %s has no .env.sample" % (head, p["recipe"]))
        files, stack, env = release["files"], release["stack"], release["env"]
        shared = sorted({(v or {}).get("name") or k for k, v in (stack.get("networks") or {}).items()
                         if (v or {}).get("external")})
        aliases = docker.network_aliases(shared) if p["shared_networks"] and shared else {}
        findings = compose_findings(stack, domain, env, shared_aliases=aliases, files=":".join(files),
                                    templates=release["templates"])
        sample = parse_env_sample(read_text(release["tree"], ".env.sample") or "", name="%s:.env.sample" % head)
        facts = gather_facts(checkout, p["recipe"], stack,
                             {k: v["value"] for k, v in sample.items() if not v["commented"]},
                             compose_file_versions(release["tree"], files),
                             version=head, stack_name=env["STACK_NAME"])
        results = lint_recipe(facts)
    except (RecipeError, CommandError) as exc:
        m.fail(exc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    m.exit(changed=False, versions=versions, head=head, previous=previous_version(versions, head),
           compose_files=files, findings=findings, env_sample=sample, overlays=release["overlays"],
           lint=lint_of_level(results, "error"), lint_warnings=lint_of_level(results, "warn"),
           lint_skipped=skipped(results), lint_results=results,
           lint_rules=["%s %s" % (r.ref, r.description) for r in RULES])


if __name__ == "__main__":
    main()
