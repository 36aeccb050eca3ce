"""fix_branch against real git: a local clone with a bare "mirror" remote, as on the bench.

The module runs as Ansible runs it (a python process reading an arguments file). Every test
checks the remote itself (git ls-remote / for-each-ref), not only what the module says.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._fixdiff import (
    files_problem, ref_name_problem, remote_name_problem, repo_problem, scrub_url)

# Real git repositories and processes: `make test` runs these; `make unit` keeps to the fast ones.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULE = os.path.join(ROOT, "plugins", "modules", "fix_branch.py")
GIT_ENV = dict(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@bench.canon.test", GIT_COMMITTER_NAME="bench",
               GIT_COMMITTER_EMAIL="bench@bench.canon.test", GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)
TEST_FILE = ("def test_about(get):\n    status, body = get('/about.json')\n    assert status == 200\n"
             "    assert body['version'] == '3.3.1'\n")


def git(repo, *args, check=True) -> str:
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **GIT_ENV)
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if check and res.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), res.stderr))
    return res.stdout.strip()


def refs(repo) -> dict:
    out = git(repo, "for-each-ref", "--format=%(refname) %(objectname) %(*objectname)")
    return {line.split()[0]: line.split()[-1] for line in out.splitlines()}


def run_fix(tmp, check=False, diff=False, **args) -> dict:
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check, _ansible_diff=diff)}
    path = os.path.join(str(tmp), "args.json")
    with open(path, "w") as fh:
        json.dump(payload, fh)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, ".collections"))
    res = subprocess.run([sys.executable, MODULE, path], capture_output=True, text=True, env=env, timeout=120)
    try:
        return json.loads(res.stdout)
    except ValueError:
        raise AssertionError("not JSON: %s %s" % (res.stdout, res.stderr))


@pytest.fixture
def recipe(tmp_path):
    """A recipe clone with two releases and a bare mirror remote holding main and the tags."""
    work, mirror = tmp_path / "repos" / "mattermost-lts", tmp_path / "forge" / "mattermost-lts.git"
    work.mkdir(parents=True)
    git(work, "init", "--quiet", "--initial-branch=main")
    for tag, image in (("2.0.0+9.5.12", "1.36"), ("2.1.0+9.11.5", "1.37")):
        (work / "compose.yml").write_text("services:\n  app:\n    image: busybox:%s\n" % image)
        (work / "release").mkdir(exist_ok=True)
        (work / "release" / tag).write_text("release %s\n" % tag)
        (work / "tests").mkdir(exist_ok=True)
        (work / "tests" / "test_about.py").write_text(TEST_FILE)
        git(work, "add", "-A")
        git(work, "commit", "--quiet", "-m", "chore: publish %s release" % tag)
        git(work, "tag", "-a", tag, "-m", "Release " + tag)
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(mirror))
    git(work, "remote", "add", "mirror", str(mirror))
    git(work, "push", "--quiet", "mirror", "main", "--tags")
    return {"work": work, "mirror": mirror, "tmp": tmp_path}


def fix_tree(tmp_path, name="fix", db="restore-hook: yes") -> str:
    tree = tmp_path / name
    (tree / "release").mkdir(parents=True)
    (tree / "tests").mkdir()
    (tree / "compose.yml").write_text("services:\n  app:\n    image: busybox:1.37\n  db:\n    labels: [%s]\n" % db)
    for tag in ("2.0.0+9.5.12", "2.1.0+9.11.5", "2.1.1+9.11.5"):
        (tree / "release" / tag).write_text("release %s\n" % tag)
    (tree / "tests" / "test_about.py").write_text(TEST_FILE)
    return str(tree)


def args(recipe, **extra) -> dict:
    a = dict(repo=str(recipe["work"]), branch="canon/fix-mattermost-lts", commit_message="fix: restores re-import the dump")
    a.update(extra)
    return a


# -- a recipe fix as a tree, with its release candidate tag ---------------------------------------
def test_tree_fix_is_one_commit_on_base_with_its_tag_and_the_clone_is_untouched(recipe, tmp_path):
    before = (refs(recipe["work"]), git(recipe["work"], "status", "--porcelain"), git(recipe["work"], "rev-parse", "HEAD"))
    main = refs(recipe["mirror"])["refs/heads/main"]
    res = run_fix(tmp_path, **args(recipe, tree=fix_tree(tmp_path), tag="2.1.1+9.11.5"))
    assert res["changed"] and res["pushed"] and res["commit_created"] and res["tag_moved"], res
    after = refs(recipe["mirror"])
    assert after["refs/heads/canon/fix-mattermost-lts"] == res["head_sha"]
    assert after["refs/tags/2.1.1+9.11.5"] == res["head_sha"]          # annotated: peeled to the head
    assert git(recipe["mirror"], "cat-file", "-t", "refs/tags/2.1.1+9.11.5") == "tag"
    assert git(recipe["mirror"], "rev-parse", res["head_sha"] + "^") == main == res["base_sha"]
    assert git(recipe["mirror"], "log", "-1", "--format=%an <%ae>|%s", res["head_sha"]) == \
        "canon-redfix <canon-redfix@canon.invalid>|fix: restores re-import the dump"
    assert sorted((f["status"], f["path"]) for f in res["files"]) == [("A", "release/2.1.1+9.11.5"), ("M", "compose.yml")]
    assert res["diffstat"]["files"] == 2 and res["diffstat"]["insertions"] == 3 and res["diffstat"]["deletions"] == 0
    assert res["remote_url"] == str(recipe["mirror"])
    assert (refs(recipe["work"]), git(recipe["work"], "status", "--porcelain"),
            git(recipe["work"], "rev-parse", "HEAD")) == before


def test_the_same_fix_again_changes_nothing(recipe, tmp_path):
    tree = fix_tree(tmp_path)
    first = run_fix(tmp_path, **args(recipe, tree=tree, tag="2.1.1+9.11.5"))
    mirror_before = refs(recipe["mirror"])
    again = run_fix(tmp_path, **args(recipe, tree=tree, tag="2.1.1+9.11.5"))
    assert not again["changed"] and not again["pushed"] and not again["commit_created"] and not again["tag_moved"]
    assert again["head_sha"] == first["head_sha"]
    assert refs(recipe["mirror"]) == mirror_before
    check = run_fix(tmp_path, check=True, **args(recipe, tree=tree, tag="2.1.1+9.11.5"))
    assert not check["changed"] and check["head_sha"] == first["head_sha"]


def test_check_mode_pushes_nothing(recipe, tmp_path):
    before = refs(recipe["mirror"])
    res = run_fix(tmp_path, check=True, diff=True, **args(recipe, tree=fix_tree(tmp_path), tag="2.1.1+9.11.5"))
    assert res["changed"] and res["commit_created"] and not res["pushed"] and res["head_sha"] is None
    assert "+    labels: [restore-hook: yes]" in res["diff"]["prepared"]
    assert refs(recipe["mirror"]) == before


def test_an_updated_fix_replaces_the_branch_and_moves_its_tag(recipe, tmp_path):
    first = run_fix(tmp_path, **args(recipe, tree=fix_tree(tmp_path), tag="2.1.1+9.11.5"))
    second = run_fix(tmp_path, **args(recipe, tree=fix_tree(tmp_path, "fix2", "restore-hook: re-import"),
                                      tag="2.1.1+9.11.5"))
    assert second["changed"] and second["commit_created"] and second["tag_moved"]
    assert second["head_sha"] != first["head_sha"]
    after = refs(recipe["mirror"])
    assert after["refs/heads/canon/fix-mattermost-lts"] == after["refs/tags/2.1.1+9.11.5"] == second["head_sha"]
    assert git(recipe["mirror"], "rev-parse", second["head_sha"] + "^") == second["base_sha"]   # one commit on base


def test_a_published_release_tag_is_never_moved(recipe, tmp_path):
    before = refs(recipe["mirror"])
    res = run_fix(tmp_path, **args(recipe, tree=fix_tree(tmp_path), tag="2.1.0+9.11.5"))
    assert res["failed"] and "a published release is never moved" in res["msg"] and not res["pushed"]
    assert refs(recipe["mirror"]) == before


def test_someone_elses_branch_is_replaced_only_with_force(recipe, tmp_path):
    git(recipe["work"], "checkout", "--quiet", "-b", "canon/fix-mattermost-lts")
    (recipe["work"] / "NOTES").write_text("a maintainer's work\n")
    git(recipe["work"], "add", "NOTES")
    git(recipe["work"], "commit", "--quiet", "-m", "wip")
    git(recipe["work"], "push", "--quiet", "mirror", "canon/fix-mattermost-lts")
    git(recipe["work"], "checkout", "--quiet", "main")
    theirs = refs(recipe["mirror"])["refs/heads/canon/fix-mattermost-lts"]
    tree = fix_tree(tmp_path)
    refused = run_fix(tmp_path, **args(recipe, tree=tree))
    assert refused["failed"] and "bench@bench.canon.test" in refused["msg"] and "force" in refused["msg"]
    assert refs(recipe["mirror"])["refs/heads/canon/fix-mattermost-lts"] == theirs
    forced = run_fix(tmp_path, **args(recipe, tree=tree, force=True))
    assert forced["changed"] and refs(recipe["mirror"])["refs/heads/canon/fix-mattermost-lts"] == forced["head_sha"]


def test_files_write_and_delete(recipe, tmp_path):
    res = run_fix(tmp_path, **args(recipe, files={"abra.sh": "export X=1\n", "release/2.0.0+9.5.12": None}))
    assert res["changed"], res
    assert sorted((f["status"], f["path"]) for f in res["files"]) == [("A", "abra.sh"), ("D", "release/2.0.0+9.5.12")]
    tree = git(recipe["mirror"], "ls-tree", "-r", "--name-only", res["head_sha"]).split()
    assert "abra.sh" in tree and "release/2.0.0+9.5.12" not in tree


def test_a_fix_that_changes_nothing_fails(recipe, tmp_path):
    res = run_fix(tmp_path, **args(recipe, files={"compose.yml": "services:\n  app:\n    image: busybox:1.37\n"}))
    assert res["failed"] and "changes nothing" in res["msg"] and not res["pushed"]
    assert "refs/heads/canon/fix-mattermost-lts" not in refs(recipe["mirror"])


# -- test fixes as patches ---------------------------------------------------------------------------
def make_patch(recipe, new_test: str) -> str:
    """A git diff of tests/test_about.py from main to new_test (the work tree is restored after)."""
    path = recipe["work"] / "tests" / "test_about.py"
    path.write_text(new_test)
    try:
        return git(recipe["work"], "diff", "--no-color") + "\n"
    finally:
        git(recipe["work"], "checkout", "--", "tests/test_about.py")


def test_a_patch_that_changes_the_expected_value_is_pushed(recipe, tmp_path):
    patch = make_patch(recipe, TEST_FILE.replace("body['version']", "body['about']['version']"))
    res = run_fix(tmp_path, **args(recipe, branch="canon/fix-about", patch=patch, commit_message="test: read about.version"))
    assert res["changed"] and res["pushed"], res
    assert "body['about']['version']" in git(recipe["mirror"], "show", res["head_sha"] + ":tests/test_about.py")


@pytest.mark.parametrize("check", [False, True])
def test_a_patch_that_only_deletes_an_assertion_is_refused_before_anything_is_pushed(recipe, tmp_path, check):
    before = refs(recipe["mirror"])
    patch = make_patch(recipe, TEST_FILE.replace("    assert body['version'] == '3.3.1'\n", ""))
    res = run_fix(tmp_path, check=check, **args(recipe, branch="canon/fix-about", patch=patch, tag="2.1.1+9.11.5",
                                                commit_message="test: drop the stale check"))
    assert res["failed"] and res["msg"].startswith("refused: the fix weakens tests") and not res["pushed"], res
    [finding] = res["findings"]
    assert finding["path"] == "tests/test_about.py" and finding["kind"] == "removed"
    assert finding["removed"] == ["    assert body['version'] == '3.3.1'"]
    assert refs(recipe["mirror"]) == before


def test_a_tree_that_drops_an_assertion_is_refused_too(recipe, tmp_path):
    tree = fix_tree(tmp_path)
    with open(os.path.join(tree, "tests", "test_about.py"), "w") as fh:
        fh.write(TEST_FILE.replace("    assert status == 200\n", "    # assert status == 200\n"))
    res = run_fix(tmp_path, **args(recipe, tree=tree))
    assert res["failed"] and res["findings"][0]["removed"] == ["    assert status == 200"]
    assert "refs/heads/canon/fix-mattermost-lts" not in refs(recipe["mirror"])


def test_a_patch_that_does_not_apply_fails(recipe, tmp_path):
    patch = make_patch(recipe, TEST_FILE.replace("== 200", "== 201"))
    patch = patch.replace("assert status == 200", "assert status == 999")
    res = run_fix(tmp_path, **args(recipe, branch="canon/fix-about", patch=patch))
    assert res["failed"] and "does not apply" in res["msg"]
    assert "refs/heads/canon/fix-about" not in refs(recipe["mirror"])


# -- where the branch goes -------------------------------------------------------------------------------
@pytest.mark.parametrize("scheme", ["", "file://"])
def test_a_bare_repository_or_url_gets_the_branch_itself(recipe, tmp_path, scheme):
    res = run_fix(tmp_path, repo=scheme + str(recipe["mirror"]), branch="canon/fix-x", commit_message="fix: x",
                  files={"abra.sh": "export X=1\n"})
    assert res["changed"] and refs(recipe["mirror"])["refs/heads/canon/fix-x"] == res["head_sha"]


def test_base_can_be_a_commit_only_the_clone_has(recipe, tmp_path):
    first = git(recipe["work"], "rev-list", "--max-parents=0", "HEAD")
    git(recipe["mirror"], "tag", "-d", "2.0.0+9.5.12")
    res = run_fix(tmp_path, **args(recipe, base=first, files={"abra.sh": "export X=1\n"}))
    assert res["base_sha"] == first and git(recipe["mirror"], "rev-parse", res["head_sha"] + "^") == first


def test_a_clone_without_the_remote_fails_clearly(recipe, tmp_path):
    res = run_fix(tmp_path, **args(recipe, remote="upstream", files={"abra.sh": "x\n"}))
    assert res["failed"] and "has no remote 'upstream'" in res["msg"]


def test_credentials_in_the_remote_url_never_reach_the_output(recipe, tmp_path):
    git(recipe["work"], "remote", "set-url", "mirror", "https://canon:s3cr3t-t0ken@127.0.0.1:9/x.git")
    res = run_fix(tmp_path, **args(recipe, files={"abra.sh": "x\n"}))
    assert res["failed"]
    assert "s3cr3t-t0ken" not in json.dumps(res)
    assert res["remote_url"] == "https://127.0.0.1:9/x.git"


# -- refused before any command -----------------------------------------------------------------------------
@pytest.mark.parametrize("option,value,words", [
    ("branch", "-x", "starts with '-'"), ("branch", "fix..x", "'..'"), ("branch", "fix x", "space"),
    ("branch", "main", "base branch"), ("tag", "v1~1", "~^:"), ("base", "main.lock", ".lock"),
    ("remote", "mirror;id", "remote"), ("repo", "ext::sh -c id", "repo"), ("repo", "relative/path", "repo"),
    ("repo", "ext::x", "remote helper"), ("repo", "ftp://h/x", "transport"),
    ("files", {"../x": "y"}, "leaves the work tree"), ("files", {".git/config": "y"}, ".git"),
    ("tree", "/nonexistent/tree", "not a directory"),
])
def test_bad_arguments_are_refused(recipe, tmp_path, option, value, words):
    a = args(recipe, files={"abra.sh": "x\n"})
    if option == "tree":
        a.pop("files")
    a[option] = value
    res = run_fix(tmp_path, **a)
    assert res["failed"] and words in res["msg"], res["msg"]
    assert "refs/heads/canon/fix-mattermost-lts" not in refs(recipe["mirror"])


def test_exactly_one_kind_of_fix(recipe, tmp_path):
    both = run_fix(tmp_path, **args(recipe, files={"a": "b"}, patch="x"))
    assert both["failed"] and "mutually exclusive" in both["msg"]
    none = run_fix(tmp_path, **args(recipe))
    assert none["failed"] and "one of the following is required" in none["msg"]


@pytest.mark.parametrize("name,ok", [("canon/fix-mattermost-lts", True), ("2.1.1+9.11.5", True), ("a/.b", False),
                                     ("x/", False), ("x.", False), ("@", False), ("a@{1}", False), ("", False),
                                     ("a" * 256, False), ("a\x7fb", False)])
def test_ref_names(name, ok):
    assert (ref_name_problem(name) is None) is ok


def test_names_and_urls():
    assert remote_name_problem("mirror") is None and remote_name_problem("-x")
    assert repo_problem("git@git.coopcloud.tech:coop-cloud/mattermost-lts.git") is None
    assert repo_problem("https://git.coopcloud.tech/coop-cloud/mattermost-lts.git") is None
    assert repo_problem("/var/lib/x/../y")
    assert files_problem({"a/b.txt": None}) is None and files_problem({"a": 1})
    assert scrub_url("https://u:tok@h/x.git") == "https://h/x.git" and scrub_url("/local/x") == "/local/x"
