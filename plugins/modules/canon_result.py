#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: canon_result
short_description: Write a run's result.json and render its per-tier table
description:
  - Builds the result document (schema C(coopcloud.canon/result), version 1; see
    C(docs/results.md)) from the run and its tiers, computes the overall outcome and the level
    reached on the ladder (install, upgrade, backup_restore, custom, lint), and writes it
    atomically to I(path)/result.json, scrubbed of the run's secret values.
  - Called again with I(teardown), it adds the teardown's outcome to the same document.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  idempotent:
    support: none
    description: Writing the same document twice leaves the same file.
options:
  path:
    description: The run's results directory.
    type: path
    required: true
  run:
    description: The run (run_id, recipe, server, domains, versions, started).
    type: dict
    required: true
  tiers:
    description: Each tier's name, outcome, duration and error or reason.
    type: list
    elements: dict
    required: true
  teardown:
    description: The teardown's outcome, added to the document.
    type: dict
  redact_file:
    description: The run's private list of secret values to scrub.
    type: path
"""

EXAMPLES = r"""
- name: Write the result
  coopcloud.canon.canon_result:
    path: results/{{ canon_run.run_id }}
    run: "{{ canon_run }}"
    tiers: "{{ canon_tiers }}"
"""

RETURN = r"""
result:
  description: The result document.
  type: dict
  returned: always
table:
  description: The per-tier table, one line per element.
  type: list
  elements: str
  returned: always
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import result_document, table
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import now_iso, read_json, write_json_atomic
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule

RUN_KEYS = ("run_id", "recipe", "server", "domains", "versions", "started", "started_epoch")


def main():
    m = CanonModule(AnsibleModule, dict(
        path=dict(type="path", required=True),
        run=dict(type="dict", required=True),
        tiers=dict(type="list", elements="dict", required=True),
        teardown=dict(type="dict"),
        redact_file=dict(type="path"),
    ), supports_check_mode=False)
    p = m.params
    path = os.path.join(p["path"], "result.json")
    run = {k: p["run"].get(k) for k in RUN_KEYS}
    missing = [k for k in ("run_id", "recipe") if not isinstance(run.get(k), str) or not run[k]]
    if missing:
        m.fail(msg="cannot build the result: run has no %s" % " and no ".join(missing))
    unnamed = [i for i, t in enumerate(p["tiers"]) if not isinstance(t.get("name"), str) or not t["name"]]
    if unnamed:
        m.fail(msg="cannot build the result: tiers[%d] has no name" % unnamed[0])
    if run.get("started_epoch"):
        try:
            run["duration"] = round(time.time() - float(run["started_epoch"]), 1)
        except (TypeError, ValueError):
            m.fail(msg="cannot build the result: run.started_epoch %r is not a number" % (run["started_epoch"],))
    run["finished"] = now_iso()
    try:
        doc = result_document(run, p["tiers"])
    except (KeyError, ValueError) as exc:
        m.fail(msg="cannot build the result: %s" % exc)
    old = read_json(path, {}) or {}
    if p["teardown"] is not None:
        doc["teardown"] = p["teardown"]
    elif "teardown" in old:
        doc["teardown"] = old["teardown"]
    doc = json.loads(m.redactor(json.dumps(doc)))
    write_json_atomic(path, doc)
    m.exit(changed=True, result=doc, table=table(doc), path=path)


if __name__ == "__main__":
    main()
