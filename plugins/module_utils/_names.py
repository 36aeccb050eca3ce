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

_RECIPE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_SERVER_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$")
_RUN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,62}$")
_VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+\+[A-Za-z0-9._-]+$")


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


def validate_server(name: str) -> str:
    if not isinstance(name, str) or not _SERVER_RE.match(name) or ".." in name:
        raise NameError_("server name %r is not valid: lowercase letters, digits, dots and hyphens only" % (name,))
    return name


def validate_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise NameError_("version %r is not a recipe release tag like 1.2.3+4.5.6" % (version,))
    return version


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
