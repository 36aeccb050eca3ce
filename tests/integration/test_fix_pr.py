"""The fix flow on the bench: fix_pr.yml -> pull request -> !testme -> the bench CI -> the verdict.

The mattermost-lts recipe fix (roles/bench/files/recipe-fixes/mattermost-lts/2.1.1+9.11.5) goes
through playbooks/fix_pr.yml as a branch and release candidate tag on the recipe's mirror and a
pull request with !testme; canon.ci.answer_pending runs the lifecycle on the head commit (the
tiers the defect is about, install and backup_restore, to stay short) and posts the verdict;
gitea_pull_request state=verdict reads it. The pull request is closed at the end, its branch
removed, the mirror's candidate tag put back as it was (another fix pull request may carry it),
and the bench repository and abra's checkout are left without it. A test fix that only deletes
the stale discourse assertion is refused before anything is pushed.
"""
from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

from conftest import ABRA_DIR, BENCH_ROOT, ROOT, ansible_env, run_playbook

from canon import ci

FORGE_GIT = os.path.join(BENCH_ROOT, "forge", "git", "coop-cloud")
TAG = "2.1.1+9.11.5"
FIX_TREE = os.path.join("roles", "bench", "files", "recipe-fixes", "mattermost-lts", TAG)
INVENTORY = os.path.join(ROOT, "inventory", "bench", "hosts.yml")


def git(repo, *args, check=True) -> str:
    res = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True)
    if check and res.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), res.stderr))
    return res.stdout.strip()


def refs(repo) -> dict:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)")
    return {line.split()[0]: line.split()[-1] for line in out.splitlines()}


def pr_module(**args) -> dict:
    """gitea_pull_request as Ansible runs it (ad hoc, on the bench host), its result."""
    module_args = dict(api_url="{{ canon_forge_url }}", token_file="{{ canon_forge_token_file }}",
                       owner="coop-cloud", **args)
    res = subprocess.run(["ansible", "bench", "-m", "coopcloud.canon.gitea_pull_request", "-a",
                          json.dumps(module_args)], cwd=ROOT, env=ansible_env(), capture_output=True, text=True,
                         timeout=120)
    out = res.stdout
    assert "=>" in out, out + res.stderr
    return json.loads(out.split("=>", 1)[1])


def fix_pr(results_dir, record, **extra):
    return run_playbook("fix_pr.yml", results_dir, timeout=300, fix_record=record, **extra)


def queue() -> list:
    path = os.path.join(BENCH_ROOT, "forge", "ci-queue.jsonl")
    return ci.read_jsonl(path)


MIRROR = os.path.join(FORGE_GIT, "mattermost-lts.git")
CHECKOUTS = (os.path.join(BENCH_ROOT, "repos", "mattermost-lts"), os.path.join(ABRA_DIR, "recipes", "mattermost-lts"))


def tag_ref(repo) -> str | None:
    """The tag object (or commit) refs/tags/TAG names in repo, or None."""
    res = subprocess.run(["git", "-C", repo, "rev-parse", "--verify", "--quiet", "refs/tags/" + TAG],
                         capture_output=True, text=True)
    return res.stdout.strip() or None


@pytest.fixture
def mattermost_branch():
    """A branch of its own; the candidate tag TAG as the mirror had it (another fix pull request
    may carry it) is put back afterwards, and the bench repository and abra's checkout must not
    have it then."""
    branch = "canon/fix-mattermost-lts-%s" % uuid.uuid4().hex[:6]
    mirror_tag = tag_ref(MIRROR)
    assert all(tag_ref(repo) is None for repo in CHECKOUTS), "a %s tag is left in the bench repositories" % TAG
    yield branch
    closed = pr_module(repo="mattermost-lts", head=branch, state="closed")
    assert closed.get("failed") is not True, closed
    git(MIRROR, "update-ref", "-d", "refs/heads/" + branch, check=False)
    if mirror_tag:
        git(MIRROR, "update-ref", "refs/tags/" + TAG, mirror_tag)
    else:
        git(MIRROR, "update-ref", "-d", "refs/tags/" + TAG, check=False)
    for repo in CHECKOUTS:
        git(repo, "tag", "-d", TAG, check=False)
        git(repo, "branch", "-D", branch, check=False)
    assert "refs/heads/" + branch not in refs(MIRROR) and tag_ref(MIRROR) == mirror_tag
    assert all(tag_ref(repo) is None for repo in CHECKOUTS)


def test_mattermost_recipe_fix_through_the_forge_and_its_ci(results_dir, tmp_path, mattermost_branch):
    branch = mattermost_branch
    mirror = MIRROR
    record = str(tmp_path / "pr.json")
    pb = fix_pr(results_dir, record, recipe="mattermost-lts", fix_kind="recipe-pr", fix_tree=FIX_TREE, fix_tag=TAG,
                fix_branch=branch, fix_failure="backup_restore: the restore did not bring back the state",
                fix_classification={"verdict": "genuine", "kind": "isolated",
                                    "reason": "red in every isolated run"})
    assert pb.rc == 0, pb.stdout[-3000:]
    with open(record) as fh:
        pr = json.load(fh)
    assert pr["repo"] == "coop-cloud/mattermost-lts" and pr["url"].endswith("/coop-cloud/mattermost-lts/pulls/%d"
                                                                            % pr["number"])
    assert pr["pushed"] and pr["testme"] and pr["tag"] == TAG
    assert sorted(pr["files"]) == ["README.md", "compose.yml", "release/" + TAG]
    on_mirror = refs(mirror)
    assert on_mirror["refs/heads/" + branch] == on_mirror["refs/tags/" + TAG] == pr["head_sha"]
    assert git(mirror, "rev-parse", pr["head_sha"] + "^") == on_mirror["refs/heads/main"] == pr["base_sha"]
    assert "re-imports" in git(mirror, "show", pr["head_sha"] + ":compose.yml")
    [job] = [j for j in queue() if j["repo"] == "coop-cloud/mattermost-lts" and j["pr"] == pr["number"]]
    assert job["head_sha"] == pr["head_sha"] and job["head_ref"] == branch
    assert "%s #%d: %s" % (pr["repo"], pr["number"], pr["url"]) in pb.stdout

    # The same fix again: nothing pushed, the same pull request, no second !testme.
    again = fix_pr(results_dir, record, recipe="mattermost-lts", fix_kind="recipe-pr", fix_tree=FIX_TREE,
                   fix_tag=TAG, fix_branch=branch)
    assert again.rc == 0, again.stdout[-3000:]
    with open(record) as fh:
        pr2 = json.load(fh)
    assert (pr2["number"], pr2["head_sha"], pr2["pushed"], pr2["testme"]) == (pr["number"], pr["head_sha"], False, False)

    pending = pr_module(repo="mattermost-lts", head=branch, state="verdict", context=ci.CONTEXT)
    assert pending["verdict"]["state"] == "pending" and pending["verdict"]["comment"] is None

    # The bench CI answers: the lifecycle on the head commit as release candidate 2.1.1+9.11.5.
    answers = ci.answer_pending(INVENTORY, results_dir, tier_order=["install", "backup_restore"],
                                repo="coop-cloud/mattermost-lts", pr=pr["number"])
    [answer] = answers
    assert answer["state"] == "success", json.dumps({k: v for k, v in answer.items() if k != "runs"}) + \
        json.dumps([{k: v for k, v in r.items() if k != "doc"} for r in answer["runs"]])
    [run] = answer["runs"]
    assert run["version"] == TAG and run["outcome"] == "pass"
    assert [(t["name"], t["outcome"]) for t in run["doc"]["tiers"]] == [
        ("preflight", "pass"), ("install", "pass"), ("backup_restore", "pass")]
    assert run["doc"]["versions"]["head"] == TAG
    # the restore post-hook of the fix is what brought the state back
    restore_logs = [f for f in os.listdir(os.path.join(os.path.dirname(run["result"]), "evidence", "commands"))
                    if "abra-app-restore" in f]
    with open(os.path.join(os.path.dirname(run["result"]), "evidence", "commands", restore_logs[0])) as fh:
        assert "running restore post-hook: /run/db/restore" in fh.read()
    # the candidate tag is gone again from the bench repository and abra's checkout
    for repo in CHECKOUTS:
        assert tag_ref(repo) is None, repo

    verdict = pr_module(repo="mattermost-lts", head=branch, state="verdict", context=ci.CONTEXT)
    assert verdict["verdict"]["state"] == "success" and verdict["verdict"]["sha"] == pr["head_sha"]
    [status] = verdict["verdict"]["statuses"]
    assert status["context"] == "canon/lifecycle" and status["description"] == "mattermost-lts PASS"
    body = verdict["verdict"]["comment"]["body"]
    assert "| backup_restore | pass |" in body and run["run_id"] in body
    assert "<!-- canon verdict: %s -->" % pr["head_sha"] in body

    # answered once: a second call has nothing to do
    assert ci.answer_pending(INVENTORY, results_dir, repo="coop-cloud/mattermost-lts", pr=pr["number"]) == []
    # nothing was merged: main on the mirror did not move
    assert refs(mirror)["refs/heads/main"] == pr["base_sha"]


def test_a_test_fix_that_only_deletes_the_stale_assertion_is_refused_before_anything_is_pushed(results_dir, tmp_path):
    suites = os.path.join(FORGE_GIT, "canon-suites.git")
    assert os.path.isfile(os.path.join(suites, "HEAD")), "no canon-suites repository on the bench forge: run make bench"
    # The lazy "fix": the two assertions on the version deleted, nothing in their place.
    with open(os.path.join(ROOT, "tests", "suites", "discourse", "test_about.py")) as fh:
        stale = fh.read().splitlines()
    start = stale.index("def test_about_reports_the_version(get):")
    body = stale[start:]
    removed = [line for line in body if line.strip().startswith("assert") and "about" in line]
    assert len(removed) == 2, removed
    patch = ["diff --git a/discourse/test_about.py b/discourse/test_about.py",
             "--- a/discourse/test_about.py", "+++ b/discourse/test_about.py",
             "@@ -%d,%d +%d,%d @@" % (start + 1, len(body), start + 1, len(body) - 2)]
    patch += [("-" if line in removed else " ") + line for line in body]
    path = tmp_path / "weaken.patch"
    path.write_text("\n".join(patch) + "\n")
    before_suites, before_queue = refs(suites), len(queue())
    branch = "canon/fix-discourse-%s" % uuid.uuid4().hex[:6]
    pb = fix_pr(results_dir, str(tmp_path / "pr.json"), recipe="discourse", fix_kind="test-pr", fix_patch=str(path),
                fix_branch=branch)
    assert pb.rc != 0
    assert "refused: the fix weakens tests instead of fixing them" in pb.stdout, pb.stdout[-3000:]
    assert "discourse/test_about.py: removes 2 assertions and adds none" in pb.stdout
    assert refs(suites) == before_suites                      # no branch pushed
    assert len(queue()) == before_queue                       # no !testme
    assert not os.path.exists(tmp_path / "pr.json")           # no pull request record
    listed = pr_module(repo="canon-suites", head=branch, state="closed")
    assert listed["pr"] is None and not listed["changed"]     # and no pull request
