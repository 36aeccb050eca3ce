# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-recipe settings: a frozen, validated schema. Unknown keys are errors.

A recipe's role declares its settings as data (``canon_recipe_settings`` in the role's
defaults); a recipe without a role runs on :data:`DEFAULTS`.
"""

from __future__ import annotations

import copy

TIERS = ("install", "upgrade", "backup_restore", "custom", "lint")

DEFAULTS = {
    # Convergence: abra waits up to the recipe's coop-cloud.<stack>.timeout label (TIMEOUT in .env).
    "deploy_timeout": 300,
    # The install tier's HTTP check through the proxy.
    "health_path": "/",
    "health_codes": [200],
    "content_marker": "",
    "http_timeout": 10,
    "http_retries": 10,
    # Upgrade tier: an explicit base release, else the newest release older than the head.
    "upgrade_base_version": "",
    # Tiers intentionally not applicable, each with its reason.
    "not_applicable": {},
    # Where the harness writes its data marker for the upgrade and backup/restore tiers.
    "state_service": "app",
    "state_path": "",
    # Extra settings written into the app's .env (e.g. COMPOSE_FILE overlays).
    "env": {},
    "heavy": False,
}

_TYPES = {
    "deploy_timeout": int, "health_path": str, "health_codes": list, "content_marker": str,
    "http_timeout": int, "http_retries": int, "upgrade_base_version": str, "not_applicable": dict,
    "state_service": str, "state_path": str, "env": dict, "heavy": bool,
}


class SettingsError(ValueError):
    pass


def resolve(settings: dict | None, recipe: str = "") -> dict:
    """Validate ``settings`` against the schema and fill in the defaults."""
    settings = settings or {}
    if not isinstance(settings, dict):
        raise SettingsError("settings for %s must be a mapping" % (recipe or "the recipe"))
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise SettingsError("unknown setting(s) for %s: %s (known: %s)"
                            % (recipe or "the recipe", ", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    out = copy.deepcopy(DEFAULTS)
    for key, value in settings.items():
        want = _TYPES[key]
        if want is int and isinstance(value, bool) or not isinstance(value, want):
            raise SettingsError("setting %s of %s must be %s, not %r" % (key, recipe or "the recipe",
                                                                      want.__name__, value))
        out[key] = copy.deepcopy(value)
    if out["deploy_timeout"] <= 0:
        raise SettingsError("deploy_timeout must be positive")
    for tier, reason in out["not_applicable"].items():
        if tier not in TIERS:
            raise SettingsError("not_applicable names unknown tier %r (tiers: %s)" % (tier, ", ".join(TIERS)))
        if not isinstance(reason, str) or not reason.strip():
            raise SettingsError("not_applicable.%s needs a reason" % tier)
    for code in out["health_codes"]:
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise SettingsError("health_codes must be HTTP status codes, not %r" % (code,))
    if not out["health_path"].startswith("/"):
        raise SettingsError("health_path must start with /")
    for key, value in out["env"].items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum() or not key[:1].isalpha():
            raise SettingsError("env key %r is not a valid variable name" % (key,))
        if not isinstance(value, (str, int)) or "\n" in str(value):
            raise SettingsError("env value of %s must be a single-line string" % key)
    return out
