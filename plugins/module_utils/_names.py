# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Naming rules: recipe names, domains, stack names and swarm's name budgets.

Pure logic, no Ansible import, so it unit-tests directly.
"""

from __future__ import annotations

import hashlib
import re

# Swarm refuses service and network names over 63 characters and secret/config names over 64.
SWARM_SERVICE_MAX = 63
SWARM_NETWORK_MAX = 63
SWARM_SECRET_MAX = 64
SWARM_CONFIG_MAX = 64
# DNS (RFC 1035) and the ACME certificate common name.
DNS_LABEL_MAX = 63
DNS_NAME_MAX = 253
CERT_CN_MAX = 64

# \Z, not $: "$" also matches before a trailing newline, so "gitea\n" would pass.
_RECIPE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
_SERVER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\Z")
_RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}\Z")
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\+[A-Za-z0-9._-]+\Z")
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
_SERVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
_NETWORK_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
_IMAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")
_FORGE_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}\Z")
_HTTP_URL_RE = re.compile(r"^https?://(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?(?:/[!-~]*)?\Z")
_URL_PATH_RE = re.compile(r"^/[!-~]{0,2047}\Z")


class NameError_(ValueError):
    """A name that breaks a rule; the message names the rule."""


def validate_recipe(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise NameError_("recipe name is empty")
    if not _RECIPE_RE.match(name):
        raise NameError_(
            "recipe name %r is not valid: only lowercase letters, digits and inner hyphens "
            "are allowed (no shell, path or uppercase characters)" % (name,))
    return name


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not _RUN_ID_RE.match(run_id):
        raise NameError_("run id %r is not valid: lowercase letters, digits and hyphens, 3-63 characters" % (run_id,))
    return run_id


# docker's own rule for context names (cli/context/store).
_DOCKER_CONTEXT_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.+-]+\Z")


def validate_docker_context(name: str) -> str:
    """A docker context name, or empty (docker's current context)."""
    if name in (None, ""):
        return ""
    if not isinstance(name, str) or not _DOCKER_CONTEXT_RE.match(name):
        raise NameError_("docker_context %r is not a docker context name: letters, digits, '_', '.', '+' and '-', "
                         "at least two characters, starting with a letter or digit" % (name,))
    return name


def validate_server(name: str) -> str:
    if not isinstance(name, str) or not _SERVER_RE.match(name) or ".." in name:
        raise NameError_("server name %r is not valid: lowercase letters, digits, dots and hyphens only" % (name,))
    return name


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.match(version) or ".." in version:
        raise NameError_("version %r is not a recipe release tag like 1.2.3+4.5.6" % (version,))
    return version


def validate_env(env) -> dict:
    """Settings written into an app's ``.env``: ``KEY=value`` lines, so a key is a shell variable
    name and a value a scalar on one line (a newline would add a line of its own)."""
    if not isinstance(env, dict):
        raise NameError_("env must be a mapping of KEY: value, not %r" % (env,))
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY_RE.match(key):
            raise NameError_("env key %r is not a variable name (letters, digits and _, not first a digit)" % (key,))
        if not isinstance(value, (str, int, float, bool)):
            raise NameError_("env value of %s must be a string or a number, not %r" % (key, value))
        if isinstance(value, str) and any(c in value for c in "\n\r\x00"):
            raise NameError_("env value of %s %r has a newline or NUL: one .env line each" % (key, value))
    return env


def validate_service(name: str, what: str = "service") -> str:
    """A compose service name (it becomes part of a swarm service name and a docker filter)."""
    if not isinstance(name, str) or not _SERVICE_RE.match(name):
        raise NameError_("%s %r is not a service name: letters, digits, '_', '.', '-', not first a "
                         "punctuation mark, up to 63 characters" % (what, name))
    return name


def validate_network(name: str, what: str = "network") -> str:
    """A docker network name (an argument to ``--network``, so never an option)."""
    if not isinstance(name, str) or not _NETWORK_RE.match(name):
        raise NameError_("%s %r is not a docker network name: letters, digits, '_', '.', '-', not first "
                         "a punctuation mark" % (what, name))
    return name


def validate_image(ref: str, what: str = "image") -> str:
    """A docker image reference (an argument to ``docker run``, so never an option)."""
    if not isinstance(ref, str) or not _IMAGE_RE.match(ref):
        raise NameError_("%s %r is not an image reference like busybox:stable (no spaces, no leading '-')"
                         % (what, ref))
    return ref


def validate_http_url(url: str, what: str = "url") -> str:
    """An http(s) URL without whitespace, control characters or credentials."""
    if not isinstance(url, str) or not _HTTP_URL_RE.match(url):
        raise NameError_("%s %r is not an http:// or https:// URL (host[:port][/path], no spaces, no "
                         "credentials)" % (what, url))
    return url


def validate_url_path(path: str, what: str = "path") -> str:
    """The path part of a URL: starts with /, printable ASCII only."""
    if not isinstance(path, str) or not _URL_PATH_RE.match(path) or path.startswith("//"):
        raise NameError_("%s %r must start with / and hold printable ASCII only (no spaces), up to 2048 "
                         "characters" % (what, path))
    return path


def validate_forge_name(name: str, what: str = "name") -> str:
    """A forge user, organisation or repository name: one URL path segment, never . or .. (nor
    anything starting with a dot or holding '..')."""
    if not isinstance(name, str) or not _FORGE_NAME_RE.match(name) or name.startswith(".") or ".." in name:
        raise NameError_("%s %r is not a forge name: letters, digits, '_', '.', '-', up to 100 characters, "
                         "not first a dot, no '..'" % (what, name))
    return name


def validate_branch(name: str, what: str = "branch") -> str:
    """A git branch name by git-check-ref-format's rules."""
    bad = None
    if not isinstance(name, str) or not name:
        bad = "it is empty"
    elif len(name) > 255:
        bad = "it is %d characters" % len(name)
    elif any(ord(c) < 0x20 or c == "\x7f" or c in " ~^:?*[\\" for c in name):
        bad = "it has a space, a control character or one of ~^:?*[\\"
    elif ".." in name or "@{" in name or "//" in name or name == "@":
        bad = "it has '..', '@{' or '//', or is '@'"
    elif name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        bad = "it starts with - or /, or ends with /, . or .lock"
    elif any(part.startswith(".") or part.endswith(".lock") for part in name.split("/")):
        bad = "a component starts with . or ends with .lock"
    if bad:
        raise NameError_("%s %r is not a git branch name: %s" % (what, name, bad))
    return name


def validate_domain(domain: str) -> str:
    """DNS rules and the certificate common-name limit."""
    if not isinstance(domain, str) or not domain:
        raise NameError_("domain is empty")
    if domain != domain.lower():
        raise NameError_("domain %r has uppercase characters" % (domain,))
    if len(domain) > DNS_NAME_MAX:
        raise NameError_("domain %r is %d characters, over DNS's %d" % (domain, len(domain), DNS_NAME_MAX))
    if len(domain) > CERT_CN_MAX:
        raise NameError_(
            "domain %r is %d characters, over the %d-character certificate common name ACME can issue"
            % (domain, len(domain), CERT_CN_MAX))
    labels = domain.split(".")
    if len(labels) < 2:
        raise NameError_("domain %r needs at least two labels" % (domain,))
    for label in labels:
        if len(label) > DNS_LABEL_MAX:
            raise NameError_("domain label %r is %d characters, over DNS's %d" % (label, len(label), DNS_LABEL_MAX))
        if not _LABEL_RE.match(label):
            raise NameError_(
                "domain %r has an invalid label %r: letters, digits and inner hyphens only "
                "(no leading or trailing hyphen, no shell or path characters)" % (domain, label))
    return domain


# abra cuts a sanitised app name to this length (MAX_SANITISED_APP_NAME_LENGTH).
STACK_NAME_MAX = 45


def stack_name(domain: str) -> str:
    """abra's stack name: the domain with dots turned into underscores, cut to 45 characters."""
    return domain.replace(".", "_")[:STACK_NAME_MAX]


def cold_domain(recipe: str, salt: str, base_domain: str) -> str:
    """Short, unique cold domain: ``<recipe[:4]>-<6 hex of recipe|salt>.<base>``.

    Short on purpose: swarm caps secret names at 64 characters and the stack name is a prefix of
    every one of them.
    """
    validate_recipe(recipe)
    digest = hashlib.sha256(("%s|%s" % (recipe, salt)).encode()).hexdigest()[:6]
    prefix = recipe[:4].rstrip("-")
    return validate_domain("%s-%s.%s" % (prefix, digest, base_domain))


def name_budget_problems(domain: str, services=(), networks=(), secrets=(), configs=()) -> list[str]:
    """Every swarm object name the deploy would create that is over swarm's limit.

    ``secrets`` and ``configs`` are (name, version) pairs; the swarm name is
    ``<stack>_<name>_<version>``. Services and networks are ``<stack>_<name>``.
    """
    stack = stack_name(domain)
    problems = []
    for svc in services:
        full = "%s_%s" % (stack, svc)
        if len(full) > SWARM_SERVICE_MAX:
            problems.append("service name %s is %d characters, over swarm's %d" % (full, len(full), SWARM_SERVICE_MAX))
    for net in networks:
        full = "%s_%s" % (stack, net)
        if len(full) > SWARM_NETWORK_MAX:
            problems.append("network name %s is %d characters, over swarm's %d" % (full, len(full), SWARM_NETWORK_MAX))
    for kind, items, limit in (("secret", secrets, SWARM_SECRET_MAX), ("config", configs, SWARM_CONFIG_MAX)):
        for name, version in items:
            full = "%s_%s_%s" % (stack, name, version)
            if len(full) > limit:
                problems.append("%s name %s is %d characters, over swarm's %d" % (kind, full, len(full), limit))
    return problems


def is_protected(domain: str, protected) -> bool:
    """True when ``domain`` is a protected domain or lies under one."""
    d = domain.lower().rstrip(".")
    for p in protected or ():
        p = str(p).lower().rstrip(".")
        if p and (d == p or d.endswith("." + p)):
            return True
    return False
