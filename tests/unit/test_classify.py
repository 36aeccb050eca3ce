"""The classifier behind ``canon classify``: normalisation, fingerprints, infra signatures, the
statistics, the sequential decision, defect location, systemic events and the JSON record."""
import itertools
import json
import random

import pytest
from hypothesis import given, settings, strategies as st

from canon import verdict as c

# Recorded on the bench: results/mattermost-l-20261127163926-1f07dd and mumble-20261127164430-d9af29
MATTERMOST_ERROR = ('the restore did not bring back the state written before the backup: found '
                    '"changed-mattermost-l-20261127163926-1f07dd" in /var/lib/db/data/canon-marker.txt, '
                    'wanted "kept-mattermost-l-20261127163926-1f07dd"')
MUMBLE_ERROR = ('custom tests failed: >       assert "channels: Root,Lobby" in out.splitlines(), \\ | E       '
                'AssertionError: no channel list from mumb-2ce6d4_bench_canon_test_app:64738 (rc=1, stdout=\'\', '
                'stderr="nc: can\'t connect to remote host (10.0.1.39): Connection refused")')
# the docker CLI's own wording
ENGINE_DOWN = ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
               "Is the docker daemon running?")


def obs(arm, outcome, fp=None, origin=False, tier="custom", error="", run_id="r"):
    o = {"arm": arm, "outcome": outcome, "tier": tier, "fingerprint": fp, "error": error, "run_id": run_id}
    if origin:
        o["origin"] = True
    return o


def drive(first, result, budget=10, **kw):
    """The driver's loop: decide, run the arm asked for (``result(arm, i)`` -> observation), repeat."""
    observations, arms = [first], []
    while True:
        d = c.decide(observations, budget=budget, **kw)
        if d["clear"] or d["next_arm"] is None:
            return d, arms
        arms.append(d["next_arm"])
        observations.append(result(d["next_arm"], len(arms)))


# -- normalise_error / fingerprint ---------------------------------------------------------


def test_normalise_replaces_what_differs_between_runs():
    assert c.normalise_error("mumble-20261127164041-35d3c7 failed") == "<run> failed"
    assert c.normalise_error("no answer from mumb-1a2b3c.bench.canon.test or warm-canon-gitea.bench.canon.test") \
        == "no answer from <host> or <host>"
    # the stack part goes, the service part after it stays
    assert c.normalise_error("service mumb-1a2b3c_bench_canon_test_app failed") == "service <stack>_app failed"
    # a stack under a base domain whose TLD is not in the list: the harness's app label says it
    # is one (no bench word in the rule)
    assert c.normalise_error("service ledg-0a1b2c_ci_canon_lan2_web failed") == "service <stack> failed"
    assert c.normalise_error("service ledg-9f8e7d_ci_canon_lan2_web failed") == "service <stack> failed"
    # without the label it is an ordinary identifier, whatever words it holds
    assert c.normalise_error("x_bench_foo_app") == "x_bench_foo_app"
    assert c.normalise_error("secret gite-0a1b2c_example_org_jwt_secret_v1") == "secret <stack>_jwt_secret_v<n>"
    assert c.normalise_error("container 3f2a9c1b7d8e4f60ab went away") == "container <hex> went away"
    assert c.normalise_error("task q8ncl7v1y2wbq3elw9x0a6kfo failed") == "task <hex> failed"
    assert c.normalise_error("dial tcp 10.0.1.39:64738: refused; 127.0.0.1 too") == "dial tcp <ip>: refused; <ip> too"
    assert c.normalise_error("At 2026-11-27T16:45:30.760406Z it") == "at <time> it"
    assert c.normalise_error("wrote /var/lib/canon-bench/x.env and /tmp/tmpab12/f:3") == "wrote <path> and <path>:<n>"
    assert c.normalise_error("exit   142\n\n after 51  minutes") == "exit <n> after <n> minutes"
    assert c.normalise_error("z" * 400) == "z" * 300


def test_normalise_keeps_what_tells_failures_apart():
    text = "compose.mysql.yml: app.ini test_hello_returns_the_channel_list out.splitlines() abra.sh"
    assert c.normalise_error(text) == text.lower()


def test_the_same_failure_in_two_runs_and_two_recipes_normalises_the_same():
    other_run = MATTERMOST_ERROR.replace("20261127163926-1f07dd", "20261128090102-a0b1c2")
    assert c.normalise_error(other_run) == c.normalise_error(MATTERMOST_ERROR)
    assert c.normalise_error(MATTERMOST_ERROR) == ('the restore did not bring back the state written before the '
                                                   'backup: found "<run>" in <path>, wanted "<run>"')
    other_recipe = MUMBLE_ERROR.replace("mumb-2ce6d4", "murm-9f8e7d").replace("10.0.1.39", "10.0.2.7")
    assert c.normalise_error(other_recipe) == c.normalise_error(MUMBLE_ERROR)
    assert c.fingerprint("custom", other_recipe) == c.fingerprint("custom", MUMBLE_ERROR)


def test_fingerprint_is_tier_and_12_hex():
    fp = c.fingerprint("backup_restore", MATTERMOST_ERROR)
    assert fp == "backup_restore:2697299fa6fc"
    assert c.fingerprint("install", MATTERMOST_ERROR) != fp
    assert c.fingerprint(None, "x").startswith("run:")


# -- infra signatures ----------------------------------------------------------------------


@pytest.mark.parametrize("text, signature", [
    (ENGINE_DOWN, "engine-down"),
    ("error during connect: Get http://%2F%2F.%2Fpipe%2Fdocker_engine/v1.24/info", "engine-down"),
    ("Error response from daemon: This node is not a swarm manager. Use \"docker swarm init\"", "swarm-down"),
    ("failed to create network x: could not find an available, non-overlapping IPv4 address pool "
     "among the defaults to assign to the network", "address-pool"),
    ("network sandbox join failed: no available IPv4 addresses on this network's address pools", "address-pool"),
    ("Error response from daemon: pull access denied for nosuch/img, repository does not exist", "image-unavailable"),
    ("manifest unknown: manifest tagged by \"9.9\" is not found", "image-unavailable"),
    ("Error: No such image: caddy:2", "image-unavailable"),
    ("image mattermost/mattermost-team-edition:10.5 could not be accessed on a registry to record its digest",
     "image-unavailable"),
    ("toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and "
     "upgrading: https://www.docker.com/increase-rate-limit", "registry-unavailable"),
    ("Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while "
     "waiting for connection (Client.Timeout exceeded while awaiting headers)", "registry-unavailable"),
    ("Get \"https://ghcr.io/v2/\": dial tcp: lookup ghcr.io on 127.0.0.53:53: server misbehaving",
     "registry-unavailable"),
    ("error pulling image configuration: download failed after attempts=6: dial tcp 104.16.0.1:443: i/o timeout",
     "registry-unavailable"),
    ("write /var/lib/docker/tmp/x: no space left on device", "disk-full"),
    ("refusing to start: an isolation run has server default to itself (custom-html-20261127224642-62867e)",
     "server-busy"),
    ("swarm_converge: wedged: no progress for 2 min (last: task web abc: new, new 2 min ago); "
     "1 task(s) stuck in swarm's new state (never allocated: web)", "allocator-stuck"),
    ("the bench proxy: connection refused", "proxy-down"),
    ("/bin/sh: 1: abra: not found", "abra-missing"),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'abra'", "abra-missing"),
])
def test_infra_signatures(text, signature):
    assert c.infra_signature(text) == signature
    assert signature in dict(c.INFRA_SIGNATURES)


# The proxy's address comes from the inventory (canon_proxy_url), never from the code: the same
# refused connection is proxy-down only where that address is the proxy.
PROXY_REFUSALS = [
    "curl: (7) Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server",
    "HTTPConnectionPool(host='{host}', port={port}): Max retries exceeded ([Errno 111] Connection refused)",
    "dial tcp {host}:{port}: connect: connection refused",
]


@pytest.mark.parametrize("template", PROXY_REFUSALS)
@pytest.mark.parametrize("proxy_url, host, port", [
    ("http://127.0.0.1:8480", "127.0.0.1", "8480"),
    ("http://10.213.255.2:8481/", "10.213.255.2", "8481"),
    ("https://edge.example.org", "edge.example.org", "443"),
])
def test_proxy_down_is_read_from_the_configured_proxy_address(template, proxy_url, host, port):
    text = template.format(host=host, port=port)
    assert c.infra_signature(text, proxy_urls=[proxy_url]) == "proxy-down"
    # the same refusal from another address is the app's (or nobody's) refusal, not the proxy's
    assert c.infra_signature(text) is None
    assert c.infra_signature(text, proxy_urls=["http://192.0.2.7:9000"]) is None
    assert c.infra_signature(text, proxy_urls=[""]) is None


def test_recipe_failures_are_not_infra():
    assert c.infra_signature(MATTERMOST_ERROR) is None
    assert c.infra_signature(MUMBLE_ERROR) is None  # a refused connection to the app, not to the proxy
    assert c.infra_signature("abra app upgrade failed (exit 1): deploy failed") is None
    assert c.infra_signature("") is None
    # an app's own API answering badly or refusing is the app's, even under a /v2/ path
    assert c.infra_signature('readiness: Get "https://ledger.example.org/api/v2/": connection refused') is None
    assert c.infra_signature("readiness: https://ledger.example.org/v2/ping answered 500: timeout in handler") is None


# -- statistics ----------------------------------------------------------------------------


def test_fisher_examples():
    assert c.fisher_one_sided(3, 3, 0, 3) == pytest.approx(0.05)
    assert c.fisher_one_sided(2, 2, 0, 3) == pytest.approx(0.1)
    assert c.fisher_one_sided(0, 3, 0, 3) == 1.0
    assert c.fisher_one_sided(1, 1, 0, 0) == 1.0 and c.fisher_one_sided(0, 0, 2, 2) == 1.0
    with pytest.raises(ValueError):
        c.fisher_one_sided(4, 3, 0, 3)


def brute_force_fisher(lf, ln, isf, isn):
    """Every way to deal the failures over the runs, counted: P(loaded gets >= lf of them)."""
    runs = ["L"] * ln + ["I"] * isn
    hands = list(itertools.combinations(range(ln + isn), lf + isf))
    return sum(1 for h in hands if sum(runs[i] == "L" for i in h) >= lf) / len(hands)


@pytest.mark.parametrize("lf, ln, isf, isn", [(3, 3, 0, 3), (2, 4, 1, 5), (1, 2, 1, 2), (5, 6, 0, 4), (0, 3, 2, 3)])
def test_fisher_counts_like_brute_force(lf, ln, isf, isn):
    assert c.fisher_one_sided(lf, ln, isf, isn) == pytest.approx(brute_force_fisher(lf, ln, isf, isn))


def test_runs_needed_examples():
    assert [c.runs_needed(p) for p in (0.5, 0.3, 0.1, 1.0, 1.5)] == [5, 9, 29, 1, 1]
    assert c.runs_needed(0.0) is None and c.runs_needed(-0.2) is None
    assert c.runs_needed(0.5, confidence=0.75) == 2  # 0.5**2 == 0.25 exactly
    with pytest.raises(ValueError):
        c.runs_needed(0.5, confidence=1.0)


# -- decide: the rules ---------------------------------------------------------------------


def test_mattermost_like_two_isolated_reds_are_genuine_after_exactly_two_runs():
    fp = c.fingerprint("backup_restore", MATTERMOST_ERROR)
    origin = obs("loaded", "fail", fp, origin=True, tier="backup_restore", error=MATTERMOST_ERROR)
    d, arms = drive(origin, lambda arm, i: obs(arm, "fail", fp, tier="backup_restore", error=MATTERMOST_ERROR))
    assert arms == ["isolated", "isolated"]
    assert d["verdict"] == "genuine" and d["clear"] and d["next_arm"] is None
    assert d["fingerprint"] == fp and d["budget"] == {"runs": 10, "used": 2, "exhausted": False}
    assert d["counts"] == {"isolated": {"pass": 0, "fail": 2, "infra": 0}, "loaded": {"pass": 0, "fail": 1, "infra": 0}}
    assert fp in d["reason"]


def test_after_one_isolated_red_the_next_run_is_isolated():
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "fail", "custom:a")])
    assert not d["clear"] and d["next_arm"] == "isolated" and d["leaning"] == "genuine"
    assert d["verdict"] == "undecided"


def test_mumble_like_alternates_until_fisher_clears_load_flake_in_five_runs():
    fp = c.fingerprint("custom", MUMBLE_ERROR)
    origin = obs("loaded", "fail", fp, origin=True, error=MUMBLE_ERROR)
    d, arms = drive(origin, lambda arm, i: obs(arm, "pass") if arm == "isolated"
                    else obs(arm, "fail", error=MUMBLE_ERROR))
    # ties go to isolated; otherwise the arm whose expected result lowers p most
    assert arms == ["isolated", "isolated", "loaded", "isolated", "loaded"]
    assert d["verdict"] == "load-flake" and d["clear"] and d["next_arm"] is None
    conf = d["confidence"]
    assert conf["p_value"] == pytest.approx(0.05) and conf["alpha"] == 0.05
    assert conf["loaded_failure_rate"] == 1.0 and conf["isolated_clean"] == 3 and conf["isolated_clean_needed"] == 1
    assert conf["test"] == "one-sided Fisher exact (loaded vs isolated)"
    assert d["budget"]["used"] == 5 and d["fingerprint"] == fp  # fingerprint computed from the error


def test_first_run_after_a_failure_is_isolated():
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True)])
    assert d["next_arm"] == "isolated" and not d["clear"] and d["budget"]["used"] == 0


def test_load_flake_reports_the_clean_isolated_runs_the_loaded_rate_needs():
    # loaded 4 of 6 red: a 67% failure rate would show up within 3 clean isolated runs at 95%
    observations = [obs("loaded", "fail", "custom:a", origin=True)] + [obs("loaded", "fail", "custom:a")] * 3 \
        + [obs("loaded", "pass")] * 2 + [obs("isolated", "pass")] * 3
    d = c.decide(observations, budget=20)
    conf = d["confidence"]
    assert conf["isolated_clean_needed"] == 3 and conf["isolated_clean"] == 3
    # C(6,4) / C(9,4): all four failures dealt to the six loaded runs
    assert conf["p_value"] == pytest.approx(15 / 126) and not d["clear"] and d["leaning"] == "load-flake"
    d = c.decide(observations + [obs("isolated", "pass")] * 3, budget=20)
    assert d["confidence"]["p_value"] == pytest.approx(15 / 495) and d["verdict"] == "load-flake"


def test_flaky_when_the_isolated_arm_is_mixed():
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "pass"),
                  obs("isolated", "fail", "custom:a")])
    assert d["verdict"] == "flaky" and d["clear"] and d["next_arm"] is None
    assert "1 pass and 1 fail" in d["reason"]


def test_different_fingerprints_are_not_genuine_yet():
    observations = [obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "fail", "custom:a"),
                    obs("isolated", "fail", "install:b")]
    d = c.decide(observations)
    assert not d["clear"] and d["next_arm"] == "isolated" and d["leaning"] == "genuine"
    assert "custom:a" in d["reason"] and "install:b" in d["reason"]
    assert d["fingerprints"] == {"custom:a": 2, "install:b": 1}
    d = c.decide(observations + [obs("isolated", "fail", "install:b")])
    assert d["verdict"] == "genuine" and d["fingerprint"] == "install:b"


def test_infra_is_not_evidence_and_two_in_a_row_is_infra():
    origin = obs("loaded", "fail", "custom:a", origin=True)
    d = c.decide([origin, obs("isolated", "infra", error=ENGINE_DOWN)])
    assert not d["clear"] and d["next_arm"] == "isolated"
    assert d["counts"]["isolated"] == {"pass": 0, "fail": 0, "infra": 1}
    # a "fail" whose error is a bench failure counts as infra, whoever labelled it
    d = c.decide([origin, obs("isolated", "infra", error=ENGINE_DOWN),
                  obs("isolated", "fail", error="no space left on device")])
    assert d["verdict"] == "infra" and d["clear"] and d["next_arm"] is None
    assert d["infra"] == ["disk-full", "engine-down"] and d["counts"]["isolated"]["fail"] == 0


def test_infra_between_two_isolated_reds_does_not_break_genuine():
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "fail", "custom:a"),
                  obs("isolated", "infra", error=ENGINE_DOWN), obs("isolated", "fail", "custom:a")])
    assert d["verdict"] == "genuine" and d["budget"]["used"] == 3


def test_infra_in_every_run_of_the_budget_is_infra():
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "infra", error=ENGINE_DOWN)],
                 budget=1)
    assert d["verdict"] == "infra" and d["clear"]


def test_not_reproduced_after_min_runs_clean_on_both_arms():
    origin = obs("loaded", "fail", "custom:a", origin=True)
    d, arms = drive(origin, lambda arm, i: obs(arm, "pass"))
    assert d["verdict"] == "not-reproduced" and d["clear"]
    assert sorted(arms) == ["isolated"] * 3 + ["loaded"] * 3
    assert "3 isolated and 3 loaded runs passed" in d["reason"]


def test_budget_exhausted_is_undecided_with_a_leaning():
    # the isolated failures never repeat a fingerprint: never genuine, leaning genuine
    origin = obs("loaded", "fail", "custom:a", origin=True)
    d, arms = drive(origin, lambda arm, i: obs(arm, "fail", "custom:%d" % i), budget=4)
    assert arms == ["isolated"] * 4
    assert d["verdict"] == "undecided" and not d["clear"] and d["next_arm"] is None
    assert d["budget"] == {"runs": 4, "used": 4, "exhausted": True} and d["leaning"] == "genuine"
    assert d["reason"].startswith("undecided: budget of 4 runs used up, leaning genuine")


def test_budget_exhausted_on_a_weak_load_flake_leans_load_flake():
    observations = [obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "pass"),
                    obs("isolated", "pass"), obs("loaded", "fail", "custom:a")]
    d = c.decide(observations, budget=3)
    assert d["verdict"] == "undecided" and d["leaning"] == "load-flake" and d["next_arm"] is None
    assert d["confidence"]["p_value"] == pytest.approx(1 / 6)


def test_an_isolated_origin_counts_in_its_arm():
    d = c.decide([obs("isolated", "fail", "custom:a", origin=True), obs("isolated", "fail", "custom:a")])
    assert d["verdict"] == "genuine" and d["budget"]["used"] == 1
    d = c.decide([obs("isolated", "fail", "custom:a", origin=True), obs("isolated", "pass")])
    assert d["verdict"] == "flaky"


def test_bad_observations_are_refused():
    with pytest.raises(ValueError):
        c.decide([obs("sideways", "pass")])
    with pytest.raises(ValueError):
        c.decide([obs("isolated", "green")])


# -- locate --------------------------------------------------------------------------------


def decision_for(verdict, fp="custom:a"):
    counts = {"isolated": {"pass": 0, "fail": 2, "infra": 0}, "loaded": {"pass": 0, "fail": 1, "infra": 0}}
    return {"verdict": verdict, "fingerprint": fp, "counts": counts, "infra": ["engine-down"], "reason": "r",
            "confidence": {"p_value": 0.05, "alpha": 0.05, "loaded_failure_rate": 1.0, "isolated_clean": 3,
                           "isolated_clean_needed": 1}}


TIERS_GREEN_BUT_CUSTOM = [
    {"name": "preflight", "outcome": "pass"}, {"name": "install", "outcome": "pass"},
    {"name": "upgrade", "outcome": "pass"}, {"name": "backup_restore", "outcome": "not-applicable"},
    {"name": "custom", "outcome": "fail"}, {"name": "lint", "outcome": "skipped"}]


def test_locate_infra_and_load():
    loc = c.locate(decision_for("infra"), {})
    assert loc["where"] == "infra" and "engine-down" in loc["detail"]
    loc = c.locate(decision_for("load-flake"), {"kind": "cold", "tier": "custom"})
    assert loc["where"] == "load"
    assert "isolated: 0 pass / 2 fail / 0 infra" in loc["evidence"]
    assert any("p = 0.05" in e for e in loc["evidence"])


def test_locate_bluesky_like_wrong_backend_with_an_ambiguous_alias_is_the_recipe():
    finding = {"check": "ambiguous-alias", "level": "warning",
               "message": "service web reaches app by its short name on the shared network proxy"}
    promote = {"outcome": "failed", "in_place_error": "routing identity: wrong-backend",
               "identity": {"verdict": "wrong-backend", "backend": "warm-keycloak", "expected": "did:web:blue"}}
    loc = c.locate(decision_for("genuine", "promote:b"), {"kind": "promote", "promote": promote, "findings": [finding]})
    assert loc["where"] == "recipe" and loc["detail"] == c.ALIAS_DETAIL
    assert any("wrong-backend" in e and "warm-keycloak" in e for e in loc["evidence"])
    assert any(finding["message"] in e for e in loc["evidence"])
    loc = c.locate(decision_for("genuine", "promote:b"), {"kind": "promote", "promote": promote, "findings": []})
    assert loc["where"] == "warm-machinery"


def test_locate_gitea_like_unreconciled_drift_is_warm_machinery():
    # results/gitea-20261127165812-f093e8/promote.json, recorded with warm_drift=false
    promote = {"outcome": "promoted-by-fallback", "fallback": True, "fallback_error": "", "mode": "advance",
               "in_place_error": "abra app upgrade failed (exit 1): deploy failed",
               "drift": {"added": [], "missing": ["LFS_JWT_SECRET_URI"], "reconciled": False}}
    loc = c.locate(decision_for("genuine", "promote:c"), {"kind": "promote", "promote": promote,
                                                          "drift_enabled": False})
    assert loc == {"where": "warm-machinery", "detail": "env drift not reconciled", "evidence": loc["evidence"]}
    assert any("LFS_JWT_SECRET_URI" in e for e in loc["evidence"])
    assert any("disabled" in e for e in loc["evidence"])
    # no green fallback, but the in-place error names the missing key
    promote = dict(promote, outcome="failed", fallback_error="rolled-back",
                   in_place_error="crashloop: LFS_JWT_SECRET_URI is empty")
    loc = c.locate(decision_for("genuine"), {"kind": "promote", "promote": promote})
    assert loc["detail"] == "env drift not reconciled"
    # nothing of the kind: another promote failure, still the warm machinery
    loc = c.locate(decision_for("genuine"), {"kind": "promote", "promote": {"outcome": "failed",
                                                                            "in_place_error": "wedged"}})
    assert loc["where"] == "warm-machinery" and "wedged" in loc["detail"]


def test_a_custom_red_with_the_other_tiers_green_is_not_inferred_stale():
    # issue 17: a regression only the custom suite catches looks exactly like this; without a
    # run of the suite against the upgrade base nothing says the test is stale
    loc = c.locate(decision_for("genuine"), {"kind": "cold", "tier": "custom", "tiers": TIERS_GREEN_BUT_CUSTOM})
    assert loc["where"] == "test-or-app" and loc["where"] != "stale-test"
    assert "stale test or app regression" in loc["detail"]
    assert loc["confidence"]["level"] == "undecided"
    assert any(e.startswith("would decide it:") for e in loc["evidence"])
    tiers = [dict(t, outcome="fail") if t["name"] == "upgrade" else t for t in TIERS_GREEN_BUT_CUSTOM]
    assert c.locate(decision_for("genuine"), {"tier": "custom", "tiers": tiers})["where"] == "recipe"


# A made-up recipe (not one of the bench six): a ledger app whose head 2.4.0 changed its CSV
# export; the custom suite's test_export_totals fails on the head.
LEDGER_TIERS = [
    {"name": "install", "outcome": "pass"}, {"name": "upgrade", "outcome": "pass"},
    {"name": "backup_restore", "outcome": "pass"}, {"name": "custom", "outcome": "fail"},
    {"name": "lint", "outcome": "skipped"}]


@pytest.mark.parametrize("base, where, level, words", [
    # the same suite commit green on the base: behaviour changed, not decided which side is wrong
    ({"version": "2.3.1", "head": "2.4.0", "outcome": "pass"}, "test-or-app", "undecided",
     "behaviour changed between 2.3.1 and 2.4.0: stale test or app regression"),
    # red on both with the same fingerprint: the suite is at fault
    ({"version": "2.3.1", "head": "2.4.0", "outcome": "fail", "fingerprint": "custom:a"}, "stale-test", "medium",
     "the suite fails the same way on base 2.3.1 and on 2.4.0"),
    # red on both, differently: not decided
    ({"version": "2.3.1", "head": "2.4.0", "outcome": "fail", "fingerprint": "custom:b"}, "test-or-app",
     "undecided", "fails on both releases but differently"),
    # the base run gave no answer
    ({"version": "2.3.1", "head": "2.4.0", "outcome": "infra"}, "test-or-app", "undecided",
     "did not give an answer (infra)"),
    ({"version": "2.3.1", "head": "2.4.0"}, "test-or-app", "undecided", "not run against base 2.3.1"),
    ({}, "test-or-app", "undecided", "no earlier release"),
])
def test_the_custom_suite_on_the_base_release_decides(base, where, level, words):
    loc = c.locate(decision_for("genuine", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": LEDGER_TIERS,
                                                         "base": base})
    assert loc["where"] == where
    assert loc["confidence"]["level"] == level
    assert words in loc["detail"] or words in loc["confidence"]["why"]


def test_locate_cold_genuine_flaky_and_unknown():
    tiers = [{"name": "install", "outcome": "pass"}, {"name": "backup_restore", "outcome": "fail"}]
    loc = c.locate(decision_for("genuine", "backup_restore:d"), {"kind": "cold", "tiers": tiers})
    assert loc["where"] == "recipe" and "backup_restore" in loc["detail"]
    assert c.locate(decision_for("flaky"), {"kind": "cold"})["detail"] == "intermittent"
    assert c.locate(decision_for("not-reproduced"), {})["where"] == "unknown"
    assert c.locate(decision_for("undecided"), {})["where"] == "unknown"


# -- systemic events -----------------------------------------------------------------------


def test_one_engine_error_across_recipes_and_tiers_is_one_systemic_event():
    t0 = 1_800_000_000.0
    failures = [
        {"recipe": "gitea", "tier": "install", "error": ENGINE_DOWN, "started": t0, "finished": t0 + 30},
        {"recipe": "mumble", "tier": "upgrade", "error": ENGINE_DOWN, "started": t0 + 100, "finished": t0 + 140},
        {"recipe": "mumble", "tier": "custom", "error": MUMBLE_ERROR, "started": t0 + 200, "finished": t0 + 210},
        {"recipe": "keycloak", "tier": "install", "error": ENGINE_DOWN, "started": t0 + 5000, "finished": t0 + 5010},
    ]
    events = c.systemic_events(failures)
    assert len(events) == 1
    e = events[0]
    assert e["recipes"] == ["gitea", "mumble"] and e["count"] == 2 and e["infra"] == "engine-down"
    assert e["first"] == t0 and e["last"] == t0 + 140
    assert e["fingerprint"] == "systemic:" + c.fingerprint("x", ENGINE_DOWN).split(":")[1]
    # the far one joins when the window reaches it
    assert c.systemic_events(failures, window=6000)[0]["recipes"] == ["gitea", "keycloak", "mumble"]


def test_a_chain_of_failures_each_within_the_window_is_one_event():
    base = "could not find an available, non-overlapping IPv4 address pool"
    failures = [{"recipe": "r%d" % i, "tier": "install", "error": base, "started": 500.0 * i,
                 "finished": 500.0 * i + 10} for i in range(4)]
    (event,) = c.systemic_events(failures)
    assert event["count"] == 4 and event["infra"] == "address-pool"


def test_one_recipe_failing_often_is_not_systemic():
    failures = [{"recipe": "mumble", "tier": t, "error": ENGINE_DOWN, "started": 1.0, "finished": 2.0}
                for t in ("install", "upgrade", "custom")]
    assert c.systemic_events(failures) == [] and c.systemic_events(failures, min_recipes=1) == []


# -- the JSON record -----------------------------------------------------------------------


def test_classification_document():
    observations = [obs("loaded", "fail", "custom:a", origin=True, run_id="mumble-20261127164430-d9af29"),
                    obs("isolated", "pass", run_id="i1")]
    d = c.decide(observations)
    loc = c.locate(d, {"kind": "cold"})
    doc = c.classification_document("mumble", "cold", observations, d, loc, recipe_commit="abc", harness_commit="def",
                                    server="default", started="2026-11-27T16:44:30Z", finished="2026-11-27T16:50:00Z")
    assert json.loads(json.dumps(doc)) == doc
    assert doc["schema"] == "coopcloud.canon/classification" and doc["schema_version"] == 1
    assert set(doc) == {"schema", "schema_version", "recipe", "kind", "recipe_commit", "harness_commit", "server",
                        "started", "finished", "arms", "verdict", "clear", "leaning", "confidence", "budget",
                        "fingerprint", "fingerprints", "location", "reason"}
    assert doc["arms"]["loaded"]["runs"][0]["origin"] is True and doc["arms"]["loaded"]["fail"] == 1
    assert doc["arms"]["isolated"]["runs"] == [{"order": 1, "run_id": "i1", "origin": False, "outcome": "pass",
                                                "tier": "custom", "fingerprint": None, "error": "", "infra": None}]
    assert doc["verdict"] == "undecided" and doc["location"]["where"] == "unknown"
    with pytest.raises(TypeError):
        c.classification_document("mumble", "cold", observations, d, loc, sever="typo")
    # a re-run keeps the load the sampler saw during it: the condition it ran in, readable later
    busy = {"samples": 12, "load1_mean": 11.4, "load1_max": 17.8, "host": "controller"}
    observations[1]["load"] = busy
    doc = c.classification_document("mumble", "cold", observations, d, loc)
    assert doc["arms"]["isolated"]["runs"][0]["load"] == busy
    assert "load" not in doc["arms"]["loaded"]["runs"][0]


# -- properties ----------------------------------------------------------------------------

@settings(max_examples=60)
@given(st.integers(0, 12), st.integers(0, 12), st.integers(0, 12), st.integers(0, 12))
def test_fisher_is_a_probability_and_falls_as_loaded_failures_grow(ln, lf, isn, isf):
    lf, isf = min(lf, ln), min(isf, isn)
    p = c.fisher_one_sided(lf, ln, isf, isn)
    assert 0.0 <= p <= 1.0
    if lf < ln:
        assert c.fisher_one_sided(lf + 1, ln, isf, isn) <= p


@settings(max_examples=60)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 30), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_with_a_clean_isolated_arm_a_low_p_means_enough_clean_runs(n, fails, clean, confidence):
    # p >= (1 - rate)^clean, so the second load-flake condition follows from the first
    fails = min(fails, n)
    if c.fisher_one_sided(fails, n, 0, clean) <= round(1 - confidence, 12):
        assert clean >= c.runs_needed(fails / n, confidence)


@settings(max_examples=60)
@given(st.floats(1e-6, 1.0), st.floats(0.5, 0.999))
def test_runs_needed_is_the_least_n(p, confidence):
    n = c.runs_needed(p, confidence)
    assert n >= 1
    assert (1 - p) ** n <= 1 - confidence < (1 - p) ** (n - 1)


@settings(max_examples=60)
@given(st.floats(1e-6, 1.0), st.floats(1e-6, 1.0))
def test_runs_needed_falls_as_p_grows(p, q):
    lo, hi = sorted((p, q))
    assert c.runs_needed(hi) <= c.runs_needed(lo)


observation = st.builds(
    obs, st.sampled_from(c.ARMS), st.sampled_from(c.OUTCOMES),
    st.sampled_from(["custom:a", "custom:b", "install:c", None]))


@settings(max_examples=80)
@given(st.booleans(), st.lists(observation, max_size=14), st.integers(0, 12), st.integers(1, 4))
def test_decide_is_never_clear_with_a_next_arm(with_origin, later, budget, min_runs):
    observations = ([obs("loaded", "fail", "custom:a", origin=True)] if with_origin else []) + later
    d = c.decide(observations, budget=budget, min_runs=min_runs)
    assert d["verdict"] in c.VERDICTS
    assert not (d["clear"] and d["next_arm"] is not None)
    assert d["clear"] == (d["verdict"] != "undecided")
    if not d["clear"]:
        assert (d["next_arm"] is None) == d["budget"]["exhausted"]
    assert sum(sum(a.values()) for a in d["counts"].values()) == len(observations)
    assert d["budget"]["used"] == len(later)


@given(st.text(max_size=400) | st.lists(st.sampled_from([
    "mumb-1a2b3c.bench.canon.test", "x_bench_canon_test_app", "10.0.0.1:80", "/var/x", "/tmp/y", " ",
    "2026-11-27T16:45:30Z", "deadbeefcafe", "42", "mumble-20261127164041-35d3c7", "a", ".", "_", "-",
    "q8ncl7v1y2wbq3elw9x0a6kfo", "com"]), max_size=80).map("".join))
def test_normalise_is_idempotent(text):
    once = c.normalise_error(text)
    assert c.normalise_error(once) == once and len(once) <= 300


failure = st.fixed_dictionaries({
    "recipe": st.sampled_from(["gitea", "mumble", "keycloak"]), "tier": st.sampled_from(["install", "custom"]),
    "error": st.sampled_from([ENGINE_DOWN, MUMBLE_ERROR, "x"]), "started": st.floats(0, 5000),
    "finished": st.floats(0, 5000)})


@settings(max_examples=60)
@given(st.lists(failure, max_size=12), st.floats(0, 2000), st.integers(0, 4))
def test_systemic_events_never_group_a_single_recipe(failures, window, min_recipes):
    for event in c.systemic_events(failures, window=window, min_recipes=min_recipes):
        assert len(event["recipes"]) >= 2 and event["count"] >= 2


# -- simulation ----------------------------------------------------------------------------


def simulate(fail_rate, seed, other_fingerprint=0.0, budget=10):
    """One classification driven to its end with a seeded generator: each run fails with the
    arm's true rate; a failing run shows another fingerprint with probability ``other_fingerprint``."""
    rng = random.Random(seed)

    def run(arm, i):
        if rng.random() >= fail_rate[arm]:
            return obs(arm, "pass")
        fp = "custom:other%d" % i if rng.random() < other_fingerprint else "custom:a"
        return obs(arm, "fail", fp)

    d, arms = drive(obs("loaded", "fail", "custom:a", origin=True), run, budget=budget)
    return d["verdict"], len(arms)


def test_simulation_reaches_the_true_verdict_within_budget_in_most_seeds():
    # measured over seeds 0..299: load-flake 298/300 (99.3 %; 5 runs in 240, 8 in 45, 10 in 15), genuine 298/300
    load_flake = [simulate({"isolated": 0.0, "loaded": 0.9}, seed) for seed in range(300)]
    right = [n for verdict, n in load_flake if verdict == "load-flake"]
    assert len(right) >= 290 and min(right) == 5 and max(right) <= 10
    # genuine: always red, one red in five shows another fingerprint (a truncated log, say)
    genuine = [simulate({"isolated": 1.0, "loaded": 1.0}, seed, other_fingerprint=0.2) for seed in range(300)]
    right = [n for verdict, n in genuine if verdict == "genuine"]
    assert len(right) >= 290 and min(right) == 2


def test_sampled_tallies_do_not_split_a_fingerprint():
    # routing_identity reports which outcomes its samples hit; the set varies between runs
    a = "d /xrpc/_health: wrong-backend (no-route 13, ok 3, wrong-backend 4); e.g. HTTP 200"
    b = "d /xrpc/_health: wrong-backend (no-route 16, wrong-backend 4); e.g. HTTP 200"
    assert c.fingerprint("promote", a) == c.fingerprint("promote", b)
    assert c.fingerprint("promote", a) != c.fingerprint("promote", "d /xrpc/_health: no-answer (no-answer 20)")


def test_when_the_watcher_saw_the_rollback_does_not_split_a_fingerprint():
    a = ("rolled-back: app update rolled back (rollback_completed): rollback completed; "
         "evidence: /tmp/r/runs/gitea-20261127194513-359208/evidence/converge/warm-canon-gitea.bench.canon.test")
    b = ("rolled-back: app update rolled back (rollback_started): update rolled back due to failure or early "
         "termination of task muagc0dy2ay2a94yh4gwsdr23; evidence: /tmp/r/runs/gitea-20261127194850-a0bea4/x")
    assert c.fingerprint("promote", a) == c.fingerprint("promote", b)
    assert c.fingerprint("promote", a) != c.fingerprint("promote", "crashloop: 3 tasks of app failed within 120 s")


@pytest.mark.parametrize("decision, ctx, needed", [
    (decision_for("genuine", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": LEDGER_TIERS}, True),
    # the upgrade not applicable (oldest release) or skipped does not stand in the way
    (decision_for("genuine", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": TIERS_GREEN_BUT_CUSTOM}, True),
    (decision_for("flaky", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": LEDGER_TIERS}, False),
    (decision_for("load-flake", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": LEDGER_TIERS}, False),
    (decision_for("genuine", "custom:a"), {"kind": "promote", "tier": "custom", "tiers": LEDGER_TIERS}, False),
    (decision_for("genuine", "backup_restore:a"), {"kind": "cold", "tier": "backup_restore",
                                                   "tiers": LEDGER_TIERS}, False),
    (decision_for("genuine", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": [
        dict(t, outcome="fail") if t["name"] == "backup_restore" else t for t in LEDGER_TIERS]}, False),
])
def test_custom_base_needed(decision, ctx, needed):
    assert c.custom_base_needed(decision, ctx) is needed


@pytest.mark.parametrize("record, outcome, fp", [
    ({"outcome": "pass", "run_id": "b1"}, "pass", None),
    ({"outcome": "fail", "failure": {"tier": "custom", "fingerprint": "custom:a", "error": "E"}}, "fail", "custom:a"),
    # the base release did not install: no answer about the suite
    ({"outcome": "fail", "failure": {"tier": "install", "fingerprint": "install:x"}}, "fail in install", None),
    ({"outcome": "infra", "failure": {"tier": "install"}}, "infra in install", None),
    ({"outcome": "interrupted"}, "interrupted", None),
])
def test_base_evidence(record, outcome, fp):
    got = c.base_evidence(record, "2.3.1", "2.4.0")
    assert got["outcome"] == outcome and got["fingerprint"] == fp
    assert got["version"] == "2.3.1" and got["head"] == "2.4.0"
    loc = c.locate(decision_for("genuine", "custom:a"), {"kind": "cold", "tier": "custom", "tiers": LEDGER_TIERS,
                                                         "base": got})
    assert loc["where"] == ("stale-test" if fp == "custom:a" else "test-or-app")


# -- busy machines -------------------------------------------------------------------------


@pytest.mark.parametrize("load,busy_from,busy", [
    ({"host": "controller", "cpu_busy_pct": 96.5}, 90.0, True),
    ({"host": "controller", "cpu_busy_pct": 90.0}, 90.0, True),
    ({"host": "controller", "cpu_busy_pct": 62.0}, 90.0, False),
    ({"host": "controller", "cpu_busy_pct": None, "load1_mean": 11.4}, 90.0, False),   # the load average lags: not used
    ({"host": "not measured", "cpu_busy_pct": 99.0}, 90.0, False),     # a remote engine: not known here
    ({}, 90.0, False), (None, 90.0, False),
    ({"host": "controller", "cpu_busy_pct": 99.0}, None, False),
])
def test_busy(load, busy_from, busy):
    assert c.busy(load, busy_from) is busy


def test_busy_reads_the_samplers_own_host_names():
    # verdict.py stays free of canon.load (docker-facing) and spells the sampler's names itself
    from canon import load
    assert c.busy({"host": load.HOST_CONTROLLER, "cpu_busy_pct": 99.0}, 90.0)
    assert not c.busy({"host": load.HOST_NOT_MEASURED, "cpu_busy_pct": 99.0}, 90.0)


def test_an_isolated_run_on_a_busy_machine_does_not_make_the_isolated_arm_mixed():
    # the run that made mumble read 'flaky' on a busy machine: counted as loaded, the isolated
    # arm is one clean run and the verdict waits for more evidence
    moved = dict(obs("loaded", "fail", "custom:a", run_id="mumble-2"), run_as="isolated", busy_from=90.0,
                 load={"host": "controller", "cpu_busy_pct": 98.2})
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), obs("isolated", "pass"), moved])
    assert d["verdict"] != "flaky" and not d["clear"]
    assert d["counts"]["isolated"] == {"pass": 1, "fail": 0, "infra": 0}
    assert "1 isolated run met a busy machine and counts as loaded (mumble-2: CPUs 98.2% busy, busy from 90%)" \
        in d["reason"]
    doc = c.classification_document("mumble", "cold", [obs("loaded", "fail", "custom:a", origin=True),
                                                       obs("isolated", "pass"), moved], d, c.locate(d))
    run = doc["arms"]["loaded"]["runs"][1]
    assert (run["run_as"], run["busy_from"], run["load"]["cpu_busy_pct"]) == ("isolated", 90.0, 98.2)
    assert "run_as" not in doc["arms"]["isolated"]["runs"][0]


def test_a_moved_run_without_its_numbers_still_reads():
    moved = dict(obs("loaded", "fail", "custom:a", run_id="mumble-2"), run_as="isolated")
    d = c.decide([obs("loaded", "fail", "custom:a", origin=True), moved])
    assert "(mumble-2: CPUs ?% busy, busy from ?%)" in d["reason"]


def test_run_as_names_the_other_arm():
    with pytest.raises(ValueError, match="run_as"):
        c.decide([dict(obs("isolated", "fail", "custom:a"), run_as="isolated")])
    with pytest.raises(ValueError, match="run_as"):
        c.decide([dict(obs("loaded", "fail", "custom:a"), run_as="busy")])
