# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness: a probe must succeed ``stable`` times in a row, within a bounded time.

:func:`wait_ready` is the loop, with the clock and the probe injected, so the rule (N in a row,
a failure resets the count, bounded time) is unit-tested without a swarm.
"""

from __future__ import annotations

import time


def wait_ready(attempt, stable: int, interval: float, timeout: float, clock=time.monotonic, sleep=time.sleep) -> dict:
    """Call ``attempt()`` (returns ``(ok, detail)``) until it succeeds ``stable`` times in a row.

    Returns ``{"ready", "attempts", "streak", "elapsed", "first_ok_after", "last_detail", "history"}``;
    ``history`` keeps the last 20 ``(elapsed, ok, detail)``.
    """
    start = clock()
    streak = attempts = 0
    first_ok = None
    history = []
    detail = ""
    while True:
        attempts += 1
        ok, detail = attempt()
        elapsed = round(clock() - start, 2)
        history.append((elapsed, bool(ok), str(detail)[:200]))
        history = history[-20:]
        if ok:
            streak += 1
            if first_ok is None:
                first_ok = elapsed
            if streak >= stable:
                return {"ready": True, "attempts": attempts, "streak": streak, "elapsed": elapsed,
                        "first_ok_after": first_ok, "last_detail": detail, "history": history}
        else:
            streak = 0
        if clock() - start + interval > timeout:
            return {"ready": False, "attempts": attempts, "streak": streak, "elapsed": round(clock() - start, 2),
                    "first_ok_after": first_ok, "last_detail": detail, "history": history}
        sleep(interval)


def tcp_probe_script() -> list:
    """argv run inside the probe container: send ``$1`` to ``$2:$3`` and print the answer.

    busybox ``nc`` has no ``-z``; a refused connection exits non-zero, an open one prints what
    the server answered.
    """
    return ["sh", "-c", 'printf "%b" "$1" | nc -w 2 "$2" "$3"', "probe"]
