# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Canonical warm domains: a namespace that cannot collide, leases on it, and the registry.

Pure logic, no Ansible import. Every read-modify-write of a lease or a registry file happens
under the ledger's mutex (``Ledger.mutex()``, an ``flock`` on ``<state_dir>/.mutex``), so
processes on one host see one order of events.

Layout under the state directory (next to the ledger's ``runs/`` and ``locks/``)::

    state/
      leases/<lease-id>.json        who holds a warm domain: a run, or the registry
      canon/<server>/<recipe>.json  the canonical warm deploy of a recipe on a server

Why a namespace: the old harness named warm deploys ``warm-<recipe>``, and
``warm-keycloak.<base>`` *is* the live shared OIDC provider, so a canonical keycloak deploy
would have landed on it. Canonical deploys now live under ``warm-canon-<recipe>.<base>``
(or ``wc-<10 hex>.<base>`` when that does not fit a rule), and whatever name is handed out is
still checked against every protected domain, every app ``.env``, every deployed stack and
every lease before anyone may deploy on it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets as _secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import EnvFileError, read_env
from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import (
    STATUS_KEPT, STATUS_RUNNING, Ledger, now_iso, read_json, write_json_atomic)
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    CERT_CN_MAX, DNS_LABEL_MAX, DNS_NAME_MAX, STACK_NAME_MAX, NameError_, is_protected, name_budget_problems,
    stack_name, validate_domain, validate_recipe, validate_run_id, validate_server, validate_version)
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import version_key

WARM_PREFIX = "warm-canon"
HASH_PREFIX = "wc"
HASH_HEX = 10
# A lease whose run has no guardian yet (claimed a moment ago, or not in the ledger at all)
# holds for this long; the same window ``reapable_runs`` gives a starting run.
LEASE_GRACE_SECONDS = 120
HISTORY_MAX = 20
REGISTRY_STATUSES = ("none", "deploying", "live", "failed")

_DNS_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\Z")
_LEASE_ID_RE = re.compile(r"^lease-[0-9a-f]{16}\Z")
_ENV_RECIPE_RE = re.compile(r"^([a-z0-9][a-z0-9-]*)")


class WarmRefused(ValueError):
    """A warm domain that may not be handed out; ``reasons`` says every rule it broke."""

    def __init__(self, domain: str | None, reasons):
        self.domain = domain
        self.reasons = list(reasons)
        subject = "refusing warm domain %s" % domain if domain else "refusing warm domain"
        super().__init__("%s: %s" % (subject, "; ".join(self.reasons)))


class LeaseRefused(ValueError):
    """Another holder has the domain (or a domain with the same stack name)."""


class RegistryRefused(ValueError):
    """A registry change that would break its rules (e.g. a promotion without a green cold run)."""


# -- the namespace ---------------------------------------------------------------------------
def readable_warm_domain(recipe: str, base_domain: str, prefix: str = WARM_PREFIX) -> str:
    return "%s-%s.%s" % (prefix, recipe, base_domain)


def hashed_warm_domain(recipe: str, server: str, base_domain: str) -> str:
    digest = hashlib.sha256(("%s|%s" % (server, recipe)).encode()).hexdigest()[:HASH_HEX]
    return "%s-%s.%s" % (HASH_PREFIX, digest, base_domain)


def rule_problems(domain: str, compose_names: dict | None = None, whole_stack: bool = True) -> list:
    """Every naming rule ``domain`` breaks: DNS, the certificate CN, swarm's name budgets for this
    recipe's own services, networks, secrets and configs, and (``whole_stack``) abra's
    45-character stack cut: a readable canonical's stack must be its whole sanitised domain, or
    the cut could drop part of the recipe name and two canonicals could share a stack. (The
    hashed name keeps its identity, ``wc-<10 hex>``, in its first 13 characters, and a requested
    domain is not part of the namespace; for both the cut is covered by comparing stack names.)"""
    problems = []
    try:
        validate_domain(domain)
    except NameError_ as exc:
        problems.append(str(exc))
    sanitised = domain.replace(".", "_")
    if whole_stack and len(sanitised) > STACK_NAME_MAX:
        problems.append("stack name %s is %d characters; abra cuts it to %d (%s), which no longer names "
                        "this domain alone" % (sanitised, len(sanitised), STACK_NAME_MAX, stack_name(domain)))
    problems += budget_problems(domain, compose_names)
    return problems


def budget_problems(domain: str, compose_names: dict | None) -> list:
    cn = compose_names or {}
    return name_budget_problems(
        domain,
        services=list(cn.get("services") or ()),
        networks=list(cn.get("networks") or ()),
        secrets=[tuple(s) for s in cn.get("secrets") or ()],
        configs=[tuple(c) for c in cn.get("configs") or ()])


def _dns_only_problems(base_domain: str) -> list:
    # The base itself needs no certificate (only names under it do), so only DNS applies.
    if not isinstance(base_domain, str) or not base_domain:
        return ["base domain is empty"]
    problems = []
    if base_domain != base_domain.lower():
        problems.append("base domain %r has uppercase characters" % (base_domain,))
    if len(base_domain) > DNS_NAME_MAX:
        problems.append("base domain %r is %d characters, over DNS's %d" % (base_domain, len(base_domain), DNS_NAME_MAX))
    labels = base_domain.split(".")
    if len(labels) < 2:
        problems.append("base domain %r needs at least two labels" % (base_domain,))
    for label in labels:
        if len(label) > DNS_LABEL_MAX:
            problems.append("base domain label %r is %d characters, over DNS's %d" % (label, len(label), DNS_LABEL_MAX))
        elif not _DNS_LABEL_RE.match(label):
            problems.append("base domain %r has an invalid label %r: letters, digits and inner hyphens only"
                            % (base_domain, label))
    return problems


def env_recipe(path: str) -> str | None:
    """The recipe an app ``.env`` belongs to (``TYPE=<recipe>[:<version>]`` or ``RECIPE=``,
    whichever active line comes first); None when unreadable: the domain is still taken."""
    try:
        env = read_env(path)
    except (OSError, EnvFileError):
        return None
    for e in env.entries:
        if not e.commented and e.key in ("TYPE", "RECIPE"):
            m = _ENV_RECIPE_RE.match(e.value)
            return m.group(1) if m else None
    return None


def env_domains(shared_abra_dir: str, server: str | None = None) -> dict:
    """``{domain: recipe}`` for every app ``.env`` under ``servers/<server>/`` (every server when
    ``server`` is None: a DNS name is one name whichever server its app runs on)."""
    pattern = os.path.join(shared_abra_dir, "servers", server or "*", "*.env")
    return {os.path.basename(p)[:-4]: env_recipe(p) for p in sorted(glob.glob(pattern))}


@dataclass
class WarmDomain:
    domain: str
    hashed: bool                     # the wc-<hex> fallback was needed
    canonical: bool                  # the namespace's own name for this recipe/server (not a request)
    reused: bool                     # this recipe's canonical app already exists on it
    checks: list = field(default_factory=list)


def plan_warm_domain(recipe: str, server: str, base_domain: str, *, protected, existing_env_domains,
                     deployed_stacks, compose_names: dict | None = None, prefix: str = WARM_PREFIX,
                     domain: str | None = None, canonical_domain: str | None = None) -> WarmDomain:
    """Choose (or, with ``domain``, vet a requested) warm domain; raise :class:`WarmRefused`
    with every reason when it may not be used.

    ``existing_env_domains``: ``{domain: recipe or None}`` (or an iterable of domains) of every app
    ``.env``; ``deployed_stacks``: the stack names ``docker stack ls`` shows; ``canonical_domain``:
    the domain the registry records for this recipe/server, whose own app is not a collision.
    """
    validate_recipe(recipe)
    validate_server(server)
    base_problems = _dns_only_problems(base_domain)
    if base_problems:
        raise WarmRefused(None, base_problems)
    checks = []
    readable = readable_warm_domain(recipe, base_domain, prefix)
    hashed_name = hashed_warm_domain(recipe, server, base_domain)
    if domain:
        candidate, hashed = domain, False
        problems = rule_problems(candidate, compose_names, whole_stack=False)
        if problems:
            raise WarmRefused(candidate, problems)
    else:
        problems = rule_problems(readable, compose_names)
        if not problems:
            candidate, hashed = readable, False
        else:
            fallback_problems = rule_problems(hashed_name, compose_names, whole_stack=False)
            if fallback_problems:
                raise WarmRefused(readable, ["it breaks %s" % "; ".join(problems),
                                             "and the hashed fallback %s breaks %s"
                                             % (hashed_name, "; ".join(fallback_problems))])
            candidate, hashed = hashed_name, True
            checks.append("fallback: %s does not fit (%s)" % (readable, "; ".join(problems)))
    checks.append("DNS labels and length, %d-character certificate name" % CERT_CN_MAX)
    checks.append("stack name %s" % stack_name(candidate)
                  + (" is the whole sanitised domain" if not hashed and not domain else ""))
    checks.append("swarm name budgets of the recipe's compose names" if compose_names
                  else "swarm name budgets (no compose names given)")

    reasons = []
    for p in protected or ():
        if is_protected(candidate, [p]):
            p = str(p).lower().rstrip(".")
            reasons.append("%s is protected (live service)" % candidate if candidate == p
                           else "%s lies under protected %s (live service)" % (candidate, p))
    checks.append("not protected and not under a protected domain (%d)" % len(list(protected or ())))

    own = {d for d in (readable, hashed_name, canonical_domain) if d}
    if isinstance(existing_env_domains, Mapping):
        envs = dict(existing_env_domains)
    else:
        envs = {d: None for d in existing_env_domains or ()}
    stack = stack_name(candidate)
    own_app = False
    for env_domain, env_owner in sorted(envs.items()):
        if env_domain == candidate:
            if candidate in own and env_owner in (None, recipe):
                own_app = True
                continue
            reasons.append("%s is already used by an app (its .env exists%s)"
                           % (candidate, ", recipe %s" % env_owner if env_owner else ""))
        elif stack_name(env_domain) == stack:
            reasons.append("stack name %s collides with app %s, whose stack abra also cuts to %s"
                           % (stack, env_domain, stack_name(env_domain)))
    checks.append("app .env files (%d)" % len(envs))
    stacks = set(deployed_stacks or ())
    if stack in stacks and not own_app:
        reasons.append("stack name %s collides with deployed stack %s" % (stack, stack))
    checks.append("deployed stacks (%d)" % len(stacks))
    if reasons:
        raise WarmRefused(candidate, reasons)
    return WarmDomain(domain=candidate, hashed=hashed, canonical=candidate in own, reused=own_app,
                      checks=checks)


def allocate_warm_domain(recipe: str, server: str, base_domain: str, *, protected, existing_env_domains,
                         deployed_stacks, compose_names: dict | None = None, prefix: str = WARM_PREFIX,
                         domain: str | None = None, canonical_domain: str | None = None) -> str:
    """The warm domain for ``recipe`` on ``server`` (see :func:`plan_warm_domain`)."""
    return plan_warm_domain(recipe, server, base_domain, protected=protected,
                            existing_env_domains=existing_env_domains, deployed_stacks=deployed_stacks,
                            compose_names=compose_names, prefix=prefix, domain=domain,
                            canonical_domain=canonical_domain).domain


# -- leases ----------------------------------------------------------------------------------
def registry_holder(server: str, recipe: str) -> str:
    return "registry:%s/%s" % (server, recipe)


def leases_dir(ledger: Ledger) -> str:
    return os.path.join(ledger.state_dir, "leases")


def lease_path(ledger: Ledger, lease_id: str) -> str:
    if not isinstance(lease_id, str) or not _LEASE_ID_RE.match(lease_id):
        raise LeaseRefused("lease id %r is not a lease id (lease-<16 hex>)" % (lease_id,))
    return os.path.join(leases_dir(ledger), lease_id + ".json")


def read_lease(ledger: Ledger, lease_id: str) -> dict | None:
    return read_json(lease_path(ledger, lease_id))


def leases(ledger: Ledger) -> list:
    d = leases_dir(ledger)
    if not os.path.isdir(d):
        return []
    out = []
    for fname in sorted(os.listdir(d)):
        if fname.endswith(".json") and not fname.startswith("."):
            rec = read_json(os.path.join(d, fname))
            if rec:
                out.append(rec)
    return out


def lease_state(ledger: Ledger, lease: dict, now: float | None = None) -> tuple:
    """``(holds, why)``: whether ``lease`` still holds its domain, and in words why (not)."""
    if lease.get("kind") == "registry":
        return True, "held by the %s" % lease["holder"]
    now = time.time() if now is None else now
    run_id = lease.get("run_id")
    record = ledger.get(run_id) if run_id else None
    age = now - float(lease.get("taken_epoch") or 0)
    if record is not None:
        if ledger.is_live(record):
            return True, "run %s is live" % run_id
        if record.get("status") == STATUS_KEPT:
            return True, "run %s kept its deploys (keep-on-failure) until teardown" % run_id
        if record.get("status") == STATUS_RUNNING and record.get("guardian_pid") is None and age < LEASE_GRACE_SECONDS:
            return True, "run %s is starting (no guardian yet, lease %d s old)" % (run_id, age)
        return False, "run %s is not live (status %s)" % (run_id, record.get("status"))
    if lease.get("run_known"):
        return False, "run %s is gone from the ledger" % run_id
    if age < LEASE_GRACE_SECONDS:
        return True, "run %s is not in the ledger yet (lease %d s old, grace %d s)" % (run_id, age, LEASE_GRACE_SECONDS)
    return False, "run %s never appeared in the ledger within %d s" % (run_id, LEASE_GRACE_SECONDS)


def _claimed_by_runs(ledger: Ledger, stack: str, exclude: str | None, same_recipe=None) -> list:
    """Domains other runs recorded in the ledger whose stack name is ``stack``. The registry's
    hold does not count runs of its own recipe on its own server (they work on the canonical)."""
    out = []
    for rec in ledger.runs():
        if rec["run_id"] == exclude or rec.get("status") not in (STATUS_RUNNING, STATUS_KEPT):
            continue
        if same_recipe and (rec.get("recipe"), rec.get("server")) == same_recipe:
            continue
        for d in (rec.get("domains") or {}).values():
            if stack_name(d) == stack:
                out.append((rec["run_id"], d))
    return out


def _take_locked(ledger: Ledger, domain: str, recipe: str, server: str, run_id: str | None,
                 holder: str, kind: str) -> tuple:
    """Under the mutex: ``(lease_id, taken_now)``; stale leases met on the way are removed."""
    stack = stack_name(domain)
    for lease in leases(ledger):
        if stack_name(lease["domain"]) != stack:
            continue
        same_domain = lease["domain"] == domain
        if lease.get("holder") == holder and same_domain:
            return lease["lease_id"], False
        ours = same_domain and lease.get("recipe") == recipe and lease.get("server") == server
        if lease.get("kind") == "registry":
            if ours:
                continue      # the canonical's own hold: a run of that recipe may work on it

            raise LeaseRefused("%s is held by the %s (canonical warm domain %s)%s"
                               % (domain, lease["holder"], lease["domain"],
                                  "" if same_domain else "; stack name %s collides" % stack))
        if kind == "registry" and ours:
            continue          # the registry takes its hold beside the run that deploys the canonical
        holds, why = lease_state(ledger, lease)
        if holds and same_domain:
            raise LeaseRefused("%s is leased by run %s (%s; lease %s)"
                               % (domain, lease.get("run_id"), why, lease["lease_id"]))
        if holds:
            raise LeaseRefused("%s: stack name %s collides with run %s's lease on %s (%s; lease %s)"
                               % (domain, stack, lease.get("run_id"), lease["domain"], why, lease["lease_id"]))
        os.unlink(lease_path(ledger, lease["lease_id"]))   # stale: its run is gone
    for other_run, d in _claimed_by_runs(ledger, stack, exclude=run_id,
                                         same_recipe=(recipe, server) if kind == "registry" else None):
        raise LeaseRefused("%s: stack name %s collides with domain %s claimed by run %s" % (domain, stack, d, other_run))
    lease_id = "lease-" + _secrets.token_hex(8)
    record = {
        "lease_id": lease_id, "domain": domain, "stack": stack, "recipe": recipe, "server": server,
        "holder": holder, "kind": kind, "run_id": run_id,
        "run_known": bool(run_id and ledger.get(run_id) is not None),
        "taken": now_iso(), "taken_epoch": time.time(),
    }
    write_json_atomic(lease_path(ledger, lease_id), record)
    return lease_id, True


def take_lease(ledger: Ledger, domain: str, recipe: str, server: str, run_id: str) -> str:
    """Lease ``domain`` to ``run_id``; returns the lease id. Idempotent for the same run and
    domain. Raises :class:`LeaseRefused` while another live holder has the domain or a domain with
    the same (45-character) stack name."""
    return take_lease_ex(ledger, domain, recipe, server, run_id)[0]


def take_lease_ex(ledger: Ledger, domain: str, recipe: str, server: str, run_id: str) -> tuple:
    """:func:`take_lease`, also saying whether the lease was taken now (``False``: already held)."""
    validate_domain(domain)
    validate_recipe(recipe)
    validate_server(server)
    validate_run_id(run_id)
    with ledger.mutex():
        return _take_locked(ledger, domain, recipe, server, run_id, holder=run_id, kind="run")


def lease_held_by(ledger: Ledger, domain: str, run_id: str) -> dict | None:
    for lease in leases(ledger):
        if lease["domain"] == domain and lease.get("holder") == run_id:
            return lease
    return None


def release_lease(ledger: Ledger, lease_id: str) -> bool:
    """Release one lease by its id (never by domain or pattern); ``False`` when it was not held."""
    path = lease_path(ledger, lease_id)
    with ledger.mutex():
        if not os.path.exists(path):
            return False
        os.unlink(path)
        return True


def reap_stale_leases(ledger: Ledger, now: float | None = None) -> list:
    """Remove the leases whose run is dead or gone; registry holds are never stale. Returns the
    reaped lease records, each with the ``reason``."""
    reaped = []
    with ledger.mutex():
        for lease in leases(ledger):
            holds, why = lease_state(ledger, lease, now=now)
            if holds:
                continue
            try:
                os.unlink(lease_path(ledger, lease["lease_id"]))
            except FileNotFoundError:
                continue
            reaped.append(dict(lease, reason=why))
    return reaped


# -- the canonical registry --------------------------------------------------------------------
def registry_path(ledger: Ledger, server: str, recipe: str) -> str:
    validate_server(server)
    validate_recipe(recipe)
    return os.path.join(ledger.state_dir, "canon", server, recipe + ".json")


def empty_canonical(server: str, recipe: str) -> dict:
    return {"recipe": recipe, "server": server, "domain": None, "version": None, "commit": None,
            "status": "none", "updated": None, "lease": None, "target": None,
            "last_known_good": None, "failure": None, "history": []}


def read_canonical(ledger: Ledger, server: str, recipe: str) -> dict:
    """The registry record; status ``none`` (and no domain or version) when there is none."""
    record = read_json(registry_path(ledger, server, recipe))
    return dict(empty_canonical(server, recipe), **record) if record else empty_canonical(server, recipe)


def green_cold_refusal(cold_result: Mapping, recipe: str | None) -> str | None:
    """Why ``cold_result`` (a ``result.json``) is not a green cold run of ``recipe``; None when it
    is. The part of the promote rule that needs no canonical: promote.yml asks it of its input
    before claiming a run, advance_refusal again under the lease."""
    if cold_result.get("outcome") != "pass":
        return "cold run %s is %r, not pass" % (cold_result.get("run_id"), cold_result.get("outcome"))
    if cold_result.get("recipe") not in (None, recipe):
        return "cold run %s is of recipe %s, not %s" % (cold_result.get("run_id"), cold_result.get("recipe"), recipe)
    return None


def advance_refusal(canonical: dict, cold_result: dict | None, version: str | None = None) -> str | None:
    """Why the canonical may not advance to ``version`` (default: the cold run's head) on the
    strength of ``cold_result`` (a ``result.json``); ``None`` when it may."""
    if not cold_result:
        return "no cold result: a canonical only advances after a green cold run of that version"
    if not isinstance(cold_result, Mapping) or not isinstance(cold_result.get("versions") or {}, Mapping):
        return "the cold result is not a result.json (a JSON object with its versions)"
    head = (cold_result.get("versions") or {}).get("head")
    version = version or head
    refusal = green_cold_refusal(cold_result, canonical.get("recipe"))
    if refusal:
        return refusal
    if not head:
        return "cold run %s names no head version" % cold_result.get("run_id")
    if head != version:
        return "cold run %s was green for %s, not for %s" % (cold_result.get("run_id"), head, version)
    try:
        validate_version(version)
    except NameError_ as exc:
        return str(exc)
    if cold_result.get("server") not in (None, canonical.get("server")):
        return "cold run %s ran on server %s, not %s" % (
            cold_result.get("run_id"), cold_result.get("server"), canonical.get("server"))
    current = canonical.get("version")
    if (canonical.get("failure") or {}).get("verified") is False:
        # an interrupted advance left an unverified release running: the floor is the last good one
        current = (canonical.get("last_known_good") or {}).get("version")
    if current and version_key(version) < version_key(current):
        return "%s is older than the canonical's %s: a canonical never moves back" % (version, current)
    return None


def may_advance(canonical: dict, cold_result: dict | None) -> bool:
    """A canonical only ever advances after a green cold run of that version."""
    return advance_refusal(canonical, cold_result) is None


PROMOTE_MODES = ("fresh", "advance", "current", "verify")


def promote_mode(canonical: dict, app: dict, version: str) -> str:
    """How a promote of ``version`` gets there, from the registry record and what the warm domain
    runs (``app``: ``deployed`` and ``version``, as ``abra_app_info`` reads them).

    ``fresh``: nothing is deployed there, a first canonical; ``advance``: another release runs,
    deploy this one in place; ``current``: this release runs and the registry has it live, nothing
    to do; ``verify``: this release runs but no promote verified it (an advance interrupted after
    its deploy), so nothing is deployed and the identity check decides."""
    if not app.get("deployed"):
        return "fresh"
    if app.get("version") != version:
        return "advance"
    if canonical.get("status") == "live" and canonical.get("version") == version:
        return "current"
    return "verify"


def _significant(record: dict) -> dict:
    return {k: v for k, v in record.items() if k not in ("updated", "history")}


def _event(record: dict, event: dict) -> None:
    record["history"] = (list(record.get("history") or []) + [dict(event, at=now_iso())])[-HISTORY_MAX:]


def _registry_change(ledger: Ledger, server: str, recipe: str, change, dry_run: bool) -> tuple:
    """Apply ``change(record) -> event | None`` under the mutex; write only when something
    significant changed. Returns ``(record, changed)``."""
    path = registry_path(ledger, server, recipe)
    with ledger.mutex():
        before = read_canonical(ledger, server, recipe)
        after = {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v)
                 for k, v in before.items()}
        event = change(after)
        changed = _significant(after) != _significant(before)
        if changed:
            if event:
                _event(after, event)
            after["updated"] = now_iso()
            if not dry_run:
                write_json_atomic(path, after)
        return after, changed


def _hold(ledger: Ledger, record: dict, domain: str, dry_run: bool) -> str | None:
    """Under the mutex: the registry's own lease on its canonical domain (kept across runs)."""
    if record.get("lease") and record.get("domain") == domain:
        existing = read_json(lease_path(ledger, record["lease"]))
        if existing and existing.get("domain") == domain:
            return record["lease"]
    if dry_run:
        return record.get("lease")
    lease_id, _taken = _take_locked(ledger, domain, record["recipe"], record["server"], None,
                                    holder=registry_holder(record["server"], record["recipe"]), kind="registry")
    return lease_id


def record_deploying(ledger: Ledger, server: str, recipe: str, version: str, commit: str | None = None,
                     domain: str | None = None, lease: str | None = None, dry_run: bool = False) -> tuple:
    """A deploy of ``version`` onto the canonical domain starts. ``version`` stays the live one
    until :func:`record_promoted`; the attempt is ``target``. ``lease``: the run's lease on the
    domain, checked to name it. The registry takes its own hold on the domain."""
    validate_version(version)

    def change(rec):
        dom = domain or rec.get("domain")
        if not dom:
            raise RegistryRefused("canonical %s/%s has no domain yet: give the warm domain" % (server, recipe))
        validate_domain(dom)
        if rec.get("domain") and rec["domain"] != dom and rec.get("status") == "live":
            raise RegistryRefused("canonical %s/%s is live on %s; refusing to move it to %s"
                                  % (server, recipe, rec["domain"], dom))
        if lease:
            held = read_json(lease_path(ledger, lease))
            if not held or held.get("domain") != dom or held.get("recipe") != recipe or held.get("server") != server:
                raise RegistryRefused("lease %s does not hold %s for %s on %s" % (lease, dom, recipe, server))
        rec["domain"] = dom
        rec["lease"] = _hold(ledger, rec, dom, dry_run)
        rec["status"] = "deploying"
        rec["target"] = {"version": version, "commit": commit}
        return {"event": "deploying", "version": version, "commit": commit, "run_lease": lease}

    return _registry_change(ledger, server, recipe, change, dry_run)


def record_promoted(ledger: Ledger, server: str, recipe: str, version: str, commit: str | None,
                    cold_result: dict | None, dry_run: bool = False) -> tuple:
    """The canonical now runs ``version``: it becomes the last known good. Refused without a
    green cold run of exactly that version (:func:`advance_refusal`)."""
    validate_version(version)

    def change(rec):
        why = advance_refusal(rec, cold_result, version)
        if why:
            raise RegistryRefused("refusing to promote canonical %s/%s to %s: %s" % (server, recipe, version, why))
        if not rec.get("domain"):
            raise RegistryRefused("canonical %s/%s has no domain: record the deploy first" % (server, recipe))
        if rec.get("status") == "live" and rec.get("version") == version and rec.get("commit") == commit:
            return None
        rec["lease"] = _hold(ledger, rec, rec["domain"], dry_run)
        rec["version"], rec["commit"], rec["status"], rec["target"] = version, commit, "live", None
        rec["failure"] = None
        rec["last_known_good"] = {"version": version, "commit": commit, "at": now_iso(),
                                  "cold_run": cold_result.get("run_id")}
        return {"event": "promoted", "version": version, "commit": commit, "cold_run": cold_result.get("run_id")}

    return _registry_change(ledger, server, recipe, change, dry_run)


NOTHING_RUNS = ""


def record_failed(ledger: Ledger, server: str, recipe: str, reason: str, version: str | None = None,
                  dry_run: bool = False, runs: str | None = None) -> tuple:
    """An advance failed: ``version`` stays the previous one (or none), and the record says so.

    ``runs``, when given, is the release the warm app runs now (``NOTHING_RUNS`` for none) as
    read from the swarm by a teardown that closes an interrupted advance. When it is not the
    previous version, the record's ``version`` becomes it, marked unverified: the registry names
    what is deployed, never a release the warm domain no longer runs. ``last_known_good`` keeps
    the release that last passed a promote; the next promote verifies (or replaces) what runs.
    """
    if not reason:
        raise RegistryRefused("a failure needs its reason")

    def change(rec):
        last = rec.get("failure") or {}
        attempted = (version or (rec.get("target") or {}).get("version")
                     or (last.get("attempted") if rec.get("status") == "failed" else None))
        kept = rec.get("version")
        moved = runs is not None and (runs or None) != kept
        now = (runs or None) if moved else kept
        if rec.get("status") == "failed" and last.get("reason") == reason and last.get("attempted") == attempted \
                and rec.get("version") == now:
            return None
        rec["status"], rec["target"], rec["version"] = "failed", None, now
        good = (rec.get("last_known_good") or {}).get("version")
        if moved:
            rec["failure"] = {
                "attempted": attempted, "reason": reason, "kept_version": now, "previous_version": kept,
                "verified": False,
                "message": "canonical %s/%s %s, unverified: the advance from %s to %s did not finish: %s "
                           "(last known good: %s)"
                           % (server, recipe, "runs %s" % now if now else "runs nothing", kept or "nothing",
                              attempted or "?", reason, good or "none"),
            }
            return {"event": "failed", "version": attempted, "kept_version": now, "previous_version": kept,
                    "verified": False, "reason": reason}
        rec["failure"] = {
            "attempted": attempted, "reason": reason, "kept_version": kept,
            "message": "canonical %s/%s stays at %s: the advance to %s failed: %s"
                       % (server, recipe, kept or "no version (never promoted)", attempted or "?", reason),
        }
        if last.get("verified") is False and last.get("kept_version") == kept:
            # still the unverified release an earlier interrupted advance left running
            rec["failure"].update(verified=False, previous_version=last.get("previous_version"))
        return {"event": "failed", "version": attempted, "kept_version": kept, "reason": reason}

    return _registry_change(ledger, server, recipe, change, dry_run)


def forget_canonical(ledger: Ledger, server: str, recipe: str, dry_run: bool = False) -> tuple:
    """Drop a canonical from the registry and release the registry's hold on its domain.

    Returns ``(record before, changed)``. The app itself is removed by the caller first (through
    abra); this only forgets it.
    """
    with ledger.mutex():
        record = read_canonical(ledger, server, recipe)
        path = registry_path(ledger, server, recipe)
        exists = os.path.exists(path)
        holds = [lz for lz in leases(ledger) if lz.get("holder") == registry_holder(server, recipe)]
        if dry_run or not (exists or holds):
            return record, bool(exists or holds)
        for lz in holds:
            os.unlink(lease_path(ledger, lz["lease_id"]))
        if exists:
            os.unlink(path)
    return record, True


def release_run_leases(ledger: Ledger, run_id: str) -> list:
    """Release every lease a run holds (its teardown does this on every exit path)."""
    released = []
    for lz in leases(ledger):
        if lz.get("kind") == "run" and lz.get("run_id") == run_id and release_lease(ledger, lz["lease_id"]):
            released.append(lz["domain"])
    return released
