# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: recipe_settings
short_description: Validate a recipe's settings and fill in the defaults
description:
  - Checks a recipe role's C(canon_recipe_settings) against the frozen schema (unknown keys and
    wrong types are errors) and returns the complete settings with defaults filled in.
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The recipe's settings.
    type: dict
    required: true
  recipe:
    description: The recipe, for error messages.
    type: str
"""

EXAMPLES = r"""
canon_settings: "{{ canon_recipe_settings | default({}) | coopcloud.canon.recipe_settings('gitea') }}"
"""

RETURN = r"""
_value:
  description: The complete, validated settings.
  type: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.coopcloud.canon.plugins.module_utils._settings import SettingsError, resolve


def recipe_settings(settings, recipe=""):
    try:
        return resolve(settings, recipe)
    except SettingsError as exc:
        raise AnsibleFilterError("invalid recipe settings: %s" % exc)


class FilterModule:
    def filters(self):
        return {"recipe_settings": recipe_settings}
