"""Sharding a sweep across abra servers: which recipe runs on which server.

Pure logic (no Ansible, no docker): the driver gives it the plans, the servers with their caps,
what each recipe took last time and the constraints; it returns one server per recipe.

* **Pinned** recipes go first to their server: a recipe whose warm canonical lives on a server of
  the sweep stays there (a promote advances the canonical in place, on its own engine).
* **Eligible** servers: a recipe enrolled in some servers' ``canon_enrolled`` only runs on those;
  a recipe no server enrols (named on the command line) may run on any.
* The rest is **LPT** (longest processing time first): recipes in decreasing expected duration,
  each to the server whose estimated finish grows least. A server's estimate is the larger of
  its work spread over its cap (``sum / cap``), its heavy work (heavy recipes deploy one at a time
  on a server: the per-server heavy lock) and its longest recipe. Ties go to the server with fewer
  recipes, then to inventory order, so the same inputs always give the same shards.

Within a server the sweep still schedules dynamically: longest first, at most ``cap`` at once,
never two heavy recipes together.
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Expected duration (in seconds) of a recipe that no earlier sweep timed; a heavy one counts double.
UNKNOWN_SECONDS = 300.0


@dataclass
class Shard:
    server: str
    cap: int
    recipes: list = field(default_factory=list)
    work: float = 0.0
    heavy_work: float = 0.0
    longest: float = 0.0

    def estimate(self, seconds: float = 0.0, heavy: bool = False) -> float:
        """The estimated finish of this shard, with one more recipe of ``seconds`` when given."""
        work = self.work + seconds
        heavy_work = self.heavy_work + (seconds if heavy else 0.0)
        return max(work / max(self.cap, 1), heavy_work, max(self.longest, seconds))

    def add(self, recipe: str, seconds: float, heavy: bool):
        self.recipes.append(recipe)
        self.work += seconds
        self.longest = max(self.longest, seconds)
        if heavy:
            self.heavy_work += seconds


def expected_seconds(plan: dict, durations: dict) -> float:
    """Last sweep's time for the recipe; otherwise the median of the known ones (or a default),
    doubled for a heavy recipe."""
    known = durations.get(plan["recipe"])
    if known:
        return float(known)
    times = sorted(float(v) for v in durations.values() if v)
    base = times[len(times) // 2] if times else UNKNOWN_SECONDS
    return base * (2.0 if plan.get("heavy") else 1.0)


def lpt_order(plans: list, durations: dict) -> list:
    """Longest first; heavy before light at equal times; by name last (stable, deterministic)."""
    return sorted(plans, key=lambda p: (-expected_seconds(p, durations), not p.get("heavy"), p["recipe"]))


def shard(plans: list, servers: list, durations: dict | None = None, eligible: dict | None = None,
          pinned: dict | None = None) -> dict:
    """``{recipe: server}`` for every plan.

    ``servers`` is ``[(name, cap), ...]`` in inventory order; ``durations`` ``{recipe: seconds}``;
    ``eligible`` ``{recipe: {server, ...}}`` (a recipe missing from it may go anywhere);
    ``pinned`` ``{recipe: server}``. A pin or an eligibility naming no server of the sweep is an
    error (``ValueError``): the sweep cannot honour it, and silently moving the recipe would test
    it somewhere the inventory did not put it."""
    if not servers:
        raise ValueError("no servers to shard across")
    durations, eligible, pinned = durations or {}, eligible or {}, pinned or {}
    shards = {name: Shard(name, int(cap)) for name, cap in servers}
    order = {name: i for i, (name, _cap) in enumerate(servers)}
    assignment: dict = {}
    by_recipe = {p["recipe"]: p for p in plans}
    # Pinned recipes first, so the free ones balance around them.
    for recipe in sorted(pinned, key=lambda r: r):
        if recipe not in by_recipe:
            continue
        name = pinned[recipe]
        if name not in shards:
            raise ValueError("%s is pinned to server %s, which is not in this sweep" % (recipe, name))
        plan = by_recipe[recipe]
        shards[name].add(recipe, expected_seconds(plan, durations), bool(plan.get("heavy")))
        assignment[recipe] = name
    for plan in lpt_order([p for p in plans if p["recipe"] not in assignment], durations):
        recipe = plan["recipe"]
        allowed = eligible.get(recipe)
        candidates = [s for s in shards.values() if allowed is None or s.server in allowed]
        if not candidates:
            raise ValueError("%s is enrolled on %s only, none of which is in this sweep"
                             % (recipe, ", ".join(sorted(allowed or ()))))
        seconds, heavy = expected_seconds(plan, durations), bool(plan.get("heavy"))
        best = min(candidates, key=lambda s: (s.estimate(seconds, heavy), len(s.recipes), order[s.server]))
        best.add(recipe, seconds, heavy)
        assignment[recipe] = best.server
    return assignment


def estimates(plans: list, servers: list, assignment: dict, durations: dict | None = None) -> dict:
    """``{server: estimated seconds}`` of an assignment (for the plan's report)."""
    durations = durations or {}
    shards = {name: Shard(name, int(cap)) for name, cap in servers}
    for plan in plans:
        shards[assignment[plan["recipe"]]].add(plan["recipe"], expected_seconds(plan, durations),
                                               bool(plan.get("heavy")))
    return {name: round(s.estimate(), 1) for name, s in shards.items()}
