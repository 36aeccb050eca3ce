"""Every exit path tears down: signals during deploy, keep-on-failure, teardown twice, bad input."""
import json
import os
import signal
import subprocess

import pytest

from conftest import (ROOT, ansible_env, assert_no_deprecation, deploying, docker, ledger_runs, leftovers,
                      run_playbook, run_processes, start_playbook, wait_for)


def live_run_of(recipe, known=()):
    runs = [r for r in ledger_runs() if r["recipe"] == recipe and r["run_id"] not in known
            and r.get("status") == "running"]
    return runs[0] if runs else None


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_during_deploy_tears_the_run_down(results_dir, sig):
    before = {r["run_id"] for r in ledger_runs()}
    proc = start_playbook("isolate.yml", results_dir, recipe="custom-html")
    try:
        run = wait_for(lambda: live_run_of("custom-html", before), timeout=120, interval=0.2)
        assert run, "the run never appeared in the ledger"
        # Deploying: the stack's service exists while abra waits for convergence.
        assert wait_for(lambda: deploying(run["domains"]["base"]), timeout=180, interval=0.2), \
            "the deploy never started"
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0
    # The guardian noticed the controller is gone and tore the run down.
    assert wait_for(lambda: not leftovers(run["domains"].values()) and run["run_id"] not in
                    [r["run_id"] for r in ledger_runs()], timeout=240, interval=1), leftovers(run["domains"].values())
    # No process of the run is left behind either.
    assert run_processes(run["run_id"]) == []


def test_keep_on_failure_keeps_then_teardown_removes_and_second_teardown_changes_nothing(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="canary-crash", canon_keep_on_failure=True)
    assert pb.rc != 0
    [doc] = pb.results
    assert doc["teardown"]["kept"] == [doc["run_id"]]
    kept = leftovers(doc["domains"].values())
    assert kept.get("env") and kept.get("service"), kept   # kept on purpose, for debugging
    assert [r["status"] for r in ledger_runs() if r["run_id"] == doc["run_id"]] == ["kept"]

    # --check is a true dry run: it names what it would remove and removes nothing.
    dry = subprocess.run(["ansible-playbook", os.path.join(ROOT, "playbooks", "teardown.yml"), "--check",
                          "-e", json.dumps({"run_id": doc["run_id"]})],
                         cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=600)
    assert dry.returncode == 0, dry.stdout[-3000:]
    assert_no_deprecation("teardown.yml --check", dry.stdout, dry.stderr)
    assert "check: nothing was removed" in dry.stdout and doc["domains"]["base"] in dry.stdout, dry.stdout[-3000:]
    # the kept app crash-loops on purpose, so swarm keeps replacing its task containers: the
    # objects the teardown would remove (services, volumes, secrets, configs, networks, stack,
    # .env) are compared, and at least one container of the app is still there
    after = leftovers(doc["domains"].values())
    assert {k: v for k, v in after.items() if k != "container"} == {k: v for k, v in kept.items() if k != "container"}
    assert bool(after.get("container")) == bool(kept.get("container"))
    assert [r["status"] for r in ledger_runs() if r["run_id"] == doc["run_id"]] == ["kept"]

    first = run_playbook("teardown.yml", results_dir, run_id=doc["run_id"])
    assert first.rc == 0, first.stdout[-3000:]
    assert "changed=1" in first.stdout
    assert leftovers(doc["domains"].values()) == {}
    assert doc["run_id"] not in [r["run_id"] for r in ledger_runs()]

    second = run_playbook("teardown.yml", results_dir, run_id=doc["run_id"])
    assert second.rc == 0
    assert "changed=0" in second.stdout and "failed=0" in second.stdout


def test_teardown_of_everything_twice(results_dir):
    first = run_playbook("teardown.yml", results_dir)
    assert first.rc == 0, first.stdout[-3000:]
    second = run_playbook("teardown.yml", results_dir)
    assert second.rc == 0 and "changed=0" in second.stdout, second.stdout[-3000:]


# 47 characters: valid DNS and under the certificate limit, but abra's 45-character stack name
# plus custom-html's secret "initial_admin_password" and its version make a 72-character secret.
LONG = "a" * 30 + ".bench.canon.test"


@pytest.mark.parametrize("extra,message", [
    ({"recipe": "no-such-recipe"}, "unknown recipe no-such-recipe"),
    ({"recipe": "Custom-HTML"}, "recipe name 'Custom-HTML' is not valid"),
    ({"recipe": "x;touch /tmp/pwned"}, "is not valid"),
    ({"recipe": "../../etc"}, "is not valid"),
    ({"recipe": "custom-html", "canon_domain": "Bad.bench.canon.test"}, "uppercase"),
    ({"recipe": "custom-html", "canon_domain": "a b.bench.canon.test"}, "invalid label"),
    ({"recipe": "custom-html", "canon_domain": "x" * 70 + ".test"}, "certificate common name"),
    ({"recipe": "custom-html", "canon_domain": LONG}, "over swarm's 64"),
    ({"recipe": "custom-html", "canon_domain": "live.bench.canon.test",
      "canon_protected_domains": ["live.bench.canon.test"]}, "is protected"),
], ids=["unknown", "uppercase", "shell", "path", "domain-upper", "domain-space", "domain-label", "swarm-budget",
        "protected"])
def test_bad_input_is_refused_before_anything_is_deployed(results_dir, extra, message):
    def harness_stacks():
        # cold custom-html stacks, and the stack of the domain asked for
        asked = extra.get("canon_domain", "").replace(".", "_")[:45]
        return {s for s in docker("stack", "ls", "--format", "{{.Name}}").split()
                if s.startswith("cust-") or (asked and s == asked)}
    stacks_before = harness_stacks()
    runs_before = {r["run_id"] for r in ledger_runs()}
    pb = run_playbook("isolate.yml", results_dir, **extra)
    assert pb.rc != 0
    assert message in pb.stdout, pb.stdout[-3000:]
    assert "Traceback" not in pb.stdout + pb.stderr
    assert harness_stacks() == stacks_before
    assert {r["run_id"] for r in ledger_runs()} == runs_before
    assert not os.path.exists("/tmp/pwned")
    for doc in pb.results:   # a run that got as far as preflight says so, and left nothing
        assert [t["outcome"] for t in doc["tiers"] if t["name"] == "preflight"] == ["fail"]
        assert all(t["outcome"] == "skipped" for t in doc["tiers"] if t["name"] not in ("preflight",))
        assert leftovers(doc["domains"].values()) == {}
