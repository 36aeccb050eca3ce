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

try:
    import yaml
except ImportError:  # PyYAML comes with Ansible on the controller, not necessarily on the server
    yaml = None

_SECRET_RE = re.compile(r"^SECRET_([A-Z0-9_]+)_VERSION$")
_NAME_VERSION_RE = re.compile(r"\$\{?(SECRET_[A-Za-z0-9_]+_VERSION)")
_COMPOSE_NAME_RE = re.compile(r"(^|/)compose[\w.-]*\.ya?ml$")


def secret_name(key: str, compose_names: dict | None = None) -> str | None:
    """The secret a ``SECRET_<X>_VERSION`` key versions: the compose file's own secret whose
    ``name:`` carries that variable (``compose_names``, from :func:`compose_secret_names`), else
    abra's naming convention (``SECRET_DB_PASSWORD_VERSION`` -> ``db_password``)."""
    if compose_names and key in compose_names:
        return compose_names[key]
    m = _SECRET_RE.match(key)
    return m.group(1).lower() if m else None


def is_compose_path(path: str) -> bool:
    return bool(_COMPOSE_NAME_RE.search(path))


def compose_secret_names(texts: dict) -> dict:
    """``{SECRET_X_VERSION: secret}`` from the top-level ``secrets:`` of compose files
    (``{path: text}``): bonfire's ``orchid_client_secret`` is versioned by
    ``SECRET_ORCID_CLIENT_SECRET_VERSION``. Only the ``name:`` strings are read (no merge, no
    interpolation); a file that is not YAML names nothing here (the preflight reports it)."""
    out = {}
    if yaml is None:
        raise ValueError("reading the compose files' secrets needs PyYAML (python3-yaml) on the host the module runs on")
    for path in sorted(texts):
        try:
            doc = yaml.safe_load(texts[path] or "") or {}
        except yaml.YAMLError:
            continue
        secrets = doc.get("secrets") if isinstance(doc, dict) else None
        for name, spec in (secrets or {}).items() if isinstance(secrets, dict) else ():
            m = _NAME_VERSION_RE.search(str((spec or {}).get("name") or "")) if isinstance(spec, dict) else None
            if m:
                out.setdefault(m.group(1), str(name))
    return out


def _compose_files(value) -> list:
    return [f for f in str(value or "compose.yml").split(":") if f]


def env_drift(sample: dict, env: dict, old_sample: dict | None = None, compose_names: dict | None = None,
              release_files: list | None = None) -> dict:
    """``sample`` (the new release's) and ``old_sample`` (the app's current release's, when
    known) from :func:`_recipe.parse_env_sample`, ``env`` the app's active ``.env`` values.

    Returns:

    - ``missing``: keys the sample sets (not commented out) that the ``.env`` lacks, each with
      its default, its secret (named by the compose files), and the secret's options
      (``length``, ``charset``, ``generate``) carried over;
    - ``obsolete``: keys the ``.env`` has that the sample no longer mentions at all (reported,
      never removed);
    - ``changed``: keys whose sample default changed between the two releases (needs
      ``old_sample``), with whether the app still holds the old default (``follows_default``)
      or a value of its own;
    - ``compose_file``: ``None``, or how the app's COMPOSE_FILE differs from the new sample's
      default (``files_added``/``files_removed``, and ``files_absent``: files the app names that
      the release no longer has, given ``release_files``, the release's paths): the change that
      decides what is deployed.
    """
    missing = []
    for key, spec in sample.items():
        if spec["commented"] or key in env:
            continue
        options = dict(spec.get("options") or {})
        missing.append({"key": key, "default": spec["value"], "secret": secret_name(key, compose_names),
                        "length": spec["length"], "options": options,
                        "generate": options.get("generate", "true").lower() != "false"})
    obsolete = sorted(k for k in env if k not in sample and k not in ("TYPE", "RECIPE"))
    changed = []
    for key, spec in (old_sample or {}).items():
        new = sample.get(key)
        if spec["commented"] or not new or new["commented"] or new["value"] == spec["value"] or key not in env:
            continue
        changed.append({"key": key, "old_default": spec["value"], "new_default": new["value"], "app": env[key],
                        "follows_default": env[key] == spec["value"]})
    compose_file = None
    new_cf = sample.get("COMPOSE_FILE")
    wanted = _compose_files(new_cf["value"] if new_cf and not new_cf["commented"] else None)
    have = _compose_files(env.get("COMPOSE_FILE"))
    absent = [f for f in have if release_files is not None and f not in release_files]
    if wanted != have or absent:
        compose_file = {"app": ":".join(have), "sample": ":".join(wanted),
                        "files_added": [f for f in wanted if f not in have],
                        "files_removed": [f for f in have if f not in wanted],
                        "files_absent": absent}
    return {"missing": missing, "obsolete": obsolete, "changed": changed, "compose_file": compose_file}


def drift_lines(missing: list) -> list:
    """The ``.env`` lines that add the missing keys, a secret's options (``length=N``,
    ``charset=...``, ``generate=false``) kept in the comment so abra generates (or leaves) it as
    the recipe asks."""
    lines = []
    for item in missing:
        line = "%s=%s" % (item["key"], item["default"])
        options = dict(item.get("options") or {})
        if item.get("length") and "length" not in options:
            options["length"] = str(item["length"])
        if options:
            order = ["length", "charset", "generate"]
            keys = [k for k in order if k in options] + sorted(k for k in options if k not in order)
            line += " # " + " ".join("%s=%s" % (k, options[k]) for k in keys)
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
