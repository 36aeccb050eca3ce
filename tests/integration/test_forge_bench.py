"""The bench forge as provisioned by playbooks/bench.yml: real git to the recipe's mirror, the
module through a playbook, the CI queue, and no merge call in the forge's request log."""
from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.request
import uuid

import pytest

from conftest import BENCH_ROOT, ROOT, ansible_env, assert_no_deprecation

FORGE = os.path.join(BENCH_ROOT, "forge")
API = "http://127.0.0.1:8490/api/v1"
RECIPE = "custom-html"


def git(repo, *args) -> str:
    env = dict(os.environ, GIT_AUTHOR_NAME="canon test", GIT_AUTHOR_EMAIL="t@bench.canon.test",
               GIT_COMMITTER_NAME="canon test", GIT_COMMITTER_EMAIL="t@bench.canon.test")
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0, "git %s: %s" % (" ".join(args), res.stderr)
    return res.stdout.strip()


def lines(name) -> list:
    path = os.path.join(FORGE, name)
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


@pytest.fixture
def forge_up():
    try:
        urllib.request.urlopen(API + "/repos/coop-cloud/" + RECIPE, timeout=5)
    except urllib.error.HTTPError as exc:
        if exc.code == 401 and exc.headers.get("X-Canon-Bench") == "forge":
            return
    except OSError:
        pass
    pytest.fail("the bench forge does not answer on %s: run playbooks/bench.yml" % API)


def test_fix_branch_pull_request_testme_verdict_close(forge_up, tmp_path):
    bench_repo = os.path.join(BENCH_ROOT, "repos", RECIPE)
    mirror = git(bench_repo, "remote", "get-url", "mirror")
    assert mirror == os.path.join(FORGE, "git", "coop-cloud", RECIPE + ".git")
    assert git(mirror, "rev-parse", "main") == git(bench_repo, "rev-parse", "main")

    # a fix branch in a clone (the shared bench repo's work tree is left alone), pushed to the mirror
    work = tmp_path / RECIPE
    git(tmp_path, "clone", "--quiet", bench_repo, str(work))
    git(work, "remote", "add", "mirror", mirror)
    branch = "canon-test/forge-%s" % uuid.uuid4().hex[:8]
    git(work, "checkout", "--quiet", "-b", branch)
    (work / "canon-forge-test.txt").write_text("a fix, for the forge integration test\n")
    git(work, "add", "canon-forge-test.txt")
    git(work, "commit", "--quiet", "-m", "test: forge integration")
    sha = git(work, "rev-parse", "HEAD")
    git(work, "push", "--quiet", "mirror", branch)
    log_before = len(lines("requests.jsonl"))

    out = tmp_path / "forge.json"
    try:
        res = subprocess.run(["ansible-playbook", os.path.join(ROOT, "tests", "integration", "playbooks", "forge.yml"),
                              "-e", json.dumps({"forge_recipe": RECIPE, "forge_head": branch, "forge_out": str(out)})],
                             cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
        assert_no_deprecation("forge.yml", res.stdout, res.stderr)
        r = json.loads(out.read_text())
        assert r["check"]["changed"] and r["check"]["pr"]["number"] is None
        pr = r["testme"]["pr"]
        assert r["testme"]["changed"] and r["testme"]["commented"] and pr["head_sha"] == sha and pr["state"] == "open"
        assert pr["url"] == "http://127.0.0.1:8490/coop-cloud/%s/pulls/%d" % (RECIPE, pr["number"])
        assert not r["testme_again"]["changed"] and r["testme_again"]["pr"]["number"] == pr["number"]
        assert r["verdict"]["verdict"]["state"] == "pending" and r["verdict"]["verdict"]["sha"] == sha
        assert r["closed"]["changed"] and r["closed"]["pr"]["state"] == "closed"
        assert not r["closed_again"]["changed"]

        jobs = [j for j in lines("ci-queue.jsonl") if j["head_ref"] == branch]
        assert [(j["repo"], j["pr"], j["head_sha"]) for j in jobs] == [("coop-cloud/" + RECIPE, pr["number"], sha)]
        assert jobs[0]["git_dir"] == mirror
        with open(os.path.join(FORGE, "token")) as fh:
            token = fh.read().strip()
        assert token not in res.stdout + res.stderr + out.read_text()
    finally:
        git(work, "push", "--quiet", "mirror", "--delete", branch)

    base = "/api/v1/repos/coop-cloud/%s/" % RECIPE
    ours = [q for q in lines("requests.jsonl")[log_before:]
            if q["path"].startswith(base + "pulls") or q["path"].startswith(base + "issues/%d/" % pr["number"])
            or q["path"].startswith(base + "commits/" + sha)]
    assert ours and not [q for q in lines("requests.jsonl") if "/merge" in q["path"]]
    writes = [(q["method"], q["path"][len(base):]) for q in ours if q["method"] != "GET"
              and (q["body"] or {}).get("head", branch) == branch]
    assert writes == [("POST", "pulls"), ("POST", "issues/%d/comments" % pr["number"]),
                      ("PATCH", "pulls/%d" % pr["number"])]
