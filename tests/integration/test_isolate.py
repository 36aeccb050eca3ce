"""isolate on the bench: green on custom-html, red on the canaries, INFRA and HARNESS ERROR where
the server or the harness broke, nothing left behind."""
import glob
import os
import shutil
import subprocess
import time
import uuid

import pytest

from conftest import BENCH_ROOT, ROOT, ledger_runs, leftovers, run_playbook


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
    names a recipe tier red. (A harness error inside a tier, after the claim: the next test.)"""
    before = {r["run_id"] for r in ledger_runs()}
    pb = run_playbook("isolate.yml", results_dir, recipe="custom-html", canon_tier_order=["install", "custom"],
                      canon_probe_image="{{ canon_no_such_variable }}")
    assert pb.rc == 4, pb.stdout[-4000:]
    assert "HARNESS ERROR in claim task" in pb.stdout and "canon_no_such_variable" in pb.stdout, pb.stdout[-4000:]
    assert "not the recipe's failure" in pb.stdout
    assert pb.results == []                                   # no run started: no result names a tier
    assert {r["run_id"] for r in ledger_runs()} == before     # nothing claimed


# A template that renders where the lifecycle validates its inputs (before the claim, when
# canon_run is not registered yet) and breaks in the first harness task that reads it once the
# run is claimed: the custom tier's search for the suite (canon_suites_dir is read nowhere
# else). Nothing of the kind ships with the collection: the test passes a template, as any -e can.
BROKEN_ONCE_CLAIMED = "{{ canon_no_such_variable if canon_run is defined else '/nonexistent/suites' }}"


def test_a_harness_error_inside_a_tier_is_not_a_red_tier(results_dir):
    """A harness task that breaks inside a tier (a templating error in the custom tier's own
    task, after the claim and a green install) is HARNESS ERROR, exit 4, and the tier reads
    harness-error, never fail: the recipe was not shown red. The run is torn down as any other."""
    pb = run_playbook("isolate.yml", results_dir, recipe="custom-html", canon_tier_order=["install", "custom"],
                      canon_suites_dir=BROKEN_ONCE_CLAIMED)
    assert pb.rc == 4, pb.stdout[-4000:]
    [doc] = pb.results
    assert doc["outcome"] == "harness-error", doc["tiers"]
    assert [(t["name"], t["outcome"]) for t in doc["tiers"]] == [
        ("preflight", "pass"), ("install", "pass"), ("custom", "harness-error")]
    custom = pb.tier("custom")
    assert custom["harness_error"] == "template" and custom["task"] == "custom - find the recipe's suite", custom
    assert "canon_no_such_variable" in custom["error"], custom
    assert doc["harness_error"]["tier"] == "custom" and doc["harness_error"]["kind"] == "template"
    assert "HARNESS ERROR in custom task 'custom - find the recipe's suite': not the recipe's failure" in pb.stdout
    assert doc["teardown"]["clean"] is True and leftovers(doc["domains"].values()) == {}
    assert doc["run_id"] not in [r["run_id"] for r in ledger_runs()]


@pytest.fixture
def recipe_without_its_image():
    """A throwaway recipe whose one release names an image that exists nowhere: custom-html's
    first release with its image swapped, committed and tagged in a repository of its own where
    the bench's abra fetches recipes from (<bench>/repos, as roles/bench/files/bench-repos makes
    them). It is known to isolate.yml for this run only, through canon_enrolled; the repository
    is removed afterwards (runs fetch it into their own ABRA_DIR, which their teardown removes)."""
    name = "noimage-%s" % uuid.uuid4().hex[:6]
    image = "canon-bench/no-such-image:%s" % uuid.uuid4().hex[:8]
    assert subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0
    release = "1.0.0+1.36"
    repo = os.path.join(BENCH_ROOT, "repos", name)
    shutil.copytree(os.path.join(ROOT, "roles", "bench", "files", "recipes", "custom-html", release), repo)
    try:
        for path, old, new in (("compose.yml", "image: canon-bench/busybox:1.36", "image: %s" % image),
                               (".env.sample", "TYPE=custom-html", "TYPE=%s" % name)):
            with open(os.path.join(repo, path)) as fh:
                text = fh.read()
            assert old in text, "%s of custom-html %s changed: %s not found" % (path, release, old)
            with open(os.path.join(repo, path), "w") as fh:
                fh.write(text.replace(old, new))
        git = ["git", "-C", repo, "-c", "user.name=canon-test", "-c", "user.email=canon-test@bench.canon.test"]
        for args in (["-c", "init.defaultBranch=main", "init", "-q"], ["add", "-A"],
                     ["commit", "-q", "-m", "%s %s: its image does not exist" % (name, release)],
                     ["tag", "-a", release, "-m", release]):
            subprocess.run(git + args, check=True, capture_output=True)
        yield name, image
    finally:
        shutil.rmtree(repo, ignore_errors=True)


def test_a_recipe_whose_image_does_not_exist_is_infra(results_dir, recipe_without_its_image):
    """The deploy's tasks are rejected for an image that exists nowhere: the server could not run
    it, which says nothing about the recipe's behaviour. isolate.yml prints INFRA
    (image-unavailable), as canon does, and exits 4 (not a red run's 2); the install tier reads
    infra, never fail, and nothing of the run is left."""
    name, image = recipe_without_its_image
    before = {r["run_id"] for r in ledger_runs()}
    pb = run_playbook("isolate.yml", results_dir, recipe=name, canon_enrolled=[{"recipe": name}],
                      canon_settings_overrides={"deploy_timeout": 120})
    assert pb.rc == 4, pb.stdout[-4000:]
    [doc] = pb.results
    assert doc["outcome"] == "infra" and doc["infra"] == "image-unavailable", doc["tiers"]
    install = pb.tier("install")
    assert install["outcome"] == "infra" and install["infra"] == "image-unavailable", install
    assert image in install["error"], install
    assert not [t["name"] for t in doc["tiers"] if t["outcome"] == "fail"], doc["tiers"]
    assert "INFRA (image-unavailable): the server could not take the run, not the recipe's failure" in pb.stdout
    assert doc["teardown"]["clean"] is True
    assert leftovers(doc["domains"].values()) == {}
    assert {r["run_id"] for r in ledger_runs()} == before
