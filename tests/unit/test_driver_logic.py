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
    # classify writes into its sweep's folder and takes no --results of its own
    results = [] if argv[0] == "classify" else ["--results", str(tmp_path / "results")]
    assert main(argv + results) == EXIT_REFUSED
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


def test_a_killed_run_is_read_once_its_guardian_has_written_its_record(tmp_path):
    # ansible-playbook SIGKILLed: the job ends at once, the guardian tears the run down and only
    # then writes result.json (interrupted) and leaves the ledger; the record waits for it
    import subprocess
    import sys
    import threading
    import types

    from canon.sweep import cold_record
    from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder, _ledger
    run_id = "ledgerapp-20261206200000-abc124"
    state = tmp_path / "state"
    ledger = _ledger.Ledger(str(state))
    # a process that passes for the run's guardian (its command line carries the mark and the run)
    guardian = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", _ledger.GUARDIAN_MARK, run_id])
    try:
        ledger.put({"run_id": run_id, "status": "running", "guardian_pid": guardian.pid, "server": "edge-2"})

        def guardian_finishes():
            doc = _ladder.interrupted_document({"run_id": run_id, "recipe": "ledgerapp"}, "controller-died", "t",
                                               "install", {"removed": {"service": ["x"]}})
            _ledger.write_json_atomic(str(tmp_path / "results" / run_id / "result.json"), doc)
            guardian.terminate()
        timer = threading.Timer(1.5, guardian_finishes)
        timer.start()
        server = types.SimpleNamespace(name="edge-2", state_dir=str(state), vars={})
        rec = cold_record(_killed_job(run_id), str(tmp_path / "results"), server)
        timer.join()
    finally:
        guardian.kill()
        guardian.wait()
    assert rec["outcome"] == "interrupted" and rec["interrupted"]["tier"] == "install"
    assert rec["teardown"]["removed"] == {"service": ["x"]} and rec["teardown"]["by"] == "guardian"


def test_a_killed_run_without_a_record_is_a_harness_error_never_the_recipes_red(tmp_path, monkeypatch):
    import canon.sweep as sweep
    monkeypatch.setattr(sweep, "engine_problem", lambda server: None)
    rec = sweep.cold_record(_killed_job("ledgerapp-20261206200000-abc123"), str(tmp_path), None)
    assert rec["outcome"] == "infra" and rec["infra"] == "harness-error"
    assert rec["failure"]["tier"] == "harness" and "the playbook was killed" in rec["failure"]["error"]


# -- canon classify --from: a sweep's folder or a single run's (issue 17 item 4) -------------

def _write(path, doc):
    from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import write_json_atomic
    write_json_atomic(str(path), doc)


RUN_DOC = {"run_id": "ledgerapp-20261206200000-abc123", "recipe": "ledgerapp", "server": "default",
           "outcome": "fail", "versions": {"head": "2.4.0", "upgrade_base": "2.3.1"},
           "tiers": [{"name": "install", "outcome": "pass"}, {"name": "custom", "outcome": "fail",
                                                              "error": "custom tests failed: totals differ"}]}


def test_a_relative_folder_is_the_callers_and_made_absolute(tmp_path, monkeypatch):
    from canon.classifier import classify_target
    sweep = tmp_path / "results" / "sweep-20261206200000-abc123"
    _write(sweep / "sweep.json", {"sweep_id": "s", "load": {"spec": {"cpu": 6}},
                                  "recipes": [{"recipe": "ledgerapp", "cold": {"outcome": "fail"}}]})
    monkeypatch.chdir(tmp_path)
    entry, loaded, out = classify_target("results/sweep-20261206200000-abc123", "ledgerapp")
    assert out == str(sweep) and out.startswith("/") and loaded is True and entry["recipe"] == "ledgerapp"


def test_a_single_runs_folder_is_classified_as_an_isolated_run(tmp_path, monkeypatch):
    from canon.classifier import classify_target
    run = tmp_path / "results" / RUN_DOC["run_id"]
    _write(run / "result.json", RUN_DOC)
    monkeypatch.chdir(tmp_path / "results")
    entry, loaded, out = classify_target(RUN_DOC["run_id"], "ledgerapp")
    assert out == str(run) and loaded is False
    assert entry["cold"]["outcome"] == "fail" and entry["cold"]["failure"]["tier"] == "custom"
    assert entry["version"] == "2.4.0" and entry["cold"]["versions"]["upgrade_base"] == "2.3.1"
    assert entry["promote"] == {"outcome": "not-run"}
    # the Classifier takes it: the re-runs' evidence lands inside the run's folder
    clf = Classifier(None, "inv", "ledgerapp", RUN_DOC["run_id"], entry, loaded, {}, "img")
    assert clf.runs_dir == str(run / "runs") and clf.kind == "cold"
    assert clf.observations[0]["arm"] == "isolated"


@pytest.mark.parametrize("files, recipe, words", [
    ({}, "ledgerapp", "no sweep.json or result.json"),
    ({"result.json": RUN_DOC}, "gitea", "is of ledgerapp, not gitea"),
    ({"sweep.json": {"sweep_id": "s1", "recipes": []}}, "ledgerapp", "ledgerapp was not in sweep s1"),
])
def test_what_cannot_be_classified_is_refused(tmp_path, files, recipe, words):
    from canon.classifier import ClassifyError, classify_target
    for name, doc in files.items():
        _write(tmp_path / name, doc)
    with pytest.raises(ClassifyError, match=words):
        classify_target(str(tmp_path), recipe)


def test_a_harness_error_run_is_infra_to_the_classifier():
    from canon.classifier import entry_from_result
    doc = dict(RUN_DOC, outcome="harness-error", tiers=[
        {"name": "install", "outcome": "pass"},
        {"name": "upgrade", "outcome": "harness-error", "task": "t", "error": "harness error (template)"}])
    entry = entry_from_result(doc, "/r/result.json")
    assert entry["cold"]["outcome"] == "infra" and entry["cold"]["infra"] == "harness-error"
    assert observation("isolated", "cold", entry["cold"], origin=True)["outcome"] == "infra"


def test_relative_and_absolute_paths_give_one_fingerprint():
    from canon.verdict import fingerprint as fp
    rel = "cannot read results/sweep-20261206200000-abc123/runs/ledgerapp-20261206200101-0a1b2c/evidence/x.log"
    absolute = ("cannot read /work/main/results/sweep-20261206200000-abc123/runs/"
                "ledgerapp-20261206200101-0a1b2c/evidence/x.log")
    other = "cannot read results/sweep-20261206200000-abc123/runs/ledgerapp-20261206200101-0a1b2c/evidence/y.log"
    assert fp("custom", rel) == fp("custom", absolute)
    assert fp("custom", rel) == fp("custom", other)   # the path as a whole is the run's, not the failure's
    assert fp("custom", rel) != fp("custom", "cannot read the totals")


@pytest.mark.parametrize("inventory, proxy, image", [
    ("inventory/bench/hosts.yml", "http://127.0.0.1:8480", "canon-bench/busybox:1.36"),
    ("inventory/example/hosts.yml", "", "busybox:stable"),
])
def test_proxy_and_probe_image_come_from_the_inventory_in_use(inventory, proxy, image):
    import os
    from canon import ROOT
    from canon.cli import probe_image
    from canon.inventory import load_servers
    from canon.sweep import proxy_urls
    server = load_servers(os.path.join(ROOT, inventory))[0]
    assert proxy_urls(server) == ([proxy] if proxy else [])
    assert probe_image(server) == image


def test_a_sweep_that_loses_the_server_lock_by_a_hair_names_the_winner(tmp_path):
    # the winner takes the flock, then writes who it is: a loser reading in between waits for the
    # name instead of saying "another canon process"
    import fcntl
    import threading
    import types

    from canon.cli import Refused, ServerLock
    server = types.SimpleNamespace(state_dir=str(tmp_path), name="default")
    path = tmp_path / "driver-default.lock"
    holder = open(path, "a+")
    fcntl.flock(holder, fcntl.LOCK_EX)
    writer = threading.Timer(0.3, lambda: (holder.write("sweep by pid 4242 since 10:00:00"), holder.flush()))
    writer.start()
    try:
        with pytest.raises(Refused, match="server default is busy: sweep by pid 4242"):
            with ServerLock(server, "sweep", wait=False):
                pass
    finally:
        writer.join()
        holder.close()


# -- a promote classification whose reset of the canonical the server could not take ---------
# Before each promote attempt the classifier puts the canonical back on the previous release
# (warm teardown, a cold install of that release, its promote). When the engine, not the
# recipe, breaks one of those steps the attempt is an infra observation and the classification
# goes on (or ends as infra) the way it does for any infra run; any other reset failure still
# stops it (ClassifyError).

WEDGED_IN_NEW = ("timeout: not converged after 12 min (api: 0/1 running; worker: 0/2 running; last progress: "
                 "none since the watch began 12 min ago); 3 task(s) stuck in swarm's new state "
                 "(never allocated: api, worker)")
LEDGER_PROMOTE_RED = "readiness: https://ledger.warm.example/api/v2/ping answered 500 six times in a row"


class _ScriptedJob:
    """canon.runner.Job's face: each playbook answers from its queue, in the order run."""
    script: dict = {}
    ran: list = []

    def __init__(self, playbook, extravars, ident, inventory, timeout, cancel=None):
        self.playbook, self.extravars, self.ident = playbook, extravars, ident

    def run(self):
        from canon.runner import JobResult
        _ScriptedJob.ran.append((self.playbook, self.extravars.get("version")))
        answer = _ScriptedJob.script[self.playbook].pop(0)
        res = JobResult(ident=self.ident, playbook=self.playbook, status=answer.get("status", "successful"), rc=0,
                        started=10.0, finished=20.0)
        res.failures = answer.get("failures", [])
        if "cold" in answer:
            run_id = "ledgerapp-20261201100000-%06d" % len(_ScriptedJob.ran)
            outcome, error, infra = answer["cold"]
            tier = {"name": "install", "outcome": outcome, "error": error}
            if infra:
                tier["infra"] = infra
            res.run_ids = [run_id]
            res.results = [{"run_id": run_id, "outcome": outcome, "tiers": [tier], "versions": {"head": "2.3.1"}}]
        if "promote" in answer:
            outcome, error = answer["promote"]
            res.promotions = [{"outcome": outcome, "run_id": "ledgerapp-20261201100500-%06d" % len(_ScriptedJob.ran),
                               "mode": "fresh", "in_place_error": error}]
        return res


class _NoLoad:
    samples: list = []

    def __init__(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _promote_classifier(tmp_path, monkeypatch, script, budget=6):
    import types

    import canon.classifier as classifier
    monkeypatch.setattr(classifier, "Job", _ScriptedJob)
    monkeypatch.setattr(classifier, "Sampler", _NoLoad)
    monkeypatch.setattr(classifier, "LoadArm", _NoLoad)
    monkeypatch.setattr(classifier, "harness_commit", lambda: "h" * 40)
    _ScriptedJob.script = {k: list(v) for k, v in script.items()}
    _ScriptedJob.ran = []
    server = types.SimpleNamespace(name="edge-2", host="edge-2", state_dir=str(tmp_path / "state"),
                                   vars={"canon_proxy_url": "https://10.20.30.40:9443"})
    entry = {"recipe": "ledgerapp", "version": "2.4.0", "recipe_commit": "c" * 40,
             "cold": {"outcome": "pass", "result": str(tmp_path / "cold" / "result.json"), "tiers": []},
             "promote": {"outcome": "failed", "previous": "2.3.1", "mode": "advance",
                         "in_place_error": LEDGER_PROMOTE_RED, "detail": LEDGER_PROMOTE_RED}}
    return Classifier(server, "inv", "ledgerapp", str(tmp_path / "sweep"), entry, False, {}, "img", budget=budget)


RESET_OK = {"warm_teardown.yml": [{}], "isolate.yml": [{"cold": ("pass", "", None)}],
            "promote.yml": [{"promote": ("promoted", "")}]}


def test_a_reset_redeploy_stuck_in_swarms_new_state_is_an_infra_run_and_the_classification_goes_on(
        tmp_path, monkeypatch):
    # attempt 1: the previous release's promote wedges with its tasks never allocated (infra);
    # attempt 2: the reset goes through and the promote fails as the sweep saw it: genuine
    script = {"warm_teardown.yml": [{}, {}],
              "isolate.yml": [{"cold": ("pass", "", None)}, {"cold": ("pass", "", None)}],
              "promote.yml": [{"promote": ("failed", WEDGED_IN_NEW)},
                              {"promote": ("promoted", "")}, {"promote": ("failed", LEDGER_PROMOTE_RED)}]}
    doc = _promote_classifier(tmp_path, monkeypatch, script).run()
    runs = doc["arms"]["isolated"]["runs"]
    assert [r["outcome"] for r in runs] == ["fail", "infra", "fail"]
    assert runs[1]["infra"] == "allocator-stuck" and runs[1]["tier"] == "promote"
    # the evidence: which reset step, its run and its record, and the watcher's own words
    assert "the reset of the ledgerapp canonical to 2.3.1 did not complete (promote of 2.3.1" in runs[1]["error"]
    assert runs[1]["run_id"] and runs[1]["run_id"] in runs[1]["error"] and "promote.json" in runs[1]["error"]
    assert "never allocated: api, worker" in runs[1]["error"]
    assert doc["verdict"] == "genuine" and doc["clear"] and doc["budget"]["used"] == 2
    assert doc["arms"]["isolated"]["infra"] == 1
    assert (tmp_path / "sweep" / "classify" / "ledgerapp.json").exists()


def test_two_resets_the_server_cannot_take_end_the_classification_as_infra(tmp_path, monkeypatch):
    script = {"warm_teardown.yml": [{}, {}],
              "isolate.yml": [{"cold": ("pass", "", None)},
                              {"cold": ("infra", "manifest for registry.example/ledgerapp:2.3.1 not found: "
                                                 "manifest unknown", "image-unavailable")}],
              "promote.yml": [{"promote": ("failed", WEDGED_IN_NEW)}]}
    doc = _promote_classifier(tmp_path, monkeypatch, script).run()
    runs = doc["arms"]["isolated"]["runs"]
    assert [(r["outcome"], r["infra"]) for r in runs[1:]] == [
        ("infra", "allocator-stuck"), ("infra", "image-unavailable")]
    assert "(cold install of 2.3.1" in runs[2]["error"]
    assert doc["verdict"] == "infra" and doc["clear"]
    assert doc["location"]["where"] == "infra"
    assert "allocator-stuck" in doc["location"]["detail"] and "image-unavailable" in doc["location"]["detail"]
    # the promote under test never ran: nothing was promoted from the sweep's cold result
    assert ("promote.yml", "2.4.0") not in _ScriptedJob.ran


def test_a_warm_teardown_the_engine_refused_is_infra(tmp_path, monkeypatch):
    down = "Cannot connect to the Docker daemon at unix:///run/user/1000/docker.sock. Is the docker daemon running?"
    clf = _promote_classifier(tmp_path, monkeypatch, {"warm_teardown.yml": [
        {"status": "failed", "failures": [{"task": "Remove the canonical", "msg": down}]}]})
    obs = clf.run_arm("isolated", 1)
    assert obs["outcome"] == "infra" and "(warm teardown)" in obs["error"] and down in obs["error"]
    assert clf.records[-1]["reset"] == {"step": "warm teardown", "previous": "2.3.1", "run_id": None, "result": None,
                                        "infra": "engine-down", "error": down}


@pytest.mark.parametrize("script, words", [
    # the recipe's own reasons: the previous release does not promote, or is not green cold
    (dict(RESET_OK, **{"promote.yml": [{"promote": ("failed", LEDGER_PROMOTE_RED)}]}),
     "cannot reset the ledgerapp canonical to 2.3.1"),
    (dict(RESET_OK, **{"isolate.yml": [{"cold": ("fail", "install: /api/v2/ping answered 500", None)}]}),
     "2.3.1 is not green cold"),
    ({"warm_teardown.yml": [{"status": "failed", "failures": [{
        "task": "t", "msg": "the lease on the warm domain is held by ledgerapp-20261201090000-0a0b0c"}]}]},
     "cannot reset the ledgerapp canonical"),
])
def test_a_reset_that_fails_for_a_reason_of_its_own_still_stops_the_classification(tmp_path, monkeypatch, script,
                                                                                   words):
    from canon.classifier import ClassifyError
    clf = _promote_classifier(tmp_path, monkeypatch, script)
    with pytest.raises(ClassifyError, match=words):
        clf.run_arm("isolated", 1)


def test_a_reset_that_goes_through_leaves_the_promote_to_decide(tmp_path, monkeypatch):
    script = dict(RESET_OK, **{"promote.yml": [{"promote": ("promoted", "")}, {"promote": ("promoted", "")}]})
    obs = _promote_classifier(tmp_path, monkeypatch, script).run_arm("isolated", 1)
    assert obs["outcome"] == "pass"
    assert _ScriptedJob.ran == [("warm_teardown.yml", None), ("isolate.yml", "2.3.1"), ("promote.yml", "2.3.1"),
                                ("promote.yml", "2.4.0")]


def test_a_re_run_stopped_half_way_is_no_observation(tmp_path, monkeypatch):
    # Ctrl-C during the first re-run's promote: that run says nothing of the recipe, so it is
    # neither a fail nor a pass (counted as a fail, it would make the sweep's red genuine); the
    # classification stops there and names the run it stopped in
    import threading
    script = dict(RESET_OK, **{"promote.yml": [{"promote": ("promoted", "")},
                                               {"status": "canceled", "promote": ("pending", "")}]})
    clf = _promote_classifier(tmp_path, monkeypatch, script)
    stop = threading.Event()
    real_run = _ScriptedJob.run

    def run_then_stop(job):
        res = real_run(job)
        if res.status == "canceled":
            stop.set()
        return res
    monkeypatch.setattr(_ScriptedJob, "run", run_then_stop)
    clf.stop = stop
    doc = clf.run()
    runs = doc["arms"]["isolated"]["runs"] + doc["arms"]["loaded"]["runs"]
    assert [r["outcome"] for r in runs] == ["fail"]      # the sweep's own, nothing from the stopped run
    assert doc["arms"]["isolated"]["fail"] == 1 and doc["budget"]["used"] == 0
    assert doc["interrupted"] is True
    assert [s["arm"] for s in doc["stopped_runs"]] == ["isolated"]
    assert doc["stopped_runs"][0]["run_id"]
    assert doc["verdict"] != "genuine"


def test_a_classification_the_recipe_stops_half_way_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    # a reset the recipe itself stops (its previous release is not green cold) leaves no verdict:
    # one line saying why, exit 2, never a traceback
    import types

    import canon.classifier as classifier
    import canon.cli as cli
    server = types.SimpleNamespace(name="default", state_dir=str(tmp_path / "state"), host="localhost")
    monkeypatch.setattr(cli, "pick_server", lambda args: server)
    monkeypatch.setattr(cli, "probe_image", lambda s: "img")
    monkeypatch.setattr(classifier, "classify_target",
                        lambda folder, recipe: ({"recipe": recipe, "server": "default"}, {}, str(tmp_path)))

    class Stopped:
        def __init__(self, *a, **k):
            pass

        def run(self):
            raise classifier.ClassifyError("cannot reset the gitea canonical: 2.3.1 is not green cold")
    monkeypatch.setattr(classifier, "Classifier", Stopped)
    (tmp_path / "sweep.json").write_text('{"sweep_id": "s1", "recipes": [{"recipe": "gitea"}]}')
    assert cli.main(["classify", "gitea", "--from", str(tmp_path)]) == cli.EXIT_REFUSED
    err = capsys.readouterr().err
    assert err == ("canon: the classification of gitea stopped: cannot reset the gitea canonical: "
                   "2.3.1 is not green cold\n")


# -- never cut mid-word where the verdict is read (issue 17) -----------------------------------

LONG = ("routing identity wrong-backend: the warm domain answered from another stack's app " * 12).strip()


def _cut_at_a_word(whole: str, kept: str, limit: int) -> bool:
    return kept.endswith("…") and len(kept) <= limit and whole.startswith(kept[:-1]) and whole[len(kept) - 1] == " "


def test_a_verification_runs_error_is_cut_at_a_word(tmp_path, monkeypatch):
    import canon.redfix as redfix

    class FakeClassifier:
        def __init__(self, *args, **kwargs):
            self.records = []

        def run_arm(self, arm, n):
            self.records.append({"outcome": "failed", "mode": "advance"})
            return {"outcome": "fail", "run_id": "gitea-20261206200000-abc123", "error": LONG}
    monkeypatch.setattr(redfix, "Classifier", FakeClassifier)
    rf = redfix.Redfix.__new__(redfix.Redfix)
    rf.server, rf.inventory, rf.dir, rf.profile, rf.load_spec = None, "inv", str(tmp_path), {}, None
    rf.probe_image, rf.deadline, rf.stop, rf.progress = "img", 60, None, None
    out = rf.fix_setting({"recipe": "gitea"}, {"verdict": "genuine"}, {"setting": "warm_drift", "detail": "reconcile"})
    [run] = out["verification"]["runs"]
    assert out["status"] == "not-fixed" and _cut_at_a_word(LONG, run["error"], redfix.ERROR_LIMIT)


@pytest.mark.parametrize("verdict,setting", [("load-flake", "canon_slow_start"), ("genuine", "warm_drift")])
def test_a_verification_run_stopped_half_way_leaves_the_fix_unverified(tmp_path, monkeypatch, verdict, setting):
    # Ctrl-C during a verification run: that run says nothing, so the fix is not verified (and
    # the driver does not fall over reading a run that never ended)
    import canon.redfix as redfix

    class Stopped:
        def __init__(self, *args, **kwargs):
            self.records, self.stopped_runs = [], []

        def run_arm(self, arm, n):
            self.records.append({"outcome": "interrupted", "run_id": "gitea-20261206200000-abc123"})
            self.stopped_runs.append({"arm": arm, "run_id": "gitea-20261206200000-abc123"})
            return None
    monkeypatch.setattr(redfix, "Classifier", Stopped)
    rf = redfix.Redfix.__new__(redfix.Redfix)
    rf.server, rf.inventory, rf.dir, rf.profile, rf.load_spec = None, "inv", str(tmp_path), {}, None
    rf.probe_image, rf.deadline, rf.stop, rf.progress = "img", 60, None, None
    classification = {"verdict": verdict, "arms": {"loaded": {"fail": 3, "pass": 0}}}
    out = rf.fix_setting({"recipe": "gitea"}, classification, {"setting": setting, "detail": "the fix"})
    [run] = out["verification"]["runs"]
    assert run["outcome"] == "interrupted" and run["run_id"] == "gitea-20261206200000-abc123"
    assert out["status"] == "not-fixed" and "not verified" in out["reason"]


def test_m2_cuts_a_systemic_event_at_a_word():
    from canon.redfix import m2_report
    doc = {"redfix_id": "redfix-20261206200000-abc123", "server": "default", "outcome": "fail", "sweeps": {},
           "systemic": [{"recipes": ["a", "b"], "normalised": LONG}], "recipes": {}}
    [line] = [line for line in m2_report(doc, {"recipes": []}, {}).splitlines() if line.startswith("- systemic")]
    assert _cut_at_a_word(LONG, line.split(": ", 1)[1], 120)


def test_a_pull_request_that_could_not_be_made_says_why_cut_at_a_word(tmp_path):
    from types import SimpleNamespace
    import canon.forge_ci as forge_ci
    bench = forge_ci.BenchForge.__new__(forge_ci.BenchForge)
    bench.prs = {}
    bench._job = lambda *a, **k: SimpleNamespace(status="failed", failures=[{"msg": LONG}])
    entry = {"recipe": "gitea", "cold": {"failure": {"tier": "custom", "error": "e"}}, "promote": {"outcome": "skipped"}}
    out = bench.pull_request(SimpleNamespace(dir=str(tmp_path)), entry, {"verdict": "genuine"},
                             {"kind": "test-pr", "branch": "canon/fix", "title": "t", "patch": "p"})
    head = "the pull request could not be made: "
    assert out["status"] == "not-fixed" and out["reason"].startswith(head)
    assert _cut_at_a_word(LONG, out["reason"][len(head):], forge_ci.REASON_LIMIT)


def test_a_failed_tasks_message_is_cut_at_a_word():
    from canon.runner import MSG_LIMIT, Job
    job = Job("isolate.yml", {}, "ident", "inv", 10)
    msg = ("the deploy of the release did not converge " * 80).strip()
    job._event({"event": "runner_on_failed", "event_data": {"task": "install - deploy", "res": {"msg": msg}}})
    [failure] = job.result.failures
    assert failure["task"] == "install - deploy" and _cut_at_a_word(msg, failure["msg"], MSG_LIMIT)


def test_m2_says_the_classification_runs_in_words_with_the_statistic_beside_them():
    from canon.redfix import evidence_words
    genuine = {"verdict": "genuine", "confidence": {"p_value": 1.0}}
    assert evidence_words({"fail": 2, "pass": 0}, {"fail": 1, "pass": 0}, genuine) == (
        "isolated 2 of 2 red (the same failure), loaded 1 of 1 red; Fisher p = 1")
    flake = {"verdict": "load-flake", "confidence": {"p_value": 0.05}}
    assert evidence_words({"fail": 0, "pass": 3}, {"fail": 2, "pass": 0}, flake) == (
        "isolated 0 of 3 red, loaded 2 of 2 red; Fisher p = 0.05")
    assert evidence_words({"fail": 1, "pass": 0}, {}, {}) == "isolated 1 of 1 red, loaded none run; Fisher p = 1"


# -- an isolated run on a busy machine is no isolated run ------------------------------------

class _BusySampler(_NoLoad):
    """The controller's CPUs 97 % busy over the run: something besides the harness ran."""

    def __init__(self, *args, **kwargs):
        self.samples = [{"t": 100.0, "load1": 3.1, "mem_used_pct": 40.0, "cpu": [1000, 2000]},
                        {"t": 130.0, "load1": 5.9, "mem_used_pct": 41.0, "cpu": [6820, 8000]}]


def test_an_isolated_re_run_on_a_busy_machine_counts_as_loaded_and_isolated_is_asked_again(tmp_path, monkeypatch):
    # no other harness run was live, but the machine was busy: that red is no isolated evidence
    # (two of them would otherwise read genuine), so it joins the loaded arm and the next run
    # asked is isolated again; on a quiet machine the second isolated red then decides
    import canon.classifier as classifier
    script = {"warm_teardown.yml": [{}, {}, {}],
              "isolate.yml": [{"cold": ("pass", "", None)}] * 3,
              "promote.yml": [{"promote": ("promoted", "")}, {"promote": ("failed", LEDGER_PROMOTE_RED)}] * 3}
    clf = _promote_classifier(tmp_path, monkeypatch, script)
    monkeypatch.setattr(classifier, "Sampler", _BusySampler)
    first = clf.run_arm("isolated", 1)
    assert first["arm"] == "loaded" and first["run_as"] == "isolated" and first["busy_from"] == 90.0
    assert first["load"]["cpu_busy_pct"] == 97.0
    clf.observations.append(first)
    d = classifier.decide(clf.observations)
    assert not d["clear"] and d["next_arm"] == "isolated"
    assert "met a busy machine and counts as loaded" in d["reason"] and "CPUs 97% busy" in d["reason"]
    monkeypatch.setattr(classifier, "Sampler", _NoLoad)
    doc = clf.run()
    assert doc["verdict"] == "genuine"
    moved = [r for r in doc["arms"]["loaded"]["runs"] if r.get("run_as")]
    assert [(r["run_as"], r["busy_from"], r["outcome"]) for r in moved] == [("isolated", 90.0, "fail")]


def test_a_quiet_machine_keeps_the_isolated_run_isolated(tmp_path, monkeypatch):
    import canon.classifier as classifier

    class Quiet(_BusySampler):
        def __init__(self, *args, **kwargs):
            self.samples = [{"t": 100.0, "load1": 3.1, "cpu": [1000, 2000]}, {"t": 130.0, "load1": 2.0, "cpu": [1500, 8000]}]
    script = dict(RESET_OK, **{"promote.yml": [{"promote": ("promoted", "")}, {"promote": ("failed", LEDGER_PROMOTE_RED)}]})
    clf = _promote_classifier(tmp_path, monkeypatch, script)
    monkeypatch.setattr(classifier, "Sampler", Quiet)
    obs = clf.run_arm("isolated", 1)
    assert obs["arm"] == "isolated" and "run_as" not in obs and obs["load"]["cpu_busy_pct"] == 8.3
    # a threshold of the caller's own: the same run at 5 % counts as loaded
    clf = _promote_classifier(tmp_path, monkeypatch, script)
    clf.busy_from = 5.0
    monkeypatch.setattr(classifier, "Sampler", Quiet)
    assert clf.run_arm("isolated", 1)["arm"] == "loaded"
