# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: tier_gate
short_description: Whether a rung of the ladder runs - or its record when it is blocked or not applicable
description:
  - >-
    Returns an empty dict when the rung O(tier) runs. Otherwise the rung's record - outcome
    C(skipped) (not intended) when an earlier record (the preflight or a rung) neither passed nor
    was not applicable, with the reason C(blocked: <that one> did not pass); else outcome
    C(not-applicable) (intended) with the recipe's reason when its settings declare the rung not
    applicable.
  - The lifecycle role asks it once per rung and appends the record it returns; the rule is
    C(tier_gate) in C(module_utils/_ladder.py).
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The records so far (C(canon_tiers)).
    type: list
    elements: dict
    required: true
  tier:
    description: The rung (C(canon_tier)).
    type: str
    required: true
  not_applicable:
    description: The recipe's rungs declared not applicable, with their reasons (C(canon_settings.not_applicable)).
    type: dict
  started:
    description: When the rung started (epoch seconds; C(started_epoch) of the record).
    type: float
"""

EXAMPLES = r"""
canon_tier_skip: "{{ canon_tiers | coopcloud.canon.tier_gate(canon_tier, canon_settings.not_applicable, now(utc=true).timestamp()) }}"
"""

RETURN = r"""
_value:
  description: An empty dict when the rung runs, else its record (C(name), C(outcome), C(intended), C(reason), C(duration), C(started_epoch)).
  type: dict
"""

from collections.abc import Mapping

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import tier_gate as _tier_gate


def tier_gate(tiers, tier, not_applicable=None, started=0):
    tiers = [dict(t) for t in tiers or [] if isinstance(t, Mapping)]
    not_applicable = dict(not_applicable) if isinstance(not_applicable, Mapping) else {}
    return _tier_gate(tiers, str(tier), not_applicable, float(started or 0)) or {}


class FilterModule:
    def filters(self):
        return {"tier_gate": tier_gate}
