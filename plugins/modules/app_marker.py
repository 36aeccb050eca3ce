#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: app_marker
short_description: Write or read a data marker inside a running app
description:
  - The upgrade and backup/restore tiers prove that data survives by writing a marker file into
    the app's persistent storage and reading it back later.
  - Runs C(cat) and C(sh -c 'cat > path') in the service's running container; the marker value
    goes through standard input, never a command line.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Reads the marker and reports whether it would change.
  diff_mode:
    support: full
    description: Shows the marker before and after.
  idempotent:
    support: full
    description: Writing the value the marker already holds changes nothing.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  service:
    description: The service (short name, as in the recipe's compose file).
    type: str
    default: app
  path:
    description: Absolute path of the marker file inside the container.
    type: str
    required: true
  value:
    description: The value to write. Omit to only read.
    type: str
"""

EXAMPLES = r"""
- name: Seed data before an upgrade
  coopcloud.canon.app_marker:
    domain: cust-1a2b3c.bench.canon.test
    path: /var/www/html/canon-marker.txt
    value: "seed-{{ canon_run_id }}"
"""

RETURN = r"""
value:
  description: The marker's content afterwards (null when the file does not exist).
  type: str
  returned: always
before:
  description: The marker's content before.
  type: str
  returned: always
"""

import posixpath

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name


def read(docker, container, path):
    res = docker.exec(container, ["cat", path], check=False)
    return res.stdout.rstrip("\n") if res.ok else None


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True), service=dict(type="str", default="app"),
        path=dict(type="str", required=True), value=dict(type="str", no_log=False),
    ), groups=("abra",), names=("domain", "service"), supports_check_mode=True)
    p = m.params
    has_control = any(ord(c) < 0x20 or c == "\x7f" for c in p["path"])
    if not posixpath.isabs(p["path"]) or ".." in p["path"].split("/") or has_control:
        m.fail(msg="path must be absolute, without '..' and without control characters: %r" % p["path"])
    docker = m.docker
    with m.failing():
        container = docker.running_container(stack_name(p["domain"]), p["service"])
        if not container:
            m.fail(msg="no running container of service %s in %s" % (p["service"], p["domain"]))
        before = read(docker, container, p["path"])
        after = before
        changed = p["value"] is not None and before != p["value"]
        if changed and not m.check_mode:
            docker.exec(container, ["sh", "-c", 'cat > "$1"', "sh", p["path"]], input_text=p["value"] + "\n")
            after = read(docker, container, p["path"])
            if after != p["value"]:
                m.fail(msg="marker write did not stick: read back %r" % after)
    result = dict(changed=changed, value=after if not m.check_mode else p["value"] if changed else before,
                  before=before)
    if m.diff:
        result["diff"] = dict(before=(before or "") + "\n", after=(result["value"] or "") + "\n")
    m.exit(**result)


if __name__ == "__main__":
    main()
