# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Routing identity: does the domain answer from *this* stack?

A ``200`` proves that something answered, not that the proxy reached this app: on a shared
network another stack's service can answer under an ambiguous name. Each sample is classified;
the verdict is the worst seen over several samples (an ambiguous route is random per request).
"""

from __future__ import annotations

NO_ANSWER = "no-answer"          # curl's 000: connection refused, timeout, reset
NO_ROUTE = "no-route"            # the proxy answered but reached no backend (404/502/503/504)
WRONG_BACKEND = "wrong-backend"  # an app answered, but not this one
OK = "ok"
_RANK = {OK: 0, NO_ROUTE: 1, NO_ANSWER: 2, WRONG_BACKEND: 3}


def classify(status: int | None, body: str, expect: str, codes=(200,)) -> str:
    """One sample. ``status`` None means no HTTP answer at all."""
    if status is None:
        return NO_ANSWER
    if status in codes and (not expect or expect in (body or "")):
        return OK
    if status in (404, 502, 503, 504) and not (body or "").strip().startswith(("{", "<!DOCTYPE", "<html", "<h1")):
        return NO_ROUTE
    if status in (502, 503, 504):
        return NO_ROUTE
    return WRONG_BACKEND


def verdict(samples: list) -> dict:
    """``samples``: ``[(outcome, status, excerpt)]`` -> ``{"verdict", "counts", "example"}``."""
    counts = {}
    for outcome, _status, _excerpt in samples:
        counts[outcome] = counts.get(outcome, 0) + 1
    worst = max(counts, key=lambda o: _RANK[o]) if counts else NO_ANSWER
    example = next((s for s in samples if s[0] == worst), None)
    return {"verdict": worst, "counts": counts,
            "example": {"status": example[1], "excerpt": example[2]} if example else None}
