"""Interruptions on the real bench: representative cases of the interruption matrix
(benchmarks/interrupt_matrix.py runs all of them). Each case starts the command, waits until the
point is reached, sends the signal, waits for the guardian (or runs the janitor), and then looks
for anything of the run left behind; for a warm point, the canonical must be the old or the new
release, deployed at exactly the version the registry names, and answering, or (an advance that
had deployed the new release) recorded unverified and verified by the next promote.

The cases run under the suite's own hold on the bench (``flock /tmp/canon-bench.lock pytest``),
so they do not take the bench lock themselves.
"""
import os
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.interrupt

sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import interrupt_matrix as im  # noqa: E402


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    """The matrix's seeds; after the module, the warm canonicals the warm cases made are removed
    (warm_teardown.yml), so the next session starts from the bench as bench.yml leaves it."""
    workdir = str(tmp_path_factory.mktemp("interrupt-seeds"))
    yield im.Seeds(workdir)
    for recipe in im.WARM:
        if im.registry(recipe):
            res = im.run_playbook("warm_teardown.yml", workdir, recipe=recipe)
            assert res.returncode == 0, res.stdout[-2000:]


@pytest.mark.parametrize("name,sig", [
    ("secret-generation", im.GUARDIAN_KILLED),   # nothing of the run survives: the janitor's job
    ("upgrade-upgrade", "SIGINT"),
    ("teardown", "SIGKILL"),
    ("identity", "SIGINT"),
], ids=["secret-generation-janitor", "upgrade-SIGINT", "own-teardown-SIGKILL", "identity-SIGINT"])
def test_interrupted_run_leaves_nothing(tmp_path, seeds, name, sig):
    case = im.run_case(im.point(name), sig, str(tmp_path), seeds=seeds, lock=False)
    assert case["reached"], case.get("error")
    assert case["live_runs_at_signal"], "the signal landed before the run was claimed"
    assert case["leaks"] == {}, case["leaks"]
    if sig == im.GUARDIAN_KILLED:
        assert case["torn_down_by"] == "janitor"
    else:
        assert case["torn_down_by"] == "guardian"
    if case.get("warm"):
        warm = case["warm"]
        assert warm["registry_version"] in (case["warm_before"]["old"], case["warm_before"]["new"])
        assert warm["deployed"] == [warm["registry_version"]]
        if warm["unverified"]:
            # the advance had deployed the new release: the registry says so, and the next
            # promote verifies it into a live canonical that answers
            assert warm["registry_version"] == case["warm_before"]["new"]
            recovery = case["recovery"]
            assert recovery["rc"] == 0 and recovery["problems"] == [], recovery
            assert recovery["outcome"] in ("promoted", "promoted-by-fallback")
            assert recovery["warm"]["registry_status"] == "live" and recovery["warm"]["http"] == 200
        else:
            assert warm["registry_status"] != "deploying" and warm["http"] == 200 and warm["content"]
