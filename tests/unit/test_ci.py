"""canon.ci without a swarm: the queue bookkeeping, the release candidate tag's round trip through
real git, and the forge protocol against a real bench-forge process (tests/unit/forge_bench.py).

The harness run itself (CI.isolate, an isolate.yml through ansible-runner) is replaced by a
recorded result document here; tests/integration/test_fix_pr.py runs the real one on the bench.
"""
from __future__ import annotations

import json
import os

import pytest

from forge_bench import OWNER, REPO, BenchForge, git, run_module

from canon import ci


# -- the queue -----------------------------------------------------------------------------------------
def test_a_job_is_answered_once(tmp_path):
    queue = tmp_path / "ci-queue.jsonl"
    jobs = [{"repo": "coop-cloud/x", "pr": 1, "head_sha": "a" * 40, "comment_id": 3},
            {"repo": "coop-cloud/x", "pr": 1, "head_sha": "b" * 40, "comment_id": 7}]
    queue.write_text("".join(json.dumps(j) + "\n" for j in jobs))
    state = str(tmp_path / "state")
    assert ci.pending_jobs(str(queue), state) == jobs
    ci.mark_answered(state, {"comment_id": 3, "state": "success"})
    assert ci.pending_jobs(str(queue), state) == jobs[1:]
    ci.mark_answered(state, {"comment_id": 7, "state": "failure"})
    assert ci.pending_jobs(str(queue), state) == []


def test_a_broken_queue_line_is_an_error(tmp_path):
    queue = tmp_path / "q.jsonl"
    queue.write_text('{"comment_id": 1}\nnot json\n')
    with pytest.raises(ci.CIError, match="line 2 is not JSON"):
        ci.pending_jobs(str(queue), str(tmp_path))


# -- the release candidate tag ---------------------------------------------------------------------------
slow = pytest.mark.slow   # real git and bench-forge processes (make unit skips them)


@pytest.fixture
def repos(tmp_path):
    """A bench recipe repo, its mirror with a fix branch tagged 1.0.1+1.36, and abra's checkout."""
    work, mirror = tmp_path / "repos" / REPO, tmp_path / "forge" / (REPO + ".git")
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=main")
    (work / "compose.yml").write_text("v1\n")
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "1.0.0")
    git(work, "tag", "-a", "1.0.0+1.36", "-m", "r")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(mirror))
    git(mirror, "branch", "canon/fix", "main")
    fix = tmp_path / "fixwork"
    git(tmp_path, "clone", "--quiet", str(mirror), str(fix))
    git(fix, "checkout", "--quiet", "canon/fix")
    (fix / "compose.yml").write_text("v1 fixed\n")
    git(fix, "commit", "--quiet", "-am", "fix")
    git(fix, "tag", "-a", "1.0.1+1.36", "-m", "candidate")
    git(fix, "push", "--quiet", "origin", "canon/fix", "1.0.1+1.36")
    abra = tmp_path / "abra" / "recipes" / REPO
    git(tmp_path, "clone", "--quiet", str(work), str(abra))
    return {"work": str(work), "mirror": str(mirror), "abra": str(abra), "sha": git(fix, "rev-parse", "HEAD")}


@slow
def test_the_candidate_tag_is_there_for_the_run_and_gone_after(repos):
    assert ci.tags_at(repos["mirror"], repos["sha"]) == ["1.0.1+1.36"]
    with ci.ReleaseCandidate(repos["work"], repos["abra"], repos["mirror"], "1.0.1+1.36", repos["sha"]):
        assert ci.tag_commit(repos["work"], "1.0.1+1.36") == repos["sha"]
        git(repos["abra"], "fetch", "--quiet", "--tags", "origin")          # what abra does during the run
        assert ci.tag_commit(repos["abra"], "1.0.1+1.36") == repos["sha"]
    assert ci.tag_commit(repos["work"], "1.0.1+1.36") is None
    assert ci.tag_commit(repos["abra"], "1.0.1+1.36") is None
    assert ci.tag_commit(repos["work"], "1.0.0+1.36")                       # the releases stay
    assert ci.tag_commit(repos["mirror"], "1.0.1+1.36") == repos["sha"]     # the pull request's tag stays


@slow
def test_a_tag_the_bench_repo_has_at_another_commit_is_not_touched(repos):
    git(repos["work"], "tag", "1.0.1+1.36", "main")
    before = ci.tag_commit(repos["work"], "1.0.1+1.36")
    with pytest.raises(ci.CIError, match="already names"):
        with ci.ReleaseCandidate(repos["work"], repos["abra"], repos["mirror"], "1.0.1+1.36", repos["sha"]):
            pass
    assert ci.tag_commit(repos["work"], "1.0.1+1.36") == before


# -- the verdict on the forge --------------------------------------------------------------------------------
RESULT = {"run_id": "custom-html-20261127000000-abcdef", "outcome": "pass", "level": {"level": 2, "of": 5},
          "tiers": [{"name": "preflight", "outcome": "pass", "duration": 0, "detail": "compose.yml"},
                    {"name": "install", "outcome": "pass", "duration": 8.7, "detail": ""},
                    {"name": "backup_restore", "outcome": "fail", "duration": 3.4,
                     "error": "the restore did not bring back | the state"}]}


@slow
def test_answer_posts_pending_then_the_verdict_and_a_comment_the_module_reads(tmp_path):
    forge = BenchForge(str(tmp_path))
    try:
        forge.push_branch("canon/fix")
        first, _ = run_module(forge.module_args(head="canon/fix", state="testme"), tmp_path)
        [job] = forge.queue()
        settings = ci.Forge(api_url=forge.api_url, token_file=os.path.join(forge.root, "token"), owner=OWNER,
                            git_root=os.path.join(forge.root, "git"), queue=os.path.join(forge.root, "ci-queue.jsonl"),
                            repos_dir=forge.repos)
        runner = ci.CI(settings, server=None, inventory="", results_dir=str(tmp_path))
        seen = []

        def recipe_runs(job_, recipe, ident):
            seen.append([s["state"] for s in forge.state()["statuses"]["coop-cloud/custom-html"][job_["head_sha"]]])
            return [{"recipe": recipe, "version": "1.0.1+1.36", "run_id": RESULT["run_id"], "outcome": "fail",
                     "result": str(tmp_path / RESULT["run_id"] / "result.json"), "duration": 20.0, "doc": RESULT,
                     "failure": {"tier": "backup_restore", "error": "the restore did not bring back the state"}}]
        runner.recipe_runs = recipe_runs
        answer = runner.answer(job)
        assert seen == [["pending"]]                            # pending before the run
        assert answer["state"] == "failure" and answer["description"] == "custom-html FAIL at backup_restore"
        verdict, _ = run_module(forge.module_args(head="canon/fix", state="verdict", context=ci.CONTEXT), tmp_path)
        assert verdict["verdict"]["state"] == "failure" and verdict["verdict"]["sha"] == first["pr"]["head_sha"]
        body = verdict["verdict"]["comment"]["body"]
        assert "| backup_restore | fail | 3.4 | the restore did not bring back \\| the state |" in body
        assert "custom-html 1.0.1+1.36, run `%s`: **fail** (level 2/5)" % RESULT["run_id"] in body
        assert body.endswith("<!-- canon verdict: %s -->" % first["pr"]["head_sha"])
    finally:
        forge.stop()


@slow
def test_a_recipe_head_without_a_release_tag_fails_with_the_reason(tmp_path):
    forge = BenchForge(str(tmp_path))
    try:
        forge.push_branch("canon/fix")
        run_module(forge.module_args(head="canon/fix", state="testme"), tmp_path)
        [job] = forge.queue()
        settings = ci.Forge(api_url=forge.api_url, token_file=os.path.join(forge.root, "token"), owner=OWNER,
                            git_root=os.path.join(forge.root, "git"), queue=os.path.join(forge.root, "ci-queue.jsonl"),
                            repos_dir=forge.repos)
        runner = ci.CI(settings, server=None, inventory="", results_dir=str(tmp_path))
        answer = runner.answer(job)
        assert answer["state"] == "failure" and "carries no release tag" in answer["error"] and answer["runs"] == []
        verdict, _ = run_module(forge.module_args(head="canon/fix", state="verdict"), tmp_path)
        assert verdict["verdict"]["state"] == "failure"
        assert "carries no release tag" in verdict["verdict"]["comment"]["body"]
    finally:
        forge.stop()


@slow
def test_a_suites_pull_request_runs_each_changed_recipe_against_its_head(tmp_path):
    """The head is checked out with the whole suites tree (conftest.py too); only the recipes whose
    suite the pull request changes run, with install and custom."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    work, bare = tmp_path / "suites", tmp_path / "canon-suites.git"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(work))
    for rel in ("conftest.py", "discourse/test_about.py", "custom-html/test_content.py"):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        with open(os.path.join(root, "tests", "suites", rel)) as fh:
            (work / rel).write_text(fh.read())
    git(work, "add", "-A")
    git(work, "commit", "--quiet", "-m", "suites")
    git(tmp_path, "clone", "--quiet", "--bare", str(work), str(bare))
    git(work, "checkout", "--quiet", "-b", "canon/fix-discourse")
    git(work, "apply", "--index", os.path.join(root, "roles", "bench", "files", "test-fixes", "discourse.patch"))
    git(work, "commit", "--quiet", "-m", "test(discourse): read about.version")
    git(work, "push", "--quiet", str(bare), "canon/fix-discourse")
    head = git(work, "rev-parse", "HEAD")
    runner = ci.CI.__new__(ci.CI)
    runner.suites_tier_order = list(ci.SUITES_TIERS)
    calls = []

    def isolate(recipe, ident, version=None, tiers=None, suites_dir=None):
        with open(os.path.join(suites_dir, recipe, "test_about.py")) as fh:
            calls.append((recipe, version, tiers, os.path.isfile(os.path.join(suites_dir, "conftest.py")),
                          'about["about"]["version"]' in fh.read()))
        return {"recipe": recipe, "outcome": "pass"}
    runner.isolate = isolate
    job = {"repo": "coop-cloud/canon-suites", "pr": 1, "head_sha": head, "base_ref": "main", "git_dir": str(bare)}
    assert runner.suites_runs(job, "ci-test") == [{"recipe": "discourse", "outcome": "pass"}]
    assert calls == [("discourse", None, ["install", "custom"], True, True)]


@pytest.mark.parametrize("doc, words", [
    (dict(RESULT, level_text="FAIL, 1 of 4 applicable rungs, stopped at backup_restore (upgrade n/a: oldest)"),
     "**fail** (FAIL, 1 of 4 applicable rungs, stopped at backup_restore (upgrade n/a: oldest))"),
    (RESULT, "**fail** (level 2/5)"),   # a result written before level_text existed
])
def test_the_verdict_comment_states_the_honest_level(doc, words):
    body = ci.comment_body({"head_sha": "0123456789abcdef"}, {"state": "failure", "runs": [
        {"recipe": "custom-html", "version": "1.0.1+1.36", "run_id": doc["run_id"], "outcome": "fail", "doc": doc}]})
    assert words in body


# -- never cut mid-word where the verdict is read (issue 17) ----------------------------------------------

LONG_ERROR = ("custom tests failed: E AssertionError: no channel list from the murmur server | on port 64738 after "
              "the handshake " + "and the server closed the connection without an answer " * 8).strip()


def _cut_at_a_word(whole: str, kept: str, limit: int) -> bool:
    return kept.endswith("…") and len(kept) <= limit and whole.startswith(kept[:-1]) and whole[len(kept) - 1] == " "


def test_the_comments_tier_table_cuts_a_long_detail_at_a_word():
    doc = dict(RESULT, tiers=[{"name": "custom", "outcome": "fail", "duration": 6.4, "error": LONG_ERROR}])
    row = ci.tier_table(doc).splitlines()[2]
    detail = row.split(" | ", 3)[3][:-len(" |")].replace("\\|", "|")
    assert _cut_at_a_word(LONG_ERROR, detail, ci.DETAIL_LIMIT)
    assert "no channel list from the murmur server \\| on port 64738" in row   # the pipe stays escaped


@pytest.mark.parametrize("answer", [
    {"error": "the head commit carries no release tag: " + "fetch the mirror and push the candidate again " * 5},
    {"runs": [{"recipe": "custom-html-%d" % i, "outcome": "fail", "failure": {"tier": "backup_restore"}}
              for i in range(6)]},
])
def test_the_commit_status_description_keeps_its_limit_and_cuts_at_a_word(answer):
    whole = (" ".join(answer["error"].split()) if answer.get("error") else
             "; ".join("%s FAIL at backup_restore" % r["recipe"] for r in answer["runs"]))
    described = ci.CI.describe(answer)
    assert len(whole) > ci.STATUS_DESCRIPTION_MAX and _cut_at_a_word(whole, described, ci.STATUS_DESCRIPTION_MAX)
