"""isolate on the bench: green on custom-html, red on the canaries, nothing left behind."""
import glob
import os
import subprocess
import time

import pytest

from conftest import ledger_runs, leftovers, run_playbook


def service_logs(results_dir) -> str:
    out = []
    for path in glob.glob(os.path.join(results_dir, "*", "evidence", "**", "*.logs.txt"), recursive=True):
        if os.path.isfile(path):
            with open(path, errors="replace") as fh:
                out.append(fh.read())
    return "\n".join(out)


def test_custom_html_is_green_on_every_tier_and_leaves_nothing(results_dir):
    pb = run_playbook("isolate.yml", results_dir, recipe="custom-html")
    assert pb.rc == 0, pb.stdout[-4000:]
    [doc] = pb.results
    assert doc["outcome"] == "pass"
    assert [(t["name"], t["outcome"]) for t in doc["tiers"]] == [
        ("preflight", "pass"), ("install", "pass"), ("upgrade", "pass"), ("backup_restore", "pass"),
        ("custom", "pass"), ("lint", "pass")]
    assert doc["level"] == {"level": 5, "name": "lint", "stopped_at": None, "of": 5, "applicable": 5, "passed": 5,
                            "not_applicable": []}
    assert doc["versions"]["head"] != doc["versions"]["upgrade_base"]
    assert all(t["duration"] >= 0 for t in doc["tiers"])
    assert "PASS, 5 of 5 applicable rungs" in pb.stdout
    # The evidence bundle holds every abra call's output and the swarm's view of the app.
    bundle = os.path.join(results_dir, doc["run_id"], "evidence")
    commands = os.listdir(os.path.join(bundle, "commands"))
    assert any("app-deploy" in c for c in commands) and any("app-upgrade" in c for c in commands)
    assert glob.glob(os.path.join(bundle, "final", doc["domains"]["base"], "*.service-ps.txt"))
    # Nothing of the run is left: no stack, service, volume, secret, config, network, .env, ledger entry.
    assert doc["teardown"]["clean"] is True
    assert leftovers(doc["domains"].values()) == {}
    assert doc["run_id"] not in [r["run_id"] for r in ledger_runs()]


@pytest.mark.parametrize("recipe,tier,needle,in_logs", [
    # the service's own error must be in the evidence bundle's service logs
    ("canary-crash", "install", "FATAL: canary-crash: config file /etc/canary.conf missing", True),
    ("canary-empty-backup", "backup_restore", "the restore did not bring back the state", False),
    ("canary-static-upgrade", "upgrade", "the upgrade did not move the deployment", False),
])
def test_canary_is_red_on_the_right_tier(results_dir, recipe, tier, needle, in_logs):
    pb = run_playbook("isolate.yml", results_dir, recipe=recipe)
    assert pb.rc != 0
    [doc] = pb.results
    assert doc["outcome"] == "fail"
    failed = [t["name"] for t in doc["tiers"] if t["outcome"] == "fail"]
    assert failed == [tier], doc["tiers"]
    error = next(t for t in doc["tiers"] if t["name"] == tier)["error"]
    assert needle in (service_logs(results_dir) if in_logs else error), error
    assert leftovers(doc["domains"].values()) == {}
    assert doc["run_id"] not in [r["run_id"] for r in ledger_runs()]


def test_a_hung_custom_suite_is_stopped_at_custom_timeout_and_the_tier_is_red(results_dir, tmp_path):
    suites = tmp_path / "suites" / "custom-html"
    suites.mkdir(parents=True)
    (suites / "test_hangs.py").write_text(
        "import time\n\n\ndef test_waits_for_something_that_never_comes():\n    time.sleep(600)\n")
    started = time.monotonic()
    pb = run_playbook("isolate.yml", results_dir, recipe="custom-html", canon_tier_order=["install", "custom"],
                      canon_suites_dir=str(tmp_path / "suites"), canon_settings_overrides={"custom_timeout": 5})
    took = time.monotonic() - started
    assert pb.rc != 0
    [doc] = pb.results
    custom = pb.tier("custom")
    assert custom["outcome"] == "fail"
    assert "custom tests timed out: the suite was stopped after custom_timeout = 5 s" in custom["error"], custom
    assert took < 300, took   # not held until the suite's own 600 s
    # the suite's pytest is gone with it, and the run left nothing
    out = subprocess.run(["pgrep", "-f", "test_hangs|%s" % suites], capture_output=True, text=True)
    assert out.stdout.strip() == "", out.stdout
    assert doc["teardown"]["clean"] is True and leftovers(doc["domains"].values()) == {}


def test_a_harness_error_is_not_a_red_recipe(results_dir):
    """The harness's own template breaks (an undefined variable in the probe image, issue 17).
    The lifecycle's argument validation templates every input before the claim, so it breaks
    there: the run says HARNESS ERROR (not a red recipe) and exits 4 (the host marked unreachable
    by canon_outcome), not a red run's 2; nothing was claimed, so nothing is left and no result
    names a recipe tier red. (A harness error inside a tier is decided by the same rule,
    _infra.tier_failure, which tests/unit/test_infra.py tables on recorded 2.19 failures.)"""
    before = {r["run_id"] for r in ledger_runs()}
    pb = run_playbook("isolate.yml", results_dir, recipe="custom-html", canon_tier_order=["install", "custom"],
                      canon_probe_image="{{ canon_no_such_variable }}")
    assert pb.rc == 4, pb.stdout[-4000:]
    assert "HARNESS ERROR in claim task" in pb.stdout and "canon_no_such_variable" in pb.stdout, pb.stdout[-4000:]
    assert "not the recipe's failure" in pb.stdout
    assert pb.results == []                                   # no run started: no result names a tier
    assert {r["run_id"] for r in ledger_runs()} == before     # nothing claimed
