# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

# Three filters in one file: each has its documentation beside it, in <filter>.yml
# (recipe_problem.yml, version_problem.yml, cold_result_problem.yml).

from ansible_collections.coopcloud.canon.plugins.plugin_utils._inputs import (
    known_recipes, cold_result_problem, recipe_problem as _problem, version_problem)


def recipe_problem(name, roles_dir, enrolled=None):
    return _problem(name, known_recipes(roles_dir, enrolled))


class FilterModule:
    def filters(self):
        return {"recipe_problem": recipe_problem, "version_problem": version_problem,
                "cold_result_problem": cold_result_problem}
