# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: tier_failure
short_description: Whose failure a failed tier is - the recipe's, the server's or the harness's
description:
  - Reads Ansible's failure result of a tier (C(ansible_failed_result)) and returns the tier's
    record - outcome C(fail) (the recipe's), C(infra) with the signature (engine down, disk full,
    image unavailable, ...) or C(harness-error) with the kind (a templating error, a conditional
    that is not a boolean, a module traceback, wrong module arguments, a missing tool).
  - The same rules the C(canon) driver applies (C(module_utils/_infra.py)).
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The failure result (C(ansible_failed_result)).
    type: dict
    required: true
  task:
    description: The failing task's name (C(ansible_failed_task.name)).
    type: str
  proxy_url:
    description: The reverse proxy's URL (C(canon_proxy_url)); a refused connection to it is C(proxy-down).
    type: str
"""

EXAMPLES = r"""
canon_tier_failure: "{{ ansible_failed_result | coopcloud.canon.tier_failure(ansible_failed_task.name, canon_proxy_url) }}"
"""

RETURN = r"""
_value:
  description: C(outcome), C(error), C(task) and C(infra) or C(harness_error).
  type: dict
"""

from collections.abc import Mapping

from ansible_collections.coopcloud.canon.plugins.module_utils._infra import tier_failure as _tier_failure


def tier_failure(result, task="", proxy_url=""):
    result = dict(result) if isinstance(result, Mapping) else {"msg": str(result)}
    return _tier_failure(result, str(task or ""), [str(proxy_url)] if proxy_url else [])


class FilterModule:
    def filters(self):
        return {"tier_failure": tier_failure}
