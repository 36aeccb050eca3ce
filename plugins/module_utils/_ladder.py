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
"""

from __future__ import annotations

from ansible_collections.coopcloud.canon.plugins.module_utils._settings import TIERS

SCHEMA_VERSION = 1
OUTCOMES = ("pass", "fail", "not-applicable", "skipped")
# The ladder: climbing stops at the first rung that failed or could not be verified.
LADDER = TIERS


def level(tiers: list) -> dict:
    """``{"level": n, "name": last rung reached, "stopped_at": tier or None}``.

    Rung n is reached when tiers 1..n each passed or were intentionally not applicable.
    """
    by_name = {t["name"]: t for t in tiers}
    reached, name, stopped = 0, "none", None
    for i, tier in enumerate(LADDER, 1):
        t = by_name.get(tier)
        if t and (t["outcome"] == "pass" or (t["outcome"] == "not-applicable" and t.get("intended", True))):
            reached, name = i, tier
            continue
        stopped = tier
        break
    return {"level": reached, "name": name, "stopped_at": stopped, "of": len(LADDER)}


def overall(tiers: list) -> str:
    outcomes = [t["outcome"] for t in tiers]
    if "fail" in outcomes:
        return "fail"
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
    doc.update(extra or {})
    return doc


def table(doc: dict) -> list:
    """A short per-tier table, one string per line."""
    rows = [("tier", "outcome", "seconds", "detail")]
    for t in doc["tiers"]:
        detail = t.get("error") or t.get("reason") or t.get("detail") or ""
        rows.append((t["name"], t["outcome"], "%.1f" % float(t.get("duration", 0) or 0),
                     detail.replace("\n", " ")[:90]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["%-*s  %-*s  %*s  %s" % (widths[0], r[0], widths[1], r[1], widths[2], r[2], r[3]) for r in rows]
    lv = doc["level"]
    lines.append("%s %s: %s, level %d/%d (%s)" % (
        doc["recipe"], doc["run_id"], doc["outcome"].upper(), lv["level"], lv["of"], lv["name"]))
    return lines
