"""Whether a rung runs (roles/lifecycle/tasks/tier.yml): the rule in Python
(module_utils/_ladder.py ``tier_gate``), asked by the role through the ``tier_gate`` filter in
one task. Table-driven here; in the slow test ``ansible-playbook`` runs the role's tier.yml
itself (one host per case, no server)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.coopcloud.canon.plugins.filter.tier_gate import tier_gate as gate_filter
from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder
from localplay import run_play

PRE = {"name": "preflight", "outcome": "pass"}


@pytest.mark.parametrize("tiers, tier, na, want", [
    ([PRE], "install", {}, None),
    ([PRE, {"name": "install", "outcome": "pass"}], "upgrade", {"install": "x"}, None),
    ([PRE, {"name": "install", "outcome": "not-applicable"}], "upgrade", {}, None),
    ([PRE, {"name": "install", "outcome": "fail"}], "upgrade", {},
     {"outcome": "skipped", "intended": False, "reason": "blocked: install did not pass"}),
    ([{"name": "preflight", "outcome": "infra"}], "install", {},
     {"outcome": "skipped", "intended": False, "reason": "blocked: preflight did not pass"}),
    # the first rung that did not pass is named, and a block wins over a declaration
    ([PRE, {"name": "install", "outcome": "harness-error"}, {"name": "upgrade", "outcome": "skipped"}],
     "backup_restore", {"backup_restore": "no data"},
     {"outcome": "skipped", "intended": False, "reason": "blocked: install did not pass"}),
    ([PRE, {"name": "install", "outcome": "pass"}], "backup_restore", {"backup_restore": "no data kept"},
     {"outcome": "not-applicable", "intended": True, "reason": "no data kept"}),
    ([PRE], "upgrade", {"upgrade": ""}, None),
])
def test_the_gate(tiers, tier, na, want):
    got = _ladder.tier_gate(tiers, tier, na, 12.5)
    if want is None:
        assert got is None
        assert gate_filter(tiers, tier, na, "12.5") == {}
    else:
        assert got == dict(want, name=tier, duration=0, started_epoch=12.5)
        assert gate_filter(tiers, tier, na, "12.5") == got


def test_the_filter_takes_what_ansible_passes():
    assert gate_filter([], "install") == {}
    assert gate_filter([PRE], "lint", None, None) == {}


@pytest.mark.slow
def test_the_roles_tier_file_records_as_the_rule_says(tmp_path):
    lint_ok = {"lint": [], "lint_results": [{"rule": "R001", "outcome": "pass"}]}
    cases = {
        "runs": ([PRE], "lint", {}, lint_ok, ("pass", True, "")),
        "fails": ([PRE], "lint", {}, {"lint": [{"message": "R001 bad"}], "lint_results": []}, ("fail", None, None)),
        "blocked": ([PRE, {"name": "install", "outcome": "fail"}], "lint", {"lint": "n/a"}, lint_ok,
                    ("skipped", False, "blocked: install did not pass")),
        "na": ([PRE], "lint", {"lint": "not ours"}, lint_ok, ("not-applicable", True, "not ours")),
        # the custom tier's own decision: no suite is not applicable; a broken template, the harness's error
        "nosuite": ([PRE], "custom", {}, {}, ("not-applicable", True, "no custom suite in /nonexistent/custom-html")),
        "broken": ([PRE], "custom", {}, {}, ("harness-error", None, None)),
    }
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    "canon_tiers": tiers, "canon_tier": tier, "canon_settings": {"not_applicable": na},
                    "canon_recipe_info": info, "canon_results_dir": str(tmp_path),
                    "canon_run": {"run_id": name, "domains": {}}, "canon_proxy_url": "", "canon_recipe": "custom-html",
                    "canon_suites_dir": "{{ canon_no_such_variable }}" if name == "broken" else "/nonexistent"}
             for name, (tiers, tier, na, info, _w) in cases.items()}
    for name in cases:
        (tmp_path / name).mkdir()
    play = [{"name": "one rung", "hosts": "all", "gather_facts": False, "tasks": [
        # in the role, as main.yml includes it (the tiers' files import the role's shared tasks by role_path)
        {"name": "the rung", "ansible.builtin.include_role": {"name": "coopcloud.canon.lifecycle", "tasks_from": "tier.yml"}},
        {"name": "keep", "ansible.builtin.copy": {
            "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "content": "{{ canon_tiers | to_json }}"}},
    ]}]
    run_play(tmp_path, hosts, play)
    for name, (tiers, tier, _na, _i, (outcome, intended, reason)) in cases.items():
        got = json.loads((tmp_path / (name + ".json")).read_text())
        assert got[:len(tiers)] == tiers and len(got) == len(tiers) + 1, (name, got)
        rec = got[-1]
        assert rec["name"] == tier and rec["outcome"] == outcome, (name, rec)
        assert isinstance(rec["started_epoch"], float) and rec["started_epoch"] > 1.7e9, (name, rec)
        if intended is not None:
            assert rec["intended"] is intended and rec["reason"] == reason, (name, rec)
        ran = (tmp_path / name / "tier").is_file()
        assert ran == (name in ("runs", "fails", "nosuite", "broken")), name
    assert "R001 bad" in json.loads((tmp_path / "fails.json").read_text())[-1]["error"]
    broken = json.loads((tmp_path / "broken.json").read_text())[-1]
    assert broken["harness_error"] == "template" and broken["task"] == "custom - find the recipe's suite", broken
    assert "canon_no_such_variable" in broken["error"], broken
