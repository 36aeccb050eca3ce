"""Recipe roles state the real recipes; what only the bench's stand-ins do lives in the bench
inventory (``canon_server_recipe_settings``) and is merged over the role on the bench (issue 17)."""
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


def test_the_bench_mumble_probe_speaks_the_stand_ins_protocol_and_the_real_one_only_connects():
    [bench] = on_the_bench("mumble")["readiness"]
    assert (bench["type"], bench["port"], bench["send"], bench["expect"]) == ("tcp", 64738, "hello\n", "channels:")
    [real] = _settings.resolve(role_settings("mumble"), "mumble")["readiness"]
    assert (real["type"], real["port"], real["send"], real["expect"], real["stable"]) == ("tcp", 64738, "", "", 3)


def test_every_server_setting_names_a_recipe_with_a_role_and_a_valid_setting():
    for recipe, settings in bench_settings().items():
        assert os.path.isdir(os.path.join(ROOT, "roles", recipe.replace("-", "_"))), recipe
        _settings.resolve(settings, recipe)   # raises on an unknown key or a wrong type
