# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whose failure is it: the recipe's, the server's (infra) or the harness's own (harness-error).

One decision shared by the lifecycle role (through the ``tier_failure`` filter, when a tier's
rescue block catches a failure) and by the ``canon`` driver (sweeps and classification), so that
``isolate.yml`` and ``canon`` never disagree about an unavailable image or a dead engine.

* :func:`infra_signature`: the server/infrastructure could not take the run (engine down, disk
  full, image unavailable, ...): never the recipe's fault.
* :func:`harness_error`: the harness's own task broke (a templating error, a conditional that is
  not a boolean, a module traceback, wrong module arguments, a missing tool): never the
  recipe's fault either; the result names the task and the error.
* :func:`tier_failure`: the outcome of a failed tier from Ansible's failure result.

Pure logic, standard library only.
"""

from __future__ import annotations

import re

# Matched (``re.search``) against the lowercased raw error text, first row first.
# Each row: (signature, (regex, ...)).
INFRA_SIGNATURES = (
    ("engine-down", (
        r"cannot connect to the docker daemon",
        r"is the docker daemon running",
        r"error during connect",
    )),
    ("swarm-down", (
        r"this node is not a swarm manager",
    )),
    ("address-pool", (
        r"could not find an available, non-overlapping ipv4 address pool",
        r"no available ipv4 addresses",
    )),
    ("image-unavailable", (
        r"pull access denied",
        r"manifest unknown",
        r"no such image",
        r"image \S.{0,200}? could not be accessed",
        r"repository does not exist",
    )),
    ("registry-unavailable", (
        # the registry refused or could not be reached: its rate limit, or its API endpoint
        # (``Get "https://<registry>/v2/": ...``, only the registry's root, never an app's URL)
        # timing out, not resolving or refusing; the image may well exist
        r"toomanyrequests",
        r"pull rate limit",
        r"error pulling image configuration",
        r"https://[^/\s\"']+/v2/[\"']?:\s.{0,200}?(?:timeout|timed out|no such host|server misbehaving"
        r"|request canceled|temporary failure in name resolution|connection refused|connection reset)",
    )),
    ("server-busy", (
        # canon_run's refusals (_run.claim): another harness run had the server, so this run
        # never started; it says nothing about the recipe
        r"refusing to start: (?:other harness runs are live on server|an isolation run has server)",
    )),
    ("allocator-stuck", (
        # the convergence watcher's words (_converge.Watcher._unallocated)
        r"stuck in swarm's new state",
    )),
    ("disk-full", (
        r"no space left on device",
    )),
    ("proxy-down", (
        # without the proxy's address (see proxy_patterns) only the word "proxy" next to a
        # refused connection says it was the proxy and not the app that refused
        r"\bproxy\b.{0,300}?connection refused",
        r"connection refused.{0,300}?\bproxy\b",
    )),
    ("abra-missing", (
        r"abra: not found",
        r"no such file or directory: 'abra'",
    )),
)
_INFRA_RES = tuple((name, tuple(re.compile(p, re.S) for p in pats)) for name, pats in INFRA_SIGNATURES)
_REFUSED = r"(?:connection refused|connection reset|econnrefused|econnreset|couldn't connect)"
_URL_RE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://)?\[?([^/\]]+?)\]?(?::(\d+))?(?:/.*)?$")

HARNESS_KINDS = ("template", "conditional", "module-crash", "module-arguments", "missing-tool", "suite-runner",
                 "task-error")
# Ansible's own words for a failure of the task machinery rather than of what the task checked.
# ansible-core 2.19 prefixes errors raised by the task executor with "Task failed: "; the older
# forms (2.18 and before) are kept so a controller on either release is read the same way.
_HARNESS_RES = (
    ("template", re.compile(
        r"finalization of task args|error while resolving value|template error while templating"
        r"|'[^']+' is undefined|object' has no attribute '|undefinedvariable|an undefined variable"
        r"|the filter plugin '[^']+' failed"
        r"|unexpected templating type error|templatesyntaxerror|syntax error in template", re.S)),
    ("conditional", re.compile(
        r"conditional result \(.{0,40}\) was derived from|conditionals must have a boolean result"
        r"|the conditional check '.{0,400}' failed|error while evaluating conditional", re.S)),
    ("module-crash", re.compile(
        r"^(?:task failed: )?module failed:|^module failure\b", re.S)),
    ("module-arguments", re.compile(
        r"^unsupported parameters for \(|^missing required arguments: |^argument '[^']+' is of type .{0,80}"
        r" and we were unable to convert|^value of [^ ]+ must be one of: |^parameters are mutually exclusive: ",
        re.S)),
    ("missing-tool", re.compile(
        r"^(?:task failed: )?\[errno 2\] no such file or directory: b?'[^']+'", re.S)),
    # the custom tier's own words (roles/lifecycle/tasks/tiers/custom.yml) when the harness could
    # not run the suite at all: timeout or Python missing, pytest absent, pytest's usage error
    ("suite-runner", re.compile(r"^the custom suite could not run: ", re.S)),
)


def proxy_patterns(proxy_url: str | None) -> tuple:
    """Regexes for a refused connection to the reverse proxy at ``proxy_url`` (from the
    inventory's ``canon_proxy_url``), as curl, Python requests and plain host:port print it."""
    m = _URL_RE.match((proxy_url or "").strip().lower())
    if not m or not m.group(1):
        return ()
    host = m.group(1)
    port = m.group(2) or ("443" if (proxy_url or "").lower().startswith("https") else "80")
    h, p = re.escape(host), re.escape(port)
    where = r"(?:%s:%s|%s port %s|host='%s', port=%s)" % (h, p, h, p, h, p)
    return (re.compile(r"%s.{0,300}?%s" % (where, _REFUSED), re.S),
            re.compile(r"%s.{0,300}?%s" % (_REFUSED, where), re.S))


def infra_signature(text: str, proxy_urls=()) -> str | None:
    """The name of the server/infrastructure failure the text shows, or None (see
    INFRA_SIGNATURES). ``proxy_urls``: the reverse proxies' URLs, so that a refused connection
    to one of them reads ``proxy-down``."""
    low = (text or "").lower()
    for name, patterns in _INFRA_RES:
        if name == "proxy-down":
            patterns = patterns + tuple(p for url in proxy_urls or () for p in proxy_patterns(url))
        if any(p.search(low) for p in patterns):
            return name
    return None


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    return str(value)


def harness_error(result: dict) -> str | None:
    """The kind of harness fault (one of HARNESS_KINDS) Ansible's failure ``result`` shows, or
    None when the task failed deliberately (a module's ``fail_json``, an ``assert``) about what
    it checked. A task ``timeout:`` is not a harness fault: it is what a stuck app looks like."""
    if not isinstance(result, dict) or result.get("timedout"):
        return None
    msg = _text(result.get("msg")).strip().lower()
    module_stderr = _text(result.get("module_stderr")).lower()
    if "traceback (most recent call last)" in module_stderr:
        return "module-crash"
    for kind, pattern in _HARNESS_RES:
        if pattern.search(msg):
            return kind
    try:
        rc = int(result.get("rc"))
    except (TypeError, ValueError):
        rc = None
    stderr = _text(result.get("stderr")).lower()
    if rc == 127 and ("not found" in stderr or "no such file" in stderr or not stderr):
        return "missing-tool"  # the shell's "command not found"
    if rc == 2 and msg == "error executing command." and result.get("cmd"):
        return "missing-tool"  # ansible.builtin.command could not exec the binary
    if msg.startswith("task failed: ") and "timed out after" not in msg:
        return "task-error"  # raised by the task executor, not returned by the module
    return None


def _error_text(result: dict) -> str:
    msg = _text(result.get("msg")) or "failed"
    extra = [_text(result.get(k)).strip() for k in ("stderr", "module_stderr")]
    extra = [e for e in extra if e and e not in msg]
    return "\n".join([msg] + extra)


def tier_failure(result: dict, task: str = "", proxy_urls=()) -> dict:
    """The record of a failed tier from Ansible's failure ``result`` (``ansible_failed_result``)
    and the failing task's name: ``{"outcome", "error", "task", ...}`` with outcome ``infra``
    (and ``infra``: the signature), ``harness-error`` (and ``harness_error``: the kind) or
    ``fail`` (the recipe's). Infra is decided first: a missing ``abra`` is the server's."""
    result = result if isinstance(result, dict) else {"msg": _text(result)}
    error = _error_text(result)
    record = {"outcome": "fail", "error": error, "task": task or ""}
    signature = infra_signature(error, proxy_urls)
    if signature:
        record.update(outcome="infra", infra=signature)
        return record
    kind = harness_error(result)
    if kind:
        record.update(outcome="harness-error", harness_error=kind,
                      error="harness error (%s) in task %r: %s" % (kind, task or "unnamed", error))
    return record


PROMOTE_RECIPE_OUTCOMES = ("failed", "refused")


def promote_failure(result: dict, task: str = "", proxy_urls=(), recipe_outcome: str = "failed") -> dict:
    """A failed promote step, decided by the same rules as a tier (:func:`tier_failure`), as the
    keys of its ``promote.json`` record: ``outcome`` (``recipe_outcome`` when the failure is the
    recipe's own: ``failed`` for an advance, ``refused`` before one; ``infra``; ``harness-error``),
    ``in_place_error`` (the whole error) and, when so, ``infra`` (the signature) or
    ``harness_error`` (``kind``, ``task`` and the whole ``error``)."""
    if recipe_outcome not in PROMOTE_RECIPE_OUTCOMES:
        raise ValueError("recipe_outcome must be one of %s, got %r" % (", ".join(PROMOTE_RECIPE_OUTCOMES), recipe_outcome))
    result = result if isinstance(result, dict) else {"msg": _text(result)}
    decided = tier_failure(result, task, proxy_urls)
    record = {"outcome": recipe_outcome, "in_place_error": decided["error"]}
    if decided["outcome"] == "infra":
        record.update(outcome="infra", infra=decided["infra"])
    elif decided["outcome"] == "harness-error":
        record.update(outcome="harness-error",
                      harness_error={"kind": decided["harness_error"], "task": decided["task"],
                                     "error": _error_text(result)})
    return record
