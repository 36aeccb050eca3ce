"""The bench's abra server reached over SSH (``inventory/bench-ssh``, the bench's own sshd on
127.0.0.1:8422), the way an AWX job reaches a real server: no ``ansible-playbook`` process is
above the modules there, so each run's guardian holds the run on a lease (docs/awx.md).
"""
import json
import os
import signal
import subprocess
import time

from conftest import (ROOT, ansible_env, assert_no_deprecation, default_signals, deploying, ledger_runs,
                      leftovers, run_playbook, run_processes, wait_for)

SSH_INVENTORY = os.path.join(ROOT, "inventory", "bench-ssh", "hosts.yml")
LEASE = 30   # seconds; the custom-html lifecycle takes about 80 s, so a green run renews it


def start_over_ssh(results_dir, **extra_vars) -> subprocess.Popen:
    argv = ["ansible-playbook", "-i", SSH_INVENTORY, os.path.join(ROOT, "playbooks", "isolate.yml"),
            "-e", json.dumps(dict(extra_vars, canon_results_dir=results_dir))]
    # its own process group: killing the group is the controller machine going away
    return subprocess.Popen(argv, cwd=ROOT, env=ansible_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=lambda: (default_signals(), os.setpgrp()))


def claimed_run(recipe, known):
    """The run this test started, once canon_run has recorded its guardian."""
    runs = [r for r in ledger_runs() if r["recipe"] == recipe and r["run_id"] not in known
            and r.get("status") == "running" and r.get("guardian_pid")]
    return runs[0] if runs else None


def cmdline(pid) -> str:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_a_run_over_ssh_is_held_on_its_lease_and_ends_green(results_dir):
    before = {r["run_id"] for r in ledger_runs()}
    proc = start_over_ssh(results_dir, recipe="custom-html", canon_lease=LEASE)
    try:
        run = wait_for(lambda: claimed_run("custom-html", before), timeout=180, interval=0.2)
        assert run, "the run never appeared in the ledger with a guardian"
        # no ansible-playbook above the module on the server: a lease, not a controller, is watched
        assert run["guardian_mode"] == "lease" and run["lease"] == LEASE, run
        assert run["controller_pid"] is None
        guardian = cmdline(run["guardian_pid"])
        # ... <run id> <state dir> <watch pid: none> <deadline> <lease>
        argv = guardian.split()
        assert run["run_id"] in argv and argv[-3] == "0" and argv[-1] == str(float(LEASE)), guardian
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, out[-3000:]
    assert_no_deprecation("isolate.yml over ssh", out)
    [doc] = [json.load(open(os.path.join(results_dir, run["run_id"], "result.json")))]
    assert doc["outcome"] == "pass" and doc["level"]["level"] == 5, doc
    assert "PASS, 5 of 5 applicable rungs" in out and doc["teardown"]["clean"] is True
    # the run outlived its lease several times over: its tasks on the server renewed it
    assert doc["duration"] > 2 * LEASE, doc["duration"]
    assert leftovers(run["domains"].values()) == {}
    assert run["run_id"] not in [r["run_id"] for r in ledger_runs()]
    assert wait_for(lambda: not cmdline(run["guardian_pid"]), timeout=30), "the guardian outlived its run"


def test_a_controller_gone_over_ssh_is_torn_down_once_its_lease_lapses(results_dir, tmp_path):
    before = {r["run_id"] for r in ledger_runs()}
    proc = start_over_ssh(results_dir, recipe="custom-html", canon_lease=LEASE)
    try:
        run = wait_for(lambda: claimed_run("custom-html", before), timeout=180, interval=0.2)
        assert run, "the run never appeared in the ledger with a guardian"
        assert wait_for(lambda: deploying(run["domains"]["base"]), timeout=240, interval=0.2), \
            "the deploy never started"
    finally:
        # the controller, its workers and their ssh clients at once: the AWX job's container is gone
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = time.monotonic()

    # Inside the lease the run is live: another run's claim on the server is refused, naming it
    # (its janitor does not take it for a dead run's leftovers).
    refused = run_playbook("isolate.yml", str(tmp_path / "refused"), recipe="custom-html")
    assert refused.rc != 0
    assert "other harness runs are live on server default" in refused.stdout and run["run_id"] in refused.stdout, \
        refused.stdout[-3000:]
    assert leftovers(run["domains"].values()).get("service"), "torn down before its lease lapsed"

    # Once none of its tasks has run on the server for the lease, the guardian tears it down.
    seen = {}

    def torn_down():
        rec = [r for r in ledger_runs() if r["run_id"] == run["run_id"]]
        if rec and rec[0].get("interrupted"):
            seen["why"], seen["after"] = rec[0]["interrupted"], time.monotonic() - killed
        return not rec and not leftovers(run["domains"].values())
    assert wait_for(torn_down, timeout=LEASE + 240, interval=0.2), leftovers(run["domains"].values())
    assert seen.get("why") == "lease-expired", seen
    assert seen["after"] >= LEASE, seen
    assert run_processes(run["run_id"]) == []
    assert not cmdline(run["guardian_pid"]), "the guardian outlived its run"
