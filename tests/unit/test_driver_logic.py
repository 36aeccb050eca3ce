"""The canon command's own logic that needs no bench: load specs, verification runs, reproduce paths."""
import pytest

from canon.classifier import Classifier, observation
from canon.load import LoadError, fingerprint, parse_spec
from canon.redfix import verification_runs


def test_load_specs():
    assert parse_spec(["cpu=6", "io=1"]) == {"cpu": 6, "io": 1, "deploys": []}
    assert parse_spec([]) == {"cpu": 0, "io": 0, "deploys": []}
    for bad in ["cpu=$(reboot)", "cpu=65", "gpu=1", "cpu=-1", "deploys=gitea", "cpu"]:
        with pytest.raises(LoadError):
            parse_spec([bad])


def test_load_fingerprint_summarises_the_window():
    samples = [{"t": 100.0 + 5 * i, "load1": float(i), "mem_used_pct": 10.0 + i, "stacks": i, "tasks_changed": 2}
               for i in range(10)]
    fp = fingerprint(samples, 110.0, 130.0)
    assert fp["samples"] == 7 and fp["load1_max"] == 7.0 and fp["stacks_max"] == 7
    assert fingerprint([], 0, 1) == {"samples": 0}


@pytest.mark.parametrize("fail,passed,runs", [(3, 0, 2), (1, 0, 3), (2, 2, 5), (1, 4, 9)])
def test_verification_runs_follow_the_observed_failure_rate(fail, passed, runs):
    # Laplace's estimate (f+1)/(n+2), then n = ceil(ln 0.05 / ln(1-p)), at least 2
    assert verification_runs({"arms": {"loaded": {"fail": fail, "pass": passed}}}) == runs


def _classifier(tiers, failing):
    clf = Classifier.__new__(Classifier)
    clf.entry = {"cold": {"tiers": [{"name": n, "outcome": o} for n, o in tiers],
                          "failure": {"tier": failing} if failing else None}}
    return clf


def test_a_cold_failure_is_re_run_along_its_own_path_without_the_upgrade_domain():
    ran = [("preflight", "pass"), ("install", "pass"), ("upgrade", "pass"), ("backup_restore", "pass"),
           ("custom", "fail")]
    assert _classifier(ran, "custom").cold_tiers() == ["install", "backup_restore", "custom"]
    assert _classifier(ran[:3] + [("backup_restore", "fail")], "backup_restore").cold_tiers() == \
        ["install", "backup_restore"]
    assert _classifier(ran[:2] + [("upgrade", "fail")], "upgrade").cold_tiers() == ["install", "upgrade"]
    assert _classifier([("preflight", "fail")], "preflight").cold_tiers() == ["install"]


def test_a_fallback_promote_is_a_failed_observation_with_the_in_place_error():
    obs = observation("loaded", "promote", {"outcome": "promoted-by-fallback", "run_id": "r",
                                            "in_place_error": "rolled-back: app update rolled back", "detail": ""})
    assert obs["outcome"] == "fail" and obs["tier"] == "promote" and obs["error"].startswith("rolled-back")
    assert observation("isolated", "promote", {"outcome": "current"})["outcome"] == "pass"


@pytest.mark.parametrize("argv", [
    ["isolate", "custom-html;id"], ["isolate", "../custom-html"], ["sweep", "custom-html", "Gitea"],
    ["redfix", "$(touch /tmp/canon-pwned)"], ["classify", "a/b", "--from", "/nonexistent"],
    ["isolate", "custom-html", "--version", "1.1.0+1.37;id"],
])
def test_bad_names_are_refused_before_anything_runs(argv, capsys, tmp_path):
    from canon.cli import EXIT_REFUSED, main
    # the results folder is never made: the refusal comes before any lock, ledger or runner
    assert main(argv + ["--results", str(tmp_path / "results")]) == EXIT_REFUSED
    err = capsys.readouterr().err
    assert err.startswith("canon: ") and ("is not valid" in err or "is not a recipe release tag" in err)
    assert not (tmp_path / "results").exists()


def _killed_job(run_id):
    from types import SimpleNamespace
    return SimpleNamespace(results=[], run_ids=[run_id], domains={run_id: {"base": "a.test"}}, status="failed",
                           failures=[{"msg": "the playbook was killed"}], started=1.0, finished=2.0, duration=1.0)


def test_a_run_the_guardian_recorded_as_interrupted_reads_interrupted(tmp_path):
    from canon.sweep import cold_record
    from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder, _ledger
    run_id = "ledgerapp-20261206200000-abc123"
    doc = _ladder.interrupted_document({"run_id": run_id, "recipe": "ledgerapp"}, "controller-died", "t",
                                       "upgrade", {"removed": {}})
    _ledger.write_json_atomic(str(tmp_path / run_id / "result.json"), doc)
    rec = cold_record(_killed_job(run_id), str(tmp_path), None)
    assert rec["outcome"] == "interrupted" and rec["interrupted"]["tier"] == "upgrade"


def test_a_killed_run_without_a_record_is_still_a_harness_failure(tmp_path, monkeypatch):
    import canon.sweep as sweep
    monkeypatch.setattr(sweep, "engine_problem", lambda server: None)
    rec = sweep.cold_record(_killed_job("ledgerapp-20261206200000-abc123"), str(tmp_path), None)
    assert rec["outcome"] == "fail" and rec["failure"]["tier"] == "harness"
