"""One claim of a run, roles/lifecycle/tasks/claim.yml, for the lifecycle and the promote role.

Structurally: no other task file calls ``canon_run``, both roles include the one file and run
their block in the environment it sets. In the slow test, ``ansible-playbook --check`` includes
the file as each role's include task does (the same ``vars``), against a throwaway inventory
(a docker stand-in that answers nothing, the state, ABRA_DIR and results under tmp_path): a cold
run claims its two cold domains exclusively with its own ABRA_DIR and the results folder for
its guardian; a promote run claims no cold domain of its own choosing, not exclusively, in the
shared ABRA_DIR. Check
mode records nothing and starts no guardian, so nothing there reaches the bench.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(ROOT, "roles")
CLAIM = os.path.join("roles", "lifecycle", "tasks", "claim.yml")
LIFECYCLE = os.path.join(ROLES, "lifecycle", "tasks", "main.yml")
PROMOTE = os.path.join(ROLES, "promote", "tasks", "main.yml")
ENVIRONMENT = "{{ canon_run_environment }}"


class TaskLoader(yaml.SafeLoader):
    """Reads Ansible's tags (!unsafe, !vault) as the plain values they tag."""


TaskLoader.add_multi_constructor("!", lambda loader, suffix, node: loader.construct_scalar(node)
                                 if isinstance(node, yaml.ScalarNode) else None)


def load(path: str) -> list:
    with open(path) as fh:
        return yaml.load(fh, Loader=TaskLoader) or []


def tasks_of(tasks: list):
    """Every task of a task list, those inside block/rescue/always included."""
    for task in tasks:
        yield task
        for part in ("block", "rescue", "always"):
            yield from tasks_of(task.get(part) or [])


def task_files() -> list:
    found = []
    for base, _dirs, files in os.walk(ROLES):
        if "tasks" in base.split(os.sep):
            found += [os.path.join(base, f) for f in files if f.endswith(".yml")]
    return sorted(found)


def claim_include(path: str) -> dict:
    """The task of a role's main.yml that includes the claim."""
    [task] = [t for t in load(path)
              if (t.get("ansible.builtin.import_tasks") == "claim.yml"
                  or (t.get("ansible.builtin.include_role") or {}).get("tasks_from") == "claim.yml")]
    return task


def test_one_task_file_claims_a_run():
    claiming = [os.path.relpath(f, ROOT) for f in task_files()
                if any("coopcloud.canon.canon_run" in t for t in tasks_of(load(f)))]
    assert claiming == [CLAIM]


def test_lifecycle_and_promote_include_the_claim_and_run_in_its_environment():
    # the lifecycle imports it (no include task at run time); promote includes it from its own role
    assert claim_include(LIFECYCLE)["ansible.builtin.import_tasks"] == "claim.yml"
    assert claim_include(PROMOTE)["ansible.builtin.include_role"] == {
        "name": "coopcloud.canon.lifecycle", "tasks_from": "claim.yml"}
    for path in (LIFECYCLE, PROMOTE):
        top = load(path)
        at = top.index(claim_include(path))
        [run] = [t for t in top if "block" in t]
        assert top.index(run) > at and run["environment"] == ENVIRONMENT, path
        with open(path) as fh:
            assert "CANON_RUN_ID" not in fh.read(), path


def test_the_claim_sets_the_environment_every_task_of_the_run_carries():
    [claim, facts] = load(os.path.join(ROOT, CLAIM))
    assert claim["register"] == "canon_run"
    env = facts["ansible.builtin.set_fact"]["canon_run_environment"]
    assert sorted(env) == ["ABRA_DIR", "CANON_EVIDENCE_DIR", "CANON_REDACT_FILE", "CANON_RUN_ID"]
    assert facts["ansible.builtin.set_fact"]["canon_run_results"] == "{{ canon_results_dir }}/{{ canon_run.run_id }}"


@pytest.mark.slow
def test_each_role_claims_its_kind_of_run(tmp_path):
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\nexit 0\n")
    docker.chmod(0o755)
    (tmp_path / "abra" / "servers" / "default").mkdir(parents=True)
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"canon_servers": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "canon_state_dir": str(tmp_path / "state"), "canon_abra_dir": str(tmp_path / "abra"),
        "canon_abra_bin": "/bin/true", "canon_docker_bin": str(docker), "canon_base_domain": "canon.test",
        "canon_results_dir": str(tmp_path / "results"), "canon_recipe": "custom-html",
        # lifecycle's defaults, for the import_tasks that does not load the role
        "canon_server": "default", "canon_docker_context": "", "canon_protected_domains": [],
        "canon_exclusive": True, "canon_deadline": 3600, "canon_lease": 900,
        # kept by a cold run that fails; a promote does not pass it on
        "canon_keep_on_failure": True,
        # given to a promote too, which does not pass it on
        "canon_domain": "mine.canon.test"}}}}))
    tasks = []
    for kind, path in (("lifecycle", LIFECYCLE), ("promote", PROMOTE)):
        include = dict(claim_include(path))
        if "ansible.builtin.import_tasks" in include:
            include["ansible.builtin.import_tasks"] = os.path.join(ROOT, CLAIM)
        tasks += [
            dict(include, name="Claim as %s does" % kind),
            {"name": "What %s's tasks see" % kind, "environment": ENVIRONMENT, "check_mode": False,
             "changed_when": False, "register": "canon_env",
             "ansible.builtin.command": {"argv": ["env"]}},
            {"name": "Keep %s's claim" % kind, "check_mode": False, "ansible.builtin.copy": {
                "dest": str(tmp_path / (kind + ".json")),
                "content": "{{ {'run': canon_run, 'results': canon_run_results, 'env': canon_env.stdout_lines "
                           "| select('match', '(CANON_RUN_ID|ABRA_DIR|CANON_EVIDENCE_DIR|CANON_REDACT_FILE)=') "
                           "| list} | to_json }}"}},
        ]
    play = tmp_path / "claim.yml"
    play.write_text(yaml.safe_dump([{"name": "claims", "hosts": "canon_servers", "gather_facts": False,
                                     "tasks": tasks}], sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    res = subprocess.run(["ansible-playbook", "-i", str(inv), str(play), "--check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "[DEPRECATION WARNING]" not in res.stdout + res.stderr
    results = str(tmp_path / "results")

    cold = json.loads((tmp_path / "lifecycle.json").read_text())
    run = cold["run"]
    assert sorted(run["domains"]) == ["base", "upgrade"] and run["domains"]["base"] == "mine.canon.test"
    assert run["exclusive"] is True and run["keep_on_failure"] is True and run["results_dir"] == results
    assert cold["results"] == os.path.join(results, run["run_id"])
    assert sorted(cold["env"]) == sorted([
        "CANON_RUN_ID=" + run["run_id"], "ABRA_DIR=" + run["run_abra_dir"],
        "CANON_EVIDENCE_DIR=%s/%s/evidence" % (results, run["run_id"]), "CANON_REDACT_FILE=" + run["redact_file"]])

    warm = json.loads((tmp_path / "promote.json").read_text())
    run = warm["run"]
    # canon_run gives an empty domain_roles its one base domain, generated: never deployed on
    assert list(run["domains"]) == ["base"] and run["domains"]["base"] != "mine.canon.test"
    assert run["exclusive"] is False and run["keep_on_failure"] is False and run["results_dir"] is None
    assert warm["results"] == os.path.join(results, run["run_id"])
    assert sorted(warm["env"]) == sorted([
        "CANON_RUN_ID=" + run["run_id"], "ABRA_DIR=" + str(tmp_path / "abra"),
        "CANON_EVIDENCE_DIR=%s/%s/evidence" % (results, run["run_id"]), "CANON_REDACT_FILE=" + run["redact_file"]])
