"""The timeline of a sweep as an SVG: one lane per recipe, a bar per tier, the load beneath.

Input is a sweep document (schema ``coopcloud.canon/sweep`` version 1, written by the driver).
x is seconds since the sweep started. Each tier's bar starts at its ``started_epoch``; a tier
without one follows the previous tier (the first starts at the cold run's ``started_epoch``).
The promotion is a hatched bar on the same lane. Every bar carries an SVG id (matplotlib's
``gid``): ``bar-tier-<lane>-<recipe>-<tier>``, ``bar-promote-<lane>-<recipe>`` or, for a cold run
that has times but no tiers (an infrastructure failure before the first tier),
``bar-run-<lane>-<recipe>``; a tier recorded twice in one run gets ``-2``, ``-3`` appended.

The figure is drawn on matplotlib's Agg backend without pyplot (no global figure state) and
saved with a fixed ``svg.hashsalt`` and no date, so equal input gives byte-equal SVG.
"""
from __future__ import annotations

import io
import re
from xml.sax.saxutils import escape

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402  (after the backend is chosen)
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from canon.load import HOST_CONTROLLER  # noqa: E402

TIER_COLOURS = {
    "pass": "#2ca02c",
    "fail": "#d62728",
    "not-applicable": "#7f7f7f",
    "skipped": "#d3d3d3",
    "infra": "#9467bd",
    "harness-error": "#e377c2",
}
# A cold run drawn as one bar (no tiers recorded) is coloured by the run's outcome.
RUN_COLOURS = {
    "pass": "#2ca02c",
    "fail": "#d62728",
    "incomplete": "#ff7f0e",
    "infra": "#9467bd",
    "harness-error": "#e377c2",
    "interrupted": "#8c564b",
}
PROMOTE_COLOURS = {
    "promoted": "#2ca02c",
    "promoted-by-fallback": "#bcbd22",
    "current": "#98df8a",
    "failed": "#d62728",
    "refused": "#ff7f0e",
    "infra": "#9467bd",
    "interrupted": "#8c564b",
    "skipped": "#d3d3d3",
    "not-enrolled": "#d3d3d3",
    "not-run": "#d3d3d3",
}
UNKNOWN_COLOUR = "#000000"  # an outcome this renderer does not know: shown, never hidden
TIER_LABELS = {
    "preflight": "pre",
    "install": "install",
    "upgrade": "upgrade",
    "backup_restore": "backup",
    "custom": "custom",
    "lint": "lint",
    "harness": "harness",
}
LOAD1_COLOUR = "#1f77b4"
STACKS_COLOUR = "#ff7f0e"
BAR_HEIGHT = 0.6
HASH_SALT = "coopcloud.canon timeline"
# The narrowest bar, as a share of the x range: a 0-second tier (preflight, a skipped rung)
# is still a visible sliver at its place.
MIN_BAR_SHARE = 0.003
LABEL_SHARE = 0.045  # a bar this wide (share of the x range) gets its tier's name written in it


def _number(value) -> float | None:
    """``value`` as a float, or None when it is missing or not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and abs(number) != float("inf") else None


def duration_text(seconds) -> str:
    """A duration as a person says it: ``8.6 s``, ``6 min 45 s``, ``1 h 2 min 5 s``; ``—`` unknown."""
    seconds = _number(seconds)
    if seconds is None:
        return "—"
    if seconds < 60:
        return "%.1f s" % max(seconds, 0.0)
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return ("%d h %d min %d s" % (hours, minutes, secs)) if hours else ("%d min %d s" % (minutes, secs))


# Outcomes that get a label beside the bar even when the bar is a sliver: the recipe's reds in
# dark red, what the server or the harness failed (never the recipe's red) in dark purple.
RED_TIERS = {"fail", "infra", "incomplete", "harness-error"}
RED_PROMOTES = {"failed", "refused", "promoted-by-fallback", "infra", "harness-error"}
NOT_THE_RECIPE = {"infra", "harness-error"}
LABEL_INK = {True: "#5b2c83", False: "#8b0000"}     # keyed by: the outcome is not the recipe's


def ink_of(bar: dict) -> str:
    """The colour of a bar's label: dark red for the recipe's own failure, dark purple for infra
    and harness errors."""
    return LABEL_INK[bar.get("outcome") in NOT_THE_RECIPE]


def _gid_part(text: str) -> str:
    """``text`` reduced to characters that are safe in an XML id."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text)) or "_"


def _span(item: dict) -> tuple[float | None, float]:
    """(start epoch, seconds) of a cold run or promotion; seconds from duration or finish - start."""
    start = _number(item.get("started_epoch"))
    duration = _number(item.get("duration"))
    if duration is None and start is not None:
        finished = _number(item.get("finished_epoch"))
        duration = finished - start if finished is not None else None
    return start, max(duration or 0.0, 0.0)


def tier_spans(cold: dict) -> list[tuple[str, str, float, float]]:
    """(tier name, outcome, start epoch, seconds) of each tier of a cold run, in the order they ran.

    A tier with its own ``started_epoch`` starts there; one without starts where the previous
    one ended, the first at the cold run's ``started_epoch``. Without any start, none is placed.
    """
    cursor = _number(cold.get("started_epoch"))
    spans = []
    for tier in cold.get("tiers") or []:
        start = _number(tier.get("started_epoch"))
        if start is None:
            start = cursor
        seconds = max(_number(tier.get("duration")) or 0.0, 0.0)
        if start is None:
            continue
        spans.append((str(tier.get("name") or "?"), str(tier.get("outcome") or "?"), start, seconds))
        cursor = start + seconds
    return spans


def sweep_origin(sweep: dict) -> float:
    """The epoch x=0 stands for: the sweep's start, else the earliest time found in it, else 0."""
    start = _number(sweep.get("started_epoch"))
    if start is not None:
        return start
    found = []
    for entry in sweep.get("recipes") or []:
        for stage in ("cold", "promote"):
            found.append(_number((entry.get(stage) or {}).get("started_epoch")))
        for tier in (entry.get("cold") or {}).get("tiers") or []:
            found.append(_number(tier.get("started_epoch")))
    for sample in (sweep.get("load") or {}).get("samples") or []:
        found.append(_number(sample.get("t")))
    found = [t for t in found if t is not None]
    return min(found) if found else 0.0


def _bars(sweep: dict, origin: float) -> list[dict]:
    """Every bar to draw: lane, kind, label, outcome, colour, x, width (unpadded), gid."""
    bars = []
    for lane, entry in enumerate(sweep.get("recipes") or []):
        seen: dict[str, int] = {}
        recipe = str(entry.get("recipe") or "?")
        cold = entry.get("cold") or {}
        spans = tier_spans(cold)
        reasons, counted = {}, {}
        for tier in cold.get("tiers") or []:
            name = str(tier.get("name") or "?")
            counted[name] = counted.get(name, 0) + 1
            reasons[(name, counted[name])] = tier.get("error") or (
                tier.get("reason") if tier.get("outcome") != "pass" else "") or (
                (cold.get("failure") or {}).get("error") if tier.get("outcome") == "fail" else "")
        for name, outcome, start, seconds in spans:
            seen[name] = seen.get(name, 0) + 1  # a tier recorded twice gets its own id: ids are unique
            suffix = "" if seen[name] == 1 else "-%d" % seen[name]
            bars.append({
                "lane": lane, "kind": "tier", "label": TIER_LABELS.get(name, name), "outcome": outcome,
                "colour": TIER_COLOURS.get(outcome, UNKNOWN_COLOUR), "x": start - origin, "width": seconds,
                "gid": "bar-tier-%d-%s-%s%s" % (lane, _gid_part(recipe), _gid_part(name), suffix),
                "title": _title(recipe, name, outcome, seconds, reasons.get((name, seen[name]))),
                "red": outcome in RED_TIERS,
            })
        start, seconds = _span(cold)
        if not spans and start is not None:
            outcome = str(cold.get("outcome") or "?")
            bars.append({
                "lane": lane, "kind": "run", "label": outcome, "outcome": outcome,
                "colour": RUN_COLOURS.get(outcome, UNKNOWN_COLOUR), "x": start - origin, "width": seconds,
                "gid": "bar-run-%d-%s" % (lane, _gid_part(recipe)),
                "title": _title(recipe, "cold run", outcome, seconds, cold.get("infra") or
                                (cold.get("failure") or {}).get("error")),
                "red": outcome in RED_TIERS,
            })
        promote = entry.get("promote") or {}
        start, seconds = _span(promote)
        if start is not None:
            outcome = str(promote.get("outcome") or "?")
            bars.append({
                "lane": lane, "kind": "promote", "label": "promote", "outcome": outcome,
                "colour": PROMOTE_COLOURS.get(outcome, UNKNOWN_COLOUR), "x": start - origin,
                "width": seconds, "gid": "bar-promote-%d-%s" % (lane, _gid_part(recipe)),
                "title": _title(recipe, "promote", outcome, seconds, promote.get("detail")),
                "red": outcome in RED_PROMOTES,
            })
    return bars


def _title(recipe: str, what: str, outcome: str, seconds: float, reason) -> str:
    """A bar's hover text (its SVG ``<title>``): ``mumble custom: fail after 6.4 s — <whole reason>``."""
    text = "%s %s: %s after %s" % (recipe, what, outcome, duration_text(seconds))
    reason = " ".join(str(reason or "").split())
    return text + (" — " + reason if reason else "")


def _load_points(sweep: dict, origin: float, key: str) -> tuple[list[float], list[float]]:
    """(x, value) of one load measure over the samples that have it, in time order."""
    points = []
    for sample in (sweep.get("load") or {}).get("samples") or []:
        t, value = _number(sample.get("t")), _number(sample.get(key))
        if t is not None and value is not None:
            points.append((t - origin, value))
    points.sort()
    return [p[0] for p in points], [p[1] for p in points]


def _x_max(sweep: dict, origin: float, bars: list[dict]) -> float:
    """The right end of the x axis: the last bar, sample or the sweep's finish, whichever is latest."""
    ends = [b["x"] + b["width"] for b in bars]
    ends += _load_points(sweep, origin, "load1")[0] + _load_points(sweep, origin, "stacks")[0]
    finished = _number(sweep.get("finished_epoch"))
    if finished is not None:
        ends.append(finished - origin)
    return max([e for e in ends if e > 0] or [1.0])


def _legend_handles(bars: list[dict]) -> list:
    """One legend entry per tier outcome and per promotion outcome that appears, in a fixed order."""
    handles = []
    tier_outcomes = {b["outcome"] for b in bars if b["kind"] in ("tier", "run")}
    ordered = list(TIER_COLOURS) + [o for o in RUN_COLOURS if o not in TIER_COLOURS]
    for outcome in ordered + sorted(tier_outcomes - set(ordered)):
        if outcome in tier_outcomes:
            colour = TIER_COLOURS.get(outcome) or RUN_COLOURS.get(outcome, UNKNOWN_COLOUR)
            handles.append(Patch(facecolor=colour, edgecolor="white", label=outcome))
    promote_outcomes = {b["outcome"] for b in bars if b["kind"] == "promote"}
    for outcome in list(PROMOTE_COLOURS) + sorted(promote_outcomes - set(PROMOTE_COLOURS)):
        if outcome in promote_outcomes:
            handles.append(Patch(facecolor=PROMOTE_COLOURS.get(outcome, UNKNOWN_COLOUR), edgecolor="#333333",
                                 hatch="//", label="promote: %s" % outcome))
    return handles


def _draw_lanes(ax, sweep: dict, bars: list[dict], x_max: float) -> None:
    """The recipe lanes: tier and promotion bars, their labels, recipe names on the y axis."""
    entries = sweep.get("recipes") or []
    min_width = x_max * MIN_BAR_SHARE
    for bar in bars:
        width = max(bar["width"], min_width)
        y = bar["lane"] - BAR_HEIGHT / 2
        if bar["kind"] == "promote":
            patch = Rectangle((bar["x"], y), width, BAR_HEIGHT, facecolor=bar["colour"], edgecolor="#333333",
                              linewidth=0.6, hatch="//", gid=bar["gid"])
        else:
            patch = Rectangle((bar["x"], y), width, BAR_HEIGHT, facecolor=bar["colour"], edgecolor="white",
                              linewidth=0.6, gid=bar["gid"])
        ax.add_patch(patch)
        if width >= x_max * LABEL_SHARE:
            ink = "black" if bar["colour"] in ("#d3d3d3", "#98df8a", "#bcbd22") else "white"
            ax.text(bar["x"] + width / 2, bar["lane"], bar["label"], ha="center", va="center", fontsize=7,
                    color=ink, clip_on=True)
        if bar.get("red"):
            # A red bar is named beside itself (a failing tier is often a sliver of its lane): on
            # the side with room, so the name stays inside the plot.
            right = bar["x"] + width / 2 < x_max / 2
            ax.text(bar["x"] + width + x_max * 0.004 if right else bar["x"] - x_max * 0.004, bar["lane"],
                    "%s %s" % (bar["label"], bar["outcome"]), ha="left" if right else "right", va="center",
                    fontsize=7.5, fontweight="bold", color=ink_of(bar), gid="label-" + bar["gid"],
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": ink_of(bar),
                          "linewidth": 0.5, "alpha": 0.9})
    drawn = {b["lane"] for b in bars}
    for lane, entry in enumerate(entries):
        if lane not in drawn:
            outcome = (entry.get("cold") or {}).get("outcome") or "not-run"
            if outcome == "not-run" and entry.get("status") in ("pending", "running"):
                outcome = entry["status"]  # the sweep is still going
            ax.text(x_max * 0.01, lane, "%s (no times recorded)" % outcome, ha="left", va="center", fontsize=7,
                    color="#555555")
    ax.set_yticks(range(len(entries)))
    ax.set_yticklabels(["%s\n%s" % (e.get("recipe") or "?", e.get("version") or "") if e.get("version")
                        else str(e.get("recipe") or "?") for e in entries], fontsize=8)
    ax.set_ylim(len(entries) - 0.5 if entries else 0.5, -0.5)  # the first recipe on top
    ax.set_xlim(0, x_max * 1.02)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)


def _draw_load(ax, sweep: dict, origin: float) -> list:
    """load1 as a line, stacks as steps on a second y axis; returns the legend handles."""
    handles = []
    # the load average is the controller's (its /proc), where the engine runs too
    fingerprint = (sweep.get("load") or {}).get("fingerprint") or {}
    label = "controller load1" if fingerprint.get("host") == HOST_CONTROLLER else "load1"
    xs, load1 = _load_points(sweep, origin, "load1")
    if xs:
        ax.plot(xs, load1, color=LOAD1_COLOUR, linewidth=1.2, gid="load-load1")
        handles.append(Line2D([], [], color=LOAD1_COLOUR, label=label))
    ax.set_ylabel(label, fontsize=8, color=LOAD1_COLOUR)
    ax.set_ylim(bottom=0)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    xs, stacks = _load_points(sweep, origin, "stacks")
    if xs:
        twin = ax.twinx()
        twin.step(xs, stacks, where="post", color=STACKS_COLOUR, linewidth=1.0, gid="load-stacks")
        twin.set_ylabel("stacks", fontsize=8, color=STACKS_COLOUR)
        twin.set_ylim(0, max(stacks) + 1)
        twin.yaxis.get_major_locator().set_params(integer=True)
        handles.append(Line2D([], [], color=STACKS_COLOUR, drawstyle="steps-post", label="stacks"))
    return handles


def timeline_figure(sweep: dict) -> Figure:
    """The sweep's timeline as a matplotlib Figure (not attached to pyplot)."""
    origin = sweep_origin(sweep)
    bars = _bars(sweep, origin)
    x_max = _x_max(sweep, origin, bars)
    lanes = max(len(sweep.get("recipes") or []), 1)
    has_load = bool(_load_points(sweep, origin, "load1")[0] or _load_points(sweep, origin, "stacks")[0])
    height = 1.4 + 0.55 * lanes + (1.9 if has_load else 0.0)
    fig = Figure(figsize=(11, height), layout="constrained")
    if has_load:
        ax, load_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [0.55 * lanes, 1.6]})
    else:
        ax, load_ax = fig.subplots(1, 1), None
    _draw_lanes(ax, sweep, bars, x_max)
    title = "canon sweep %s" % (sweep.get("sweep_id") or "?")
    details = ["server %s" % sweep["server"]] if sweep.get("server") else []
    if sweep.get("cap") is not None:
        details.append("cap %s" % sweep["cap"])
    if sweep.get("outcome"):
        details.append(str(sweep["outcome"]))
    ax.set_title(title + (" — " + ", ".join(details) if details else ""), fontsize=10, loc="left")
    handles = _legend_handles(bars)
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False)
    if load_ax is not None:
        load_handles = _draw_load(load_ax, sweep, origin)
        load_ax.legend(handles=load_handles, loc="upper left", bbox_to_anchor=(1.06, 1.0), fontsize=7,
                       frameon=False)
        load_ax.set_xlabel("seconds since the sweep started", fontsize=8)
    else:
        ax.set_xlabel("seconds since the sweep started", fontsize=8)
    return fig


def timeline_svg(sweep: dict) -> str:
    """The sweep's timeline as SVG text; byte-equal for equal input."""
    fig = timeline_figure(sweep)
    buffer = io.StringIO()
    # fonttype none: text stays text (searchable, small); the salt fixes the generated ids.
    with matplotlib.rc_context({"svg.hashsalt": HASH_SALT, "svg.fonttype": "none", "svg.id": "canon-timeline"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    return _with_titles(buffer.getvalue(), _bars(sweep, sweep_origin(sweep)))


def _with_titles(svg: str, bars: list[dict]) -> str:
    """Each bar's group (and its label's) with a ``<title>`` first: the browser shows it on hover."""
    titles = {}
    for bar in bars:
        titles[bar["gid"]] = bar["title"]
        titles["label-" + bar["gid"]] = bar["title"]

    def add(match):
        title = titles.get(match.group(1))
        return match.group(0) if title is None else '%s\n   <title>%s</title>' % (match.group(0), escape(title))
    return re.sub(r'<g id="((?:label-)?bar-[^"]+)">', add, svg)
