#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: env_drift
short_description: Reconcile an app's .env with a new release's .env.sample before an in-place advance
description:
  - A warm app keeps the C(.env) it was created with. Advancing it in place to a release whose
    C(.env.sample) added keys deploys without them (a setting that renders empty, a secret that
    was never generated). This module compares the release's sample with the app's C(.env).
  - With I(reconcile), every missing key is added with its sample default (C(# length=N) kept),
    and every missing secret version is generated with
    C(abra app secret generate <domain> <secret> <version>) at the length the sample asks for.
    Keys the sample no longer has are reported, never removed. Secret values are never returned.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Reports the drift and what reconciling would change.
  diff_mode:
    support: full
    description: Shows the lines that are (or would be) added to the C(.env).
  idempotent:
    support: full
    description: A reconciled app has no drift; a second run changes nothing.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  recipe:
    description: The app's recipe (its checkout in C(ABRA_DIR)/recipes is fetched with abra).
    type: str
    required: true
  version:
    description: The release the app is about to advance to.
    type: str
    required: true
  reconcile:
    description: Add what is missing (otherwise only report).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Bring the warm gitea's .env up to 3.6.0 before advancing it
  coopcloud.canon.env_drift:
    domain: warm-canon-gitea.example.org
    recipe: gitea
    version: 3.6.0+1.25.0-rootless
"""

RETURN = r"""
missing:
  description: Keys the release's sample sets that the C(.env) lacked (key, default, secret, length).
  type: list
  elements: dict
  returned: always
obsolete:
  description: Keys in the C(.env) that the sample no longer mentions.
  type: list
  elements: str
  returned: always
added:
  description: The C(.env) lines added (secret versions, never values).
  type: list
  elements: str
  returned: always
secrets_generated:
  description: Names of the secrets generated.
  type: list
  elements: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import env_file_path, read_env_file
from ansible_collections.coopcloud.canon.plugins.module_utils._common import (
    abra_home, clients, common_argument_spec, fail_from)
from ansible_collections.coopcloud.canon.plugins.module_utils._drift import (
    append_env_lines, drift_lines, env_drift)
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import add_redactions
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    NameError_, validate_domain, validate_recipe, validate_server, validate_version)
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import RecipeError, git_show, parse_env_sample


def main():
    spec = common_argument_spec()
    spec.update(domain=dict(type="str", required=True), recipe=dict(type="str", required=True),
                version=dict(type="str", required=True), reconcile=dict(type="bool", default=True))
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        validate_domain(p["domain"])
        validate_recipe(p["recipe"])
        validate_version(p["version"])
        validate_server(p["server"])
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    abra, _docker, _evidence = clients(module)
    abra_dir = abra_home(p["abra_dir"])
    env_path = env_file_path(abra_dir, p["server"], p["domain"])
    if not os.path.exists(env_path):
        module.fail_json(msg="%s has no .env at %s: nothing to reconcile" % (p["domain"], env_path))
    try:
        abra.recipe_fetch(p["recipe"])
        text = git_show(os.path.join(abra_dir, "recipes", p["recipe"]), p["version"], ".env.sample")
        if text is None:
            raise RecipeError("release %s of %s has no .env.sample" % (p["version"], p["recipe"]))
        drift = env_drift(parse_env_sample(text), read_env_file(env_path))
        lines = drift_lines(drift["missing"])
        secrets = [m for m in drift["missing"] if m["secret"]]
        changed = bool(p["reconcile"] and lines)
        if changed and not module.check_mode:
            append_env_lines(env_path, lines)
            for m in secrets:
                abra.secret_generate_one(p["domain"], m["secret"], m["default"] or "v1")
            add_redactions(p.get("redact_file"), abra.redactor.values)
            left = env_drift(parse_env_sample(text), read_env_file(env_path))["missing"]
            if left:
                module.fail_json(msg="drift remains after reconciling: %s" % ", ".join(m["key"] for m in left))
    except RecipeError as exc:
        module.fail_json(msg=str(exc))
    except CommandError as exc:
        fail_from(module, exc)
    result = dict(changed=changed, missing=drift["missing"], obsolete=drift["obsolete"],
                  added=lines if p["reconcile"] else [],
                  secrets_generated=[m["secret"] for m in secrets] if p["reconcile"] else [])
    if module._diff:
        result["diff"] = dict(before="", after="\n".join(lines) + ("\n" if lines else ""))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
