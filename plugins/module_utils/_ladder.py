# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The level ladder and the run's result document (``result.json``, schema version 1).

Outcomes have honest names and are never collapsed into green:

``pass``            the tier ran and its assertions held
``fail``            the tier ran and an assertion failed (or its deploy did)
``not-applicable``  declared not applicable by the recipe, with the reason (intended)
``skipped``         not run, not intended: a missing prerequisite (no older release to upgrade
                    from) or blocked by an earlier failed rung
``infra``           the server could not take the run (engine down, image unavailable, ...):
                    not the recipe's failure (``_infra.infra_signature``)
``harness-error``   the harness's own task broke (templating error, module traceback, missing
                    tool): not the recipe's failure either; the tier names the task and error
"""

from __future__ import annotations

import textwrap

from ansible_collections.coopcloud.canon.plugins.module_utils._settings import TIERS

SCHEMA_VERSION = 1
OUTCOMES = ("pass", "fail", "not-applicable", "skipped", "infra", "harness-error")
# A run's outcome: the tiers' outcomes folded, in this order of precedence (see overall).
RUN_OUTCOMES = ("infra", "fail", "harness-error", "incomplete", "pass")
DETAIL_WIDTH = 90
# The ladder: climbing stops at the first rung that failed or could not be verified.
LADDER = TIERS


def clip_words(text, limit: int, mark: str = "…") -> str:
    """``text`` at most ``limit`` characters, cut at a word boundary (never mid-word) with
    ``mark`` when it was cut. A single word longer than the limit is cut, marked, as a last resort."""
    text = "" if text is None else str(text)
    if limit is None or len(text) <= limit:
        return text
    room = max(0, limit - len(mark))
    cut = text[:room + 1]
    space = max(cut.rfind(" "), cut.rfind("\n"), cut.rfind("\t"))
    head = text[:space] if space > 0 else text[:room]
    return head.rstrip() + mark


def clip_words_tail(text, limit: int, mark: str = "…") -> str:
    """The end of ``text``, at most ``limit`` characters, starting at a word boundary (never
    mid-word) with ``mark`` in front when the start was cut: for a command's stderr, whose last
    lines say what went wrong. A single word longer than the limit is cut, marked, as a last resort."""
    text = "" if text is None else str(text)
    if limit is None or len(text) <= limit:
        return text
    room = max(0, limit - len(mark))
    cut = text[len(text) - room - 1:]
    space = min([i for i in (cut.find(" "), cut.find("\n"), cut.find("\t")) if i >= 0] or [-1])
    tail = cut[space + 1:] if 0 <= space < len(cut) - 1 else text[len(text) - room:]
    return mark + tail.lstrip()


def _intended_na(t: dict | None) -> bool:
    return bool(t) and t["outcome"] == "not-applicable" and t.get("intended", True)


def tier_gate(tiers: list, tier: str, not_applicable: dict | None, started) -> dict | None:
    """Whether rung ``tier`` runs, given the records so far (``tiers``, preflight included):
    ``None`` when it runs, else its record. A rung is blocked (``skipped``, not intended) by the
    first earlier record that neither passed nor was not applicable; else one the recipe declares
    not applicable (``not_applicable[tier]``, its reason) is ``not-applicable``, intended."""
    blocked_by = next((t.get("name", "") for t in tiers or []
                       if t.get("outcome") not in ("pass", "not-applicable")), "")
    reason = (not_applicable or {}).get(tier) or ""
    record = {"name": tier, "duration": 0, "started_epoch": float(started)}
    if blocked_by:
        return dict(record, outcome="skipped", intended=False, reason="blocked: %s did not pass" % blocked_by)
    if reason:
        return dict(record, outcome="not-applicable", intended=True, reason=reason)
    return None


def level(tiers: list) -> dict:
    """``{"level": n, "name": last rung reached, "stopped_at": tier or None, "of": rungs,
    "applicable": rungs not declared not applicable, "passed": rungs that passed,
    "not_applicable": [{"tier", "reason"}]}``.

    Rung n is reached when tiers 1..n each passed or were intentionally not applicable. A rung
    that was not applicable is not a rung passed: ``passed`` of ``applicable`` is the honest
    count, ``level`` of ``of`` the position on the ladder.
    """
    by_name = {t["name"]: t for t in tiers}
    reached, name, stopped = 0, "none", None
    for i, tier in enumerate(LADDER, 1):
        t = by_name.get(tier)
        if t and (t["outcome"] == "pass" or _intended_na(t)):
            reached, name = i, tier
            continue
        stopped = tier
        break
    na = [{"tier": tier, "reason": str(by_name[tier].get("reason") or by_name[tier].get("detail") or "")}
          for tier in LADDER if _intended_na(by_name.get(tier))]
    passed = sum(1 for tier in LADDER if (by_name.get(tier) or {}).get("outcome") == "pass")
    return {"level": reached, "name": name, "stopped_at": stopped, "of": len(LADDER),
            "applicable": len(LADDER) - len(na), "passed": passed, "not_applicable": na}


def level_text(outcome: str, lv: dict) -> str:
    """``PASS, 3 of 3 applicable rungs (upgrade n/a: <reason>; custom n/a: <reason>)``: what
    was verified, never counting a rung that was not applicable as passed; reasons whole."""
    applicable = lv.get("applicable", lv.get("of", len(LADDER)))
    passed = lv.get("passed", lv.get("level", 0))
    text = "%s, %d of %d applicable rungs" % (outcome.upper(), passed, applicable)
    if lv.get("stopped_at") and outcome != "pass":
        text += ", stopped at %s" % lv["stopped_at"]
    na = ["%s n/a: %s" % (n["tier"], n["reason"]) if n.get("reason") else "%s n/a" % n["tier"]
          for n in lv.get("not_applicable") or []]
    return text + (" (%s)" % "; ".join(na) if na else "")


def overall(tiers: list) -> str:
    """The run's outcome. ``infra`` first: when the server could not take the run nothing else
    it showed is evidence; then a recipe ``fail``; then ``harness-error`` (the harness broke,
    the recipe was not shown red); then ``incomplete`` and ``pass``."""
    outcomes = [t["outcome"] for t in tiers]
    if "infra" in outcomes:
        return "infra"
    if "fail" in outcomes:
        return "fail"
    if "harness-error" in outcomes:
        return "harness-error"
    if any(t["outcome"] == "skipped" for t in tiers):
        return "incomplete"
    if not any(o == "pass" for o in outcomes):
        return "fail"  # nothing verified is not green
    return "pass"


def result_document(run: dict, tiers: list, extra: dict | None = None) -> dict:
    for t in tiers:
        if t.get("outcome") not in OUTCOMES:
            raise ValueError("tier %s has unknown outcome %r" % (t.get("name"), t.get("outcome")))
    doc = {
        "schema": "coopcloud.canon/result",
        "schema_version": SCHEMA_VERSION,
        "run_id": run["run_id"],
        "recipe": run["recipe"],
        "server": run.get("server"),
        "domains": run.get("domains", {}),
        "versions": run.get("versions", {}),
        "started": run.get("started"),
        "finished": run.get("finished"),
        "duration": run.get("duration"),
        "tiers": tiers,
        "outcome": overall(tiers),
        "level": level(tiers),
    }
    doc["level_text"] = level_text(doc["outcome"], doc["level"])
    cause = next((t for t in tiers if t["outcome"] == doc["outcome"]), None)
    if doc["outcome"] == "infra":
        doc["infra"] = (cause or {}).get("infra") or "unrecognised"
    elif doc["outcome"] == "harness-error":
        doc["harness_error"] = {"tier": cause["name"], "task": cause.get("task") or "",
                                "kind": cause.get("harness_error") or "", "error": cause.get("error") or ""}
    doc.update(extra or {})
    return doc


INTERRUPTED_WHY = {
    "controller-died": "the controller (ansible-playbook) died before the run's own teardown",
    "lease-expired": "no process of the run was seen for the lease (the controller over SSH is gone)",
    "deadline": "the run passed its deadline and was stopped",
    "janitor": "the controller and the run's guardian were both gone; the next run's janitor reaped it",
}


def interrupted_document(record: dict, why: str, at: str, tier: str | None, teardown: dict,
                         existing: dict | None = None) -> dict:
    """The record an interrupted run leaves (``result.json``), written by whoever tore it down
    (the guardian, or the janitor): outcome ``interrupted``, what stopped it, the tier it was in
    and what the teardown removed. When the run had written its own result already (it was
    stopped during its teardown) that result's tiers and outcome stand; the interruption is
    added to it."""
    interruption = {"why": why, "what": INTERRUPTED_WHY.get(why, why), "at": at, "tier": tier or None}
    teardown = {"removed": (teardown or {}).get("removed") or {}, "locks": (teardown or {}).get("locks") or [],
                "by": "janitor" if why == "janitor" else "guardian"}
    if existing and existing.get("tiers") is not None and existing.get("run_id") == record.get("run_id"):
        doc = dict(existing)
        doc["interrupted"] = interruption
        doc["teardown"] = dict(teardown, clean=True)
        return doc
    doc = {
        "schema": "coopcloud.canon/result",
        "schema_version": SCHEMA_VERSION,
        "run_id": record.get("run_id"),
        "recipe": record.get("recipe"),
        "server": record.get("server"),
        "domains": record.get("domains", {}),
        "versions": {},
        "started": record.get("started"),
        "finished": at,
        "duration": None,
        "tiers": [],
        "outcome": "interrupted",
        "level": level([]),
        "interrupted": interruption,
        "teardown": dict(teardown, clean=True),
    }
    doc["level_text"] = "INTERRUPTED%s: %s" % (" in %s" % tier if tier else "", interruption["what"])
    return doc


INFRA_KINDS = ("infra", "harness-error")


def runs_verdict(outcomes: list) -> dict:
    """The verdict over a playbook's runs (``isolate.yml -e runs=N``), as ``canon isolate`` gives
    it: ``pass`` when every run passed; ``infra`` when any run could not say anything about the
    recipe (the server failed, or the harness's own task broke); else ``red``. ``msg`` names
    each run that did not pass, INFRA and HARNESS ERROR in those words."""
    outcomes = [o for o in outcomes or [] if isinstance(o, dict)]
    bad = [o for o in outcomes if o.get("outcome") != "pass"]
    if outcomes and not bad:
        return {"status": "pass", "msg": "%d run(s) passed: %s" % (
            len(outcomes), ", ".join(str(o.get("results") or o.get("run_id")) for o in outcomes))}
    words = []
    for o in bad:
        where = o.get("results") or o.get("run_id") or "?"
        if o.get("outcome") == "infra":
            words.append("INFRA (%s): the server could not take the run, not the recipe's failure (%s)"
                         % (o.get("infra") or "unrecognised", where))
        elif o.get("outcome") == "harness-error":
            he = o.get("harness_error") or {}
            words.append("HARNESS ERROR in %s task '%s': not the recipe's failure (%s)"
                         % (he.get("tier") or "?", he.get("task") or "", where))
        else:
            words.append("%s (%s)" % (o.get("level_text") or str(o.get("outcome") or "no result").upper(), where))
    status = "infra" if any(o.get("outcome") in INFRA_KINDS for o in bad) else "red"
    if not outcomes:
        words = ["no run recorded an outcome"]
    return {"status": status, "msg": "%d of %d run(s) did not pass: %s" % (len(bad), len(outcomes), "; ".join(words))}


# A promotion that ends with the canonical on the release passes; promote.yml has always exited
# 0 for these (canon's report still shows a fallback's in-place failure).
PROMOTE_PASSES = ("promoted", "promoted-by-fallback", "current")


def promote_runs(records: list) -> list:
    """Promote records (``promote.json`` as the promote role collects them in
    ``canon_promotions``) as the runs :func:`runs_verdict` reads: a promotion in
    ``PROMOTE_PASSES`` passes; ``infra`` and ``harness-error`` stay themselves (the task named);
    anything else (``failed``, ``refused``, a record never finished) is red, with its error."""
    runs = []
    for rec in records or []:
        if not isinstance(rec, dict):
            continue
        outcome = str(rec.get("outcome") or "no outcome")
        error = rec.get("fallback_error") or rec.get("in_place_error") or ""
        run = {"results": rec.get("results") or rec.get("run_id"), "run_id": rec.get("run_id")}
        if outcome in PROMOTE_PASSES:
            run["outcome"] = "pass"
        elif outcome == "infra":
            run.update(outcome="infra", infra=rec.get("infra"))
        elif outcome == "harness-error":
            he = rec.get("harness_error") or {}
            run.update(outcome="harness-error", harness_error={"tier": "promote", "task": he.get("task") or ""})
        else:
            run.update(outcome=outcome, level_text="PROMOTION %s%s" % (outcome.upper(), ": %s" % error if error else ""))
        runs.append(run)
    return runs


def table(doc: dict) -> list:
    """A short per-tier table, one string per line; a long detail wraps onto continuation lines
    (at word boundaries, never cut: the decision is read here)."""
    rows = [("tier", "outcome", "seconds", "detail")]
    for t in doc["tiers"]:
        detail = t.get("error") or t.get("reason") or t.get("detail") or ""
        rows.append((t["name"], t["outcome"], "%.1f" % float(t.get("duration", 0) or 0),
                     " ".join(str(detail).split())))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        wrapped = textwrap.wrap(r[3], DETAIL_WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
        lines.append("%-*s  %-*s  %*s  %s" % (widths[0], r[0], widths[1], r[1], widths[2], r[2], wrapped[0]))
        indent = " " * (widths[0] + widths[1] + widths[2] + 6)
        lines.extend(indent + more for more in wrapped[1:])
    lv = doc["level"]
    verdict = doc.get("level_text") or level_text(doc["outcome"], lv)
    if doc["outcome"] == "infra":
        verdict += "; INFRA (%s): the server could not take the run, not the recipe's failure" % doc.get("infra")
    elif doc["outcome"] == "harness-error":
        he = doc.get("harness_error") or {}
        verdict += "; HARNESS ERROR in %s task %r: not the recipe's failure" % (he.get("tier"), he.get("task"))
    lines.append("%s %s: %s" % (doc["recipe"], doc["run_id"], verdict))
    return lines
