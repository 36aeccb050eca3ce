# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: promote_failure
short_description: Whose failure a failed promote step is - the recipe's, the server's or the harness's
description:
  - Reads Ansible's failure result of a step of the promote role (C(ansible_failed_result)) and
    returns the keys of its C(promote.json) record - C(outcome), C(in_place_error) and, when so,
    C(infra) or C(harness_error).
  - The outcome is I(recipe_outcome) when the failure is the recipe's own (C(failed) for an
    advance, C(refused) before one), C(infra) with the signature (engine down, disk full, image
    unavailable, tasks never allocated, ...) or C(harness-error) with the kind (a templating
    error, a conditional that is not a boolean, a module traceback, wrong module arguments, a
    missing tool).
  - The same rules as the lifecycle's C(tier_failure) filter and the C(canon) driver
    (C(module_utils/_infra.py)).
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
  recipe_outcome:
    description: The outcome when the failure is the recipe's own.
    type: str
    choices: [failed, refused]
    default: failed
"""

EXAMPLES = r"""
canon_promote_failure: >-
  {{ ansible_failed_result | coopcloud.canon.promote_failure(ansible_failed_task.name, canon_proxy_url, 'refused') }}
"""

RETURN = r"""
_value:
  description:
    - C(outcome) (I(recipe_outcome), C(infra) or C(harness-error)), C(in_place_error) (the whole
      error), and C(infra) (the signature) or C(harness_error) (C(kind), C(task), C(error)).
  type: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.coopcloud.canon.plugins.module_utils._infra import promote_failure as _promote_failure


def promote_failure(result, task="", proxy_url="", recipe_outcome="failed"):
    result = dict(result) if isinstance(result, Mapping) else {"msg": str(result)}
    try:
        return _promote_failure(result, str(task or ""), [str(proxy_url)] if proxy_url else [], str(recipe_outcome))
    except ValueError as exc:
        raise AnsibleFilterError("promote_failure: %s" % exc)


class FilterModule:
    def filters(self):
        return {"promote_failure": promote_failure}
