# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: promote_refusal
short_description: Why a canonical may not advance to a release on the strength of a cold result, or nothing
description:
  - Returns an empty string when the cold result (a C(result.json)) is a green run (C(outcome=pass))
    of exactly O(version) (its C(versions.head)), of the canonical's recipe on its server, and
    O(version) is not older than the release the canonical runs (a canonical never moves back; after
    an interrupted advance the floor is its last known good release). Otherwise one line that says
    why not.
  - The promote role asks it before it leases the warm domain or deploys anything; the
    M(coopcloud.canon.canon_registry) module applies the same rule (C(module_utils/_warm.py),
    C(advance_refusal)) when it records a promotion.
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The canonical's registry record (C(canonical) of M(coopcloud.canon.canon_registry)).
    type: dict
    required: true
  cold_result:
    description: The cold run's C(result.json), read.
    type: raw
    required: true
  version:
    description: The release to promote; the cold run's head when empty.
    type: str
"""

EXAMPLES = r"""
- name: Only a green cold run of this release may promote it
  ansible.builtin.assert:
    that: (canonical.canonical | coopcloud.canon.promote_refusal(cold_doc, release.head)) == ''
"""

RETURN = r"""
_value:
  description: An empty string, or the refusal in one line.
  type: str
"""

from collections.abc import Mapping

from ansible_collections.coopcloud.canon.plugins.module_utils._warm import advance_refusal


def promote_refusal(canonical, cold_result, version=None):
    canonical = dict(canonical) if isinstance(canonical, Mapping) else {}
    return advance_refusal(canonical, cold_result, version or None) or ""


class FilterModule:
    def filters(self):
        return {"promote_refusal": promote_refusal}
