"""What ``canon`` says while it runs, on stderr.

On a terminal: a live status line (rewritten in place) with a line above it per finished recipe.
Anywhere else (CI, AWX, ``| tee``): one line per event, flushed at once, so a log shows the run
as it goes: the run started, each tier's start and outcome with its seconds, each recipe done,
and the time left, estimated from the plan (``canon sweep --plan``'s estimates).

Verbosity: ``-q`` (-1) says nothing but the end summary (which is stdout, not this); the default
(0) says the events above; ``-v`` (1) also writes the tier events as lines on a terminal, where
the default shows them only in the status line.
"""
from __future__ import annotations

import sys
import threading
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words

QUIET, NORMAL, VERBOSE = -1, 0, 1
REASON_LIMIT = 160  # characters of a tier's error on its progress line; the reports keep it whole


def clock(seconds: float) -> str:
    """``mm:ss`` (``h:mm:ss`` from one hour) of a non-negative number of seconds."""
    whole = max(int(seconds), 0)
    hours, rest = divmod(whole, 3600)
    return ("%d:%02d:%02d" % ((hours,) + divmod(rest, 60))) if hours else "%02d:%02d" % divmod(rest, 60)


def shorten(text, limit: int) -> str:
    """``text`` on one line, cut at a word boundary with ``…`` when longer than ``limit``
    (:func:`_ladder.clip_words`, the rule the result documents follow too)."""
    return clip_words(" ".join(str(text or "").split()), limit)


def tier_line(recipe: str, tier: dict) -> str:
    """``gitea: custom fail in 8.6 s: <reason>`` for a tier record of the lifecycle role."""
    name, outcome = tier.get("name") or "?", tier.get("outcome") or "?"
    duration = tier.get("duration")
    took = (" in %.1f s" % float(duration)) if isinstance(duration, (int, float)) and not isinstance(duration, bool) \
        else ""
    reason = tier.get("error") or (tier.get("reason") if outcome != "pass" else "") or ""
    return "%s: %s %s%s%s" % (recipe, name, outcome, took, (": " + shorten(reason, REASON_LIMIT)) if reason else "")


def eta_text(seconds_left: float | None) -> str:
    """`` ETA 12:30`` (time left), or empty when there is no estimate."""
    if seconds_left is None:
        return ""
    return ", about %s left" % clock(max(seconds_left, 0.0))


def remaining_seconds(estimate_total: float | None, elapsed: float, done: int, total: int) -> float | None:
    """Time left by the plan: its estimate minus the time spent, never below what an even share
    of the estimate per unfinished recipe would still take (a run behind its plan is not "0 left")."""
    if estimate_total is None or total <= 0:
        return None
    if done >= total:
        return 0.0
    left_by_share = estimate_total * (total - done) / float(total)
    return max(estimate_total - elapsed, left_by_share * 0.25, 0.0)


class Progress:
    """Progress on ``stream`` (stderr by default): a live line on a TTY, event lines elsewhere."""

    def __init__(self, stream=None, enabled: bool | None = None, verbosity: int = NORMAL, now=time.time):
        self.stream = stream or sys.stderr  # looked up now, not when the module was imported
        # enabled: whether the live status line is drawn (a terminal); None asks the stream.
        self.live = self.stream.isatty() if enabled is None else bool(enabled)
        self.verbosity = verbosity
        self.estimate: float | None = None  # seconds the whole run should take, from the plan
        self._now = now
        self._lock = threading.Lock()
        self._last: float | None = None

    # -- what callers use -------------------------------------------------------------------
    def update(self, snap: dict):
        """The live status line (a terminal only; elsewhere the events say it)."""
        if not self.live or self.verbosity <= QUIET or (self._last is not None and self._now() - self._last < 0.5):
            return
        self._last = self._now()
        running = "  ".join("%s:%s" % (r, v.get("tier") or v.get("stage")) for r, v in sorted(snap["running"].items()))
        # red is the recipes' failures only; infra (and harness errors) are counted apart
        infra = ", %d infra" % snap["infra"] if snap.get("infra") else ""
        line = "[%s] %d/%d done, %d red%s%s | %s" % (clock(snap["elapsed"]), snap["done"], snap["total"], snap["red"],
                                                     infra, eta_text(self.left(snap)), running or "-")
        with self._lock:
            self.stream.write("\r\033[K" + line[:200])
            self.stream.flush()

    def left(self, snap: dict) -> float | None:
        return remaining_seconds(self.estimate, snap["elapsed"], snap["done"], snap["total"])

    def started(self, what: str):
        """The run started (with the plan's estimate when there is one)."""
        self.say(what + (" (the plan estimates %s)" % clock(self.estimate) if self.estimate is not None else ""))

    def tier_started(self, recipe: str, tier: str, elapsed: float | None = None):
        if self._events(verbose_only_on_tty=True):
            self._line(self._stamp(elapsed) + "%s: %s ..." % (recipe, tier))

    def tier_done(self, recipe: str, tier: dict, elapsed: float | None = None):
        if self._events(verbose_only_on_tty=True):
            self._line(self._stamp(elapsed) + tier_line(recipe, tier))

    def finished(self, entry: dict, snap: dict):
        """One recipe done: its cold and promote outcomes, the count, the time left."""
        if self.verbosity <= QUIET:
            return
        failure = (entry.get("cold") or {}).get("failure") or {}
        self._line("[%s] %-16s cold %-11s promote %-12s (%d/%d done%s)%s" % (
            clock(snap["elapsed"]), entry["recipe"], entry["cold"]["outcome"], entry["promote"]["outcome"],
            snap["done"], snap["total"], eta_text(self.left(snap)),
            ("  %s: %s" % (failure.get("tier"), shorten(failure.get("error"), REASON_LIMIT))) if failure else ""))

    def say(self, text: str):
        if self.verbosity > QUIET:
            self._line(text)

    # -- helpers ----------------------------------------------------------------------------
    def _events(self, verbose_only_on_tty: bool) -> bool:
        if self.verbosity <= QUIET:
            return False
        return not (self.live and verbose_only_on_tty and self.verbosity < VERBOSE)

    @staticmethod
    def _stamp(elapsed: float | None) -> str:
        return "[%s] " % clock(elapsed) if elapsed is not None else ""

    def _line(self, text: str):
        with self._lock:
            # On a terminal the status line is wiped first; a log gets plain lines.
            self.stream.write(("\r\033[K%s\n" if self.live else "%s\n") % text)
            self.stream.flush()
