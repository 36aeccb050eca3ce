# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The attributes every module of the collection states. The fragment says what each one
    # means; each module says how far it supports it (``support``, required by validate-modules)
    # and, where it helps, how (its own ``description`` replaces the one below).
    DOCUMENTATION = r"""
attributes:
  check_mode:
    description: Can run in check mode and report what would change without changing it.
  diff_mode:
    description: Returns what changed (or would change, in check mode) when run with C(--diff).
  idempotent:
    description:
      - Run twice in a row with the same arguments (outside check mode), the second run reports
        no change.
"""
