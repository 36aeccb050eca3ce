"""gitea_pull_request and its client against a real bench-forge process (tests/unit/forge_bench.py)."""
from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest

from forge_bench import MODULE, OWNER, REPO, ROOT, TOKEN, BenchForge, free_port, git, run_module

from ansible_collections.coopcloud.canon.plugins.module_utils import _forge
from ansible_collections.coopcloud.canon.plugins.module_utils._forge import ForgeClient, ForgeError

# Real processes (a forge server, git, hundreds of module runs): `make test` runs these;
# `make unit` keeps to the fast ones.
pytestmark = pytest.mark.slow


@pytest.fixture
def forge(tmp_path):
    f = BenchForge(str(tmp_path))
    yield f
    f.stop()


def client(forge, token=TOKEN, **kw) -> ForgeClient:
    kw.setdefault("sleep", lambda s: None)
    return ForgeClient(forge.api_url, token, timeout=kw.pop("timeout", 10), **kw)


def writes(forge) -> list:
    return [(r["method"], r["path"]) for r in forge.requests() if r["method"] != "GET"]


# -- find-or-create -------------------------------------------------------------------------------
def test_present_finds_or_creates_one_pull_request_per_branch(forge, tmp_path):
    sha = forge.push_branch("fix/healthcheck")
    check, _ = run_module(forge.module_args(), tmp_path, check=True)
    assert check["changed"] and check["pr"]["number"] is None and check["pr"]["head"] == "fix/healthcheck"
    assert writes(forge) == [], "check mode wrote to the forge"

    first, _ = run_module(forge.module_args(body="found by canon"), tmp_path)
    assert first["changed"] and first["pr"]["number"] == 1 and first["pr"]["state"] == "open"
    assert first["pr"]["head_sha"] == sha and first["pr"]["url"].endswith("/coop-cloud/custom-html/pulls/1")

    again, _ = run_module(forge.module_args(title="another title, same branch"), tmp_path)
    assert not again["changed"] and again["pr"]["number"] == 1
    assert again["api_calls"] == ["GET /repos/coop-cloud/custom-html/pulls 200"]
    assert writes(forge) == [("POST", "/api/v1/repos/coop-cloud/custom-html/pulls")]
    pulls = forge.state()["pulls"]["coop-cloud/custom-html"]
    assert [(p["number"], p["title"], p["body"]) for p in pulls] == [(1, "fix: the healthcheck", "found by canon")]


def test_another_branch_gets_another_pull_request(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    forge.push_branch("fix/other")
    a, _ = run_module(forge.module_args(), tmp_path)
    b, _ = run_module(forge.module_args(head="fix/other"), tmp_path)
    assert (a["pr"]["number"], b["pr"]["number"]) == (1, 2) and b["changed"]


def test_present_without_title_only_finds(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    res, _ = run_module(forge.module_args(title=None), tmp_path)
    assert res.get("failed") and "no title to create one with" in res["msg"]
    assert writes(forge) == []


# -- !testme ----------------------------------------------------------------------------------------
def test_testme_comments_once_per_head_commit_and_again_after_a_push(forge, tmp_path):
    sha1 = forge.push_branch("fix/healthcheck")
    first, _ = run_module(forge.module_args(state="testme"), tmp_path)
    assert first["changed"] and first["commented"] and first["pr"]["head_sha"] == sha1
    second, _ = run_module(forge.module_args(state="testme"), tmp_path)
    assert not second["changed"] and not second["commented"]

    sha2 = forge.push_branch("fix/healthcheck", content="fixed better\n", message="fix: better")
    check, _ = run_module(forge.module_args(state="testme"), tmp_path, check=True)
    assert check["commented"] and check["pr"]["head_sha"] == sha2
    third, _ = run_module(forge.module_args(state="testme"), tmp_path)
    assert third["commented"] and third["pr"]["head_sha"] == sha2
    fourth, _ = run_module(forge.module_args(state="testme"), tmp_path)
    assert not fourth["commented"]

    comments = forge.state()["comments"]["coop-cloud/custom-html"]["1"]
    assert [c["body"] for c in comments] == ["!testme\n\n<!-- canon head: %s -->" % sha1,
                                             "!testme\n\n<!-- canon head: %s -->" % sha2]
    jobs = forge.queue()
    assert [(j["repo"], j["pr"], j["head_sha"], j["head_ref"], j["comment_id"]) for j in jobs] == [
        ("coop-cloud/custom-html", 1, sha1, "fix/healthcheck", comments[0]["id"]),
        ("coop-cloud/custom-html", 1, sha2, "fix/healthcheck", comments[1]["id"])]
    assert git(jobs[1]["git_dir"], "rev-parse", "refs/heads/fix/healthcheck") == sha2


def test_retest_asks_again_only_after_the_ci_answered(forge, tmp_path):
    sha = forge.push_branch("fix/healthcheck")
    run_module(forge.module_args(state="testme"), tmp_path)
    # the request is not answered yet: retest does not ask twice
    waiting, _ = run_module(forge.module_args(state="testme", retest=True), tmp_path)
    assert not waiting["commented"]
    post_verdict(forge, sha, "failure")
    # answered: without retest nothing changes, with it a new request for the same head
    plain, _ = run_module(forge.module_args(state="testme"), tmp_path)
    assert not plain["commented"]
    again, _ = run_module(forge.module_args(state="testme", retest=True), tmp_path)
    assert again["commented"] and again["changed"] and again["pr"]["head_sha"] == sha
    once, _ = run_module(forge.module_args(state="testme", retest=True), tmp_path)
    assert not once["commented"]
    asks = [c for c in forge.state()["comments"]["coop-cloud/custom-html"]["1"] if c["body"].startswith("!testme")]
    assert len(asks) == 2 and len(forge.queue()) == 2 and forge.queue()[1]["head_sha"] == sha


# -- verdict ------------------------------------------------------------------------------------------
def post_verdict(forge, sha, state, context="canon/recipe", comment=True):
    c = client(forge)
    c.create_status(OWNER, REPO, sha, state, context, description="lifecycle %s" % state,
                    target_url="http://ci.bench/runs/1")
    if comment:
        c.create_comment(OWNER, REPO, 1, "canon: %s\n\n%s" % (state.upper(), _forge.VERDICT_MARK % sha))


def test_verdict_reads_the_status_and_the_ci_comment_of_the_head_commit(forge, tmp_path):
    sha = forge.push_branch("fix/healthcheck")
    run_module(forge.module_args(state="testme"), tmp_path)
    pending, _ = run_module(forge.module_args(state="verdict"), tmp_path)
    assert not pending["changed"]
    assert pending["verdict"]["state"] == "pending" and pending["verdict"]["sha"] == sha
    assert pending["verdict"]["statuses"] == [] and pending["verdict"]["comment"] is None

    post_verdict(forge, sha, "success")
    done, _ = run_module(forge.module_args(state="verdict"), tmp_path)
    v = done["verdict"]
    assert v["state"] == "success" and v["sha"] == sha
    assert [(s["context"], s["state"], s["target_url"]) for s in v["statuses"]] == [
        ("canon/recipe", "success", "http://ci.bench/runs/1")]
    assert v["comment"]["body"].startswith("canon: SUCCESS")

    # another context failing: the combined state fails; the CI's own context still reads success
    client(forge).create_status(OWNER, REPO, sha, "failure", "lint")
    combined, _ = run_module(forge.module_args(state="verdict"), tmp_path)
    mine, _ = run_module(forge.module_args(state="verdict", context="canon/recipe"), tmp_path)
    assert combined["verdict"]["state"] == "failure" and mine["verdict"]["state"] == "success"

    # a push: the verdict is about the new head, which nothing has judged yet
    forge.push_branch("fix/healthcheck", content="v2\n")
    moved, _ = run_module(forge.module_args(state="verdict"), tmp_path)
    assert moved["verdict"]["state"] == "pending" and moved["verdict"]["comment"] is None
    assert writes(forge) == [("POST", p) for p in ["/api/v1/repos/coop-cloud/custom-html/pulls",
                                                   "/api/v1/repos/coop-cloud/custom-html/issues/1/comments",
                                                   "/api/v1/repos/coop-cloud/custom-html/statuses/" + sha,
                                                   "/api/v1/repos/coop-cloud/custom-html/issues/1/comments",
                                                   "/api/v1/repos/coop-cloud/custom-html/statuses/" + sha]]


def test_verdict_waits_while_pending(forge, tmp_path):
    sha = forge.push_branch("fix/healthcheck")
    run_module(forge.module_args(state="testme"), tmp_path)
    timer = threading.Timer(2.0, post_verdict, args=(forge, sha, "failure"))
    timer.start()
    start = time.monotonic()
    res, _ = run_module(forge.module_args(state="verdict", wait=30, poll_interval=1), tmp_path)
    took = time.monotonic() - start
    timer.join()
    assert res["verdict"]["state"] == "failure" and res["verdict"]["comment"]["body"].startswith("canon: FAILURE")
    assert 2.0 <= res["verdict"]["waited"] < 10 and took < 15


def test_verdict_gives_up_waiting_and_says_pending(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    run_module(forge.module_args(), tmp_path)
    res, _ = run_module(forge.module_args(state="verdict", wait=2, poll_interval=1), tmp_path)
    assert not res.get("failed") and res["verdict"]["state"] == "pending" and 1 <= res["verdict"]["waited"] <= 3


# -- close ----------------------------------------------------------------------------------------------
def test_closed_closes_once(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    run_module(forge.module_args(), tmp_path)
    check, _ = run_module(forge.module_args(state="closed"), tmp_path, check=True)
    assert check["changed"] and check["pr"]["state"] == "closed"
    assert forge.state()["pulls"]["coop-cloud/custom-html"][0]["state"] == "open", "check mode closed it"
    closed, _ = run_module(forge.module_args(state="closed"), tmp_path)
    assert closed["changed"] and closed["pr"]["state"] == "closed" and closed["pr"]["number"] == 1
    again, _ = run_module(forge.module_args(state="closed"), tmp_path)
    assert not again["changed"] and again["pr"] is None
    assert [w[0] for w in writes(forge)] == ["POST", "PATCH"]
    # a closed pull request is not found again: the branch gets a new one, like on Gitea
    reopened, _ = run_module(forge.module_args(), tmp_path)
    assert reopened["changed"] and reopened["pr"]["number"] == 2


# -- errors -------------------------------------------------------------------------------------------------
def test_bad_token_is_401_and_says_so(forge, tmp_path):
    res, out = run_module(forge.module_args(token_file=None, token="not-the-token-123"), tmp_path)
    assert res["failed"] and res["status"] == 401 and "rejected the token" in res["msg"]
    assert "not-the-token-123" not in out


def test_read_only_token_is_403(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    forge.set_state(read_tokens=["read-only-token-9876"])
    res, out = run_module(forge.module_args(token_file=None, token="read-only-token-9876"), tmp_path)
    assert res["failed"] and res["status"] == 403 and "no permission" in res["msg"]
    assert "required=[write:repository]" in res["forge_message"]
    assert "read-only-token-9876" not in out


def test_unknown_repository_is_404(forge, tmp_path):
    res, _ = run_module(forge.module_args(repo="no-such-recipe"), tmp_path)
    assert res["failed"] and res["status"] == 404 and "does not exist" in res["msg"]
    assert res["request"] == "GET /repos/coop-cloud/no-such-recipe/pulls"


def test_unknown_branch_is_404_on_create(forge, tmp_path):
    res, _ = run_module(forge.module_args(head="never-pushed"), tmp_path)
    assert res["failed"] and res["status"] == 404 and res["request"] == "POST /repos/coop-cloud/custom-html/pulls"


def test_head_equal_to_base_is_422_with_the_forges_message(forge, tmp_path):
    res, _ = run_module(forge.module_args(head="main"), tmp_path)
    assert res["failed"] and res["status"] == 422
    assert "There are no changes between the head and the base" in res["msg"]


def test_second_open_pull_request_for_a_branch_is_409(forge):
    forge.push_branch("fix/healthcheck")
    c = client(forge)
    c.create_pull(OWNER, REPO, "fix/healthcheck", "main", "one")
    with pytest.raises(ForgeError) as err:
        c.create_pull(OWNER, REPO, "fix/healthcheck", "main", "two")
    assert err.value.status == 409
    assert err.value.forge_message.startswith("pull request already exists for these targets [id: 1, issue_id: 1,")


def test_409_on_create_is_taken_as_found(forge, tmp_path, monkeypatch):
    """Someone else created it between our look and our create: the same branch, the same PR."""
    forge.push_branch("fix/healthcheck")
    c = client(forge)
    real_find = c.find_pull
    looks = []

    def find_then_race(*a):
        looks.append(a)
        if len(looks) == 1:
            c.create_pull(OWNER, REPO, "fix/healthcheck", "main", "created by the other")
            return None
        return real_find(*a)
    c.find_pull = find_then_race

    from ansible_collections.coopcloud.canon.plugins.modules import gitea_pull_request as mod

    class FakeModule:
        params = dict(owner=OWNER, repo=REPO, head="fix/healthcheck", base="main", title="mine", body="")
        check_mode = False
    run = mod.Run(FakeModule(), c)
    pr = run.present()
    assert pr["number"] == 1 and pr["title"] == "created by the other" and not run.result["changed"]
    assert [s for _, _, s in c.calls if s == 409] == [409]


def test_5xx_is_retried_with_backoff(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    forge.set_state(fail_next=[500, 502])
    start = time.monotonic()
    res, _ = run_module(forge.module_args(), tmp_path)
    took = time.monotonic() - start
    assert res["changed"] and res["pr"]["number"] == 1
    assert res["api_calls"][:3] == ["GET /repos/coop-cloud/custom-html/pulls 500",
                                    "GET /repos/coop-cloud/custom-html/pulls 502",
                                    "GET /repos/coop-cloud/custom-html/pulls 200"]
    assert took >= 3.0   # paused 1 s, then 2 s


def test_5xx_gives_up_after_three_tries(forge):
    forge.set_state(fail_next=[503, 503, 503, 503])
    pauses = []
    c = client(forge, sleep=pauses.append)
    with pytest.raises(ForgeError) as err:
        c.get_repo(OWNER, REPO)
    assert err.value.status == 503 and "failed (HTTP 503) 3 times in a row" in str(err.value)
    assert pauses == [1.0, 2.0] and [s for _, _, s in c.calls] == [503, 503, 503]
    assert forge.state()["fail_next"] == [503], "a fourth request was made"


def test_forge_down_is_a_clear_error(tmp_path):
    port = free_port()   # nothing listens there
    args = dict(api_url="http://127.0.0.1:%d/api/v1" % port, token=TOKEN, owner=OWNER, repo=REPO, head="fix/x",
                title="t")
    start = time.monotonic()
    res, out = run_module(args, tmp_path, process=True)
    assert res["failed"] and res["status"] is None
    assert "is unreachable (connection refused) after 3 tries" in res["msg"]
    assert len(res["api_calls"]) == 3 and time.monotonic() - start >= 3.0
    assert TOKEN not in out


def test_slow_get_is_retried_slow_post_is_not(forge):
    forge.push_branch("fix/healthcheck")
    forge.set_state(delay_next=[2])
    c = client(forge, timeout=1)
    assert c.get_repo(OWNER, REPO)["full_name"] == "coop-cloud/custom-html"
    assert [s for _, _, s in c.calls] == [None, 200]
    time.sleep(1.5)   # let the delayed request finish before the next delay is armed
    forge.set_state(delay_next=[2])
    with pytest.raises(ForgeError) as err:
        c.create_pull(OWNER, REPO, "fix/healthcheck", "main", "slow")
    assert "not retried, since it may have been done" in str(err.value) and err.value.status is None


def test_token_never_leaves_the_client_even_when_the_forge_echoes_it():
    from ansible.module_utils.six.moves.urllib.error import HTTPError
    import io

    def opener(url, headers=None, **kw):
        assert headers["Authorization"] == "token " + TOKEN
        body = json.dumps({"message": "bad token %s for %s" % (TOKEN, url)}).encode()
        raise HTTPError(url, 401, "Unauthorized", {}, io.BytesIO(body))
    c = ForgeClient("http://forge.invalid/api/v1", TOKEN, opener=opener, sleep=lambda s: None)
    with pytest.raises(ForgeError) as err:
        c.get_repo(OWNER, REPO)
    text = json.dumps(err.value.as_dict()) + str(err.value)
    assert TOKEN not in text and "bad token ******** for" in err.value.forge_message


def test_token_is_never_in_output_nor_on_the_forge_side(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    outputs = []
    # as Ansible runs it: a process, its stdout and stderr
    for state in ("present", "testme", "verdict", "closed"):
        outputs.append(run_module(forge.module_args(state=state), tmp_path, process=True)[1])
    outputs.append(run_module(forge.module_args(token_file=None, token=TOKEN), tmp_path, process=True)[1])
    outputs.append(run_module(forge.module_args(token_file=None), tmp_path, env={"GITEA_TOKEN": TOKEN}, process=True)[1])
    forge.set_state(fail_next=[500, 500, 500])
    outputs.append(run_module(forge.module_args(token_file=None, token=TOKEN), tmp_path, process=True)[1])
    for out in outputs:
        assert TOKEN not in out
    env_run = json.loads(outputs[5])
    assert not env_run.get("failed") and env_run["pr"]["number"] == 2   # 1 was closed above
    for name in ("state.json", "requests.jsonl", "ci-queue.jsonl"):
        with open(os.path.join(forge.root, name)) as fh:
            assert TOKEN not in fh.read()


def test_token_file_problems_are_named_without_the_content(forge, tmp_path):
    empty = tmp_path / "empty-token"
    empty.write_text("\n")
    res, _ = run_module(forge.module_args(token_file=str(empty)), tmp_path)
    assert res["failed"] and res["msg"] == "token_file %s is empty" % empty
    res, _ = run_module(forge.module_args(token_file=str(tmp_path / "missing")), tmp_path)
    assert res["failed"] and "cannot read token_file" in res["msg"]
    res, _ = run_module(forge.module_args(token_file=None), tmp_path)
    assert res["failed"] and "no forge token" in res["msg"]


# -- no merge, anywhere --------------------------------------------------------------------------------------
def test_no_merge_is_ever_called_and_none_could_be(forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    for state in ("present", "testme", "verdict", "closed"):
        res, _ = run_module(forge.module_args(state=state), tmp_path)
        assert not res.get("failed")
    assert forge.requests() and not [r for r in forge.requests() if "/merge" in r["path"]]
    for path in (MODULE, os.path.join(ROOT, "plugins", "module_utils", "_forge.py")):
        with open(path) as fh:
            assert "/merge" not in fh.read(), path
    assert not [name for name in dir(ForgeClient) if "merge" in name.lower()]
    # the control: a merge call would be answered (404, as for any route it does not have) and logged
    res = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H",
                          "Authorization: token " + TOKEN, forge.api_url + "/repos/coop-cloud/custom-html/pulls/1/merge"],
                         capture_output=True, text=True)
    assert res.stdout == "404"
    assert [r["status"] for r in forge.requests() if r["path"].endswith("/pulls/1/merge")] == [404]


# -- the bench's mirror tool -----------------------------------------------------------------------------------
def test_mirror_makes_bare_repos_pushes_main_and_tags_and_is_idempotent(forge):
    assert forge.mirror_result["created"] == ["custom-html"] and forge.mirror_result["changed"]
    bare = os.path.join(forge.root, "git", OWNER, REPO + ".git")
    assert git(forge.work, "remote", "get-url", "mirror") == bare
    assert git(bare, "rev-parse", "main") == git(forge.work, "rev-parse", "main")
    assert git(bare, "tag") == "1.0.0+1.36"
    args = ("mirror", "--repos", forge.repos, "--git-root", os.path.join(forge.root, "git"), "--owner", OWNER)
    assert not BenchForge.run_tool(*args)["changed"]
    forge.commit("compose.yml", "version: '3.9'\n", "chore: publish 1.1.0+1.37 release")
    git(forge.work, "tag", "-a", "1.1.0+1.37", "-m", "Release 1.1.0+1.37")
    assert BenchForge.run_tool(*args, "--check")["pushed"] == ["custom-html"]
    assert git(bare, "tag") == "1.0.0+1.36", "--check pushed"
    assert BenchForge.run_tool(*args)["pushed"] == ["custom-html"]
    assert git(bare, "tag").split() == ["1.0.0+1.36", "1.1.0+1.37"]
    assert not BenchForge.run_tool(*args)["changed"]
