"""The custom tier (roles/lifecycle/tasks/tiers/custom.yml) run on the controller by
``ansible-playbook``, inside the role's tier.yml, on suites written here (no server): a suite
that fails is the recipe's red; a suite the harness could not run at all is a harness error."""
from __future__ import annotations

import json

import pytest

from localplay import run_play

PRE = {"name": "preflight", "outcome": "pass"}

SUITES = {
    # a real assertion that fails: the recipe's (or its suite's) red
    "red": {"test_app.py": "def test_totals():\n    assert 1 + 1 == 3, 'totals differ'\n"},
    "green": {"test_app.py": "def test_totals():\n    assert 1 + 1 == 2\n"},
    # pytest refuses to start (its usage error, exit 4): the suite never ran
    "usage": {"conftest.py": "import pytest\n\n\ndef pytest_configure(config):\n"
                             "    raise pytest.UsageError('the harness passed an option pytest does not take')\n",
              "test_app.py": "def test_totals():\n    assert True\n"},
}


@pytest.mark.slow
def test_a_suite_that_could_not_run_is_a_harness_error_and_a_failing_one_is_red(tmp_path):
    hosts = {}
    for name, files in SUITES.items():
        suite = tmp_path / name / "suites" / "ledgerapp"
        suite.mkdir(parents=True)
        for fname, text in files.items():
            (suite / fname).write_text(text)
        (tmp_path / name / "results" / name / "evidence").mkdir(parents=True)
        hosts[name] = {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "canon_tiers": [PRE, {"name": "install", "outcome": "pass"}], "canon_tier": "custom",
            "canon_settings": {"not_applicable": {}, "readiness": [], "custom_timeout": 60},
            "canon_recipe_info": {}, "canon_results_dir": str(tmp_path / name / "results"),
            "canon_run": {"run_id": name, "domains": {"base": "ledgerapp.example.org"}},
            "canon_proxy_url": "", "canon_recipe": "ledgerapp", "canon_suites_dir": str(tmp_path / name / "suites"),
            "canon_versions": {"head": "2.4.0+1.0"}, "canon_probe_image": "", "canon_proxy_network": "",
            "canon_docker_context": ""}
    play = [{"name": "the custom rung", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "the rung", "ansible.builtin.include_role": {"name": "coopcloud.canon.lifecycle", "tasks_from": "tier.yml"}},
        {"name": "keep", "ansible.builtin.copy": {
            "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "content": "{{ canon_tiers | to_json }}"}},
    ]}]
    run_play(tmp_path, hosts, play)
    got = {name: json.loads((tmp_path / (name + ".json")).read_text())[-1] for name in SUITES}
    assert got["green"]["outcome"] == "pass", got["green"]
    assert got["red"]["outcome"] == "fail" and "harness_error" not in got["red"], got["red"]
    assert got["red"]["error"].startswith("custom tests failed: ") and "totals differ" in got["red"]["error"], got["red"]
    usage = got["usage"]
    assert usage["outcome"] == "harness-error" and usage["harness_error"] == "suite-runner", usage
    assert usage["task"] == "custom - pytest ran the suite", usage
    assert "exit 4 pytest refused its command line (usage error)" in usage["error"], usage
    # the suite's output is kept as evidence either way
    for name in SUITES:
        assert (tmp_path / name / "results" / name / "evidence" / "custom-pytest.txt").is_file(), name
