# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Env drift: what a new release's ``.env.sample`` has that an existing app's ``.env`` lacks.

A warm app keeps the ``.env`` it was created with; advancing it in place to a release whose
sample added a key (a setting, a secret version) deploys with that key missing. Pure logic:
:func:`env_drift` compares, :func:`drift_lines` says what to append.
"""

from __future__ import annotations

import os
import re

_SECRET_RE = re.compile(r"^SECRET_([A-Z0-9_]+)_VERSION$")


def secret_name(key: str) -> str | None:
    """``SECRET_DB_PASSWORD_VERSION`` -> ``db_password`` (abra's convention)."""
    m = _SECRET_RE.match(key)
    return m.group(1).lower() if m else None


def env_drift(sample: dict, env: dict) -> dict:
    """``sample`` from :func:`_recipe.parse_env_sample`, ``env`` from :func:`_abra.read_env_file`.

    Returns ``{"missing": [{key, default, secret, length}], "obsolete": [keys]}``: keys the sample
    sets (not commented out) that the ``.env`` lacks, and keys the ``.env`` has that the sample
    no longer mentions at all (reported, never removed).
    """
    missing = []
    for key, spec in sample.items():
        if spec["commented"] or key in env:
            continue
        missing.append({"key": key, "default": spec["value"], "secret": secret_name(key),
                        "length": spec["length"]})
    obsolete = sorted(k for k in env if k not in sample and k not in ("TYPE", "RECIPE"))
    return {"missing": missing, "obsolete": obsolete}


def drift_lines(missing: list) -> list:
    """The ``.env`` lines that add the missing keys, ``# length=N`` kept for secrets so abra
    generates them at the length the recipe asks for."""
    lines = []
    for item in missing:
        line = "%s=%s" % (item["key"], item["default"])
        if item["length"]:
            line += " # length=%d" % item["length"]
        lines.append(line)
    return lines


def append_env_lines(env_path: str, lines: list) -> None:
    if not lines:
        return
    with open(env_path, encoding="utf-8") as fh:
        text = fh.read()
    if text and not text.endswith("\n"):
        text += "\n"
    text += "# added by coopcloud.canon env drift reconciliation\n" + "\n".join(lines) + "\n"
    tmp = env_path + ".canon-tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, os.stat(env_path).st_mode & 0o777)
    os.replace(tmp, env_path)
