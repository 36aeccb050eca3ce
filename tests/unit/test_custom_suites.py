"""Where the custom tier's suites come from (roles/lifecycle/tasks/tiers/custom.yml, docs/suites.md).

The repository's tests/suites check the bench's stand-ins, so the lifecycle role names no suites
(``canon_suites_dir`` defaults to empty: the tier is not applicable, with that reason) and every
bench inventory names tests/suites. The slow tests run the role's real task files on localhost
(no server, no docker): the tier's decision for each kind of setting, and for each inventory.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

from canon.inventory import resolved_hosts
from localplay import ROOT, run_play

SUITES = os.path.realpath(os.path.join(ROOT, "tests", "suites"))
BENCH_INVENTORIES = ["bench", "bench-two", "bench-ssh"]
UNSET = "no suite: canon_suites_dir is not set"


def test_the_role_names_no_suites():
    with open(os.path.join(ROOT, "roles", "lifecycle", "defaults", "main.yml")) as fh:
        assert yaml.safe_load(fh)["canon_suites_dir"] == ""


@pytest.mark.parametrize("inventory", BENCH_INVENTORIES)
def test_every_bench_inventory_names_the_repositorys_suites(inventory):
    hosts = resolved_hosts(os.path.join(ROOT, "inventory", inventory, "hosts.yml"), "canon_servers")
    assert hosts
    for name, hostvars, template in hosts:
        assert template(hostvars["canon_suites_dir"]) == SUITES, (inventory, name)


def test_the_example_inventory_names_none_and_says_where_they_would_go():
    [(_name, hostvars, _t)] = resolved_hosts(os.path.join(ROOT, "inventory", "example", "hosts.yml"), "canon_servers")
    assert "canon_suites_dir" not in hostvars
    with open(os.path.join(ROOT, "inventory", "example", "group_vars", "canon_servers.yml")) as fh:
        assert "# canon_suites_dir: " in fh.read()


def test_the_inventories_the_tests_and_canon_use_by_default_are_the_benchs():
    # ansible.cfg's inventory (plain ansible-playbook, the integration tests' default server) and
    # canon's default_inventory() are inventory/bench, whose suites the test above checks
    from canon.inventory import default_inventory
    assert os.path.realpath(default_inventory()) == os.path.realpath(os.path.join(ROOT, "inventory", "bench", "hosts.yml"))
    with open(os.path.join(ROOT, "ansible.cfg")) as fh:
        assert "inventory = inventory/bench/hosts.yml\n" in fh.read()


@pytest.mark.slow
def test_the_tier_records_what_the_setting_says(tmp_path):
    suites = tmp_path / "suites"
    (suites / "custom-html").mkdir(parents=True)
    (suites / "custom-html" / "test_ok.py").write_text("def test_ok(get):\n    assert callable(get)\n")
    # the suites' own conftest (the get fixture) is loaded from wherever they live
    (suites / "conftest.py").write_text(open(os.path.join(SUITES, "conftest.py")).read())
    cases = {
        # name: (canon_suites_dir, recipe, outcome, reason)
        "unset": (None, "custom-html", "not-applicable", UNSET),
        "empty": ("", "custom-html", "not-applicable", UNSET),
        "nofolder": (str(suites), "gitea", "not-applicable", "no custom suite in %s/gitea" % suites),
        "found": (str(suites), "custom-html", "pass", ""),
    }
    hosts = {}
    for name, (where, recipe, _o, _r) in cases.items():
        hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                       "canon_tiers": [{"name": "preflight", "outcome": "pass"}], "canon_tier": "custom",
                       "canon_settings": {"not_applicable": {}, "readiness": [], "custom_timeout": 60},
                       "canon_results_dir": str(tmp_path), "canon_recipe": recipe, "canon_proxy_url": "",
                       "canon_run": {"run_id": name, "domains": {"base": "%s.example.test" % name}},
                       "canon_versions": {"head": "1.0.0+1"}}
        if where is not None:
            hosts[name]["canon_suites_dir"] = where
        (tmp_path / name / "evidence").mkdir(parents=True)
    play = [{"name": "the custom rung", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "the rung", "ansible.builtin.include_role": {"name": "coopcloud.canon.lifecycle", "tasks_from": "tier.yml"}},
        {"name": "keep", "ansible.builtin.copy": {
            "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "content": "{{ canon_tiers[-1] | to_json }}"}},
    ]}]
    run_play(tmp_path, hosts, play)
    for name, (_w, _recipe, outcome, reason) in cases.items():
        rec = json.loads((tmp_path / (name + ".json")).read_text())
        assert rec["name"] == "custom" and rec["outcome"] == outcome and rec["intended"] is True, (name, rec)
        if reason == UNSET:
            assert rec["reason"].startswith(UNSET + " ("), (name, rec)
        else:
            assert rec["reason"] == reason, (name, rec)
        junit = tmp_path / name / "evidence" / "custom-junit.xml"
        assert junit.is_file() == (name == "found"), name
    assert 'tests="1"' in (tmp_path / "found" / "evidence" / "custom-junit.xml").read_text()


PROBE = [{"name": "the custom tier's decision on each inventory host", "hosts": "canon_servers", "gather_facts": False,
          "tasks": [
              # a recipe with no folder: the tier decides and nothing else runs (no app, no docker)
              {"name": "decide", "ansible.builtin.include_role": {"name": "coopcloud.canon.lifecycle",
                                                                  "tasks_from": "tiers/custom.yml"},
               "vars": {"canon_recipe": "zz-no-such-recipe", "canon_tier": "custom",
                        "canon_run": {"run_id": "probe", "domains": {"base": "probe.example.test"}}}},
              {"name": "keep", "ansible.builtin.copy": {
                  "dest": "{{ canon_probe_out }}/{{ inventory_hostname }}.json",
                  "content": "{{ {'outcome': canon_tier_outcome, 'detail': canon_tier_detail} | to_json }}"}},
          ]}]


@pytest.mark.slow
@pytest.mark.parametrize("inventory, want", [(name, "no custom suite in %s/zz-no-such-recipe" % SUITES)
                                             for name in BENCH_INVENTORIES] + [("example", UNSET)])
def test_each_inventory_through_the_role(tmp_path, inventory, want):
    (tmp_path / "play.yml").write_text(yaml.safe_dump(PROBE, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    path = os.path.join(ROOT, "inventory", inventory, "hosts.yml")
    # every host on the local connection (bench-ssh's and the example's included): only set_fact and copy run
    res = subprocess.run(["ansible-playbook", "-i", path, str(tmp_path / "play.yml"), "-e", json.dumps(
        {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
         "canon_probe_out": str(tmp_path)})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    hosts = [name for name, _v, _t in resolved_hosts(path, "canon_servers")]
    for host in hosts:
        got = json.loads((tmp_path / (host + ".json")).read_text())
        assert got["outcome"] == "not-applicable", (inventory, host, got)
        if want == UNSET:
            assert got["detail"].startswith(UNSET + " ("), (inventory, host, got)
        else:
            assert got["detail"] == want, (inventory, host, got)
