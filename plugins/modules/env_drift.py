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
  - Reports keys added (missing from the C(.env)), removed (obsolete) and changed (a sample
    default that moved since the app's current release, from its C(TYPE)), and above all how the
    app's C(COMPOSE_FILE) differs from the sample's, with the head's release note
    (C(release/<version>)).
  - With I(reconcile), every missing key is added with its sample default (secret options
    C(length=), C(charset=), C(generate=false) kept in the comment), and every missing secret
    version is generated with C(abra app secret generate <domain> <secret> <version>); the secret's
    name comes from the compose file whose C(secrets:) entry carries that version variable. A
    secret marked C(generate=false) is added but not generated (C(secrets_not_generated)).
    Changed and obsolete keys are reported, never rewritten or removed. Secret values are never
    returned.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
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
  description: Keys the release's sample sets that the C(.env) lacked (key, default, secret, length, options, generate).
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
secrets_not_generated:
  description: Names of missing secrets marked C(generate=false) (they need a value inserted by hand).
  type: list
  elements: str
  returned: always
changed_keys:
  description: Keys whose sample default changed since the app's release (key, old_default, new_default, app, follows_default).
  type: list
  elements: dict
  returned: always
compose_file:
  description: >-
    How the app's C(COMPOSE_FILE) differs from the sample's default (app, sample, files_added,
    files_removed, and files_absent, the files the app names that the release lacks), or null.
  type: dict
  returned: always
from_version:
  description: The release the app's C(TYPE) names (null when it names none).
  type: str
  returned: always
release_note:
  description: The head's release note (C(release/<version>)), or null when the recipe has none.
  type: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._abra import env_file_path
from ansible_collections.coopcloud.canon.plugins.module_utils._drift import (
    append_env_lines, compose_secret_names, drift_lines, env_drift, is_compose_path)
from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import read_env
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import add_redactions
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import (
    RecipeError, git_files, git_show, git_tags, parse_env_sample)


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True), recipe=dict(type="str", required=True),
        version=dict(type="str", required=True), reconcile=dict(type="bool", default=True),
    ), groups=("abra",), names=("domain", "recipe", "version", "server"), supports_check_mode=True)
    p = m.params
    abra, abra_dir = m.abra, m.abra_dir
    env_path = env_file_path(abra_dir, p["server"], p["domain"])
    if not os.path.exists(env_path):
        m.fail(msg="%s has no .env at %s: nothing to reconcile" % (p["domain"], env_path))
    checkout = os.path.join(abra_dir, "recipes", p["recipe"])
    try:
        abra.recipe_fetch(p["recipe"])
        text = git_show(checkout, p["version"], ".env.sample")
        if text is None:
            raise RecipeError("release %s of %s has no .env.sample" % (p["version"], p["recipe"]))
        sample = parse_env_sample(text, name="%s:.env.sample" % p["version"])
        env = read_env(env_path).active
        # The sample of the release the app runs now (TYPE=<recipe>:<version>), to tell a changed
        # default from a value the operator chose.
        current = env.get("TYPE", "").partition(":")[2]
        old_text = git_show(checkout, current, ".env.sample") if current and current in git_tags(checkout) else None
        old_sample = parse_env_sample(old_text, name="%s:.env.sample" % current) if old_text is not None else None
        files = git_files(checkout, p["version"])
        names = compose_secret_names({f: git_show(checkout, p["version"], f) or "" for f in files if is_compose_path(f)})
        release_note = git_show(checkout, p["version"], "release/%s" % p["version"])
        drift = env_drift(sample, env, old_sample=old_sample, compose_names=names, release_files=files)
        lines = drift_lines(drift["missing"])
        secrets = [d for d in drift["missing"] if d["secret"] and d["generate"]]
        manual = [d["secret"] for d in drift["missing"] if d["secret"] and not d["generate"]]
        changed = bool(p["reconcile"] and lines)
        if changed and not m.check_mode:
            append_env_lines(env_path, lines)
            for d in secrets:
                abra.secret_generate_one(p["domain"], d["secret"], d["default"] or "v1")
            add_redactions(p.get("redact_file"), abra.redactor.values)
            left = env_drift(sample, read_env(env_path).active)["missing"]
            if left:
                m.fail(msg="drift remains after reconciling: %s" % ", ".join(d["key"] for d in left))
    except (ValueError, CommandError) as exc:  # RecipeError, EnvFileError, and a server without PyYAML
        m.fail(exc)
    result = dict(changed=changed, missing=drift["missing"], obsolete=drift["obsolete"],
                  changed_keys=drift["changed"], compose_file=drift["compose_file"],
                  from_version=current or None, release_note=release_note,
                  added=lines if p["reconcile"] else [],
                  secrets_generated=[d["secret"] for d in secrets] if p["reconcile"] else [],
                  secrets_not_generated=manual)
    if m.diff:
        result["diff"] = dict(before="", after="\n".join(lines) + ("\n" if lines else ""))
    m.exit(**result)


if __name__ == "__main__":
    main()
