"""The results of a sweep, rendered: a Markdown table, JUnit XML and one self-contained HTML page.

Inputs are the driver's documents: one sweep (schema ``coopcloud.canon/sweep`` version 1) and
the classifications of the recipes that were re-run in isolation and under load (schema
``coopcloud.canon/classification`` version 1). Optional keys may be missing; a document that
names another schema or a newer version is refused (ValueError), never half-read.

The three renderings share one row per recipe (:func:`result_rows`), so the Markdown and the HTML
table say the same thing. :func:`write_all` writes ``results.md``, ``junit.xml`` and
``index.html`` into a directory, each through a temporary file and a rename.
"""
from __future__ import annotations

import calendar
import copy
import html
import os
import posixpath
import re
import tempfile
import time
import xml.etree.ElementTree as ET

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from canon.load import HOST_CONTROLLER, HOST_NOT_MEASURED
from canon.progress import shorten
from canon.timeline import _number, duration_text, timeline_svg
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import (
    level as ladder_level, level_text as ladder_text, overall)

SWEEP_SCHEMA = "coopcloud.canon/sweep"
CLASSIFICATION_SCHEMA = "coopcloud.canon/classification"
SCHEMA_VERSION = 1

COLUMNS = ("recipe", "failure", "isolation result", "root cause", "classification", "fix")
DASH = "—"
CELL_LIMIT = 160  # characters of an error or detail kept in a table cell; the HTML details keep all

COLD_GREEN = {"pass"}
COLD_SKIPPED = {"not-run", "interrupted"}
PROMOTE_GREEN = {"promoted", "current"}
# A fallback re-deploy that saved the canonical still means the in-place advance failed: red.
PROMOTE_FAILED = {"failed", "refused", "promoted-by-fallback"}
PROMOTE_SKIPPED = {"not-run", "not-enrolled", "skipped", "interrupted"}
UNFINISHED = {"pending", "running"}  # recipe statuses while the sweep is still going

# XML 1.0 forbids these characters even escaped; abra output can carry them (ANSI colours).
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_URL = re.compile(r"^https?://[^\s<>\"'|]+$")


# ---------------------------------------------------------------- input

def check_sweep(sweep: dict) -> dict:
    """``sweep`` itself when it is a sweep document this renderer reads; ValueError otherwise."""
    return _check(sweep, SWEEP_SCHEMA, "sweep")


def check_classification(classification: dict) -> dict:
    """``classification`` itself when it is a classification document; ValueError otherwise."""
    return _check(classification, CLASSIFICATION_SCHEMA, "classification")


def _check(document, schema: str, what: str) -> dict:
    if not isinstance(document, dict):
        raise ValueError("a %s document is a JSON object, not %s" % (what, type(document).__name__))
    found = document.get("schema", schema)
    if found != schema:
        raise ValueError("not a %s document: schema %r, expected %r" % (what, found, schema))
    version = document.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValueError("%s schema_version %r: this renderer reads version %d" % (what, version, SCHEMA_VERSION))
    return document


def clean_text(text) -> str:
    """``text`` as a string without ANSI colour codes and characters XML cannot carry."""
    if text is None:
        return ""
    return _XML_INVALID.sub("", _ANSI.sub("", str(text)))


def one_line(text, limit: int | None = CELL_LIMIT) -> str:
    """``text`` on one line (whitespace runs become one space), cut at ``limit`` characters with …"""
    line = " ".join(clean_text(text).split())
    if limit is not None and len(line) > limit:
        line = shorten(line, limit)  # at a word boundary: a cut never ends inside a word
    return line


def seconds_text(seconds) -> str:
    """A duration as a person says it (``6 min 45 s``, ``8.6 s``); ``—`` when unknown."""
    return duration_text(seconds)


def utc_text(value) -> str:
    """A moment as a UTC date (``2026-11-27 19:03:20 UTC``) from an epoch or an ISO 8601 string;
    what cannot be read is shown as it is (never a raw epoch float)."""
    epoch = _number(value)
    if epoch is None and isinstance(value, str):
        match = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.\d+)?(Z|[+-]00:?00)?$", value.strip())
        if not match:
            return value
        epoch = calendar.timegm(tuple(int(g) for g in match.groups()[:6]))
    if epoch is None:
        return DASH if value is None else str(value)
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


# ---------------------------------------------------------------- paths relative to the results folder

# A run folder's name: sweeps and redfixes are named <kind>-<UTC time>-<6 hex>.
_FOLDER_ID = re.compile(r"^(sweep|redfix)-\d{14}-[0-9a-f]{6}$")
# An absolute path in free text (not a URL's path: the "/" must not follow a word, "." or ":").
_ABS_PATH = re.compile(r"(?<![\w.:/~-])/(?:[\w.@+~-]+/)*[\w.@+~-]*")


def relative_path(path: str, roots: dict[str, str]) -> str | None:
    """``path`` relative to the folder a report is written in, or None when it is not a path of
    the results folder.

    ``roots`` maps a run folder's name (``sweep-…``, ``redfix-…``) to where that folder is seen
    from the report's folder (``.``, ``..``, ``sweep-…``). A path through a run folder the roots
    do not name keeps its tail from that folder on; a path under a ``results`` folder keeps what
    is below it. Other absolute paths (inside a container, on a server) are not local: None."""
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in roots:
            return posixpath.normpath(posixpath.join(roots[parts[i]], *parts[i + 1:]))
    for i, part in enumerate(parts):
        if _FOLDER_ID.match(part):
            return posixpath.join(*parts[i:])
    if "results" in parts[:-1]:
        i = len(parts) - 1 - parts[::-1].index("results")
        return posixpath.join(*parts[i + 1:])
    return None


def relative_text(text: str, roots: dict[str, str]) -> str:
    """``text`` with every absolute path of the results folder made relative (see relative_path)."""
    return _ABS_PATH.sub(lambda m: relative_path(m.group(0), roots) or m.group(0), text)


def relative_documents(document, roots: dict[str, str]):
    """A deep copy of a document with every string's results paths relative: what the reports
    show never carries the absolute paths of the machine the run was on."""
    if isinstance(document, str):
        return relative_text(document, roots) if "/" in document else document
    if isinstance(document, dict):
        return {k: relative_documents(v, roots) for k, v in document.items()}
    if isinstance(document, (list, tuple)):
        return [relative_documents(v, roots) for v in document]
    return copy.copy(document)


def roots_for(directory: str, sweep: dict) -> dict[str, str]:
    """Where the run folders are seen from ``directory`` (a sweep's results folder, or a copy of
    one): the sweep's own folder is ``.``, the redfix folder around it ``..``."""
    roots = {}
    parent = os.path.basename(os.path.dirname(os.path.abspath(directory)))
    if _FOLDER_ID.match(parent):
        roots[parent] = ".."
    if sweep.get("sweep_id"):
        roots[str(sweep["sweep_id"])] = "."
    return roots


def _p_text(p) -> str:
    return "%.3g" % p


# ---------------------------------------------------------------- what each stage says

def first_tier(cold: dict, outcome: str) -> dict | None:
    """The first tier of the cold run with this outcome, or None."""
    for tier in cold.get("tiers") or []:
        if tier.get("outcome") == outcome:
            return tier
    return None


def cold_failure(entry: dict, limit: int | None = CELL_LIMIT) -> str | None:
    """What went wrong in the recipe's cold run, one line (``custom: <error>``); None when nothing did."""
    cold = entry.get("cold") or {}
    outcome = cold.get("outcome") or "not-run"
    if outcome == "fail":
        failure = cold.get("failure") or {}
        failed = first_tier(cold, "fail") or {}
        tier = failure.get("tier") or failed.get("name") or "fail"
        error = failure.get("error") or failed.get("error") or ""
        return "%s: %s" % (tier, one_line(error, limit)) if error else str(tier)
    if outcome == "infra":
        return "infra: %s" % infra_text(cold, limit)
    if outcome == "incomplete":
        skipped = first_tier(cold, "skipped")
        if skipped:
            reason = skipped.get("reason") or skipped.get("error") or "not declared not-applicable"
            return "incomplete: %s skipped (%s)" % (skipped.get("name") or "?", one_line(reason, limit))
        return "incomplete"
    if outcome == "interrupted":
        stop = cold.get("interrupted") or {}   # what the run's guardian recorded, when it did
        if stop.get("why"):
            return "cold: interrupted%s (%s)" % (" in %s" % stop["tier"] if stop.get("tier") else "", stop["why"])
        return "cold: interrupted"
    if outcome in COLD_GREEN or outcome == "not-run":
        return None
    return "cold: %s" % outcome  # an outcome this renderer does not know is shown as it is


def infra_text(cold: dict, limit: int | None = CELL_LIMIT) -> str:
    """Why a cold run could not say anything about the recipe: the infra kind (``engine-down``)
    and, when the run recorded one, its error; a harness error names the tier, the task and the
    error (``harness-error in upgrade task 'write the marker': <error>``). The error is cut at a
    word boundary at ``limit`` (None: whole)."""
    kind = str(cold.get("infra") or "infrastructure failure")
    failure = cold.get("failure") or {}
    error = failure.get("error") or cold.get("detail") or ""
    if kind == "harness-error":
        tier, task = failure.get("tier") or (first_tier(cold, "harness-error") or {}).get("name"), failure.get("task")
        kind += (" in %s" % tier if tier else "") + (" task '%s'" % one_line(task, None) if task else "")
    return "%s: %s" % (kind, one_line(error, limit)) if error else one_line(kind, limit)


def promote_failure(entry: dict, limit: int | None = CELL_LIMIT) -> str | None:
    """What went wrong in the recipe's warm promotion (``promote: failed — <detail>``); None otherwise."""
    promote = entry.get("promote") or {}
    outcome = promote.get("outcome") or "not-run"
    if outcome in PROMOTE_GREEN or outcome in PROMOTE_SKIPPED - {"interrupted"}:
        return None
    if outcome == "infra":
        outcome = "infra (%s)" % (promote.get("infra") or "unrecognised")  # a harness error: infra (harness-error)
    detail = one_line(promote.get("detail"), limit)
    return "promote: %s — %s" % (outcome, detail) if detail else "promote: %s" % outcome


def level_of(entry: dict) -> str:
    """What the recipe's cold run verified, as its result document says it (``level_text``:
    ``PASS, 3 of 3 applicable rungs (upgrade n/a: oldest release; custom n/a: no suite)``); for a
    sweep written before the documents carried it, the same words made from its tiers by the
    ladder's own rule; ``—`` when the run recorded no tiers."""
    cold = entry.get("cold") or {}
    if cold.get("level_text"):
        return one_line(cold["level_text"], None)
    tiers = [t for t in cold.get("tiers") or [] if isinstance(t, dict) and t.get("name") and t.get("outcome")]
    if not tiers:
        return DASH
    outcome = cold.get("outcome") or overall(tiers)
    if outcome == "infra" and cold.get("infra") == "harness-error":
        outcome = "harness-error"
    return one_line(ladder_text(outcome, ladder_level(tiers)), None)


def is_green(entry: dict) -> bool:
    """The cold run passed and the promotion did not fail (promoted, current, or not attempted)."""
    cold = (entry.get("cold") or {}).get("outcome")
    return cold in COLD_GREEN and promote_failure(entry) is None


def failure_text(entry: dict, limit: int | None = CELL_LIMIT) -> str:
    """The ``failure`` cell: the cold failure, the promote failure, ``not run``, or ``—`` when green."""
    parts = [p for p in (cold_failure(entry, limit), promote_failure(entry, limit)) if p]
    if parts:
        return "; ".join(parts)
    cold = (entry.get("cold") or {}).get("outcome") or "not-run"
    if cold == "not-run":
        # A sweep document read while the sweep runs has recipes still pending or running.
        return entry["status"] if entry.get("status") in UNFINISHED else "not run"
    promote = (entry.get("promote") or {}).get("outcome") or "not-run"
    if promote in PROMOTE_SKIPPED:
        return "%s (promote %s)" % (DASH, promote)  # green cold, but no warm promotion was tried
    return DASH


# ---------------------------------------------------------------- what the classification says

def _arm_counts(arm: dict | None) -> tuple[int, int, int]:
    """(pass, fail, infra) of one arm, from its counts or, when they are missing, its runs."""
    arm = arm or {}
    runs = arm.get("runs") or []
    counted = {}
    for key in ("pass", "fail", "infra"):
        value = arm.get(key)
        counted[key] = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else \
            sum(1 for run in runs if run.get("outcome") == key)
    return counted["pass"], counted["fail"], counted["infra"]


def arm_text(arm: dict | None) -> str:
    """An arm's result: ``2/2 red``, ``0/3 red (3 green)``, ``1/3 red (1 green, 1 infra)``."""
    passed, failed, infra = _arm_counts(arm)
    total = passed + failed + infra
    if total == 0:
        return "no runs"
    others = (["%d green" % passed] if passed else []) + (["%d infra" % infra] if infra else [])
    return "%d/%d red" % (failed, total) + (" (%s)" % ", ".join(others) if others else "")


def confidence_text(classification: dict) -> str:
    """``p=0.05, 3 isolated clean ≥ 1 needed``; empty when the classification has no confidence."""
    confidence = classification.get("confidence") or {}
    parts = []
    p_value = _number(confidence.get("p_value"))
    if p_value is not None:
        parts.append("p=" + _p_text(p_value))
    clean, needed = confidence.get("isolated_clean"), confidence.get("isolated_clean_needed")
    if clean is not None and needed is not None:
        parts.append("%s isolated clean %s %s needed" % (clean, "≥" if (_number(clean) or 0) >= (_number(needed) or 0)
                                                         else "<", needed))
    budget = classification.get("budget") or {}
    if budget.get("exhausted"):
        parts.append("budget exhausted (%s/%s runs)" % (budget.get("used", "?"), budget.get("runs", "?")))
    return ", ".join(parts)


def _same_error(classification: dict) -> str:
    """``same error`` when every red isolated run failed with the fingerprint the sweep saw,
    ``same error in 3 of 4`` when some did, ``another error`` when none did, empty when the runs
    carry no fingerprints."""
    wanted = classification.get("fingerprint")
    seen = [run.get("fingerprint") for run in ((classification.get("arms") or {}).get("isolated") or {}).get("runs") or []
            if run.get("outcome") == "fail" and run.get("fingerprint")]
    if not wanted or not seen:
        return ""
    same = sum(1 for fp in seen if fp == wanted)
    if same == len(seen):
        return "same error"
    return "same error in %d of %d" % (same, len(seen)) if same else "another error"


def _of(count: int, total: int, colour: str) -> str:
    return "%d of %d %s" % (count, total, colour)


def verdict_words(classification: dict) -> str:
    """What the verdict means, in plain words: ``isolated 2 of 2 red, same error``,
    ``green alone (isolated 3 of 3), red under load (loaded 3 of 3)``."""
    arms = classification.get("arms") or {}
    ip, if_, ii = _arm_counts(arms.get("isolated"))
    lp, lf, li = _arm_counts(arms.get("loaded"))
    itotal, ltotal = ip + if_ + ii, lp + lf + li
    verdict = str(classification.get("verdict") or "undecided")
    loaded = ("loaded %s" % _of(lf, ltotal, "red")) if ltotal else ""
    if verdict == "genuine":
        same = _same_error(classification)
        return "isolated %s" % _of(if_, itotal, "red") + (", " + same if same else "")
    if verdict == "load-flake":
        return "green alone (isolated %s), red under load (%s)" % (_of(ip, itotal, "green"), loaded or "no loaded runs")
    if verdict == "flaky":
        return "red now and then, load or not: isolated %s%s" % (_of(if_, itotal, "red"), ", " + loaded if loaded else "")
    if verdict == "not-reproduced":
        return "not red again: isolated %s%s" % (_of(ip, itotal, "green"),
                                                 ", loaded %s" % _of(lp, ltotal, "green") if ltotal else "")
    if verdict == "infra":
        return "the bench failed, not the recipe (%d infrastructure failures)" % (ii + li)
    return "not clear yet: isolated %s%s" % (_of(if_, itotal, "red"), ", " + loaded if loaded else "")


def classification_text(classification: dict) -> str:
    """The ``classification`` cell: the verdict, what it means in plain words, and the statistics
    beside them (``genuine — isolated 2 of 2 red, same error (p=1, 0 isolated clean < 1 needed)``)."""
    verdict = str(classification.get("verdict") or "undecided")
    leaning = classification.get("leaning")
    if verdict == "undecided" and leaning and leaning != verdict:
        verdict += ", leaning %s" % leaning
    elif verdict != "undecided" and classification.get("clear") is False:
        verdict += ", not clear"
    if classification.get("arms"):
        verdict += " — " + verdict_words(classification)
    confidence = confidence_text(classification)
    return "%s (%s)" % (verdict, confidence) if confidence else verdict


def root_cause_text(classification: dict, limit: int | None = CELL_LIMIT) -> str:
    """The ``root cause`` cell: where the cause lies and what it is."""
    location = classification.get("location") or {}
    where, detail = location.get("where"), one_line(location.get("detail"), limit)
    level = (location.get("confidence") or {}).get("level")
    if where and level:  # a location inferred from a tier pattern says how sure it is
        where = "%s (confidence: %s)" % (where, level)
    if where and detail:
        return "%s: %s" % (where, detail)
    return str(where or detail or DASH)


def fix_text(classification: dict | None, limit: int | None = CELL_LIMIT) -> str:
    """The ``fix`` cell: ``recipe-pr: <ref> (<verified>)``; ``—`` without a fix."""
    fix = (classification or {}).get("fix") or {}
    ref = one_line(fix.get("ref"), limit)
    if not ref:
        return DASH
    text = "%s: %s" % (fix["kind"], ref) if fix.get("kind") else ref
    verified = one_line(fix.get("verified"), limit)
    return text + (" (verified: %s)" % verified if verified else "")


def fix_url(classification: dict | None) -> str | None:
    """The fix's ref when it is an http(s) address (a pull request), else None."""
    ref = str(((classification or {}).get("fix") or {}).get("ref") or "")
    return ref if _URL.match(ref) else None


def classifications_by_recipe(classifications) -> dict[str, list[dict]]:
    """The classifications (checked) grouped by recipe, in the order given."""
    grouped: dict[str, list[dict]] = {}
    for classification in classifications or ():
        check_classification(classification)
        grouped.setdefault(str(classification.get("recipe") or "?"), []).append(classification)
    return grouped


def classification_for(entry: dict, grouped: dict[str, list[dict]]) -> dict | None:
    """The classification of the stage that failed (cold before promote), else the recipe's first."""
    found = grouped.get(str(entry.get("recipe") or "?")) or []
    if not found:
        return None
    if cold_failure(entry):
        wanted = "cold"
    elif promote_failure(entry):
        wanted = "promote"
    else:
        wanted = None
    for classification in found:
        if classification.get("kind") == wanted:
            return classification
    return found[0]


# ---------------------------------------------------------------- rows and the header

def result_rows(sweep: dict, classifications=()) -> list[dict]:
    """One row per recipe of the sweep: the six column texts (one line each) and ``fix_url``."""
    check_sweep(sweep)
    grouped = classifications_by_recipe(classifications)
    rows = []
    for entry in sweep.get("recipes") or []:
        classification = classification_for(entry, grouped)
        green = is_green(entry)
        recipe = str(entry.get("recipe") or "?")
        if entry.get("version"):
            recipe += " " + str(entry["version"])
        if is_sharded(sweep) and entry.get("server"):
            recipe += " on " + str(entry["server"])
        if classification is None:
            isolation = DASH if green else "not classified"
            cause = verdict = DASH
        else:
            isolation = arm_text((classification.get("arms") or {}).get("isolated"))
            cause = root_cause_text(classification)
            verdict = classification_text(classification)
        rows.append({
            "recipe": one_line(recipe, None),
            "failure": failure_text(entry),
            "isolation result": isolation,
            "root cause": cause,
            "classification": verdict,
            "fix": fix_text(classification),
            "fix_url": fix_url(classification),
            "green": green,
            "state": recipe_state(entry)[0],
            "level": level_of(entry),
            "classification_doc": classification,
        })
    return rows


# What a recipe's line of the banner says about it. Only ``red`` is the recipe's failure: an
# infra or harness error (the server or the harness could not say anything about the recipe) and
# an interrupted run are counted apart, as the sweep's outcome counts them.
BANNER_STATES = ("red", "infra", "interrupted", "not-run", "green")


def recipe_state(entry: dict) -> tuple[str, str]:
    """(state, item) of one recipe for the banner; state is one of BANNER_STATES and item what
    the banner lists: ``discourse custom`` (red, where), ``keycloak (engine-down)`` (infra, its
    kind), ``mumble`` or ``mumble (promote)`` (interrupted), ``gitea`` (not run, green)."""
    recipe = str(entry.get("recipe") or "?")
    cold, promote = entry.get("cold") or {}, entry.get("promote") or {}
    outcome = cold.get("outcome") or "not-run"
    if outcome == "fail":
        return "red", "%s %s" % (recipe, (cold.get("failure") or {}).get("tier")
                                 or (first_tier(cold, "fail") or {}).get("name") or "cold")
    if outcome == "incomplete":
        return "red", "%s incomplete" % recipe
    if outcome == "infra":
        kind = str(cold.get("infra") or "unrecognised")
        tier = (cold.get("failure") or {}).get("tier")
        if kind == "harness-error" and tier:
            kind += " in %s" % tier
        return "infra", "%s (%s)" % (recipe, kind)
    if outcome == "interrupted":
        return "interrupted", recipe
    if outcome == "not-run":
        return "not-run", recipe
    if outcome not in COLD_GREEN:
        return "red", "%s cold %s" % (recipe, outcome)  # an outcome this renderer does not know: shown
    promoted = promote.get("outcome") or "not-run"
    if promoted == "infra":
        return "infra", "%s (promote: %s)" % (recipe, promote.get("infra") or "unrecognised")
    if promoted == "interrupted":
        return "interrupted", "%s (promote)" % recipe
    if promote_failure(entry) is not None:
        return "red", "%s promote" % recipe
    return "green", recipe


def banner_groups(sweep: dict) -> dict[str, list[str]]:
    """The banner's items of each state (BANNER_STATES), in the sweep's order."""
    groups: dict[str, list[str]] = {state: [] for state in BANNER_STATES}
    for entry in sweep.get("recipes") or []:
        state, item = recipe_state(entry)
        groups[state].append(item)
    return groups


def red_items(sweep: dict) -> list[str]:
    """What is red, one item per recipe: ``discourse custom``, ``gitea promote``. Infra, harness
    errors and interrupted runs are not a recipe's red (see banner_groups)."""
    return banner_groups(sweep)["red"]


def banner_text(sweep: dict) -> str:
    """One line a maintainer reads first: ``2 of 6 red: discourse custom, gitea promote; 1 infra:
    keycloak (engine-down); 1 interrupted: mumble; 1 not run``, or ``all 6 green``; with no red
    but some infra or interrupted, ``none red, 4 of 6 green; 1 infra: …``."""
    entries = sweep.get("recipes") or []
    if not entries:
        return "no recipes in this sweep"
    groups = banner_groups(sweep)
    tail = "".join("; %d %s: %s" % (len(groups[state]), state, ", ".join(groups[state]))
                   for state in ("infra", "interrupted") if groups[state])
    not_run = len(groups["not-run"])
    tail += "; %d not run" % not_run if not_run else ""
    if groups["red"]:
        return "%d of %d red: %s%s" % (len(groups["red"]), len(entries), ", ".join(groups["red"]), tail)
    green = len(groups["green"])
    if green == len(entries) - not_run and green:
        return "all %d green%s" % (green, tail)
    if not green and not groups["infra"] and not groups["interrupted"]:
        return "none of %d run" % len(entries)
    return "none red, %d of %d green%s" % (green, len(entries), tail)


def banner_class(sweep: dict) -> str:
    """``red`` when a recipe is red, ``amber`` when none is but some could not be judged (infra,
    harness error, interrupted), else ``green``."""
    groups = banner_groups(sweep)
    if groups["red"]:
        return "red"
    return "amber" if groups["infra"] or groups["interrupted"] else "green"


def load_text(sweep: dict) -> str:
    """The load added beside the sweep (its spec without the zero parts, else ``none added``) and
    what the sampler measured, when it did."""
    load = sweep.get("load")
    if not load:
        return "none added"
    spec = load.get("spec") or {}
    parts = []
    for key in sorted(spec):
        value = spec[key]
        if value in (None, 0, "", False) or value == [] or value == ():
            continue
        if isinstance(value, (list, tuple)):
            value = "+".join(str(v) for v in value)
        parts.append("%s %s" % (key, value))
    text = ", ".join(parts) if parts else "none added"
    fingerprint = load.get("fingerprint") or {}
    measured = []
    # the load average and memory are the controller's (its /proc), where the engine runs too
    whose = "controller " if fingerprint.get("host") == HOST_CONTROLLER else ""
    mean, peak = _number(fingerprint.get("load1_mean")), _number(fingerprint.get("load1_max"))
    if mean is not None or peak is not None:
        measured.append("%sload1 mean %s, max %s" % (whose, "%.2f" % mean if mean is not None else "?",
                                                     "%.2f" % peak if peak is not None else "?"))
    mem = _number(fingerprint.get("mem_used_pct_max"))
    if mem is not None:
        measured.append("%smemory ≤ %.0f%%" % (whose, mem))
    if fingerprint.get("host") == HOST_NOT_MEASURED:
        measured.append("load1 and memory not measured (the engine is not on the controller)")
    stacks = _number(fingerprint.get("stacks_max"))
    if stacks is not None:
        measured.append("stacks ≤ %d" % stacks)
    churn = _number(fingerprint.get("task_churn_per_min"))
    if churn is not None:
        measured.append("%.2f task changes/min" % churn)
    samples = load.get("samples") or []
    if samples:
        measured.append("%d samples" % len(samples))
    return text + (" (%s)" % "; ".join(measured) if measured else "")


def is_sharded(sweep: dict) -> bool:
    """A sweep over several servers (``servers`` lists them; a one-server sweep lists one or none)."""
    return len(sweep.get("servers") or []) > 1


def servers_text(sweep: dict) -> str:
    return ", ".join("%s (cap %s: %s)" % (s.get("name"), s.get("cap"), ", ".join(s.get("recipes") or []) or DASH)
                     for s in sweep.get("servers") or [])


def header_text(sweep: dict) -> str:
    """One line: sweep id, server(s), cap, load, duration, outcome and the summary counts."""
    where = (["servers %s" % servers_text(sweep)] if is_sharded(sweep) else
             ["server %s" % (sweep.get("server") or "?"), "cap %s" % sweep.get("cap", "?")])
    parts = where + ["load: %s" % load_text(sweep), "duration %s" % seconds_text(sweep.get("duration")),
                     "outcome %s" % (sweep.get("outcome") or "?")]
    summary = sweep.get("summary") or {}
    for stage in ("cold", "promote"):
        counts = summary.get(stage) or {}
        if counts:
            parts.append("%s: %s" % (stage, ", ".join("%s %s" % (k, counts[k]) for k in counts)))
    if summary.get("infra"):
        parts.append("infra %s" % summary["infra"])
    return "canon sweep %s — %s" % (sweep.get("sweep_id") or "?", "; ".join(parts))


def _relative(sweep: dict, epoch) -> str:
    start, epoch = _number(sweep.get("started_epoch")), _number(epoch)
    if epoch is None:
        return "?"
    return "+%.0f s" % (epoch - start) if start is not None else "%.0f" % epoch


def systemic_lines(sweep: dict) -> list[str]:
    """``systemic event: <what> in a, b (2×, +12 s … +340 s)``, one per systemic event."""
    lines = []
    for event in sweep.get("systemic") or []:
        what = one_line(event.get("normalised") or event.get("fingerprint") or "?", None)
        recipes = ", ".join(str(r) for r in event.get("recipes") or []) or "?"
        extra = []
        if event.get("count") is not None:
            extra.append("%s×" % event["count"])
        if event.get("first") is not None or event.get("last") is not None:
            extra.append("%s … %s" % (_relative(sweep, event.get("first")), _relative(sweep, event.get("last"))))
        if event.get("infra"):
            extra.append("infra: %s" % one_line(event["infra"], None))
        if event.get("fingerprint"):
            extra.append(str(event["fingerprint"]))
        lines.append("systemic event: %s in %s" % (what, recipes) + (" (%s)" % ", ".join(extra) if extra else ""))
    return lines


# ---------------------------------------------------------------- Markdown

# Backslash escapes for what Markdown would read as markup: emphasis, code, links, table pipes,
# and a "<" that could open an HTML tag or an autolink.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|]|<(?=[A-Za-z/!?]))")


def markdown_cell(text: str) -> str:
    """Text made safe for one GitHub-flavoured Markdown table cell: one line, punctuation escaped."""
    return _MD_SPECIAL.sub(r"\\\1", one_line(text, None))


def markdown_table(sweep: dict, classifications=()) -> str:
    """The sweep's results as GitHub-flavoured Markdown: header line, systemic events, table."""
    rows = result_rows(sweep, classifications)
    lines = ["**%s**" % markdown_cell(header_text(sweep)), "", markdown_cell(banner_text(sweep)), ""]
    systemic = systemic_lines(sweep)
    for line in systemic:
        lines.append("- " + markdown_cell(line))
    if systemic:
        lines.append("")
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        cells = []
        for column in COLUMNS:
            if column == "fix" and row["fix_url"]:
                # The address as an autolink; the rest of the cell escaped as text.
                text = markdown_cell(row["fix"]).replace(markdown_cell(row["fix_url"]), "<%s>" % row["fix_url"], 1)
            else:
                text = markdown_cell(row[column])
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    # What each cold run verified, rung by rung, as its result document says it.
    lines += ["", "What each cold run verified:", ""]
    lines += ["- %s: %s" % (markdown_cell(row["recipe"]), markdown_cell(row["level"])) for row in rows]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- JUnit XML

def _seconds_attr(item: dict) -> str:
    duration = _number(item.get("duration"))
    if duration is None:
        start, end = _number(item.get("started_epoch")), _number(item.get("finished_epoch"))
        duration = end - start if start is not None and end is not None else 0.0
    return "%.3f" % max(duration, 0.0)


def _cold_details(cold: dict) -> str:
    lines = []
    for tier in cold.get("tiers") or []:
        line = "%-15s %-15s %8s" % (tier.get("name") or "?", tier.get("outcome") or "?",
                                    "%.1f" % (_number(tier.get("duration")) or 0.0))
        note = tier.get("error") or tier.get("reason") or ""
        lines.append((line + "  " + one_line(note, 100)).rstrip())  # the whole error follows the table
    failure = cold.get("failure") or {}
    if failure.get("error"):
        lines += ["", clean_text(failure["error"])]
    if failure.get("fingerprint"):
        lines.append("fingerprint: %s" % failure["fingerprint"])
    return "\n".join(lines)


def _stage_out(stage: dict, classification: dict | None, level: str | None = None) -> str:
    lines = ["level: %s" % clean_text(level)] if level and level != DASH else []
    for key in ("run_id", "result"):
        if stage.get(key):
            lines.append("%s: %s" % (key, clean_text(stage[key])))
    if stage.get("detail"):
        lines.append("detail: %s" % clean_text(stage["detail"]))
    if classification:
        lines.append("classification: %s" % classification_text(classification))
        arms = classification.get("arms") or {}
        lines.append("isolated: %s; loaded: %s" % (arm_text(arms.get("isolated")), arm_text(arms.get("loaded"))))
        lines.append("root cause: %s" % root_cause_text(classification, None))
        if classification.get("reason"):
            lines.append("reason: %s" % clean_text(classification["reason"]))
        lines.append("fix: %s" % fix_text(classification, None))
    return "\n".join(lines)


def _testcase(suite: ET.Element, recipe: str, name: str, stage: dict, kind: str, entry: dict,
              classification: dict | None, counts: dict) -> None:
    case = ET.SubElement(suite, "testcase", classname=recipe, name=name, time=_seconds_attr(stage))
    outcome = stage.get("outcome") or "not-run"
    counts["tests"] += 1
    if kind == "cold":
        if outcome == "fail":
            failure = stage.get("failure") or {}
            tier = failure.get("tier") or (first_tier(stage, "fail") or {}).get("name") or "fail"
            element = ET.SubElement(case, "failure", message=clean_text(cold_failure(entry, None)), type=str(tier))
            element.text = _cold_details(stage)
            counts["failures"] += 1
        elif outcome == "incomplete":
            element = ET.SubElement(case, "failure", message=clean_text(cold_failure(entry, None)), type="incomplete")
            element.text = _cold_details(stage)
            counts["failures"] += 1
        elif outcome == "infra":
            ET.SubElement(case, "error", message=clean_text(infra_text(stage, None)),
                          type="infra").text = _cold_details(stage)
            counts["errors"] += 1
        elif outcome in COLD_SKIPPED:
            status = entry.get("status")
            ET.SubElement(case, "skipped", message=status if outcome == "not-run" and status in UNFINISHED
                          else outcome)
            counts["skipped"] += 1
        elif outcome not in COLD_GREEN:
            ET.SubElement(case, "error", message="unknown cold outcome %r" % outcome, type="unknown")
            counts["errors"] += 1
    else:
        detail = clean_text(stage.get("detail"))
        if outcome in PROMOTE_FAILED:
            ET.SubElement(case, "failure", message=clean_text(promote_failure(entry, None)),
                          type="promote").text = detail
            counts["failures"] += 1
        elif outcome == "infra":
            ET.SubElement(case, "error", message=clean_text(promote_failure(entry, None)), type="infra").text = detail
            counts["errors"] += 1
        elif outcome in PROMOTE_SKIPPED:
            ET.SubElement(case, "skipped", message=("%s: %s" % (outcome, one_line(detail, None))) if detail
                          else outcome)
            counts["skipped"] += 1
        elif outcome not in PROMOTE_GREEN:
            ET.SubElement(case, "error", message="unknown promote outcome %r" % outcome, type="unknown")
            counts["errors"] += 1
    out = _stage_out(stage, classification, level_of(entry) if kind == "cold" else None)
    if out:
        ET.SubElement(case, "system-out").text = out


def tier_skip_reason(tiers: list, index: int) -> str:
    """Why the tier at ``index`` did not run, as the JUnit ``<skipped message>`` says it: ``not
    applicable: <reason>`` (declared by the recipe), ``blocked: <tier> did not pass`` (a lower rung
    failed: the lifecycle records that reason; a record without one names the first lower rung
    that did not pass), or ``skipped: <reason>`` (a missing prerequisite)."""
    tier = tiers[index]
    reason = one_line(tier.get("reason") or tier.get("detail") or "", None)
    if tier.get("outcome") == "not-applicable":
        return "not applicable: %s" % reason if reason else "not applicable"
    if reason.startswith("blocked:"):
        return reason
    if reason:
        return "skipped: %s" % reason
    lower = next((t for t in tiers[:index] if t.get("outcome") not in ("pass", "not-applicable")), None)
    if lower is not None:
        return "blocked: %s did not pass" % (lower.get("name") or "?")
    return "skipped"


def _tier_testcase(suite: ET.Element, recipe: str, tiers: list, index: int, counts: dict) -> None:
    """One cold tier as a testcase (classname ``<recipe>.cold``, name the tier), so a CI's test
    view shows which rungs ran, which failed and why the others did not run (issue 17)."""
    tier = tiers[index]
    name = clean_text(tier.get("name") or "?")
    case = ET.SubElement(suite, "testcase", classname="%s.cold" % recipe, name=name, time=_seconds_attr(tier))
    outcome = tier.get("outcome")
    error = clean_text(tier.get("error") or "")
    counts["tests"] += 1
    if outcome == "pass":
        return
    if outcome in ("not-applicable", "skipped"):
        ET.SubElement(case, "skipped", message=clean_text(tier_skip_reason(tiers, index)))
        counts["skipped"] += 1
    elif outcome == "fail":
        ET.SubElement(case, "failure", message="%s: %s" % (name, one_line(error, None)) if error else name,
                      type=name).text = error
        counts["failures"] += 1
    elif outcome == "infra":
        # the server could not take the run: an error of the run, not a red rung of the recipe
        kind = clean_text(tier.get("infra") or "unrecognised")
        ET.SubElement(case, "error", message="infra (%s)%s" % (kind, ": " + one_line(error, None) if error else ""),
                      type="infra").text = error
        counts["errors"] += 1
    elif outcome == "harness-error":
        ET.SubElement(case, "error", message="harness error in task '%s'%s" % (
            clean_text(tier.get("task") or "?"), ": " + one_line(error, None) if error else ""),
            type="harness-error").text = error
        counts["errors"] += 1
    else:
        ET.SubElement(case, "error", message="unknown tier outcome %r" % outcome, type="unknown")
        counts["errors"] += 1


def junit_xml(sweep: dict, classifications=()) -> str:
    """JUnit XML: one testsuite for the sweep, a ``cold`` and a ``promote`` testcase per recipe."""
    check_sweep(sweep)
    grouped = classifications_by_recipe(classifications)
    sweep_id = clean_text(sweep.get("sweep_id") or "?")
    root = ET.Element("testsuites", name="coopcloud.canon")
    suite = ET.SubElement(root, "testsuite", name="coopcloud.canon sweep %s" % sweep_id)
    properties = ET.SubElement(suite, "properties")
    for name, value in (("sweep_id", sweep_id), ("server", sweep.get("server")), ("cap", sweep.get("cap")),
                        ("harness_commit", sweep.get("harness_commit")), ("outcome", sweep.get("outcome")),
                        ("load", load_text(sweep)), ("banner", banner_text(sweep))):
        if value is not None:
            ET.SubElement(properties, "property", name=name, value=clean_text(value))
    for line in systemic_lines(sweep):
        ET.SubElement(properties, "property", name="systemic", value=clean_text(line))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    # The stages' verdicts stay in the first suite; each cold tier is a testcase of a second one,
    # so consumers that read one verdict per stage are unchanged.
    tier_suite = ET.Element("testsuite", name="coopcloud.canon sweep %s tiers" % sweep_id)
    tier_counts = dict.fromkeys(counts, 0)
    for entry in sweep.get("recipes") or []:
        recipe = clean_text(entry.get("recipe") or "?")
        found = grouped.get(str(entry.get("recipe") or "?")) or []
        for name in ("cold", "promote"):
            stage = entry.get(name) or {}
            classification = next((c for c in found if c.get("kind") == name), None)
            _testcase(suite, recipe, name, stage, name, entry, classification, counts)
        tiers = [t for t in (entry.get("cold") or {}).get("tiers") or [] if isinstance(t, dict)]
        for index in range(len(tiers)):
            _tier_testcase(tier_suite, recipe, tiers, index, tier_counts)
    total = "%.3f" % max(_number(sweep.get("duration")) or 0.0, 0.0)
    for element, values in ((suite, counts), (tier_suite, tier_counts),
                            (root, {k: counts[k] + tier_counts[k] for k in counts})):
        for key, value in values.items():
            element.set(key, str(value))
        element.set("time", total)
    for element in (suite, tier_suite):
        if sweep.get("started"):
            element.set("timestamp", clean_text(sweep["started"]))
        if sweep.get("server"):
            element.set("hostname", clean_text(sweep["server"]))
    if tier_counts["tests"]:
        root.append(tier_suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- HTML

def _outcome_class(outcome) -> str:
    """An outcome as a CSS class suffix (letters and hyphens only)."""
    return re.sub(r"[^a-z-]", "", str(outcome or "not-run"))


def _inline_svg(svg: str, label: str) -> Markup:
    """The SVG document as an element for the page: without the XML prolog and DOCTYPE.

    The SVG is canon.timeline's own drawing; every text in it went through matplotlib's and
    timeline's XML escaping, so it is the one piece the template takes as markup."""
    start = svg.find("<svg")
    element = svg[start:] if start >= 0 else svg
    return Markup(element.replace("<svg ", '<svg role="img" aria-label="%s" ' % html.escape(clean_text(label),
                                                                                            quote=True), 1))


# A relative path at the start of an evidence line (``runs/<id>/evidence/x.txt: what it shows``).
_EVIDENCE_PATH = re.compile(r"^(?!\w+://)((?:\.\.?/)*[\w.@+-]+(?:/[\w.@+-]+)+/?)")


def _link(href: str, text: str, directory: str | None) -> dict:
    missing = directory is not None and not os.path.exists(os.path.join(directory, href))
    return {"href": href, "text": text, "missing": missing}


def evidence_links(entry: dict, directory: str | None = None) -> list[dict]:
    """Links to a recipe's evidence files (relative): each stage's result file and its run folder.

    With ``directory`` (where the page is written), a link whose file is not there is marked
    ``missing`` (a copy of the report without the run folders still says where they were)."""
    links = []
    for stage in ("cold", "promote"):
        result = str((entry.get(stage) or {}).get("result") or "")
        if not result or result.startswith("/") or "://" in result:
            continue
        links.append(_link(result, "%s %s" % (stage, posixpath.basename(result)), directory))
        folder = posixpath.dirname(result)
        if folder and not any(link["href"] == folder + "/" for link in links):
            links.append(_link(folder + "/", "%s run folder" % stage, directory))
    return links


def _summary_items(sweep: dict) -> list[tuple[str, str]]:
    where = ([("servers", servers_text(sweep))] if is_sharded(sweep) else
             [("server", sweep.get("server")), ("cap", sweep.get("cap"))])
    items = [("sweep", sweep.get("sweep_id"))] + where + [
        ("outcome", sweep.get("outcome")),
        ("started", utc_text(sweep["started"]) if sweep.get("started") else None),
        ("finished", utc_text(sweep["finished"]) if sweep.get("finished") else None),
        ("duration", seconds_text(sweep.get("duration"))),
        ("load", load_text(sweep)), ("harness commit", sweep.get("harness_commit"))]
    summary = sweep.get("summary") or {}
    if summary.get("recipes") is not None:
        items.append(("recipes", summary["recipes"]))
    for stage in ("cold", "promote"):
        counts = summary.get(stage) or {}
        if counts:
            items.append((stage, ", ".join("%s %s" % (k, counts[k]) for k in counts)))
    if "infra" in summary:
        items.append(("infra", summary["infra"]))
    return [(name, clean_text(value)) for name, value in items if value is not None and value != ""]


def _row_view(row: dict, entry: dict, directory: str | None) -> dict:
    reasons = []
    for short, whole in ((cold_failure(entry), cold_failure(entry, None)),
                         (promote_failure(entry), promote_failure(entry, None))):
        if short:
            reasons.append({"short": short, "whole": whole})
    view = {key: row[key] for key in ("recipe", "failure", "root cause", "classification", "fix", "fix_url",
                                      "green", "level")}
    view["state"] = row["state"] if row["state"] in ("red", "green") else "amber"
    view.update(isolation=row["isolation result"], cause=row["root cause"], reasons=reasons,
                evidence=evidence_links(entry, directory) if not row["green"] else [],
                cause_whole=root_cause_text(row["classification_doc"], None) if row["classification_doc"] else "")
    if row["fix_url"]:
        before, _, after = row["fix"].partition(row["fix_url"])
        view.update(fix_before=before, fix_after=after)
    return view


def _tier_view(sweep: dict) -> tuple[list[str], list[dict]]:
    names = []
    for entry in sweep.get("recipes") or []:
        for tier in (entry.get("cold") or {}).get("tiers") or []:
            if tier.get("name") and tier["name"] not in names:
                names.append(tier["name"])
    lines = []
    for entry in sweep.get("recipes") or []:
        cold, promote = entry.get("cold") or {}, entry.get("promote") or {}
        tiers = {t.get("name"): t for t in cold.get("tiers") or []}
        cells = [{"outcome": cold.get("outcome") or "not-run", "duration": seconds_text(cold.get("duration")),
                  "title": ""}]
        for name in names:
            tier = tiers.get(name)
            if tier is None:
                cells.append({"outcome": "", "duration": "", "title": ""})
                continue
            reason = tier.get("error") or (tier.get("reason") if tier.get("outcome") != "pass" else "") or ""
            cells.append({"outcome": tier.get("outcome") or "?", "title": one_line(reason, None),
                          "duration": seconds_text(tier.get("duration")) if _number(tier.get("duration")) is not None
                          else ""})
        cells.append({"outcome": promote.get("outcome") or "not-run", "duration": seconds_text(promote.get("duration")),
                      "title": one_line(promote.get("detail"), None)})
        lines.append({"recipe": clean_text(entry.get("recipe") or "?"), "cells": cells, "level": level_of(entry)})
    return names, lines


def _classification_view(classification: dict, directory: str | None) -> dict:
    arms = classification.get("arms") or {}
    arm_views = []
    for name in ("isolated", "loaded"):
        arm = arms.get(name)
        if arm is None:
            continue
        passed, failed, infra = _arm_counts(arm)
        runs = []
        for run in (arm or {}).get("runs") or []:
            extra = [clean_text(run[k]) for k in ("tier", "fingerprint", "infra") if run.get(k)]
            if run.get("origin"):
                extra.insert(0, "the sweep's own run")
            if run.get("run_as") == "isolated":
                pct = (run.get("load") or {}).get("cpu_busy_pct")
                extra.insert(0, "run isolated, met a busy machine (CPUs %s%% busy)" % ("%g" % pct if pct is not None else "?"))
            runs.append({"run_id": clean_text(run.get("run_id") or "?"), "outcome": clean_text(run.get("outcome")),
                         "extra": ", ".join(extra)})
        arm_views.append({"name": name, "passed": passed, "failed": failed, "infra": infra, "text": arm_text(arm),
                          "runs": runs})
    facts = []
    confidence = classification.get("confidence") or {}
    for key in ("test", "p_value", "alpha", "loaded_failure_rate", "isolated_clean", "isolated_clean_needed"):
        if confidence.get(key) is not None:
            value = confidence[key]
            facts.append((key.replace("_", " "), ("%.3g" % value) if isinstance(value, float) else value))
    budget = classification.get("budget") or {}
    if budget:
        facts.append(("budget", "%s of %s runs used%s" % (budget.get("used", "?"), budget.get("runs", "?"),
                                                          ", exhausted" if budget.get("exhausted") else "")))
    if classification.get("fingerprint"):
        facts.append(("fingerprint", classification["fingerprint"]))
    fingerprints = classification.get("fingerprints") or {}
    if len(fingerprints) > 1:
        facts.append(("fingerprints seen", ", ".join("%s ×%s" % (k, fingerprints[k]) for k in sorted(fingerprints))))
    for key in ("recipe_commit", "harness_commit"):
        if classification.get(key):
            facts.append((key.replace("_", " "), classification[key]))
    for key in ("started", "finished"):
        if classification.get(key) is not None:
            facts.append((key, utc_text(classification[key])))
    facts.append(("root cause", root_cause_text(classification, None)))
    facts.append(("fix", fix_text(classification, None)))
    evidence = []
    for item in (classification.get("location") or {}).get("evidence") or []:
        text = clean_text(item)
        match = _EVIDENCE_PATH.match(text)
        link = _link(match.group(1), text, directory) if match else {"href": None, "text": text, "missing": False}
        evidence.append(link)
    return {
        "anchor": "classification-%s-%s" % (re.sub(r"[^A-Za-z0-9_.-]", "_", str(classification.get("recipe") or "?")),
                                            re.sub(r"[^A-Za-z0-9_.-]", "_", str(classification.get("kind") or "?"))),
        "recipe": clean_text(classification.get("recipe") or "?"), "kind": clean_text(classification.get("kind") or "?"),
        "verdict": classification_text(classification), "reason": clean_text(classification.get("reason")),
        "arms": arm_views, "facts": [(k, clean_text(v)) for k, v in facts], "evidence": evidence,
    }


_TEMPLATES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True, undefined=StrictUndefined,
                      keep_trailing_newline=True)
    env.filters["outcome_class"] = _outcome_class
    return env


def html_page(sweep: dict, classifications=(), directory: str | None = None) -> str:
    """One self-contained HTML page (Jinja2, autoescaped): a banner, the summary, the timeline
    (inline SVG), the results with each reason whole behind a disclosure and links to the
    evidence, systemic events, the tiers, the classifications.

    ``directory`` is where the page is written: evidence links whose file is not there are marked."""
    rows = result_rows(sweep, classifications)
    grouped = classifications_by_recipe(classifications)
    entries = sweep.get("recipes") or []
    sweep_id = clean_text(sweep.get("sweep_id") or "?")
    title = "canon sweep %s" % sweep_id
    details = [c for entry in entries for c in grouped.get(str(entry.get("recipe") or "?"), [])]
    listed = {str(e.get("recipe") or "?") for e in entries}
    details += [c for recipe, found in grouped.items() if recipe not in listed for c in found]
    tier_names, tier_rows = _tier_view(sweep)
    return _environment().get_template("index.html.j2").render(
        title=title, banner=banner_text(sweep), banner_class=banner_class(sweep),
        summary=_summary_items(sweep),
        started=utc_text(sweep["started"]) if sweep.get("started") else "its start",
        svg=_inline_svg(timeline_svg(sweep), "timeline of " + title),
        columns=COLUMNS, rows=[_row_view(row, entry, directory) for row, entry in zip(rows, entries)],
        systemic=systemic_lines(sweep), tier_names=tier_names, tier_rows=tier_rows,
        classifications=[_classification_view(c, directory) for c in details])


# ---------------------------------------------------------------- files

def _write_atomically(path: str, text: str) -> None:
    """``text`` at ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_all(sweep: dict, classifications, directory: str) -> dict:
    """``results.md``, ``junit.xml`` and ``index.html`` in ``directory``; returns their paths.

    Paths of the results folder in the documents are written relative to ``directory``.
    Everything is rendered before the first file is written, so a rendering error leaves the
    directory as it was. Keys of the result: ``markdown``, ``junit``, ``html``.
    """
    classifications = list(classifications or ())
    check_sweep(sweep)
    # Paths as seen from the folder written to: the reports never show this machine's paths.
    roots = roots_for(directory, sweep)
    sweep = relative_documents(sweep, roots)
    classifications = [relative_documents(c, roots) for c in classifications]
    rendered = {
        "markdown": ("results.md", markdown_table(sweep, classifications)),
        "junit": ("junit.xml", junit_xml(sweep, classifications)),
        "html": ("index.html", html_page(sweep, classifications, directory)),
    }
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for key, (name, text) in rendered.items():
        path = os.path.join(directory, name)
        _write_atomically(path, text)
        paths[key] = path
    return paths
