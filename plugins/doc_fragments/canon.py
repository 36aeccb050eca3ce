# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations


class ModuleDocFragment:
    # The option of the harness modules (the action group coopcloud.canon.canon), which a play
    # can set once: module_defaults: {group/coopcloud.canon.canon: {state_dir: ...}}
    DOCUMENTATION = r"""
options:
  state_dir:
    description:
      - The harness's state directory on the abra host (the ledger of runs, locks, leases and the
        warm registry).
      - Every module of the action group C(coopcloud.canon.canon) takes it, so a play can set it
        once with C(module_defaults).
    type: path
    required: true
"""
