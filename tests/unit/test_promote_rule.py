"""The promote rule, written once in Python (module_utils/_warm.py) and asked by the promote role.

Whether a promote may go on (``advance_refusal``: a green cold run of exactly this release, of
this recipe on this server, never back) and how it gets there (``promote_mode``: fresh, advance,
current, verify) are decided in Python; the role's Jinja only asks, through the filters
``promote_refusal`` and ``promote_mode``. Table-driven here; the role's own two tasks are checked
structurally and, in the slow test, run by ``ansible-playbook`` (one host per case, no server).
"""
from __future__ import annotations

import base64
import json
import os

import pytest
import yaml

from ansible_collections.coopcloud.canon.plugins.filter.promote_mode import promote_mode as mode_filter
from ansible_collections.coopcloud.canon.plugins.filter.promote_refusal import promote_refusal as refusal_filter
from ansible_collections.coopcloud.canon.plugins.module_utils import _warm
from localplay import run_play

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROMOTE_TASKS = os.path.join(ROOT, "roles", "promote", "tasks")
V1, V2, V3 = "1.0.0+1.36", "1.1.0+1.37", "1.2.0+1.38"


def green(version, recipe="custom-html", server="default", outcome="pass"):
    return {"run_id": "cold-%s" % version.split("+")[0], "recipe": recipe, "server": server,
            "outcome": outcome, "versions": {"head": version, "upgrade_base": None}}


def canonical(version=None, status="live", **extra):
    rec = dict(_warm.empty_canonical("default", "custom-html"), version=version, status=status if version else "none")
    rec.update(extra)
    return rec


UNVERIFIED = canonical(V3, status="failed", failure={"verified": False, "kept_version": V3},
                       last_known_good={"version": V1})

# (canonical, cold result, release, the refusal's words or '' for none)
REFUSALS = [
    (canonical(), green(V2), V2, ""),
    (canonical(V1), green(V2), V2, ""),
    (canonical(V2), green(V2), V2, ""),                            # the live release again: harmless
    (canonical(V1), green(V2), V3, "was green for %s, not for %s" % (V2, V3)),
    (canonical(V1), green(V2, outcome="fail"), V2, "is 'fail', not pass"),
    (canonical(V1), green(V2, recipe="gitea"), V2, "is of recipe gitea, not custom-html"),
    (canonical(V1), green(V2, server="other"), V2, "ran on server other, not default"),
    (canonical(V3), green(V2), V2, "%s is older than the canonical's %s: a canonical never moves back" % (V2, V3)),
    (UNVERIFIED, green(V2), V2, ""),                               # the floor is the last known good
    (canonical(V1), {"outcome": "pass", "versions": {}}, V2, "names no head version"),
    (canonical(V1), {}, V2, "no cold result"),
    (canonical(V1), [green(V2)], V2, "not a result.json"),
    (canonical(V1), dict(green(V2), versions=[V2]), V2, "not a result.json"),
]


@pytest.mark.parametrize("record,cold,release,words", REFUSALS)
def test_the_filter_says_the_rule_canon_registry_records_by(record, cold, release, words):
    said = refusal_filter(record, cold, release)
    assert (words in said) if words else said == ""
    assert said == (_warm.advance_refusal(record, cold, release) or "")


def test_an_empty_release_is_the_cold_runs_head():
    assert refusal_filter(canonical(V1), green(V2), "") == ""
    assert "never moves back" in refusal_filter(canonical(V3), green(V2))


# (canonical, what the warm domain runs, release, mode)
MODES = [
    (canonical(), {"deployed": False}, V2, "fresh"),
    (canonical(V1), {"deployed": False, "version": None}, V2, "fresh"),     # registered, but gone from the swarm
    (canonical(V1), {"deployed": True, "version": V1}, V2, "advance"),
    (canonical(V2), {"deployed": True, "version": V2}, V2, "current"),
    (canonical(V2, status="deploying"), {"deployed": True, "version": V2}, V2, "verify"),
    (UNVERIFIED, {"deployed": True, "version": V3}, V3, "verify"),          # an interrupted advance's release
    (canonical(), {"deployed": True, "version": V2}, V2, "verify"),         # deployed, never promoted
]


@pytest.mark.parametrize("record,app,release,mode", MODES)
def test_promote_mode_table(record, app, release, mode):
    assert _warm.promote_mode(record, app, release) == mode
    assert mode_filter(record, app, release) == mode
    assert mode in _warm.PROMOTE_MODES


# -- the role asks, it does not decide -----------------------------------------------------
def role_tasks() -> list:
    with open(os.path.join(PROMOTE_TASKS, "main.yml")) as fh:
        top = yaml.safe_load(fh)
    [block] = [t for t in top if "block" in t]
    return block["block"]


def named(tasks: list, prefix: str) -> dict:
    [task] = [t for t in tasks if t["name"].startswith(prefix)]
    return task


def test_the_role_asks_the_filters():
    tasks = role_tasks()
    gate = named(tasks, "Only a green cold run of this release may promote it")
    assert "coopcloud.canon.promote_refusal(" in gate["vars"]["canon_promote_refusal"]
    assert gate["ansible.builtin.assert"]["that"] == "canon_promote_refusal == ''"
    decide = named(tasks, "Decide how to get there")
    assert "coopcloud.canon.promote_mode(" in decide["ansible.builtin.set_fact"]["canon_promote"]
    # the refusal comes before anything is leased or deployed, and after the registry is read
    order = [t["name"] for t in tasks]
    assert order.index("What the canonical is now") < order.index(gate["name"]) \
        < order.index("The canonical's warm domain (collision-free, leased)") < order.index(decide["name"])


def test_no_task_file_of_the_role_restates_the_rule():
    for name in os.listdir(PROMOTE_TASKS):
        with open(os.path.join(PROMOTE_TASKS, name)) as fh:
            text = fh.read()
        for restated in (".outcome == 'pass'", "versions.head", "'fresh' if", "'verify'))"):
            assert restated not in text, (name, restated)


@pytest.mark.slow
def test_the_roles_tasks_refuse_and_decide_as_the_rule_says(tmp_path):
    cases = {}
    for i, (record, cold, release, words) in enumerate(REFUSALS[:9]):
        cases["refusal%d" % i] = (record, cold, release, {"deployed": False}, words, None)
    for i, (record, app, release, mode) in enumerate(MODES):
        cases["mode%d" % i] = (record, green(release), release, app, "", mode)
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    "canon_recipe": "custom-html", "canon_cold_result": "/r/result.json",
                    "canon_canonical": {"canonical": record},
                    "canon_cold_raw": {"content": base64.b64encode(json.dumps(cold).encode()).decode()},
                    "canon_release": {"head": release}, "canon_warm_before": {"app": app},
                    "canon_warm": {"domain": "warm-canon-custom-html.canon.test"},
                    "canon_promote": {"outcome": "pending", "mode": ""}}
             for name, (record, cold, release, app, _w, _m) in cases.items()}
    tasks = role_tasks()
    play = [{"name": "the promote rule", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "refuse", "block": [named(tasks, "Only a green cold run")],
         "rescue": [{"name": "refused", "ansible.builtin.set_fact": {"refused": "{{ ansible_failed_result.msg }}"}}]},
        named(tasks, "Decide how to get there"),
        {"name": "keep", "ansible.builtin.copy": {
            "dest": str(tmp_path) + "/{{ inventory_hostname }}.json",
            "content": "{{ {'refused': refused | default(''), 'mode': canon_promote.mode} | to_json }}"}},
    ]}]
    run_play(tmp_path, hosts, play)
    for name, (_r, _c, release, _a, words, mode) in cases.items():
        got = json.loads((tmp_path / (name + ".json")).read_text())
        if words:
            assert got["refused"].startswith("refusing to promote custom-html %s: /r/result.json: " % release), got
            assert words in got["refused"], (name, got)
        else:
            assert got["refused"] == "", (name, got)
        if mode:
            assert got["mode"] == mode, (name, got)
