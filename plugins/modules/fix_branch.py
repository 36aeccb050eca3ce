#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: fix_branch
short_description: Make or update a branch on a git remote that carries one fix, refusing fixes that weaken tests
description:
  - >-
    Builds the fix as one commit on O(base) in a temporary clone and pushes it to the remote as
    O(branch) (and, with O(tag), a release tag on that commit). The user's clone is never
    modified: O(repo) is only read from.
  - >-
    The fix is given as exactly one of O(tree) (a directory whose contents become the whole
    tree, e.g. a recipe release directory), O(files) (paths to write or delete) or O(patch) (a
    unified diff, applied with C(git apply -p1)).
  - >-
    The commit's diff against O(base) is read before anything is pushed: a diff that, in test
    files, removes assertions and adds none, replaces them with ones that cannot fail, turns a
    comparison into a bare truth test or adds a skip marker is refused
    (C(plugins/module_utils/_fixdiff.py), C(docs/fix-flow.md)). A fix that changes nothing on
    O(base) fails too.
  - >-
    Idempotent: when O(branch) on the remote already is one commit on O(base) with the same tree,
    nothing is committed or pushed and C(changed) is false. Otherwise the branch is replaced by a
    new commit on O(base) (a forced push); a branch whose head commit was written by someone
    other than O(author_email) is only replaced with O(force).
  - >-
    A O(tag) that already names a commit reachable from O(base) (a published release) is never
    moved; one that names an earlier candidate of this fix follows the branch.
  - Every git command runs as an argv list, with C(LC_ALL=C), without a shell.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.2.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
attributes:
  check_mode:
    support: full
    description:
      - Builds the commit and its diff in the temporary clone, refuses what it would refuse, and
        reports what would be pushed; pushes nothing. C(head_sha) is null when a new commit would
        be made.
  diff_mode:
    support: full
    description: Returns the fix's unified diff against O(base) as C(diff.prepared).
  idempotent:
    support: full
    description: The same fix on the same base pushes nothing and reports C(changed=false).
options:
  repo:
    description:
      - An absolute path to a local clone (its remote O(remote) is where the branch goes), a bare
        repository, or a git URL (C(https://), C(ssh://), C(git://), C(file://), C(user@host:path));
        for a bare repository or a URL the branch is pushed back to it.
    type: str
    required: true
  remote:
    description: The remote of the local clone O(repo) that receives the branch. Not used for a URL.
    type: str
    default: mirror
  base:
    description: The branch, tag or commit the fix is made on, looked up on the remote first, then in O(repo).
    type: str
    default: main
  branch:
    description: The branch that carries the fix, e.g. C(canon/fix-mattermost-lts).
    type: str
    required: true
  tree:
    description: A directory whose contents replace the repository's whole tree (C(.git) inside it is ignored).
    type: path
  files:
    description: Relative paths to content to write; a null content deletes the file.
    type: dict
  patch:
    description: A unified diff (C(git diff) or C(diff -u) output) applied with C(git apply -p1).
    type: str
  commit_message:
    description: The commit message (and the tag's message).
    type: str
    required: true
  tag:
    description:
      - A release tag to put on the fix's commit and push with the branch (annotated), e.g. the
        release candidate C(2.1.1+9.11.5) a recipe CI tests.
    type: str
  author_name:
    description: Author and committer name of the commit (and the tagger).
    type: str
    default: canon-redfix
  author_email:
    description: Author and committer email.
    type: str
    default: canon-redfix@canon.invalid
  force:
    description: Replace O(branch) even when its head commit was written by someone else.
    type: bool
    default: false
  git_bin:
    description: The git program.
    type: path
    default: git
  timeout:
    description: Seconds each git command may take.
    type: int
    default: 300
notes:
  - The refusal is about test files only (under C(tests/), C(test/), C(suites/), C(spec/), or named
    like C(test_*.py), C(*_test.go), C(*.spec.ts)); assertions in other code are not judged.
"""

EXAMPLES = r"""
- name: The recipe fix as a branch and a release candidate tag on the recipe's mirror
  coopcloud.canon.fix_branch:
    repo: /var/lib/canon-bench/repos/mattermost-lts
    remote: mirror
    branch: canon/fix-mattermost-lts
    tree: "{{ playbook_dir }}/../roles/bench/files/recipe-fixes/mattermost-lts/2.1.1+9.11.5"
    tag: 2.1.1+9.11.5
    commit_message: "fix: restores re-import the dump"
  register: fix

- name: A test fix as a patch on the suites repository (refused if it only deletes assertions)
  coopcloud.canon.fix_branch:
    repo: /var/lib/canon-bench/forge/git/coop-cloud/canon-suites.git
    branch: canon/fix-discourse
    patch: "{{ lookup('ansible.builtin.file', 'discourse.patch') }}"
    commit_message: "test(discourse): read the version where /about.json has it now"
"""

RETURN = r"""
branch:
  description: The branch.
  type: str
  returned: always
base_sha:
  description: The commit O(base) resolved to.
  type: str
  returned: success
head_sha:
  description: The branch's head commit afterwards (null in check mode when a new commit would be made).
  type: str
  returned: success
tree_sha:
  description: The fix's tree.
  type: str
  returned: success
commit_created:
  description: Whether a new commit was made (in check mode, would be).
  type: bool
  returned: success
pushed:
  description: Whether anything was pushed (false in check mode and when nothing changed).
  type: bool
  returned: always
tag:
  description: The tag, or null.
  type: str
  returned: always
tag_moved:
  description: Whether the tag was created or moved (in check mode, would be).
  type: bool
  returned: success
remote_url:
  description: Where the branch goes (credentials removed).
  type: str
  returned: success
files:
  description: The files the fix changes against O(base), each C(path) and C(status) (A, M, D, R, ...).
  type: list
  elements: dict
  returned: success
diffstat:
  description: C(files), C(insertions), C(deletions) and git's C(--stat) text.
  type: dict
  returned: success
findings:
  description: When refused, where the diff weakens tests (path, hunk, kind, removed, added, reason).
  type: list
  elements: dict
  returned: failure
diff:
  description: With C(--diff), the fix's unified diff against O(base) as C(prepared).
  type: dict
  returned: when diff mode is on
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.coopcloud.canon.plugins.module_utils._fixdiff import (
    describe, files_problem, ref_name_problem, remote_name_problem, repo_problem, scrub_url, url_secret,
    weakened_assertions)
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import (
    CommandError, Redactor, run)


class FixError(Exception):
    """A fix that cannot be made: the message, and what the result should carry besides."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra


class Git:
    """git in one working directory, argv lists only; secrets in URLs are redacted from errors."""

    def __init__(self, binary: str, cwd: str, env: dict, timeout: int, redactor: Redactor):
        self.binary, self.cwd, self.env, self.timeout, self.redact = binary, cwd, env, timeout, redactor

    def __call__(self, *args, check: bool = True, input_text=None):
        argv = [self.binary, "-c", "protocol.ext.allow=never", "-c", "commit.gpgSign=false",
                "-c", "tag.gpgSign=false", "-c", "core.hooksPath=/dev/null", *args]
        res = run(argv, env_extra=self.env, timeout=self.timeout, cwd=self.cwd, input_text=input_text)
        if check and not res.ok:
            res.argv = [self.redact(a) for a in res.argv]
            res.stdout, res.stderr = self.redact(res.stdout), self.redact(res.stderr)
            why = "timed out after %ss" % self.timeout if res.timed_out else "exit %d" % res.rc
            raise CommandError("git %s failed (%s): %s" % (args[0], why, (res.stderr or res.stdout).strip()[-1500:]), res)
        return res

    def out(self, *args) -> str:
        return self(*args).stdout.strip()

    def sha(self, ref: str) -> str | None:
        res = self("rev-parse", "--verify", "--quiet", "--end-of-options", ref, check=False)
        return res.stdout.strip() if res.ok and res.stdout.strip() else None


def validate(p: dict) -> str | None:
    """Why the arguments cannot make a fix branch, or None; decided before any command runs."""
    problem = repo_problem(p["repo"])
    if problem:
        return problem
    for option in ("branch", "base") + (("tag",) if p.get("tag") is not None else ()):
        problem = ref_name_problem(p[option], option)
        if problem:
            return problem
    if p["branch"] in ("main", "master", p["base"]):
        return "branch %r is a base branch: a fix goes on a branch of its own" % p["branch"]
    problem = remote_name_problem(p["remote"])
    if problem:
        return problem
    if p.get("files") is not None:
        return files_problem(p["files"])
    if p.get("tree") is not None and not os.path.isdir(p["tree"]):
        return "tree %s is not a directory" % p["tree"]
    if p.get("patch") is not None and not p["patch"].strip():
        return "patch is empty"
    if not p["commit_message"].strip():
        return "commit_message is empty"
    if p["timeout"] < 1:
        return "timeout must be at least 1 second"
    return None


def parse_ls_remote(text: str) -> dict:
    """ref -> sha from ``git ls-remote``; an annotated tag's ``^{}`` line gives its commit."""
    refs = {}
    for line in text.splitlines():
        sha, _tab, ref = line.partition("\t")
        if sha and ref:
            refs[ref] = sha
    return refs


class FixBranch:
    """One fix branch: resolve, build, judge, compare, push."""

    def __init__(self, params: dict, work: str, check_mode: bool):
        self.p = params
        self.work = work
        self.check_mode = check_mode
        self.redact = Redactor()
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_AUTHOR_NAME": params["author_name"], "GIT_AUTHOR_EMAIL": params["author_email"],
               "GIT_COMMITTER_NAME": params["author_name"], "GIT_COMMITTER_EMAIL": params["author_email"]}
        self.clone = os.path.join(work, "clone")
        self.git = Git(params["git_bin"], work, env, params["timeout"], self.redact)
        self.env = env
        self.result = {"changed": False, "branch": params["branch"], "tag": params.get("tag"), "pushed": False}

    def in_clone(self) -> Git:
        return Git(self.p["git_bin"], self.clone, self.env, self.p["timeout"], self.redact)

    # -- where ---------------------------------------------------------------------------------
    def target(self) -> tuple:
        """(source to read the base from, where the branch goes)."""
        repo = self.p["repo"]
        if repo.startswith("/") and not os.path.exists(repo):
            raise FixError("repo %s does not exist" % repo)
        if repo.startswith("/") and os.path.isdir(os.path.join(repo, ".git")):
            res = Git(self.p["git_bin"], repo, self.env, self.p["timeout"], self.redact)(
                "remote", "get-url", "--push", "--end-of-options", self.p["remote"], check=False)
            if not res.ok or not res.stdout.strip():
                raise FixError("the clone %s has no remote %r (the branch goes there)" % (repo, self.p["remote"]))
            url = res.stdout.strip()
            if not url.startswith("/") and "://" not in url and ":" not in url:
                url = os.path.normpath(os.path.join(repo, url))   # a relative path remote
            return repo, url
        return repo, repo

    # -- build ----------------------------------------------------------------------------------
    def run(self) -> dict:
        source, url = self.target()
        secret = url_secret(url) or url_secret(source)
        if secret:
            self.redact.add(secret)
        self.result["remote_url"] = scrub_url(url)
        p = self.p
        branch, base, tag = p["branch"], p["base"], p.get("tag")
        self.git("init", "--quiet", "--initial-branch=canon-fix", self.clone)
        g = self.in_clone()
        wanted = ["refs/heads/" + base, "refs/tags/" + base, "refs/heads/" + branch]
        if tag:
            wanted.append("refs/tags/" + tag)
        remote_refs = parse_ls_remote(g.out("ls-remote", "--end-of-options", url, *wanted))
        fetch = [("+%s:refs/canon/target/%s" % (ref, ref[len("refs/"):])) for ref in wanted if ref in remote_refs]
        if fetch:
            g("fetch", "--quiet", "--no-tags", "--end-of-options", url, *fetch)
        base_sha = (g.sha("refs/canon/target/heads/%s^{commit}" % base)
                    or g.sha("refs/canon/target/tags/%s^{commit}" % base))
        if not base_sha:   # a commit, or a ref only the local clone has
            g("fetch", "--quiet", "--no-tags", "--end-of-options", source,
              "+refs/heads/*:refs/canon/source/heads/*", "+refs/tags/*:refs/canon/source/tags/*")
            base_sha = (g.sha("refs/canon/source/heads/%s^{commit}" % base)
                        or g.sha("refs/canon/source/tags/%s^{commit}" % base) or g.sha(base + "^{commit}"))
        if not base_sha:
            raise FixError("base %r is neither a branch or tag of %s nor a commit in %s"
                           % (base, scrub_url(url), scrub_url(source)))
        self.result["base_sha"] = base_sha
        g("checkout", "--quiet", "--detach", base_sha)
        self.apply(g)
        g("add", "--all")
        tree_sha = g.out("write-tree")
        self.result["tree_sha"] = tree_sha
        diff = g("diff", "--cached", "--no-color", "--no-ext-diff", "-M", base_sha).stdout
        self.describe_diff(g, base_sha)
        if p["_diff"]:
            self.result["diff"] = {"prepared": diff}
        if not diff.strip():
            raise FixError("the fix changes nothing on %s (%s): there is nothing to push" % (base, base_sha[:12]))
        findings = weakened_assertions(diff)
        if findings:
            raise FixError("refused: the fix weakens tests instead of fixing them: %s" % describe(findings),
                           findings=findings)

        # -- compare with what the remote has -------------------------------------------------------
        old_head = remote_refs.get("refs/heads/" + branch)
        head, commit_created = None, True
        if old_head:
            same_tree = g.sha(old_head + "^{tree}") == tree_sha
            parents = g.out("rev-list", "--parents", "-n", "1", old_head).split()[1:]
            if same_tree and parents == [base_sha]:
                head, commit_created = old_head, False
            elif not p["force"]:
                author = g.out("log", "-1", "--format=%ae", old_head)
                if author != p["author_email"]:
                    raise FixError("branch %s on %s has a head commit by %s, not %s: not replaced without force"
                                   % (branch, scrub_url(url), author, p["author_email"]))
        if commit_created:
            new = g.out("commit-tree", tree_sha, "-p", base_sha, "-m", p["commit_message"])
            head = None if self.check_mode else new
            commit_for_tag = new
        else:
            commit_for_tag = head
        self.result.update(commit_created=commit_created, head_sha=head)
        refspecs = []
        if commit_created:
            refspecs.append("+%s:refs/heads/%s" % (commit_for_tag, branch))
        tag_moved = False
        if tag:
            tag_moved = self.plan_tag(g, remote_refs, tag, commit_for_tag, base_sha, url)
            if tag_moved:
                g("tag", "--annotate", "--force", "--message", p["commit_message"], "--end-of-options", tag, commit_for_tag)
                refspecs.append("+refs/tags/%s:refs/tags/%s" % (tag, tag))
        self.result["tag_moved"] = tag_moved
        self.result["changed"] = bool(refspecs)
        if refspecs and not self.check_mode:
            g("push", "--quiet", "--atomic", "--porcelain", "--end-of-options", url, *refspecs)
            self.result["pushed"] = True
        return self.result

    def apply(self, g: Git) -> None:
        p = self.p
        if p.get("tree") is not None:
            for name in os.listdir(self.clone):
                if name != ".git":
                    path = os.path.join(self.clone, name)
                    shutil.rmtree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            shutil.copytree(p["tree"], self.clone, symlinks=True, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".git"))
        elif p.get("files") is not None:
            for rel, content in sorted(p["files"].items()):
                path = os.path.join(self.clone, rel)
                if content is None:
                    if os.path.lexists(path):
                        os.unlink(path)
                    continue
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write(content)
        else:
            patch = os.path.join(self.work, "fix.patch")
            with open(patch, "w") as fh:
                fh.write(p["patch"] if p["patch"].endswith("\n") else p["patch"] + "\n")
            res = g("apply", "--check", "-p1", "--", patch, check=False)
            if not res.ok:
                raise FixError("the patch does not apply on %s: %s" % (p["base"], (res.stderr or res.stdout).strip()[-1500:]))
            g("apply", "--index", "-p1", "--whitespace=nowarn", "--", patch)

    def describe_diff(self, g: Git, base_sha: str) -> None:
        files = []
        raw = g("diff", "--cached", "--name-status", "-M", "-z", base_sha).stdout.split("\0")
        i = 0
        while i < len(raw) and raw[i]:
            status = raw[i]
            if status[:1] in ("R", "C"):
                files.append({"status": status[:1], "path": raw[i + 2], "from": raw[i + 1]})
                i += 3
            else:
                files.append({"status": status[:1], "path": raw[i + 1]})
                i += 2
        insertions = deletions = 0
        for line in g.out("diff", "--cached", "--numstat", "-M", base_sha).splitlines():
            added, removed = (line.split("\t") + ["", ""])[:2]
            insertions += int(added) if added.isdigit() else 0
            deletions += int(removed) if removed.isdigit() else 0
        self.result["files"] = files
        self.result["diffstat"] = {"files": len(files), "insertions": insertions, "deletions": deletions,
                                   "text": g.out("diff", "--cached", "--stat", "-M", base_sha)}

    def plan_tag(self, g: Git, remote_refs: dict, tag: str, commit: str, base_sha: str, url: str) -> bool:
        """Whether the tag must be (re)made on commit; FixError if it names a published release."""
        ref = "refs/tags/" + tag
        if ref not in remote_refs:
            return True
        current = g.sha("refs/canon/target/tags/%s^{commit}" % tag)   # fetched: peeled here
        if current == commit:
            return False
        if g("merge-base", "--is-ancestor", current, base_sha, check=False).rc == 0:
            raise FixError("tag %s on %s already names %s, a commit on %s: a published release is never moved"
                           % (tag, scrub_url(url), current[:12], self.p["base"]))
        return True


def main():
    m = CanonModule(AnsibleModule, dict(
        repo=dict(type="str", required=True),
        remote=dict(type="str", default="mirror"),
        base=dict(type="str", default="main"),
        branch=dict(type="str", required=True),
        tree=dict(type="path"),
        files=dict(type="dict"),
        patch=dict(type="str"),
        commit_message=dict(type="str", required=True),
        tag=dict(type="str"),
        author_name=dict(type="str", default="canon-redfix"),
        author_email=dict(type="str", default="canon-redfix@canon.invalid"),
        force=dict(type="bool", default=False),
        git_bin=dict(type="path", default="git"),
        timeout=dict(type="int", default=300),
    ), mutually_exclusive=[("tree", "files", "patch")], required_one_of=[("tree", "files", "patch")],
        supports_check_mode=True)
    p = dict(m.params, _diff=m.diff)
    problem = validate(p)
    if problem:
        m.fail(msg=problem, branch=p["branch"], tag=p.get("tag"), pushed=False)
    secret = url_secret(p["repo"])
    if secret:
        m.module.no_log_values.add(secret)
    work = tempfile.mkdtemp(prefix="canon-fix-")
    fix = FixBranch(p, work, m.check_mode)
    try:
        result = fix.run()
    except FixError as exc:
        m.fail(exc, **dict(fix.result, **exc.extra))
    except CommandError as exc:
        m.fail(exc, **fix.result)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    m.exit(**result)


if __name__ == "__main__":
    main()
