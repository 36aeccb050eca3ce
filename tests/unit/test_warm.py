"""Canonical warm domains: the namespace, its refusals, leases across real processes, the registry."""
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ansible_collections.coopcloud.canon.plugins.module_utils import _ledger, _teardown, _warm
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    NameError_, is_protected, stack_name, validate_recipe)

BASE = "bench.canon.test"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def plan(recipe="keycloak", server="default", base=BASE, protected=(), envs=None, stacks=(), **kw):
    return _warm.plan_warm_domain(recipe, server, base, protected=list(protected),
                                  existing_env_domains=envs or {}, deployed_stacks=set(stacks), **kw)


def refusal(**kw) -> str:
    with pytest.raises(_warm.WarmRefused) as exc:
        plan(**kw)
    return str(exc.value)


# A base that makes the readable keycloak canonical exactly 45 characters: its stack is its
# whole sanitised domain, and any longer domain sharing those 45 characters has the same stack.
BASE45 = "b" * (45 - len("warm-canon-keycloak.") - 5) + ".test"
WARM45 = "warm-canon-keycloak." + BASE45
assert len(WARM45) == 45
LONGER45 = WARM45 + "-x.org"          # other app, same first 45 sanitised characters
assert stack_name(LONGER45) == stack_name(WARM45) and LONGER45 != WARM45

LONG_SECRET = [("a_really_long_secret_name_here_xx", "v1")]


# -- refusals, one per rule ----------------------------------------------------------------------
@pytest.mark.parametrize("kw, expected", [
    # protected: the live keycloak, its name in the namespace, anything under a protected domain
    (dict(domain="warm-keycloak.bench.canon.test", protected=["warm-keycloak.bench.canon.test"]),
     "warm-keycloak.bench.canon.test is protected (live service)"),
    (dict(protected=["warm-canon-keycloak.bench.canon.test"]),
     "warm-canon-keycloak.bench.canon.test is protected (live service)"),
    (dict(protected=["bench.canon.test"]),
     "warm-canon-keycloak.bench.canon.test lies under protected bench.canon.test (live service)"),
    (dict(domain="id.sso.example.org", protected=["SSO.example.org."]),
     "id.sso.example.org lies under protected sso.example.org (live service)"),
    # the live keycloak's domain, not even listed as protected: its .env says it is taken
    (dict(domain="warm-keycloak.bench.canon.test", envs={"warm-keycloak.bench.canon.test": "keycloak"}),
     "warm-keycloak.bench.canon.test is already used by an app (its .env exists, recipe keycloak)"),
    # another recipe's app sitting on this recipe's canonical name
    (dict(envs={"warm-canon-keycloak.bench.canon.test": "gitea"}),
     "warm-canon-keycloak.bench.canon.test is already used by an app (its .env exists, recipe gitea)"),
    # a deployed stack with this stack name and no app of ours behind it
    (dict(stacks=["warm-canon-keycloak_bench_canon_test"]),
     "stack name warm-canon-keycloak_bench_canon_test collides with deployed stack warm-canon-keycloak_bench_canon_test"),
    # abra cuts stack names to 45: a longer domain sharing the first 45 characters collides
    (dict(base=BASE45, stacks=[stack_name(LONGER45)]),
     "stack name %s collides with deployed stack %s" % (stack_name(WARM45), stack_name(LONGER45))),
    (dict(base=BASE45, envs={LONGER45: "gitea"}),
     "stack name %s collides with app %s, whose stack abra also cuts to" % (stack_name(WARM45), LONGER45)),
    (dict(domain=LONGER45, stacks=[stack_name(WARM45)]),
     "stack name %s collides with deployed stack" % stack_name(WARM45)),
    # swarm's name budgets from the recipe's own compose names (the requested domain keeps them)
    (dict(domain="warm-canon-keycloak.bench.canon.test", compose_names={"secrets": LONG_SECRET}),
     "secret name warm-canon-keycloak_bench_canon_test_a_really_long_secret_name_here_xx_v1 is 73 characters, "
     "over swarm's 64"),
    (dict(domain="warm-canon-keycloak.bench.canon.test", compose_names={"configs": [("nginx_conf_tmpl_long_name_x", "v12")]}),
     "config name warm-canon-keycloak_bench_canon_test_nginx_conf_tmpl_long_name_x_v12 is 68 characters, over swarm's 64"),
    (dict(domain="warm-canon-keycloak.bench.canon.test", compose_names={"services": ["s" * 27]}),
     "service name warm-canon-keycloak_bench_canon_test_%s is 64 characters, over swarm's 63" % ("s" * 27)),
    (dict(domain="warm-canon-keycloak.bench.canon.test", compose_names={"networks": ["internal-network-xyzabcdefghij"]}),
     "network name warm-canon-keycloak_bench_canon_test_internal-network-xyzabcdefghij is 67 characters, over swarm's 63"),
    # DNS and the certificate name, on a requested domain
    (dict(domain="Warm.bench.canon.test"), "has uppercase characters"),
    (dict(domain="-warm.bench.canon.test"), "invalid label '-warm'"),
    (dict(domain="warm-.bench.canon.test"), "invalid label 'warm-'"),
    (dict(domain="warm_canon.bench.canon.test"), "invalid label 'warm_canon'"),
    (dict(domain="warm;rm.bench.canon.test"), "invalid label 'warm;rm'"),
    (dict(domain="localhost"), "needs at least two labels"),
    (dict(domain="x" * 64 + ".test"), "over the 64-character certificate common name"),
    (dict(domain="a" * 30 + "." + "b" * 30 + ".test"), "is 66 characters, over the 64-character certificate"),
    # the base domain, and a base so long that neither name fits
    (dict(base="bench_canon.test"), "base domain 'bench_canon.test' has an invalid label 'bench_canon'"),
    (dict(base="x" * 64 + ".test"), "over DNS's 63"),
    (dict(base="b" * 47 + ".test"), "and the hashed fallback wc-"),
    # the readable name breaks a budget, and so does the fallback
    (dict(compose_names={"secrets": [("s" * 40, "v1")]}), "and the hashed fallback wc-"),
])
def test_refusals_name_the_rule(kw, expected):
    msg = refusal(**kw)
    assert msg.startswith("refusing warm domain")
    assert expected in msg, msg


def test_refusal_lists_every_reason():
    exc = pytest.raises(_warm.WarmRefused, plan, domain="warm-keycloak.bench.canon.test",
                        protected=["warm-keycloak.bench.canon.test"],
                        envs={"warm-keycloak.bench.canon.test": "keycloak"},
                        stacks=["warm-keycloak_bench_canon_test"]).value
    assert len(exc.reasons) == 3 and exc.domain == "warm-keycloak.bench.canon.test"


@pytest.mark.parametrize("recipe", ["Keycloak", "key/cloak", "../x", "a b", "-x", ""])
def test_bad_recipe_is_refused_before_anything(recipe):
    with pytest.raises(NameError_):
        plan(recipe=recipe)


# -- what is allowed ---------------------------------------------------------------------------
def test_the_live_keycloak_does_not_block_the_canonical():
    # The old collision: warm-keycloak.<base> is the live OIDC provider. The namespace avoids it.
    got = plan(protected=["warm-keycloak.bench.canon.test"],
               envs={"warm-keycloak.bench.canon.test": "keycloak"}, stacks=["warm-keycloak_bench_canon_test"])
    assert got.domain == "warm-canon-keycloak.bench.canon.test"
    assert not got.hashed and got.canonical and not got.reused


def test_the_canonicals_own_app_and_stack_are_reused():
    envs = {"warm-canon-keycloak.bench.canon.test": "keycloak"}
    got = plan(envs=envs, stacks=["warm-canon-keycloak_bench_canon_test"])
    assert got.domain == "warm-canon-keycloak.bench.canon.test" and got.reused
    # An .env whose recipe is unknown on the canonical name is taken as its own too.
    assert plan(envs=["warm-canon-keycloak.bench.canon.test"]).reused


def test_a_domain_the_registry_records_is_the_canonical():
    envs = {"kc.bench.canon.test": "keycloak"}
    assert "already used by an app" in refusal(domain="kc.bench.canon.test", envs=envs)
    got = plan(domain="kc.bench.canon.test", envs=envs, stacks=["kc_bench_canon_test"],
               canonical_domain="kc.bench.canon.test")
    assert got.reused and got.canonical


def test_hash_fallback_for_long_recipe_and_for_budgets():
    long_recipe = "a-recipe-with-a-rather-long-name"
    got = plan(recipe=long_recipe)
    assert got.hashed and re.match(r"^wc-[0-9a-f]{10}\.bench\.canon\.test$", got.domain)
    assert "fallback: warm-canon-%s.bench.canon.test does not fit" % long_recipe in got.checks[0]
    # keycloak's readable name fits DNS, but its long secret does not fit swarm's 64 there.
    got = plan(compose_names={"secrets": [("a_really_long_secret_name_xx", "v1")]})
    assert got.hashed and "secret name" in got.checks[0]
    assert not plan(compose_names={"secrets": [("db_password", "v1")]}).hashed


def test_determinism():
    a = plan(recipe="a-recipe-with-a-rather-long-name", server="s1.example.org")
    b = plan(recipe="a-recipe-with-a-rather-long-name", server="s1.example.org")
    c = plan(recipe="a-recipe-with-a-rather-long-name", server="s2.example.org")
    assert a.domain == b.domain != c.domain
    assert _warm.hashed_warm_domain("gitea", "s1", BASE) == _warm.hashed_warm_domain("gitea", "s1", BASE)
    assert plan(recipe="gitea", server="s1").domain == plan(recipe="gitea", server="s2").domain == \
        "warm-canon-gitea.bench.canon.test"


def test_env_domains_reads_every_server(tmp_path):
    s1, s2 = tmp_path / "servers" / "s1", tmp_path / "servers" / "s2"
    s1.mkdir(parents=True)
    s2.mkdir(parents=True)
    (s1 / "warm-keycloak.bench.canon.test.env").write_text("TYPE=keycloak:1.0.0+26\nDOMAIN=x\n")
    (s1 / "a.bench.canon.test.env").write_text("# comment\nRECIPE=gitea\n")
    (s2 / "b.bench.canon.test.env").write_text("DOMAIN=b\n")
    assert _warm.env_domains(str(tmp_path)) == {
        "a.bench.canon.test": "gitea", "b.bench.canon.test": None, "warm-keycloak.bench.canon.test": "keycloak"}
    assert _warm.env_domains(str(tmp_path), "s2") == {"b.bench.canon.test": None}


# -- properties -------------------------------------------------------------------------------
ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


def labels(max_len):
    """Valid DNS labels (and recipe names): letters and digits with inner hyphens."""
    inner = st.text(alphabet=ALNUM + "-", max_size=max_len - 2)
    return st.one_of(st.sampled_from(ALNUM),
                     st.builds(lambda a, m, z: a + m + z, st.sampled_from(ALNUM), inner, st.sampled_from(ALNUM)))


LABEL = labels(20)
# Mostly short bases (so both names get exercised), sometimes labels up to DNS's 63.
BASES = st.lists(st.one_of(LABEL, LABEL, LABEL, labels(63)), min_size=2, max_size=4).map(".".join)
# Recipe names up to 42 characters; half of them long enough that the readable name may not fit.
RECIPES = st.one_of(labels(42), st.integers(12, 42).flatmap(
    lambda n: st.text(alphabet=ALNUM, min_size=n, max_size=n)))
SERVICES = st.lists(st.from_regex(r"\A[a-z][a-z0-9_]{0,24}\Z"), max_size=3)
PROTECT = st.one_of(st.just(frozenset()), st.frozensets(st.integers(0, 4), max_size=2))

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
EXAMPLES_RUN = {"allocate": 0, "hashed": 0, "refused": 0}


def first_principles_ok(domain: str) -> bool:
    labels = domain.split(".")
    return (len(domain) <= 64 and len(domain) <= 253 and len(labels) >= 2
            and all(len(lab) <= 63 and _DNS_LABEL.match(lab) for lab in labels))


def fits_swarm(domain: str, services, secrets) -> bool:
    stack = domain.replace(".", "_")[:45]
    return (all(len(stack) + 1 + len(s) <= 63 for s in services)
            and all(len(stack) + 1 + len(n) + 1 + len(v) <= 64 for n, v in secrets))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(recipe=RECIPES, base=BASES, services=SERVICES, protect=PROTECT, server=LABEL)
def test_property_every_returned_domain_obeys_every_rule(recipe, base, services, protect, server):
    validate_recipe(recipe)
    EXAMPLES_RUN["allocate"] += 1
    readable = "warm-canon-%s.%s" % (recipe, base)
    hashed = _warm.hashed_warm_domain(recipe, server, base)
    pool = [readable, hashed, base, base.split(".", 1)[1], "warm-%s.%s" % (recipe, base)]
    protected = [pool[i] for i in sorted(protect)]
    secrets = [("db_password", "v1")]
    compose = {"services": services, "secrets": secrets}
    # Needed exactly when the readable name breaks DNS/cert, is cut by abra's 45, or a budget.
    need = not (first_principles_ok(readable) and len(readable) <= 45 and fits_swarm(readable, services, secrets))
    hash_fits = first_principles_ok(hashed) and fits_swarm(hashed, services, secrets)
    try:
        got = _warm.plan_warm_domain(recipe, server, base, protected=protected, existing_env_domains={},
                                     deployed_stacks=set(), compose_names=compose)
    except _warm.WarmRefused as exc:
        EXAMPLES_RUN["refused"] += 1
        event("refused: " + ("no name fits" if need and not hash_fits else "protected"))
        chosen = hashed if need else readable
        # A refusal is justified: no name fits, or the chosen one is (under) a protected domain.
        assert (need and not hash_fits) or any(chosen == p or chosen.endswith("." + p) for p in protected), str(exc)
        return
    d = got.domain
    assert first_principles_ok(d)
    assert fits_swarm(d, services, secrets)
    assert not is_protected(d, protected)
    assert not any(d == p or d.endswith("." + p) for p in protected)
    assert got.hashed == need
    assert d == (hashed if need else readable)
    if got.hashed:
        EXAMPLES_RUN["hashed"] += 1
    event("returned " + ("hashed" if got.hashed else "readable"))
    # Deterministic: asking again gives the same answer.
    assert _warm.allocate_warm_domain(recipe, server, base, protected=protected, existing_env_domains={},
                                      deployed_stacks=set(), compose_names=compose) == d


@settings(max_examples=200, deadline=None)
@given(recipe=RECIPES, base=BASES, other=labels(12))
def test_property_stack_collisions_are_always_caught(recipe, base, other):
    try:
        d = _warm.allocate_warm_domain(recipe, "s", base, protected=[], existing_env_domains={},
                                       deployed_stacks=set())
    except _warm.WarmRefused:
        return
    # Any other domain whose stack abra cuts to the same name, deployed or with an .env, blocks it.
    longer = d + "." + other if len(d) >= 45 else None
    for stacks, envs in (({stack_name(d)}, {}), (set(), {longer: "x"} if longer else {})):
        if not stacks and not envs:
            continue
        with pytest.raises(_warm.WarmRefused, match="collides"):
            _warm.allocate_warm_domain(recipe, "s", base, protected=[], existing_env_domains=envs,
                                       deployed_stacks=stacks)


def test_property_examples_ran():
    # Reported in the final summary; the property above must have explored both branches.
    if EXAMPLES_RUN["allocate"]:
        assert EXAMPLES_RUN["hashed"] > 0 and EXAMPLES_RUN["allocate"] - EXAMPLES_RUN["refused"] > EXAMPLES_RUN["hashed"]


# -- leases ------------------------------------------------------------------------------------
DOMAIN = "warm-canon-keycloak.bench.canon.test"


@pytest.fixture
def ledger(tmp_path):
    return _ledger.Ledger(str(tmp_path / "state"))


@pytest.fixture
def guardian():
    """A process that passes for run ``r-live``'s guardian."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", _ledger.GUARDIAN_MARK, "r-live"])
    yield proc
    proc.kill()
    proc.wait()


def age_lease(ledger, lease_id, seconds):
    path = _warm.lease_path(ledger, lease_id)
    rec = _ledger.read_json(path)
    rec["taken_epoch"] -= seconds
    _ledger.write_json_atomic(path, rec)


def test_lease_is_idempotent_and_exclusive(ledger):
    lid = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-a")
    assert re.match(r"^lease-[0-9a-f]{16}$", lid)
    assert _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-a") == lid
    assert _warm.take_lease_ex(ledger, DOMAIN, "keycloak", "default", "run-a") == (lid, False)
    with pytest.raises(_warm.LeaseRefused, match=r"is leased by run run-a \(run run-a is not in the ledger yet"):
        _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-b")
    rec = _warm.read_lease(ledger, lid)
    assert {k: rec[k] for k in ("domain", "stack", "recipe", "server", "holder", "kind", "run_id", "run_known")} == {
        "domain": DOMAIN, "stack": stack_name(DOMAIN), "recipe": "keycloak", "server": "default",
        "holder": "run-a", "kind": "run", "run_id": "run-a", "run_known": False}
    assert _warm.release_lease(ledger, lid) is True
    assert _warm.release_lease(ledger, lid) is False
    assert _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-b") != lid


def test_release_is_by_id_only(ledger):
    _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-a")
    for bad in (DOMAIN, "lease-*", "../locks/heavy", "lease-" + "0" * 15, ""):
        with pytest.raises(_warm.LeaseRefused, match="is not a lease id"):
            _warm.release_lease(ledger, bad)
    assert len(_warm.leases(ledger)) == 1


def test_live_run_holds_past_the_grace_and_dead_run_is_reaped(ledger, guardian):
    ledger.put({"run_id": "r-live", "status": "running", "guardian_pid": guardian.pid})
    ledger.put({"run_id": "r-dead", "status": "running", "guardian_pid": 999999999})
    live = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "r-live")
    dead = _warm.take_lease(ledger, "warm-canon-gitea.bench.canon.test", "gitea", "default", "r-dead")
    age_lease(ledger, live, 3600)
    with pytest.raises(_warm.LeaseRefused, match="leased by run r-live .run r-live is live"):
        _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "r-other")
    reaped = _teardown.reap_stale_leases(ledger)
    assert [r["lease_id"] for r in reaped] == [dead]
    assert "run r-dead is not live" in reaped[0]["reason"]
    assert _teardown.reap_stale_leases(ledger) == []
    guardian.kill()
    guardian.wait()
    assert [r["lease_id"] for r in _warm.reap_stale_leases(ledger)] == [live]


def test_stale_lease_is_taken_over(ledger):
    ledger.put({"run_id": "r-dead", "status": "running", "guardian_pid": 999999999})
    old = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "r-dead")
    age_lease(ledger, old, 3600)
    new = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "r-new")
    assert new != old and _warm.read_lease(ledger, old) is None


@pytest.mark.parametrize("record, age, holds, why", [
    (None, 0, True, "not in the ledger yet"),
    (None, 3600, False, "never appeared in the ledger"),
    ({"status": "running", "guardian_pid": None}, 0, True, "is starting"),
    ({"status": "running", "guardian_pid": None}, 3600, False, "is not live"),
    ({"status": "running", "guardian_pid": 999999999}, 0, False, "is not live"),
    ({"status": "finished", "guardian_pid": None}, 0, False, "is not live (status finished)"),
    ({"status": "kept", "guardian_pid": None}, 3600, True, "kept its deploys"),
])
def test_lease_liveness_table(ledger, record, age, holds, why):
    if record:
        ledger.put(dict(record, run_id="run-1"))
    lid = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-1")
    age_lease(ledger, lid, age)
    got, reason = _warm.lease_state(ledger, _warm.read_lease(ledger, lid))
    assert (got, why in reason) == (holds, True), reason


def test_a_known_run_forgotten_by_teardown_frees_its_lease_at_once(ledger):
    ledger.put({"run_id": "run-1", "status": "running", "guardian_pid": None})
    lid = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-1")
    ledger.forget("run-1")
    assert [r["lease_id"] for r in _teardown.reap_stale_leases(ledger)] == [lid]


def test_stack_name_collision_between_leases_and_with_cold_runs(ledger):
    _warm.take_lease(ledger, WARM45, "keycloak", "default", "run-a")
    with pytest.raises(_warm.LeaseRefused, match=r"stack name %s collides with run run-a's lease on %s"
                       % (re.escape(stack_name(WARM45)), re.escape(WARM45))):
        _warm.take_lease(ledger, LONGER45, "gitea", "default", "run-b")
    ledger.put({"run_id": "cold-1", "status": "running", "guardian_pid": None,
                "domains": {"base": "kc-abc123.bench.canon.test"}})
    with pytest.raises(_warm.LeaseRefused, match="claimed by run cold-1"):
        _warm.take_lease(ledger, "kc-abc123.bench.canon.test", "keycloak", "default", "run-c")


def test_bad_inputs_are_refused(ledger):
    with pytest.raises(NameError_):
        _warm.take_lease(ledger, "Bad..domain", "keycloak", "default", "run-a")
    with pytest.raises(NameError_):
        _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "registry:default/keycloak")


# -- concurrency: real processes, real flock -------------------------------------------------
def _contend(state_dir, recipe, run_id, barrier, out, pause, use_mutex):
    import contextlib

    from ansible_collections.coopcloud.canon.plugins.module_utils import _ledger as L
    from ansible_collections.coopcloud.canon.plugins.module_utils import _warm as W
    real_write = W.write_json_atomic

    def slow_write(path, data, mode=0o644):
        time.sleep(pause)      # widen the window between "nobody holds it" and the write
        real_write(path, data, mode)

    W.write_json_atomic = slow_write
    if not use_mutex:
        L.Ledger.mutex = lambda self: contextlib.nullcontext()
    ledger = L.Ledger(state_dir)
    barrier.wait(timeout=20)
    try:
        domain = W.allocate_warm_domain(recipe, "default", BASE, protected=["warm-keycloak." + BASE],
                                        existing_env_domains={}, deployed_stacks=set())
        lid = W.take_lease(ledger, domain, recipe, "default", run_id)
        out.put((run_id, "ok", domain, lid))
    except (W.LeaseRefused, W.WarmRefused) as exc:
        out.put((run_id, "refused", str(exc), None))


def contend(state_dir, recipes, pause=0.15, use_mutex=True):
    ctx = multiprocessing.get_context("fork")
    barrier, out = ctx.Barrier(len(recipes)), ctx.Queue()
    procs = [ctx.Process(target=_contend, args=(state_dir, r, "run-%d" % i, barrier, out, pause, use_mutex))
             for i, r in enumerate(recipes)]
    for p in procs:
        p.start()
    results = [out.get(timeout=30) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    return results


def live_leases_by_stack(ledger):
    seen = {}
    for lease in _warm.leases(ledger):
        if _warm.lease_state(ledger, lease)[0]:
            seen.setdefault(lease["stack"], []).append(lease["run_id"])
    return seen


def test_concurrent_allocations_of_one_recipe_give_one_lease(tmp_path):
    state = str(tmp_path / "state")
    results = contend(state, ["keycloak"] * 8)
    winners = [r for r in results if r[1] == "ok"]
    losers = [r for r in results if r[1] == "refused"]
    assert len(winners) == 1 and len(losers) == 7
    winner = winners[0][0]
    for _run, _, msg, _ in losers:
        assert msg.startswith("%s is leased by run %s (" % (DOMAIN, winner)), msg
    seen = live_leases_by_stack(_ledger.Ledger(state))
    assert seen == {stack_name(DOMAIN): [winner]}


def test_concurrent_allocations_of_different_recipes_all_succeed_apart(tmp_path):
    state = str(tmp_path / "state")
    recipes = ["keycloak", "gitea", "mumble", "discourse", "bluesky-pds", "mattermost-lts",
               "a-recipe-with-a-rather-long-name", "a-recipe-with-a-rather-long-name-2"]
    results = contend(state, recipes)
    assert all(r[1] == "ok" for r in results), results
    domains = [r[2] for r in results]
    assert len(set(domains)) == 8 and len({stack_name(d) for d in domains}) == 8
    assert all(len(runs) == 1 for runs in live_leases_by_stack(_ledger.Ledger(state)).values())


def test_the_race_is_real_without_the_mutex(tmp_path):
    # Proves the test above can fail: with the flock taken away, several processes win.
    results = contend(str(tmp_path / "state"), ["keycloak"] * 8, pause=0.3, use_mutex=False)
    assert sum(r[1] == "ok" for r in results) > 1


# -- the canonical registry ------------------------------------------------------------------
V1, V2, V3 = "1.0.0+26.0.0", "1.1.0+26.1.0", "1.2.0+26.2.0"


def green(version, recipe="keycloak", server="default", outcome="pass"):
    return {"run_id": "cold-%s" % version.split("+")[0], "recipe": recipe, "server": server,
            "outcome": outcome, "versions": {"head": version, "previous": None}}


@pytest.fixture
def promoted(ledger):
    lid = _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-a")
    _warm.record_deploying(ledger, "default", "keycloak", V1, "c1", domain=DOMAIN, lease=lid)
    _warm.record_promoted(ledger, "default", "keycloak", V1, "c1", green(V1))
    assert _warm.release_lease(ledger, lid)      # the run ends; the registry's hold stays
    return ledger


def test_registry_starts_empty(ledger):
    rec = _warm.read_canonical(ledger, "default", "keycloak")
    assert rec["status"] == "none" and rec["domain"] is None and rec["version"] is None
    assert not os.path.exists(_warm.registry_path(ledger, "default", "keycloak"))


def test_registry_schema_and_hold(promoted):
    ledger = promoted
    path = os.path.join(ledger.state_dir, "canon", "default", "keycloak.json")
    rec = json.load(open(path))
    assert set(rec) == {"recipe", "server", "domain", "version", "commit", "status", "updated", "lease",
                        "target", "last_known_good", "failure", "history"}
    assert (rec["status"], rec["version"], rec["commit"], rec["domain"]) == ("live", V1, "c1", DOMAIN)
    assert rec["last_known_good"]["version"] == V1 and rec["last_known_good"]["cold_run"] == "cold-1.0.0"
    assert [e["event"] for e in rec["history"]] == ["deploying", "promoted"]
    hold = _warm.read_lease(ledger, rec["lease"])
    assert hold["holder"] == "registry:default/keycloak" and hold["kind"] == "registry" and hold["run_id"] is None
    # The hold outlives runs: never reaped; blocks other recipes; this recipe's runs may work on it.
    age_lease(ledger, rec["lease"], 10 ** 6)
    assert rec["lease"] not in [r["lease_id"] for r in _warm.reap_stale_leases(ledger)]
    with pytest.raises(_warm.LeaseRefused, match="held by the registry:default/keycloak"):
        _warm.take_lease(ledger, DOMAIN, "gitea", "default", "run-g")
    assert _warm.take_lease(ledger, DOMAIN, "keycloak", "default", "run-next")


@pytest.mark.parametrize("cold, why", [
    (None, "no cold result"),
    (green(V2, outcome="fail"), "is 'fail', not pass"),
    (green(V2, outcome="incomplete"), "is 'incomplete', not pass"),
    (green(V3), "was green for %s, not for %s" % (V3, V2)),
    (green(V2, recipe="gitea"), "is of recipe gitea, not keycloak"),
    (green(V2, server="other"), "ran on server other, not default"),
    ({"outcome": "pass", "versions": {}}, "names no head version"),
])
def test_advance_without_a_green_cold_run_of_that_version_is_refused(promoted, cold, why):
    before = _warm.read_canonical(promoted, "default", "keycloak")
    with pytest.raises(_warm.RegistryRefused, match="refusing to promote canonical default/keycloak to %s: .*%s"
                       % (re.escape(V2), re.escape(why))):
        _warm.record_promoted(promoted, "default", "keycloak", V2, "c2", cold)
    assert _warm.read_canonical(promoted, "default", "keycloak") == before


def test_may_advance_table():
    canon = {"recipe": "keycloak", "server": "default", "version": V2}
    assert _warm.may_advance(canon, green(V3))
    assert _warm.may_advance(canon, green(V2))          # re-promoting the live release is no advance, but harmless
    assert not _warm.may_advance(canon, green(V1))      # never back
    assert not _warm.may_advance(canon, green(V3, outcome="fail"))
    assert not _warm.may_advance(canon, None)
    assert not _warm.may_advance(canon, {"outcome": "pass", "versions": {"head": "latest"}})
    assert "never moves back" in _warm.advance_refusal(canon, green(V1))


def test_promotion_is_idempotent_and_advances(promoted):
    assert _warm.record_promoted(promoted, "default", "keycloak", V1, "c1", green(V1))[1] is False
    rec, changed = _warm.record_promoted(promoted, "default", "keycloak", V2, "c2", green(V2))
    assert changed and rec["version"] == V2 and rec["last_known_good"]["version"] == V2


def test_failed_keeps_the_previous_version_and_says_so(promoted):
    _warm.record_deploying(promoted, "default", "keycloak", V2, "c2")
    rec = _warm.read_canonical(promoted, "default", "keycloak")
    assert rec["status"] == "deploying" and rec["version"] == V1 and rec["target"]["version"] == V2
    rec, changed = _warm.record_failed(promoted, "default", "keycloak", "swarm rolled the update back")
    assert changed and rec["status"] == "failed" and rec["version"] == V1 and rec["commit"] == "c1"
    assert rec["last_known_good"]["version"] == V1
    assert rec["failure"]["message"] == ("canonical default/keycloak stays at %s: the advance to %s failed: "
                                         "swarm rolled the update back" % (V1, V2))
    assert _warm.record_failed(promoted, "default", "keycloak", "swarm rolled the update back")[1] is False
    assert rec["history"][-1] == dict(rec["history"][-1], event="failed", version=V2, kept_version=V1)


def test_history_keeps_the_last_twenty(promoted):
    for i in range(15):
        _warm.record_deploying(promoted, "default", "keycloak", V2, "c2")
        _warm.record_failed(promoted, "default", "keycloak", "attempt %d" % i)
    hist = _warm.read_canonical(promoted, "default", "keycloak")["history"]
    assert len(hist) == 20 and hist[-1]["reason"] == "attempt 14"


def test_registry_refusals(ledger):
    with pytest.raises(_warm.RegistryRefused, match="has no domain yet"):
        _warm.record_deploying(ledger, "default", "keycloak", V1)
    lid = _warm.take_lease(ledger, "other.bench.canon.test", "keycloak", "default", "run-a")
    with pytest.raises(_warm.RegistryRefused, match="does not hold %s" % re.escape(DOMAIN)):
        _warm.record_deploying(ledger, "default", "keycloak", V1, domain=DOMAIN, lease=lid)
    with pytest.raises(NameError_):
        _warm.record_deploying(ledger, "default", "keycloak", "latest", domain=DOMAIN)
    with pytest.raises(NameError_):
        _warm.read_canonical(ledger, "default", "../etc")
    # Another recipe's run holding the domain keeps the registry off it.
    _warm.take_lease(ledger, DOMAIN, "gitea", "default", "run-g")
    with pytest.raises(_warm.LeaseRefused, match="leased by run run-g"):
        _warm.record_deploying(ledger, "default", "keycloak", V1, domain=DOMAIN)


def test_dry_run_writes_nothing(ledger):
    rec, changed = _warm.record_deploying(ledger, "default", "keycloak", V1, domain=DOMAIN, dry_run=True)
    assert changed and rec["status"] == "deploying"
    assert not os.path.exists(_warm.registry_path(ledger, "default", "keycloak")) and _warm.leases(ledger) == []


# -- the modules, run as Ansible runs them -------------------------------------------------------
def run_module(name, args, check=False, tmp_path=None):
    args = dict(args, _ansible_check_mode=check)
    path = tmp_path / ("args-%s.json" % time.monotonic_ns())
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".collections"))
    res = subprocess.run([sys.executable, os.path.join(ROOT, "plugins", "modules", name + ".py"), str(path)],
                         capture_output=True, text=True, env=env, timeout=60)
    return json.loads(res.stdout)


@pytest.fixture
def module_env(tmp_path):
    abra = tmp_path / "abra"
    (abra / "servers" / "default").mkdir(parents=True)
    (abra / "servers" / "default" / "warm-keycloak.bench.canon.test.env").write_text("TYPE=keycloak:1.0.0+26\n")
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\n[ \"$*\" = 'stack ls --format {{.Name}}' ] || exit 3\n"
                      "echo warm-keycloak_bench_canon_test\n")
    docker.chmod(0o755)
    return dict(recipe="keycloak", base_domain=BASE, state_dir=str(tmp_path / "state"), abra_dir=str(abra),
                docker_bin=str(docker))


def test_warm_domain_module_states(module_env, tmp_path):
    args = dict(module_env, run_id="run-a")
    check = run_module("warm_domain", args, check=True, tmp_path=tmp_path)
    assert check["changed"] and check["lease_id"] is None and check["domain"] == DOMAIN
    assert not os.path.isdir(os.path.join(module_env["state_dir"], "leases"))
    real = run_module("warm_domain", args, tmp_path=tmp_path)
    assert real["changed"] and real["lease_id"] and not real["reused"] and real["checks"]
    again = run_module("warm_domain", args, tmp_path=tmp_path)
    assert not again["changed"] and again["lease_id"] == real["lease_id"] and again["reused"]
    other = run_module("warm_domain", dict(module_env, run_id="run-b"), tmp_path=tmp_path)
    assert other["failed"] and other["msg"].startswith("%s is leased by run run-a" % DOMAIN)
    live = run_module("warm_domain", dict(args, domain="warm-keycloak.bench.canon.test",
                                          protected_domains=["warm-keycloak.bench.canon.test"]), tmp_path=tmp_path)
    assert live["failed"] and "warm-keycloak.bench.canon.test is protected (live service)" in live["msg"]
    # A protected domain is refused before `docker stack ls` runs (a bad input runs no command);
    # unprotected, the same domain is refused for its deployed stack.
    taken = run_module("warm_domain", dict(args, domain="warm-keycloak.bench.canon.test"), tmp_path=tmp_path)
    assert any("collides with deployed stack warm-keycloak_bench_canon_test" in r for r in taken["reasons"])
    rel = dict(module_env, state="released", lease_id=real["lease_id"])
    assert run_module("warm_domain", rel, check=True, tmp_path=tmp_path)["changed"]
    assert run_module("warm_domain", rel, tmp_path=tmp_path)["changed"]
    assert not run_module("warm_domain", rel, tmp_path=tmp_path)["changed"]


def test_canon_registry_module_states(module_env, tmp_path):
    base = dict(state_dir=module_env["state_dir"], recipe="keycloak")
    assert run_module("canon_registry", base, tmp_path=tmp_path)["canonical"]["status"] == "none"
    dep = dict(base, state="deploying", version=V1, domain=DOMAIN)
    assert run_module("canon_registry", dep, check=True, tmp_path=tmp_path)["changed"]
    assert run_module("canon_registry", base, tmp_path=tmp_path)["canonical"]["status"] == "none"
    assert run_module("canon_registry", dep, tmp_path=tmp_path)["changed"]
    assert not run_module("canon_registry", dep, tmp_path=tmp_path)["changed"]
    prom = dict(base, state="promoted", version=V1, commit="c1")
    res = run_module("canon_registry", prom, tmp_path=tmp_path)
    assert res["failed"] and "needs cold_result" in res["msg"]
    cold = tmp_path / "result.json"
    cold.write_text(json.dumps(green(V1, outcome="fail")))
    res = run_module("canon_registry", dict(prom, cold_result=str(cold)), tmp_path=tmp_path)
    assert res["failed"] and "is 'fail', not pass" in res["msg"]
    cold.write_text(json.dumps(green(V1)))
    res = run_module("canon_registry", dict(prom, cold_result=str(cold), _ansible_diff=True), tmp_path=tmp_path)
    assert res["changed"] and res["canonical"]["status"] == "live" and res["diff"]["before"]["status"] == "deploying"
    assert res["message"] == "canonical default/keycloak on %s: live at %s" % (DOMAIN, V1)
    assert not run_module("canon_registry", dict(prom, cold_result=str(cold)), tmp_path=tmp_path)["changed"]
    fail = run_module("canon_registry", dict(base, state="failed", version=V2, reason="rolled back"), tmp_path=tmp_path)
    assert fail["changed"] and fail["canonical"]["version"] == V1
    assert fail["message"] == "canonical default/keycloak stays at %s: the advance to %s failed: rolled back" % (V1, V2)
