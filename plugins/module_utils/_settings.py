# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-recipe settings: a frozen, validated schema. Unknown keys are errors.

A recipe's role declares its settings as data (``canon_recipe_settings`` in the role's
defaults); a recipe without a role runs on :data:`DEFAULTS`. ``docs/settings.md`` documents
every key.
"""

from __future__ import annotations

import copy
import re

TIERS = ("install", "upgrade", "backup_restore", "custom", "lint")
WARM_STRATEGIES = ("in-place", "in-place-then-redeploy", "redeploy")

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}\Z")   # a service name; swarm caps names at 63
_OVERLAY_RE = re.compile(r"^compose\.[a-z0-9._-]+\.yml\Z")

DEFAULTS = {
    # Convergence: abra waits up to the recipe's coop-cloud.<stack>.timeout label (TIMEOUT in .env).
    "deploy_timeout": 300,
    # The convergence watcher: no progress (task state, restarts, health, new log lines) for this
    # many seconds is a wedge.
    "wedge_window": 120,
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
    # Extra settings written into the app's .env.
    "env": {},
    # Compose overlays enabled on top of compose.yml (COMPOSE_FILE), e.g. [compose.smtp.yml].
    "overlays": [],
    # Heavy recipes never deploy beside another heavy one (a lock on the server).
    "heavy": False,
    # Readiness probes run before each tier after the deploy.
    "readiness": [],
    # A check that a backup captured real data, and how often to re-take it.
    "backup_verify": {},
    # How a warm canonical advances to a new release.
    "warm_strategy": "in-place-then-redeploy",
    # Routing identity after a warm promote: this path must answer with this text ({domain} is
    # replaced by the app's domain), proving the proxy reached this stack and not another.
    "identity_path": "",
    "identity_expect": "",
    # The custom tier: the recipe's own suite is stopped (and the tier red) after this many
    # seconds. It runs on the controller, so over SSH it must end within the run's lease.
    "custom_timeout": 600,
}

_TYPES = {
    "deploy_timeout": int, "wedge_window": int, "health_path": str, "health_codes": list,
    "content_marker": str, "http_timeout": int, "http_retries": int, "upgrade_base_version": str,
    "not_applicable": dict, "state_service": str, "state_path": str, "env": dict, "overlays": list,
    "heavy": bool, "readiness": list, "backup_verify": dict, "warm_strategy": str,
    "identity_path": str, "identity_expect": str, "custom_timeout": int,
}

# Probe kinds, generic (issue 17): an HTTP answer through the proxy, a TCP port that opens (and,
# with send/expect, answers a line), a TLS handshake that completes on a port (mumble's 64738),
# and a command in the service's own container that exits 0 (its expect: text in its stdout).
PROBE_KINDS = ("http", "tcp", "tls", "exec")
PROBE_DEFAULTS = {"type": "http", "service": "app", "port": 80, "path": "/", "codes": [200],
                  "stable": 3, "interval": 1, "timeout": 120, "send": "", "expect": ""}
PROBE_TYPES = {"type": str, "service": str, "port": int, "path": str, "codes": list, "stable": int,
               "interval": int, "timeout": int, "send": str, "expect": str, "command": list}

BACKUP_VERIFY_DEFAULTS = {"service": "app", "command": [], "attempts": 3, "settle": 5}
BACKUP_VERIFY_TYPES = {"service": str, "command": list, "attempts": int, "settle": int}


class SettingsError(ValueError):
    pass


def check_types(where: str, data: dict, types: dict) -> None:
    unknown = sorted(set(data) - set(types))
    if unknown:
        raise SettingsError("unknown setting(s) in %s: %s (known: %s)" % (where, ", ".join(unknown), ", ".join(sorted(types))))
    for key, value in data.items():
        want = types[key]
        if (want is int and isinstance(value, bool)) or not isinstance(value, want):
            raise SettingsError("%s.%s must be %s, not %r" % (where, key, want.__name__, value))


def resolve_probe(where: str, probe: dict) -> dict:
    if not isinstance(probe, dict):
        raise SettingsError("%s must be a mapping" % where)
    check_types(where, probe, PROBE_TYPES)
    out = dict(PROBE_DEFAULTS, **copy.deepcopy(probe))
    if out["type"] not in PROBE_KINDS:
        raise SettingsError("%s.type must be one of %s" % (where, ", ".join(PROBE_KINDS)))
    # The kinds that existed before tls and exec resolve exactly as they did (no new keys), so a
    # server's probes behave the same; the new kinds are strict about what they do not use.
    if "command" in out and out["type"] != "exec":
        raise SettingsError("%s.command is for exec probes (a command in the container)" % where)
    if out["type"] == "exec":
        command = out.get("command")
        if not command or not all(isinstance(a, str) and a for a in command):
            raise SettingsError("%s.command must be a non-empty argv list of strings" % where)
        if out["send"]:
            raise SettingsError("%s.send is for tcp probes; an exec probe runs its command" % where)
    if out["type"] == "tls" and (out["send"] or out["expect"]):
        raise SettingsError("%s: a tls probe completes a handshake; send and expect are for tcp" % where)
    if not _NAME_RE.match(out["service"]):
        raise SettingsError("%s.service %r is not a service name" % (where, out["service"]))
    if not 1 <= out["port"] <= 65535:
        raise SettingsError("%s.port must be a TCP port" % where)
    if out["stable"] < 1 or out["interval"] < 1 or out["timeout"] < 1:
        raise SettingsError("%s: stable, interval and timeout must be positive" % where)
    if out["type"] == "http" and not out["path"].startswith("/"):
        raise SettingsError("%s.path must start with /" % where)
    return out


def resolve(settings: dict | None, recipe: str = "") -> dict:
    """Validate ``settings`` against the schema and fill in the defaults."""
    name = recipe or "the recipe"
    settings = settings or {}
    if not isinstance(settings, dict):
        raise SettingsError("settings for %s must be a mapping" % name)
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise SettingsError("unknown setting(s) for %s: %s (known: %s)"
                            % (name, ", ".join(unknown), ", ".join(sorted(DEFAULTS))))
    out = copy.deepcopy(DEFAULTS)
    for key, value in settings.items():
        want = _TYPES[key]
        if (want is int and isinstance(value, bool)) or not isinstance(value, want):
            raise SettingsError("setting %s of %s must be %s, not %r" % (key, name, want.__name__, value))
        out[key] = copy.deepcopy(value)
    if out["deploy_timeout"] <= 0 or out["wedge_window"] <= 0 or out["custom_timeout"] <= 0:
        raise SettingsError("deploy_timeout, wedge_window and custom_timeout must be positive")
    for tier, reason in out["not_applicable"].items():
        if tier not in TIERS:
            raise SettingsError("not_applicable names unknown tier %r (tiers: %s)" % (tier, ", ".join(TIERS)))
        if not isinstance(reason, str) or not reason.strip():
            raise SettingsError("not_applicable.%s needs a reason" % tier)
    for code in out["health_codes"]:
        if not isinstance(code, int) or not 100 <= code <= 599:
            raise SettingsError("health_codes must be HTTP status codes, not %r" % (code,))
    if out["health_path"] and not out["health_path"].startswith("/"):
        raise SettingsError("health_path must start with / (or be empty: no HTTP check, e.g. a TCP-only app)")
    if out["state_path"] and not out["state_path"].startswith("/"):
        raise SettingsError("state_path must be an absolute path")
    for key, value in out["env"].items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*\Z", key):
            raise SettingsError("env key %r is not a valid variable name" % (key,))
        if not isinstance(value, (str, int)) or "\n" in str(value):
            raise SettingsError("env value of %s must be a single-line string" % key)
    for overlay in out["overlays"]:
        if not isinstance(overlay, str) or not _OVERLAY_RE.match(overlay):
            raise SettingsError("overlay %r is not a compose.<name>.yml file name" % (overlay,))
    if out["overlays"] and "COMPOSE_FILE" in out["env"]:
        raise SettingsError("set overlays or env.COMPOSE_FILE, not both")
    out["readiness"] = [resolve_probe("readiness[%d]" % i, p) for i, p in enumerate(out["readiness"])]
    if out["backup_verify"]:
        check_types("backup_verify", out["backup_verify"], BACKUP_VERIFY_TYPES)
        bv = dict(BACKUP_VERIFY_DEFAULTS, **out["backup_verify"])
        if not bv["command"] or not all(isinstance(a, str) for a in bv["command"]):
            raise SettingsError("backup_verify.command must be a non-empty argv list of strings")
        if bv["attempts"] < 1 or bv["settle"] < 0:
            raise SettingsError("backup_verify.attempts must be >= 1 and settle >= 0")
        out["backup_verify"] = bv
    if out["identity_path"] and not out["identity_path"].startswith("/"):
        raise SettingsError("identity_path must start with /")
    if out["warm_strategy"] not in WARM_STRATEGIES:
        raise SettingsError("warm_strategy must be one of %s" % ", ".join(WARM_STRATEGIES))
    return out


def compose_file(settings: dict) -> str | None:
    """The ``COMPOSE_FILE`` the settings ask for: compose.yml plus the overlays."""
    if settings.get("overlays"):
        return ":".join(["compose.yml"] + list(settings["overlays"]))
    return settings.get("env", {}).get("COMPOSE_FILE")
