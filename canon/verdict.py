# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Classification of a recipe failure: genuine, load-flake, flaky, not-reproduced or infra.

Two arms of runs of one recipe on the same recipe and harness commit: ``isolated`` (the recipe
alone on the server) and ``loaded`` (the same recipe while load runs beside it). The driver calls
:func:`decide` after every run (sequential testing): it says whether the verdict is clear, and if
not, which arm to run next. :func:`locate` says where the defect lives, :func:`systemic_events`
finds one cause behind several recipes' failures in a sweep, :func:`classification_document` is
the JSON record. Pure logic, standard library only; ``docs/classification.md`` explains the rules.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re

# What counts as the server's failure (infra) is decided once, in the collection, for the
# lifecycle role and this driver alike.
from ansible_collections.coopcloud.canon.plugins.module_utils._infra import (
    INFRA_SIGNATURES, infra_signature)

__all__ = ["INFRA_SIGNATURES", "infra_signature"]  # re-exported: the classifier reads them from here

ARMS = ("isolated", "loaded")
OUTCOMES = ("pass", "fail", "infra")
VERDICTS = ("genuine", "load-flake", "flaky", "not-reproduced", "infra", "undecided")
WHERE = ("recipe", "stale-test", "test-or-app", "warm-machinery", "load", "infra", "unknown")
SCHEMA = "coopcloud.canon/classification"
SCHEMA_VERSION = 1
FISHER_TEST = "one-sided Fisher exact (loaded vs isolated)"
NORMALISED_MAX = 300
# p-values are exact ratios of integers turned into floats; alpha is 1 - confidence in floats
_EPS = 1e-12

# Top-level domains a host or stack name may end in. A list, not "any letters", so that
# ``compose.yml``, ``out.splitlines`` or ``test_hello_returns_the_channel_list`` stay as they are.
TLDS = (
    "test", "example", "invalid", "localhost", "local", "internal", "lan", "home", "arpa",
    "com", "org", "net", "edu", "gov", "int", "info", "biz", "io", "dev", "app", "cloud", "coop",
    "tech", "site", "online", "social", "space", "xyz", "earth", "systems", "network", "zone",
    "eu", "de", "uk", "fr", "nl", "ch", "se", "dk", "fi", "es", "pt", "pl", "cz", "ca", "au",
    "nz", "jp", "br", "ie", "gr", "hu", "ro", "ru", "ua", "za", "mx", "ar", "cl", "nu",
)
# ``app`` is a TLD but also the usual service name: in underscore (stack) form it is a suffix.
_STACK_TLDS = tuple(t for t in TLDS if t != "app")
_TLD = "(?:%s)" % "|".join(sorted(TLDS, key=len, reverse=True))
_STACK_TLD = "(?:%s)" % "|".join(sorted(_STACK_TLDS, key=len, reverse=True))
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"

_NORMALISE_RULES = (
    # swarm's update status when the watcher saw the rollback: whether it was still
    # rollback_started or already rollback_completed (and swarm's message for that state, with
    # a task id) depends on when it looked, not on what failed
    (re.compile(r"(app update rolled back) \((?:rollback_[a-z_]+|rollback|paused)\): [^;]*"), r"\1"),
    # ISO 8601 timestamps (and dates) before anything eats their digits
    (re.compile(r"\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?"), "<time>"),
    # absolute paths under /tmp or /var (they hold run ids, domains, random names)
    (re.compile(r"(?<![\w./-])/(?:tmp|var)(?![\w.-])[^\s'\"`,:;()\[\]{}<>|=]*"), "<path>"),
    # any path, absolute or relative, with a run or sweep id in it (results/<sweep>/runs/<run>/...):
    # where the results folder sits and how the caller named it must not change the fingerprint
    (re.compile(r"(?<![\w./-])(?:\.{1,2}/|/)?(?:[\w.+-]+/)*[\w.+-]*\d{14}-[0-9a-f]{6}(?:/[\w.+-]+)*/?"
                r"(?![\w.-])"), lambda m: "<path>" if "/" in m.group(0) else m.group(0)),
    # harness run ids: <name>-<YYYYmmddHHMMSS>-<6 hex>, with whatever hyphenated prefix
    (re.compile(r"(?<![\w.-])[a-z0-9][a-z0-9-]*-\d{14}-[0-9a-f]{6}(?![\w-])"), "<run>"),
    # IPv4, optionally with a port
    (re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.])"), "<ip>"),
    # host and domain names: dotted labels ending in a known TLD
    (re.compile(r"(?<![\w.-])(?:%s\.)+%s(?![\w-])" % (_LABEL, _TLD)), "<host>"),
    # stack names: the domain with dots turned into underscores; what follows the TLD
    # (``_app``, ``_db_password_v1``) is the service/secret part and stays
    (re.compile(r"(?<![\w-])(?!test_)[a-z0-9-]+(?:_[a-z0-9-]+)+_%s(?=_|(?![\w-]))" % _STACK_TLD), "<stack>"),
    # a harness app's stack whose TLD is not in the list: it starts with the harness's app label
    # (<recipe[:4]>-<6 hex>, _names) and goes on in underscores; the whole token
    (re.compile(r"(?<![\w-])[a-z][a-z0-9]{0,11}-[0-9a-f]{6}(?:_[a-z0-9-]+)+"), "<stack>"),
    # the harness's short app labels: <recipe[:4]>-<6 hex>
    (re.compile(r"(?<![\w.-])[a-z][a-z0-9]{0,11}-[0-9a-f]{6}(?![\w.-])"), "<host>"),
    # swarm object ids (tasks, nodes, services): 25 lowercase letters and digits
    (re.compile(r"(?<![a-z0-9])(?=[a-z0-9]{0,24}\d)(?=[0-9]{0,24}[a-z])[a-z0-9]{25}(?![a-z0-9])"), "<hex>"),
    # container/image ids, digests: runs of 10 or more hex digits
    (re.compile(r"(?<![a-z0-9])[0-9a-f]{10,}(?![a-z0-9])"), "<hex>"),
    (re.compile(r"\d+"), "<n>"),
    # tallies of sampled outcomes, e.g. "(no-route <n>, ok <n>, wrong-backend <n>)": which
    # categories a sample happened to hit varies from run to run; the verdict before them does not
    (re.compile(r"\((?:[a-z][a-z-]* <n>)(?:, [a-z][a-z-]* <n>)*\)"), "(<tally>)"),
)


def _normalise_once(text: str) -> str:
    text = text.lower()
    for pattern, placeholder in _NORMALISE_RULES:
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())[:NORMALISED_MAX].strip()


@functools.lru_cache(maxsize=4096)
def _normalise_cached(text: str) -> str:
    text = _normalise_once(text)
    for _ in range(5):
        again = _normalise_once(text)
        if again == text:
            break
        text = again
    return text


def normalise_error(text: str) -> str:
    """The error with everything that differs between runs and recipes replaced by a placeholder
    (``<run> <host> <stack> <hex> <ip> <time> <path> <n>``), lowercased, whitespace collapsed,
    at most 300 characters. Idempotent: a cut can leave a partial token that a rule matches, so
    the rules are applied until nothing changes."""
    return _normalise_cached(text or "")


def _sha12(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def fingerprint(tier: str | None, error: str) -> str:
    """``<tier>:<12 hex of sha1(normalised error)>``; a missing tier is ``run``."""
    return "%s:%s" % (tier or "run", _sha12(normalise_error(error)))


def fisher_one_sided(loaded_fail: int, loaded_n: int, isolated_fail: int, isolated_n: int) -> float:
    """P(X >= loaded_fail) for X hypergeometric with the 2x2 table's margins fixed: the one-sided
    Fisher exact p-value for "the loaded arm fails more often than the isolated arm". 1.0 when
    either arm is empty."""
    for fail, n in ((loaded_fail, loaded_n), (isolated_fail, isolated_n)):
        if n < 0 or fail < 0 or fail > n:
            raise ValueError("need 0 <= failures <= runs, got %r of %r" % (fail, n))
    if loaded_n == 0 or isolated_n == 0:
        return 1.0
    total = loaded_n + isolated_n
    failures = loaded_fail + isolated_fail
    tail = sum(math.comb(failures, x) * math.comb(total - failures, loaded_n - x)
               for x in range(loaded_fail, min(loaded_n, failures) + 1))
    return min(1.0, tail / math.comb(total, loaded_n))


def runs_needed(p: float, confidence: float = 0.95) -> int | None:
    """Consecutive clean runs needed to claim, at ``confidence``, that a failure happening with
    probability ``p`` would have shown up: the least n with (1-p)^n <= 1-confidence. 1 when
    p >= 1; None when p <= 0 (no finite number) or when 1-p rounds to 1 in floating point."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1), got %r" % (confidence,))
    if p is None or p <= 0.0:
        return None
    if p >= 1.0:
        return 1
    miss, alpha = 1.0 - p, 1.0 - confidence
    if miss >= 1.0:
        return None
    n = max(1, math.ceil(math.log(alpha) / math.log1p(-p)))
    # the logarithms can be one ulp off; settle n on the inequality itself
    while n > 1 and miss ** (n - 1) <= alpha:
        n -= 1
    while miss ** n > alpha:
        n += 1
    return n


# -- decide ---------------------------------------------------------------------------------


def _observation(raw: dict) -> dict:
    arm, outcome = raw.get("arm"), raw.get("outcome")
    if arm not in ARMS:
        raise ValueError("observation arm must be one of %s, got %r" % (ARMS, arm))
    if outcome not in OUTCOMES:
        raise ValueError("observation outcome must be one of %s, got %r" % (OUTCOMES, outcome))
    error = raw.get("error") or ""
    signature = infra_signature(error) if outcome != "pass" else None
    if outcome == "fail" and signature:
        outcome = "infra"  # a bench failure is not recipe evidence, whoever labelled it
    if outcome == "infra" and not signature:
        signature = raw.get("infra")  # decided where the error was whole (e.g. harness-error)
    fp = raw.get("fingerprint")
    if outcome != "pass" and not fp:
        fp = fingerprint(raw.get("tier"), error)
    run_as = raw.get("run_as")
    if run_as is not None and (run_as not in ARMS or run_as == arm):
        raise ValueError("observation run_as must name the other arm, got %r for arm %r" % (run_as, arm))
    return {"arm": arm, "outcome": outcome, "tier": raw.get("tier"), "fingerprint": fp if outcome != "pass" else None,
            "error": error, "run_id": raw.get("run_id"), "origin": bool(raw.get("origin")),
            "infra": (signature or "unrecognised") if outcome == "infra" else None,
            "run_as": run_as, "cpu_busy_pct": (raw.get("load") or {}).get("cpu_busy_pct"), "busy_from": raw.get("busy_from")}


def busy(load: dict | None, busy_from: float | None) -> bool:
    """Whether a run's load fingerprint (canon.load.fingerprint) shows a machine too busy for
    the run to count as isolated: the share of its CPUs' time spent working over the run
    reached ``busy_from`` percent. Only a measured share decides; a server not measured here
    is never busy."""
    if busy_from is None or not load or load.get("host") != "controller":  # canon.load.HOST_CONTROLLER
        return False
    pct = load.get("cpu_busy_pct")
    return pct is not None and pct >= busy_from


def _busy_text(obs: list) -> str:
    """The isolated runs that met a busy machine and count as loaded, in words."""
    moved = [o for o in obs if o["run_as"] == "isolated" and o["arm"] == "loaded"]
    if not moved:
        return ""
    runs = ", ".join("%s: CPUs %s%% busy, busy from %s%%" % (o["run_id"] or "run", _fmt_or_unknown(o["cpu_busy_pct"]),
                                                             _fmt_or_unknown(o["busy_from"])) for o in moved)
    return ("; %d isolated run%s met a busy machine and count%s as loaded (%s)"
            % (len(moved), "" if len(moved) == 1 else "s", "s" if len(moved) == 1 else "", runs))


def _counts(obs: list, origin: bool | None = None) -> dict:
    counts = {arm: {"pass": 0, "fail": 0, "infra": 0} for arm in ARMS}
    for o in obs:
        if origin is None or o["origin"] == origin:
            counts[o["arm"]][o["outcome"]] += 1
    return counts


def _longest_infra_streak(obs: list) -> int:
    best = cur = 0
    for o in obs:
        cur = cur + 1 if o["outcome"] == "infra" else 0
        best = max(best, cur)
    return best


def _genuine_pair(isolated: list) -> str | None:
    """The fingerprint of the last two consecutive isolated reds that share one, or None."""
    found = None
    for a, b in zip(isolated, isolated[1:]):
        if a["outcome"] == b["outcome"] == "fail" and a["fingerprint"] == b["fingerprint"]:
            found = a["fingerprint"]
    return found


def _dominant(obs: list, outcome: str) -> str | None:
    """The most frequent fingerprint among ``outcome`` observations; ties go to the earliest."""
    tally, first = {}, {}
    for i, o in enumerate(obs):
        if o["outcome"] == outcome:
            tally[o["fingerprint"]] = tally.get(o["fingerprint"], 0) + 1
            first.setdefault(o["fingerprint"], i)
    if not tally:
        return None
    return min(tally, key=lambda fp: (-tally[fp], first[fp]))


def _arm_text(name: str, c: dict) -> str:
    text = "%s %d pass / %d fail" % (name, c["pass"], c["fail"])
    return text + (" (+%d infra)" % c["infra"] if c["infra"] else "")


def _fmt(x: float) -> str:
    return "%.3g" % x


def _fmt_or_unknown(x) -> str:
    return "?" if x is None else _fmt(x)


def _trailing_passes(isolated: list) -> int:
    k = 0
    for o in reversed(isolated):
        if o["outcome"] != "pass":
            break
        k += 1
    return k


def decide(observations: list, budget: int = 10, confidence: float = 0.95, min_runs: int = 3) -> dict:
    """The verdict so far from the runs of both arms, in the order they happened (see the module
    docstring and docs/classification.md for the rules); when it is not clear and budget is
    left, ``next_arm`` is the arm to run next."""
    if not 0.0 < confidence < 1.0:
        raise ValueError("confidence must be in (0, 1), got %r" % (confidence,))
    obs = [_observation(o) for o in observations]
    alpha = round(1.0 - confidence, 12)
    used = sum(1 for o in obs if not o["origin"])
    exhausted = used >= budget
    counts = _counts(obs)
    later = _counts(obs, origin=False)
    iso, lod = counts["isolated"], counts["loaded"]
    iso_n, lod_n = iso["pass"] + iso["fail"], lod["pass"] + lod["fail"]
    p_value = fisher_one_sided(lod["fail"], lod_n, iso["fail"], iso_n)
    rate = lod["fail"] / lod_n if lod_n else None
    isolated = [o for o in obs if o["arm"] == "isolated" and o["outcome"] != "infra"]
    clean = _trailing_passes(isolated)
    needed = runs_needed(rate, confidence) if rate else None
    tails = [o for o in obs if not o["origin"]]
    infra_names = sorted({o["infra"] for o in obs if o["outcome"] == "infra"})
    fingerprints = {}
    for o in obs:
        if o["outcome"] == "fail":
            fingerprints[o["fingerprint"]] = fingerprints.get(o["fingerprint"], 0) + 1
    arms = "%s, %s%s" % (_arm_text("isolated", iso), _arm_text("loaded", lod), _busy_text(obs))

    verdict, reason, dominant = None, "", _dominant(obs, "fail")
    streak = _longest_infra_streak(obs)
    genuine_fp = _genuine_pair(isolated)
    if streak >= 2 or (tails and exhausted and all(o["outcome"] == "infra" for o in tails)):
        verdict, dominant = "infra", _dominant(obs, "infra")
        how = "%d in a row" % streak if streak >= 2 else "in every run"
        reason = ("infra: bench/infrastructure failures (%s) %s are not recipe evidence; %s."
                  % (", ".join(infra_names), how, arms))
    elif iso["pass"] and iso["fail"]:
        verdict = "flaky"
        reason = ("flaky: the isolated arm is mixed, %d pass and %d fail under the same condition; %s."
                  % (iso["pass"], iso["fail"], arms))
    elif genuine_fp:
        verdict, dominant = "genuine", genuine_fp
        reason = ("genuine: two isolated runs in a row failed with the same fingerprint %s; %s."
                  % (genuine_fp, arms))
    elif (iso["pass"] and not iso["fail"] and lod["fail"] and p_value <= alpha + _EPS
          and needed is not None and clean >= needed):
        verdict = "load-flake"
        origin = " (the sweep's failure included)" if any(o["origin"] and o["arm"] == "loaded" for o in obs) else ""
        reason = ("load-flake: loaded %d of %d failed%s, isolated %d of %d passed; one-sided Fisher p = %s <= %s, "
                  "and %d clean isolated runs >= %d needed at a %s failure rate."
                  % (lod["fail"], lod_n, origin, iso["pass"], iso_n, _fmt(p_value), _fmt(alpha), clean, needed,
                     _fmt(rate)))
    elif (not later["isolated"]["fail"] and not later["loaded"]["fail"]
          and later["isolated"]["pass"] >= min_runs and later["loaded"]["pass"] >= min_runs):
        verdict = "not-reproduced"
        reason = ("not-reproduced: after the sweep's failure %d isolated and %d loaded runs passed and none "
                  "failed (%d each needed); %s." % (later["isolated"]["pass"], later["loaded"]["pass"], min_runs, arms))

    leaning = verdict
    next_arm = None
    if verdict is None:
        leaning, next_arm, why = _lean(iso, lod, later, min_runs)
        if tails and not any(o["outcome"] != "infra" for o in tails):
            leaning = "infra"
        lean_text = "leaning %s" % leaning if leaning else "no leaning yet"
        distinct = list(dict.fromkeys(o["fingerprint"] for o in isolated if o["outcome"] == "fail"))
        if len(distinct) > 1:
            why += "; the isolated failures have different fingerprints (%s)" % ", ".join(distinct)
        if exhausted:
            next_arm = None
            reason = ("undecided: budget of %d runs used up, %s; %s; Fisher p = %s; %s."
                      % (budget, lean_text, arms, _fmt(p_value), why))
        else:
            reason = ("undecided after %d of %d runs, %s; %s; Fisher p = %s; %s; next: %s run."
                      % (used, budget, lean_text, arms, _fmt(p_value), why, next_arm))
        verdict = "undecided"

    return {
        "verdict": verdict,
        "clear": verdict != "undecided",
        "next_arm": next_arm,
        "counts": counts,
        "confidence": {"test": FISHER_TEST, "p_value": p_value, "alpha": alpha, "loaded_failure_rate": rate,
                       "isolated_clean": clean, "isolated_clean_needed": needed},
        "budget": {"runs": budget, "used": used, "exhausted": exhausted},
        "fingerprint": dominant,
        "fingerprints": fingerprints,
        "infra": infra_names,
        "reason": reason,
        "leaning": leaning,
    }


def _lean(iso, lod, later, min_runs):
    """(leaning, next arm, why) for a verdict that is not clear yet."""
    if not iso["pass"] and not iso["fail"]:
        return (None, "isolated", "no isolated evidence yet: an isolated run comes first")
    if iso["fail"]:  # and no isolated pass, or it would be flaky
        return ("genuine", "isolated", "an isolated red needs a second isolated run to confirm")
    lod_n = lod["pass"] + lod["fail"]
    loaded_later_runs = later["loaded"]["pass"] + later["loaded"]["fail"]
    if later["loaded"]["fail"] or (lod["fail"] and not loaded_later_runs):
        # heading for load-flake: the arm whose expected result (isolated pass, loaded fail)
        # lowers the p-value most. No separate step for runs_needed: with a clean isolated arm
        # p >= (1 - rate)^clean, so p <= alpha already means clean >= runs_needed(rate).
        iso_n = iso["pass"] + iso["fail"]
        p_if_isolated = fisher_one_sided(lod["fail"], lod_n, iso["fail"], iso_n + 1)
        p_if_loaded = fisher_one_sided(lod["fail"] + 1, lod_n + 1, iso["fail"], iso_n)
        arm = "loaded" if p_if_loaded < p_if_isolated - _EPS else "isolated"
        return ("load-flake", arm, "p would be %s after an isolated pass, %s after a loaded fail"
                % (_fmt(p_if_isolated), _fmt(p_if_loaded)))
    # nothing failed again: collect passes on both arms, the shorter arm first
    arm = "loaded" if later["loaded"]["pass"] < later["isolated"]["pass"] else "isolated"
    return ("not-reproduced", arm, "nothing failed again; %d isolated and %d loaded passes of %d each needed"
            % (later["isolated"]["pass"], later["loaded"]["pass"], min_runs))


# -- locate ---------------------------------------------------------------------------------

ALIAS_DETAIL = ("warm routing: the recipe's service answers on a shared network under a short alias "
                "another stack also uses")
_MISSING_RE = re.compile(r"missing|not set|unset|undefined|empty secret|secret[^.]{0,80}(?:not found|empty)")


def _finding_code(finding: dict) -> str | None:
    return finding.get("code") or finding.get("check")


def _tier_of(fp: str | None) -> str | None:
    return fp.split(":", 1)[0] if fp and ":" in fp else None


def _counts_evidence(decision: dict) -> list:
    counts = decision.get("counts") or {}
    return ["%s: %d pass / %d fail / %d infra" % (arm, c.get("pass", 0), c.get("fail", 0), c.get("infra", 0))
            for arm, c in ((a, counts.get(a) or {}) for a in ARMS)]


def locate(decision: dict, context: dict | None = None) -> dict:
    """Where the defect lives, from the decision and what the failing run recorded:
    ``{"where", "detail", "evidence": [...]}`` (rules in docs/classification.md)."""
    context = context or {}
    verdict = decision.get("verdict")
    kind = context.get("kind") or "cold"
    tier = context.get("tier") or _tier_of(decision.get("fingerprint"))
    conf = decision.get("confidence") or {}
    counts_ev = _counts_evidence(decision)

    def out(where, detail, evidence):
        return {"where": where, "detail": detail, "evidence": evidence}

    if verdict == "infra":
        names = ", ".join(decision.get("infra") or []) or "unrecognised"
        return out("infra", "bench/infrastructure failure (%s), not the recipe" % names,
                   counts_ev + ["infra signatures: %s" % names])
    if verdict == "load-flake":
        return out("load", "%s fails only while load runs beside it" % (tier or "the run"),
                   counts_ev + ["one-sided Fisher exact p = %s <= alpha %s" % (_fmt(conf.get("p_value", 1.0)),
                                                                               _fmt(conf.get("alpha", 0.05))),
                                "%s clean isolated runs, %s needed at a loaded failure rate of %s"
                                % (conf.get("isolated_clean"), conf.get("isolated_clean_needed"),
                                   _fmt(conf.get("loaded_failure_rate") or 0.0))])
    if verdict not in ("genuine", "flaky"):
        return out("unknown", "%s: nothing to locate (%s)" % (verdict, decision.get("reason", "")), counts_ev)

    if kind == "promote":
        return _locate_promote(decision, context, counts_ev)

    fp = decision.get("fingerprint")
    if verdict == "flaky":
        return out("recipe", "intermittent",
                   counts_ev + ["%s fails some isolated runs and passes others" % (tier or "the run")])
    tiers = {t.get("name"): t.get("outcome") for t in context.get("tiers") or []}
    if tier == "custom" and tiers.get("install") == "pass":
        ran = {name: tiers[name] for name in ("upgrade", "backup_restore")
               if tiers.get(name) not in (None, "skipped", "not-applicable")}
        if all(outcome == "pass" for outcome in ran.values()):
            return _locate_custom(fp, ["install"] + list(ran), tiers, context.get("base") or {}, counts_ev)
    return out("recipe", "red cold and isolated on the recipe's own release (%s)" % (tier or "run"),
               counts_ev + ["isolated reds share fingerprint %s" % fp]
               + ["tier %s: %s" % (n, o) for n, o in tiers.items() if n != "preflight"])


def custom_base_needed(decision: dict, context: dict | None = None) -> bool:
    """Whether locating this failure needs the custom suite run against the upgrade base: a
    genuine cold failure of the custom tier with install (and the upgrade and backup tiers that
    ran) green, the case :func:`_locate_custom` decides from that run."""
    context = context or {}
    if decision.get("verdict") != "genuine" or (context.get("kind") or "cold") != "cold":
        return False
    tier = context.get("tier") or _tier_of(decision.get("fingerprint"))
    tiers = {t.get("name"): t.get("outcome") for t in context.get("tiers") or []}
    if tier != "custom" or tiers.get("install") != "pass":
        return False
    return all(tiers.get(name) in (None, "skipped", "not-applicable", "pass") for name in ("upgrade", "backup_restore"))


def base_evidence(record: dict, version: str | None, head: str | None) -> dict:
    """The custom suite's run on the upgrade base (a cold record of ``install`` + ``custom`` at
    ``version``) as ``locate``'s ``base`` context. Only the custom tier's own answer is evidence:
    a base release that does not even install says nothing about the suite."""
    out = {"version": version, "head": head, "run_id": record.get("run_id"), "outcome": None,
           "fingerprint": None, "error": ""}
    failure = record.get("failure") or {}
    outcome = record.get("outcome")
    if outcome == "pass":
        out["outcome"] = "pass"
    elif outcome == "fail" and failure.get("tier") == "custom":
        out.update(outcome="fail", fingerprint=failure.get("fingerprint"), error=failure.get("error") or "")
    else:
        where = failure.get("tier")
        out["outcome"] = "%s%s" % (outcome or "not-run", " in %s" % where if where and where != "custom" else "")
    return out


DECIDING_EVIDENCE = ("the failing assertion and the values it saw on both releases (evidence/custom-pytest.txt "
                     "of each run), and the head release's note on that behaviour")


def _locate_custom(fp: str | None, passed: list, tiers: dict, base: dict, counts_ev: list) -> dict:
    """A custom suite red while install (and the upgrade and backup tiers that ran) passed. The
    other tiers passing does not show that the test is stale: a regression only the suite
    catches looks the same. What decides it is the same suite commit run against the upgrade
    base release B (``base``: ``{"version", "head", "outcome", "fingerprint", "error"}``)."""
    evidence = counts_ev + ["tier %s: %s" % (name, tiers[name]) for name in passed] + [
        "tier custom: fail, fingerprint %s" % fp]
    head = base.get("head") or "the head release"
    version = base.get("version")
    outcome = base.get("outcome")
    base_fp = base.get("fingerprint")
    if version and outcome == "fail" and base_fp and fp and base_fp.split(":", 1)[-1] == fp.split(":", 1)[-1]:
        evidence.append("the same suite on base %s: fail, fingerprint %s (the same failure)" % (version, base_fp))
        return {"where": "stale-test", "evidence": evidence,
                "detail": "the suite fails the same way on base %s and on %s: the suite is at fault, not the "
                          "change between them" % (version, head),
                "confidence": {"level": "medium", "why": "one run of the suite on each release failed identically; "
                                                         "the other tiers passed on the head"}}
    if version and outcome == "pass":
        evidence.append("the same suite on base %s: pass" % version)
        return {"where": "test-or-app", "evidence": evidence + ["would decide it: %s" % DECIDING_EVIDENCE],
                "detail": "behaviour changed between %s and %s: stale test or app regression (not decided)"
                          % (version, head),
                "confidence": {"level": "undecided", "why": "green on %s, red on %s: either the app regressed or "
                                                            "the suite expects the old behaviour" % (version, head)}}
    if version and outcome == "fail":
        evidence.append("the same suite on base %s: fail, fingerprint %s (a different failure)" % (version, base_fp))
        why = "the suite fails on both releases but differently"
    elif outcome:
        evidence.append("the same suite on base %s: %s (no evidence)" % (version or "the upgrade base", outcome))
        why = "the run on base %s did not give an answer (%s)" % (version or "the upgrade base", outcome)
    elif version:
        why = "the suite was not run against base %s" % version
    else:
        why = "no earlier release to run the suite against"
    return {"where": "test-or-app", "evidence": evidence + ["would decide it: the suite on the upgrade base; %s"
                                                            % DECIDING_EVIDENCE],
            "detail": "custom suite red with the other tiers green: stale test or app regression (not decided: %s)"
                      % why,
            "confidence": {"level": "undecided", "why": why}}


def _locate_promote(decision: dict, context: dict, counts_ev: list) -> dict:
    promote = context.get("promote") or {}
    identity = promote.get("identity") or {}
    in_place = promote.get("in_place_error") or ""
    fallback_error = promote.get("fallback_error") or ""
    flaky = decision.get("verdict") == "flaky"
    suffix = " (intermittent)" if flaky else ""
    evidence = list(counts_ev) + ["promote outcome: %s" % promote.get("outcome", "unknown")]
    wrong = (identity.get("verdict") == "wrong-backend"
             or "wrong-backend" in in_place or "wrong-backend" in fallback_error)
    if wrong:
        evidence.append("routing identity: wrong-backend (answered by %s, expected %s)"
                        % (identity.get("backend") or "another backend", identity.get("expected") or "this stack"))
        aliases = [f for f in context.get("findings") or [] if _finding_code(f) == "ambiguous-alias"]
        if aliases:
            evidence += ["preflight finding ambiguous-alias: %s" % f.get("message", "") for f in aliases]
            return {"where": "recipe", "detail": ALIAS_DETAIL, "evidence": evidence}
        return {"where": "warm-machinery", "evidence": evidence,
                "detail": "warm routing: the warm domain answered from another backend and no ambiguous "
                          "alias in the recipe explains it" + suffix}
    drift = promote.get("drift") or {}
    missing = list(drift.get("missing") or [])
    if missing and not drift.get("reconciled"):
        green_fallback = promote.get("outcome") == "promoted-by-fallback" or (
            bool(promote.get("fallback")) and not fallback_error)
        low = in_place.lower()
        mentions = any(k.lower() in low for k in missing) or bool(_MISSING_RE.search(low))
        if green_fallback or mentions:
            evidence.append("drift: %s missing from the warm .env, not reconciled" % ", ".join(missing))
            if context.get("drift_enabled") is False:
                evidence.append("env drift reconciliation was disabled (warm_drift=false)")
            if in_place:
                evidence.append("in place: %s" % in_place)
            if green_fallback:
                evidence.append("the clean re-deploy fallback was green: the release itself works")
            return {"where": "warm-machinery", "detail": "env drift not reconciled" + suffix, "evidence": evidence}
    if in_place:
        evidence.append("in place: %s" % in_place)
    if promote.get("fallback"):
        evidence.append("fallback: %s" % (fallback_error or "ok"))
    what = fallback_error or in_place or promote.get("outcome", "unknown")
    return {"where": "warm-machinery", "detail": "warm promote failed: %s%s" % (what, suffix), "evidence": evidence}


# -- systemic events ------------------------------------------------------------------------


def systemic_events(failures: list, window: float = 600.0, min_recipes: int = 2) -> list:
    """One cause behind several recipes' failures in a sweep: failures with the same normalised
    error (any tier) whose time spans lie within ``window`` seconds of each other (chained) and
    that touch at least ``min_recipes`` (never fewer than 2) distinct recipes. Sorted by time."""
    min_recipes = max(2, int(min_recipes))
    groups = {}
    for f in failures:
        groups.setdefault(normalise_error(f.get("error") or ""), []).append(f)
    events = []
    for normalised, items in groups.items():
        def span(f):
            start = f.get("started", f.get("finished")) or 0.0
            end = f.get("finished", start) or start
            return float(start), float(max(start, end))
        items = sorted(items, key=lambda f: span(f))
        clusters, current, reach = [], [], None
        for f in items:
            start, end = span(f)
            if current and start - reach > window:
                clusters.append(current)
                current, reach = [], None
            current.append(f)
            reach = end if reach is None else max(reach, end)
        if current:
            clusters.append(current)
        for cluster in clusters:
            recipes = sorted({f.get("recipe") for f in cluster})
            if len(recipes) < min_recipes:
                continue
            spans = [span(f) for f in cluster]
            signature = next((s for s in (infra_signature(f.get("error") or "") for f in cluster) if s), None)
            events.append({"fingerprint": "systemic:%s" % _sha12(normalised), "normalised": normalised,
                           "recipes": recipes, "first": min(s for s, _ in spans), "last": max(e for _, e in spans),
                           "count": len(cluster), "infra": signature})
    return sorted(events, key=lambda e: (e["first"], e["fingerprint"]))


# -- the JSON record ------------------------------------------------------------------------

_META = ("recipe_commit", "harness_commit", "server", "started", "finished")


def classification_document(recipe: str, kind: str, observations: list, decision: dict, location: dict,
                            **meta) -> dict:
    """The classification record (``coopcloud.canon/classification`` v1, keys in
    docs/classification.md). ``meta``: recipe_commit, harness_commit, server, started, finished."""
    unknown = sorted(set(meta) - set(_META))
    if unknown:
        raise TypeError("unknown classification_document keys: %s" % ", ".join(unknown))
    arms = {arm: {"runs": []} for arm in ARMS}
    for order, raw in enumerate(observations):
        o = _observation(raw)
        run = {"order": order, "run_id": o["run_id"], "origin": o["origin"], "outcome": o["outcome"],
               "tier": o["tier"], "fingerprint": o["fingerprint"], "error": o["error"], "infra": o["infra"]}
        if raw.get("load") is not None:
            run["load"] = raw["load"]     # what the machine went through during the re-run (canon.load)
        if o["run_as"]:
            run["run_as"], run["busy_from"] = o["run_as"], o["busy_from"]   # run isolated, met a busy machine
        arms[o["arm"]]["runs"].append(run)
    for arm in ARMS:
        arms[arm].update((decision.get("counts") or {}).get(arm) or {"pass": 0, "fail": 0, "infra": 0})
    doc = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "recipe": recipe, "kind": kind}
    doc.update({key: meta.get(key) for key in _META})
    doc.update({
        "arms": arms,
        "verdict": decision.get("verdict"),
        "clear": decision.get("clear"),
        "leaning": decision.get("leaning"),
        "confidence": decision.get("confidence"),
        "budget": decision.get("budget"),
        "fingerprint": decision.get("fingerprint"),
        "fingerprints": decision.get("fingerprints") or {},
        "location": location,
        "reason": decision.get("reason"),
    })
    return doc
