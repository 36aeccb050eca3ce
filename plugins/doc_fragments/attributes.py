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

    # The action groups of meta/runtime.yml: each member extends its group's fragment, so
    # ansible-doc says which group sets its shared options.
    ACTIONGROUP_ABRA = r"""
attributes:
  action_group:
    description:
      - Use C(group/coopcloud.canon.abra) in C(module_defaults) to set the options of the abra group
        (I(abra_bin), I(abra_dir), I(server), I(docker_bin), I(docker_context), I(evidence_dir),
        I(redact_file)) once for every module of the group.
    support: full
    membership:
      - coopcloud.canon.abra
"""

    ACTIONGROUP_CANON = r"""
attributes:
  action_group:
    description:
      - Use C(group/coopcloud.canon.canon) in C(module_defaults) to set I(state_dir) once for every
        harness module (C(canon_lock), C(canon_registry), C(canon_run), C(canon_teardown),
        C(warm_domain)).
    support: full
    membership:
      - coopcloud.canon.canon
"""
