"""Recipe roles state the real recipes; what only the bench's stand-ins do lives in the bench
inventory (``canon_server_recipe_settings``) and is merged over the role on the bench (issue 17)."""
import json
import os

import pytest
import yaml

from ansible_collections.coopcloud.canon.plugins.module_utils import _settings

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# recipes with a real Co-op Cloud counterpart (the canaries exist only on the bench)
REAL = ["custom-html", "gitea", "discourse", "keycloak", "mattermost-lts", "mumble", "bluesky-pds"]


def role_settings(recipe: str) -> dict:
    with open(os.path.join(ROOT, "roles", recipe.replace("-", "_"), "defaults", "main.yml")) as fh:
        return (yaml.safe_load(fh) or {}).get("canon_recipe_settings") or {}


def bench_settings() -> dict:
    with open(os.path.join(ROOT, "inventory", "bench", "group_vars", "bench.yml")) as fh:
        return (yaml.safe_load(fh) or {}).get("canon_server_recipe_settings") or {}


def on_the_bench(recipe: str) -> dict:
    # settings.yml: role | combine(server's, recursive=true) | combine(overrides); top-level keys here
    return _settings.resolve(dict(role_settings(recipe), **(bench_settings().get(recipe) or {})), recipe)


@pytest.mark.parametrize("recipe", REAL)
def test_recipe_roles_carry_no_stand_in_page_or_protocol(recipe):
    settings = role_settings(recipe)
    assert "<h1>" not in str(settings.get("content_marker", "")), recipe
    for probe in settings.get("readiness") or []:
        assert not probe.get("send") and not probe.get("expect"), (recipe, probe)


@pytest.mark.parametrize("recipe, marker", [
    ("custom-html", "<h1>custom-html</h1>"), ("gitea", "<h1>gitea</h1>"), ("discourse", "<h1>discourse</h1>"),
    ("keycloak", "<h1>keycloak</h1>"), ("mattermost-lts", "<h1>mattermost-lts</h1>"),
    ("bluesky-pds", '"did":"did:web:'),
])
def test_the_bench_still_checks_each_stand_ins_page(recipe, marker):
    assert on_the_bench(recipe)["content_marker"] == marker


def test_the_bench_mumble_probe_speaks_the_stand_ins_protocol_and_the_real_one_a_tls_handshake():
    [bench] = on_the_bench("mumble")["readiness"]
    assert (bench["type"], bench["port"], bench["send"], bench["expect"]) == ("tcp", 64738, "hello\n", "channels:")
    [real] = _settings.resolve(role_settings("mumble"), "mumble")["readiness"]
    # the real murmur speaks TLS on its control port: the handshake completes, three times in a row
    assert (real["type"], real["port"], real["send"], real["expect"], real["stable"]) == ("tls", 64738, "", "", 3)


def test_every_server_setting_names_a_recipe_with_a_role_and_a_valid_setting():
    for recipe, settings in bench_settings().items():
        assert os.path.isdir(os.path.join(ROOT, "roles", recipe.replace("-", "_"))), recipe
        _settings.resolve(settings, recipe)   # raises on an unknown key or a wrong type


# ---------------------------------------------------------------- the bench's effective settings

RECORDED = os.path.join(ROOT, "tests", "fixtures", "bench-effective-settings.json")
BENCH_RECIPES = sorted(d for d in os.listdir(os.path.join(ROOT, "roles", "bench", "files", "recipes"))
                       if os.path.isdir(os.path.join(ROOT, "roles", "bench", "files", "recipes", d)))


def effective_on_the_bench(recipe: str) -> dict:
    """What roles/lifecycle/tasks/settings.yml computes on the bench, with Ansible's own combine:
    the role, the bench inventory's canon_server_recipe_settings (recursive), the sweep's
    canon_enrolled settings (passed as canon_settings_overrides), then the schema's defaults."""
    from ansible.plugins.filter.core import combine

    with open(os.path.join(ROOT, "inventory", "bench", "group_vars", "bench.yml")) as fh:
        inventory = yaml.safe_load(fh) or {}
    enrolled = next((e.get("settings") or {} for e in inventory.get("canon_enrolled") or []
                     if isinstance(e, dict) and e.get("recipe") == recipe), {})
    merged = combine(role_settings(recipe), (inventory.get("canon_server_recipe_settings") or {}).get(recipe) or {},
                     recursive=True)
    return _settings.resolve(combine(merged, enrolled, recursive=True), recipe)


def test_the_bench_runs_every_recipe_with_exactly_the_settings_recorded_before_the_roles_changed():
    """Issue 17 item 7: the roles now state the real apps and the bench inventory the stand-ins;
    on the bench the effective settings are those recorded from main before the move."""
    with open(RECORDED) as fh:
        recorded = json.load(fh)["recipes"]
    assert sorted(recorded) == BENCH_RECIPES
    for recipe in BENCH_RECIPES:
        assert effective_on_the_bench(recipe) == recorded[recipe], recipe


@pytest.mark.parametrize("recipe, key, stand_in", [
    # red if a stand-in fact crept back into a role, or left the bench's inventory
    ("gitea", "health_path", "/"),
    ("discourse", "health_path", "/"),
    ("mattermost-lts", "health_path", "/"),
    ("keycloak", "health_path", "/"),
    ("keycloak", "identity_path", "/realms/master"),
    ("bluesky-pds", "content_marker", '"did":"did:web:'),
    ("bluesky-pds", "identity_path", "/xrpc/_health"),
])
def test_a_stand_in_fact_lives_in_the_bench_inventory_not_in_the_role(recipe, key, stand_in):
    assert _settings.resolve(role_settings(recipe), recipe)[key] != stand_in
    assert bench_settings()[recipe][key] == stand_in


def test_the_mattermost_dump_format_is_the_stand_ins():
    # '-- file: <table>.tbl' sections and '-- dump complete' are what the bench db writes, not pg_dump
    assert "backup_verify" not in role_settings("mattermost-lts")
    assert "-- dump complete" in " ".join(bench_settings()["mattermost-lts"]["backup_verify"]["command"])


def test_every_bench_inventory_reads_the_same_stand_in_settings():
    # bench-two and bench-ssh link their group variables to the bench's: one place for the stand-ins
    bench = os.path.realpath(os.path.join(ROOT, "inventory", "bench", "group_vars", "bench.yml"))
    for other in ("bench-two", "bench-ssh"):
        assert os.path.realpath(os.path.join(ROOT, "inventory", other, "group_vars", "canon_servers.yml")) == bench
