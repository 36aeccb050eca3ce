#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: abra_app_info
short_description: Read a Co-op Cloud app's state without changing anything
description:
  - Reports whether an app exists and is deployed, its version label, and each service's
    image and update state (a C(rollback_completed) there means swarm rolled a deploy back).
  - Optionally the image id each service runs, so an upgrade can be seen to have moved.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Read-only; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes anything.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  image_ids:
    description: Also resolve each service's image to its local image id.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Read the app
  coopcloud.canon.abra_app_info:
    domain: cust-1a2b3c.bench.canon.test
    image_ids: true
  register: app
"""

RETURN = r"""
app:
  description: The app's observed state.
  type: dict
  returned: always
  contains:
    exists:
      description: Whether its C(.env) exists.
      type: bool
    deployed:
      description: Whether its stack has services.
      type: bool
    version:
      description: The deployed version label, or the C(.env) TYPE version.
      type: str
    services:
      description: name, image, image_id (when asked), version, update_state per service.
      type: list
      elements: dict
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._app import observe
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError


def main():
    m = CanonModule(AnsibleModule, dict(domain=dict(type="str", required=True), image_ids=dict(type="bool", default=False)),
                    groups=("abra",), names=("domain", "server"), supports_check_mode=True)
    p = m.params
    try:
        app = observe(m.abra_dir, p["server"], p["domain"], m.docker)
        if p["image_ids"]:
            for svc in app["services"]:
                svc["image_id"] = m.docker.image_id(svc["image"])
    except CommandError as exc:
        m.fail(exc)
    except ValueError as exc:  # a malformed app .env: the message names the file and the line
        m.fail(exc, domain=p["domain"])
    m.exit(changed=False, app=app)


if __name__ == "__main__":
    main()
