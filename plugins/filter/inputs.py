# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
name: recipe_problem
short_description: Say what is wrong with a recipe name, or nothing
description:
  - Returns an empty string when the input is a valid recipe name that the collection knows (a role
    with C(canon_recipe_settings) under O(roles_dir), or an entry of O(enrolled)); otherwise one
    line that says what is wrong, naming the known recipes for an unknown one. The playbooks
    assert on it before they claim anything.
version_added: 0.1.0
author: coopcloud.canon contributors
options:
  _input:
    description: The recipe name as given.
    type: raw
    required: true
  roles_dir:
    description: The collection's C(roles) folder.
    type: path
    required: true
  enrolled:
    description: The inventory's C(canon_enrolled) (mappings with C(recipe)).
    type: list
    elements: raw
    default: []
"""

EXAMPLES = r"""
- name: The recipe is known
  ansible.builtin.assert:
    that: (recipe | coopcloud.canon.recipe_problem(playbook_dir ~ '/../roles', canon_enrolled | default([]))) == ''
"""

RETURN = r"""
_value:
  description: An empty string, or the refusal in one line.
  type: str
"""

from ansible_collections.coopcloud.canon.plugins.module_utils._inputs import (
    known_recipes, cold_result_problem, recipe_problem as _problem, version_problem)


def recipe_problem(name, roles_dir, enrolled=None):
    return _problem(name, known_recipes(roles_dir, enrolled))


class FilterModule:
    def filters(self):
        return {"recipe_problem": recipe_problem, "version_problem": version_problem,
                "cold_result_problem": cold_result_problem}
