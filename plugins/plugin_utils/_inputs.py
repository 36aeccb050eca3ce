# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which recipes the harness knows, and the one-line refusal for a recipe it does not.

A recipe is known when a role of this collection carries its settings (``canon_recipe_settings``
in ``roles/<recipe_with_underscores>/defaults/main.yml``) or an inventory enrols it
(``canon_enrolled``). Anything else would only fail later, at preflight, after a run was claimed;
so the playbooks and the ``canon`` CLI refuse it up front, naming the known ones.

Pure logic, no Ansible import, so it unit-tests directly.
"""

from __future__ import annotations

import json
import os

import yaml

from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    NameError_, validate_recipe, validate_version)
from ansible_collections.coopcloud.canon.plugins.module_utils._warm import green_cold_refusal


def role_recipes(roles_dir: str) -> list[str]:
    """Recipes that have a role with settings, by recipe name (``mattermost_lts`` → ``mattermost-lts``)."""
    found = []
    try:
        entries = sorted(os.listdir(roles_dir))
    except OSError:
        return []
    for role in entries:
        path = os.path.join(roles_dir, role, "defaults", "main.yml")
        try:
            with open(path) as fh:
                data = yaml.safe_load(fh)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and "canon_recipe_settings" in data:
            found.append(role.replace("_", "-"))
    return found


def enrolled_recipes(enrolled) -> list[str]:
    """The recipe names of a ``canon_enrolled`` list (entries are mappings with ``recipe``)."""
    out = []
    for entry in enrolled or []:
        name = entry.get("recipe") if isinstance(entry, dict) else entry
        if isinstance(name, str) and name:
            out.append(name)
    return out


def known_recipes(roles_dir: str, enrolled=None) -> list[str]:
    return sorted(set(role_recipes(roles_dir)) | set(enrolled_recipes(enrolled)))


def recipe_problem(name, known: list[str]) -> str:
    """'' when ``name`` is a valid, known recipe; else one line that says what is wrong."""
    if not isinstance(name, str):
        # Ansible hands lazy template containers: name the kind, not the class.
        kind = "a list" if isinstance(name, (list, tuple)) else "a mapping" if isinstance(name, dict) else \
            "nothing" if name is None else "a %s" % type(name).__name__
        return "recipe must be one recipe name (a string), got %s: %r" % (kind, name)
    try:
        validate_recipe(name)
    except NameError_ as exc:
        return str(exc)
    if name not in known:
        return "unknown recipe %s: the known recipes are %s" % (name, ", ".join(known) or "none")
    return ""


def recipe_problems(names, known: list[str]) -> list[str]:
    """One line per bad name of a list (a profile's, the CLI's positional recipes)."""
    return [p for p in (recipe_problem(n, known) for n in names) if p]


def version_problem(version) -> str:
    """'' for no version (the newest release) or a release tag; else what is wrong with it."""
    if version is None or version == "":
        return ""
    try:
        validate_version(version)
    except NameError_ as exc:
        return str(exc)
    return ""


def cold_result_problem(path, recipe: str) -> str:
    """'' when ``path`` is the result.json of a green cold run of ``recipe``; else why not.

    Whether it was green for the release being promoted, and a protected warm domain, are left to
    the promote role: it records those refusals in the run's promote.json (the sweep and the
    tests read them), which needs the run it claims."""
    if not isinstance(path, str) or not path:
        return "cold_result must be the path of a green cold run's result.json"
    if not os.path.isfile(path):
        return "cold_result %s is not a file (the result.json of a green cold run)" % path
    try:
        with open(path) as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return "cold_result %s is not a result.json: %s" % (path, exc)
    if not isinstance(doc, dict):
        return "cold_result %s is not a result.json (a JSON object with its versions)" % path
    refusal = green_cold_refusal(doc, recipe)     # the promote rule's own words (module_utils/_warm.py)
    return "cold_result %s: %s" % (path, refusal) if refusal else ""
