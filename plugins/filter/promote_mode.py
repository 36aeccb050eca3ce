# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: promote_mode
short_description: How a promote gets a canonical to a release - fresh, advance, current or verify
description:
  - C(fresh) when nothing is deployed on the warm domain (a first canonical); C(advance) when
    another release runs there (deploy this one in place); C(current) when this release runs and
    the registry has it live (nothing to do); C(verify) when this release runs but no promote
    verified it (an advance interrupted after its deploy; the identity check decides).
  - The rule is C(promote_mode) in C(module_utils/_warm.py).
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The canonical's registry record (C(canonical) of M(coopcloud.canon.canon_registry)).
    type: dict
    required: true
  app:
    description: What runs on the warm domain (C(app) of M(coopcloud.canon.abra_app_info)), its C(deployed) and C(version).
    type: dict
    required: true
  version:
    description: The release to promote.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Decide how to get there
  ansible.builtin.set_fact:
    promote_mode: "{{ canonical.canonical | coopcloud.canon.promote_mode(warm_before.app, release.head) }}"
"""

RETURN = r"""
_value:
  description: One of C(fresh), C(advance), C(current), C(verify).
  type: str
"""

from collections.abc import Mapping

from ansible_collections.coopcloud.canon.plugins.module_utils._warm import promote_mode as _promote_mode


def promote_mode(canonical, app, version):
    return _promote_mode(dict(canonical) if isinstance(canonical, Mapping) else {},
                         dict(app) if isinstance(app, Mapping) else {}, version)


class FilterModule:
    def filters(self):
        return {"promote_mode": promote_mode}
