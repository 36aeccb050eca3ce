"""The bench's CI: answers ``!testme`` on the bench forge's pull requests with the harness's verdict.

A real forge has Drone or Woodpecker behind ``!testme``; the bench forge (``bench-forge``) only
appends a job to its CI queue (``<forge>/ci-queue.jsonl``: repo, pr, head_ref, head_sha, base_ref,
comment_id, git_dir). :func:`answer_pending` reads that queue and, for every job it has not
answered yet:

1. posts a ``pending`` commit status (context ``canon/lifecycle``) on the head commit;
2. runs the harness on that commit through ``playbooks/isolate.yml`` (``canon.runner.Job``):

   - a recipe pull request (``coop-cloud/<recipe>``): the head commit carries the release candidate
     tag the fix becomes (``fix_branch`` pushed it with the branch). The tag is fetched from the
     mirror into the bench recipe repository (abra's origin), the lifecycle runs with
     ``version=<tag>``, and the tag is deleted again from the bench repository and from the
     shared abra checkout (``<abra_dir>/recipes/<recipe>``), whatever happened;
   - a suites pull request (``coop-cloud/canon-suites``): the head commit is checked out into a
     temporary directory, and every recipe whose suite the pull request changes runs with
     ``canon_suites_dir`` pointing there and the tiers ``install, custom``;

3. posts ``success`` or ``failure`` as the commit status and a comment with the per-tier table of
   each run (the result document's tiers), marked ``<!-- canon verdict: <sha> -->`` so
   ``gitea_pull_request state=verdict`` finds it;
4. records the job as answered (``<canon_state_dir>/ci/answered.jsonl``): a second call answers
   nothing twice.

It takes no server lock itself: the caller (``canon ci``, the redfix driver) holds the driver's
lock; the runs are ``canon_exclusive`` (refused while other harness runs are live). Jobs are
answered one at a time, under ``<canon_state_dir>/ci/ci.lock``.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass

from canon import ROOT
from canon.inventory import InventoryError, default_inventory, load_servers, resolved_hosts
from canon.runner import Job
from canon.sweep import cold_record

from ansible_collections.coopcloud.canon.plugins.module_utils._flock import flocked
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words
from ansible_collections.coopcloud.canon.plugins.module_utils._forge import (
    VERDICT_MARK, ForgeClient, ForgeError)

CONTEXT = "canon/lifecycle"
SUITES_REPO = "canon-suites"
SUITES_TIERS = ("install", "custom")
QUEUE = "ci-queue.jsonl"
DEFAULT_DEADLINE = 3600
# A tier's detail in the comment's table: cut at a word with "…"; the run's result.json keeps it whole.
DETAIL_LIMIT = 300
# A commit status's description is a one-line summary: GitHub refuses one over 140 characters,
# and Gitea/Forgejo show it in a narrow column; cut at a word with "…", never mid-word.
STATUS_DESCRIPTION_MAX = 140


class CIError(Exception):
    """The CI cannot run at all (no forge configured, unreadable queue)."""


@dataclass
class Forge:
    """Where the bench forge is, from the inventory's canon_forge_* (and bench_root)."""
    api_url: str
    token_file: str
    owner: str
    git_root: str
    queue: str            # <forge dir>/ci-queue.jsonl
    repos_dir: str        # the bench recipe repositories (abra's origin): <bench_root>/repos


def forge_settings(inventory: str | None = None, host: str | None = None) -> Forge:
    """The forge of the inventory's first server (or of ``host``), templated as a play sees it."""
    try:
        hosts = resolved_hosts(inventory, host or "canon_servers")
    except InventoryError as exc:
        raise CIError(str(exc)) from None
    path = inventory or default_inventory()
    if not hosts:
        raise CIError("inventory %s has no host %s" % (path, host or "in canon_servers"))
    name, hostvars, template = hosts[0]
    missing = [k for k in ("canon_forge_url", "canon_forge_token_file", "canon_forge_git_root", "bench_root")
               if k not in hostvars]
    if missing:
        raise CIError("inventory %s: %s has no %s (the bench CI needs the bench forge)"
                      % (path, name, ", ".join(missing)))
    v = {k: str(template(hostvars[k])) for k in
         ("canon_forge_url", "canon_forge_token_file", "canon_forge_git_root", "bench_root")}
    owner = str(template(hostvars.get("canon_forge_owner", "coop-cloud")))
    forge_dir = os.path.dirname(v["canon_forge_git_root"].rstrip("/"))
    return Forge(api_url=v["canon_forge_url"], token_file=v["canon_forge_token_file"], owner=owner,
                 git_root=v["canon_forge_git_root"], queue=os.path.join(forge_dir, QUEUE),
                 repos_dir=os.path.join(v["bench_root"], "repos"))


# -- the queue and what was answered ---------------------------------------------------------------
def read_jsonl(path: str) -> list:
    if not os.path.exists(path):
        return []
    out = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                raise CIError("%s line %d is not JSON" % (path, n)) from None
    return out


def answered_path(state_dir: str) -> str:
    return os.path.join(state_dir, "ci", "answered.jsonl")


def pending_jobs(queue: str, state_dir: str) -> list:
    """The queue's jobs not answered yet, oldest first (a job is its ``!testme`` comment)."""
    done = {a.get("comment_id") for a in read_jsonl(answered_path(state_dir))}
    return [j for j in read_jsonl(queue) if j.get("comment_id") not in done]


def mark_answered(state_dir: str, answer: dict) -> None:
    path = answered_path(state_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a") as fh:
        fh.write(json.dumps(answer, sort_keys=True) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


# -- git ---------------------------------------------------------------------------------------------
def git(repo: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(LC_ALL="C", GIT_TERMINAL_PROMPT="0", GIT_CONFIG_NOSYSTEM="1")
    res = subprocess.run(["git", "-C", repo, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and res.returncode != 0:
        raise CIError("git -C %s %s failed: %s" % (repo, " ".join(args), (res.stderr or res.stdout).strip()))
    return res


def tags_at(git_dir: str, sha: str) -> list:
    """The tags of git_dir that name commit sha (annotated or not), newest version last."""
    out = git(git_dir, "tag", "--points-at", sha, "--sort=version:refname").stdout
    return [t for t in out.split() if t]


def tag_commit(repo: str, tag: str) -> str | None:
    res = git(repo, "rev-parse", "--verify", "--quiet", "refs/tags/%s^{commit}" % tag, check=False)
    return res.stdout.strip() or None


class ReleaseCandidate:
    """The head commit's tag made a release of the bench recipe repository for one run: fetched
    from the mirror in, deleted again (from the bench repository and abra's checkout) after."""

    def __init__(self, repo: str, abra_checkout: str, mirror_dir: str, tag: str, sha: str):
        self.repo, self.abra_checkout, self.mirror_dir, self.tag, self.sha = repo, abra_checkout, mirror_dir, tag, sha
        self.added = False
        self.in_abra_before = None

    def __enter__(self):
        present = tag_commit(self.repo, self.tag)
        if present and present != self.sha:
            raise CIError("tag %s already names %s in %s, not the pull request's head %s"
                          % (self.tag, present[:12], self.repo, self.sha[:12]))
        if os.path.isdir(os.path.join(self.abra_checkout, ".git")):
            self.in_abra_before = tag_commit(self.abra_checkout, self.tag)
        if not present:
            git(self.repo, "fetch", "--quiet", "--no-tags", self.mirror_dir,
                "refs/tags/%s:refs/tags/%s" % (self.tag, self.tag))
            self.added = True
        return self

    def __exit__(self, *exc):
        if self.added:
            git(self.repo, "tag", "-d", self.tag, check=False)
        if os.path.isdir(os.path.join(self.abra_checkout, ".git")) and self.in_abra_before is None:
            git(self.abra_checkout, "tag", "-d", self.tag, check=False)
        return False


# -- the verdict -----------------------------------------------------------------------------------------
def tier_table(doc: dict | None) -> str:
    """The result document's tiers as a Markdown table."""
    if not doc:
        return "_no result document: the run did not get as far as writing one_"
    rows = ["| tier | outcome | seconds | detail |", "|---|---|---:|---|"]
    for t in doc.get("tiers", []):
        detail = " ".join(str(t.get("error") or t.get("detail") or t.get("reason") or "").split())
        rows.append("| %s | %s | %s | %s |" % (t.get("name"), t.get("outcome"), t.get("duration", ""),
                                               clip_words(detail, DETAIL_LIMIT).replace("|", "\\|")))
    return "\n".join(rows)


def comment_body(job: dict, answer: dict) -> str:
    lines = ["**%s: %s** for `%s`" % (CONTEXT, answer["state"], job["head_sha"][:12]), ""]
    if answer.get("error"):
        lines += ["The CI could not run the lifecycle: %s" % answer["error"], ""]
    for run in answer["runs"]:
        doc = run.get("doc")
        lines.append("%s %s, run `%s`: **%s**%s" % (
            run["recipe"], run.get("version") or "(latest release)", run.get("run_id") or "-",
            run["outcome"], (" (%s)" % doc["level_text"]) if doc and doc.get("level_text")
            else (" (level %s/%s)" % (doc["level"]["level"], doc["level"]["of"]))   # a result from before level_text
            if doc and isinstance(doc.get("level"), dict) else ""))
        lines += ["", tier_table(doc), ""]
        if run.get("result"):
            lines += ["evidence: `%s`" % os.path.dirname(run["result"]), ""]
    lines.append(VERDICT_MARK % job["head_sha"])
    return "\n".join(lines)


def run_record(job_result, results_dir: str, server, recipe: str, version: str | None) -> dict:
    rec = cold_record(job_result, results_dir, server)
    doc = None
    if rec.get("result") and os.path.exists(rec["result"]):
        with open(rec["result"]) as fh:
            doc = json.load(fh)
    elif job_result.results:
        doc = job_result.results[-1]
    return {"recipe": recipe, "version": version, "run_id": rec.get("run_id"), "outcome": rec["outcome"],
            "result": rec.get("result"), "failure": rec.get("failure"), "duration": rec.get("duration"), "doc": doc}


# -- answering ------------------------------------------------------------------------------------------------
class CI:
    def __init__(self, forge: Forge, server, inventory: str, results_dir: str, tier_order=None,
                 suites_tier_order=SUITES_TIERS, deadline: int = DEFAULT_DEADLINE, exclusive: bool = True, log=None):
        self.forge, self.server, self.inventory = forge, server, inventory
        self.results_dir = results_dir
        self.tier_order = list(tier_order) if tier_order else None
        self.suites_tier_order = list(suites_tier_order)
        self.deadline, self.exclusive = int(deadline), exclusive
        self.log = log or (lambda msg: None)
        with open(forge.token_file) as fh:
            token = fh.readline().strip()
        self.client = ForgeClient(forge.api_url, token, timeout=30)

    def isolate(self, recipe: str, ident: str, version: str | None = None, tiers=None, suites_dir=None) -> dict:
        extravars = {"recipe": recipe, "canon_hosts": self.server.host, "canon_results_dir": self.results_dir,
                     "canon_exclusive": self.exclusive, "canon_deadline": self.deadline}
        if version:
            extravars["version"] = version
        if tiers:
            extravars["canon_tier_order"] = list(tiers)
        envvars = {}
        if suites_dir:
            extravars["canon_suites_dir"] = suites_dir
            # The suites' conftest.py (the `get` fixture) is only loaded by a pytest whose
            # confcutdir holds it; run from the collection, pytest's rootdir is the collection.
            envvars["PYTEST_ADDOPTS"] = "--confcutdir=%s" % suites_dir
        self.log("ci: %s %s: isolate.yml%s" % (recipe, version or "(latest)", " (%s)" % ",".join(tiers) if tiers else ""))
        res = Job("isolate.yml", extravars, ident, self.inventory, timeout=self.deadline + 300, envvars=envvars).run()
        return run_record(res, self.results_dir, self.server, recipe, version)

    def recipe_runs(self, job: dict, recipe: str, ident: str) -> list:
        tags = tags_at(job["git_dir"], job["head_sha"])
        if not tags:
            raise CIError("the head commit %s carries no release tag on %s: nothing to test as a release candidate "
                          "(push the fix with its tag, e.g. fix_branch tag=...)" % (job["head_sha"][:12], job["repo"]))
        tag = tags[-1]
        repo = os.path.join(self.forge.repos_dir, recipe)
        if not os.path.isdir(os.path.join(repo, ".git")):
            raise CIError("no bench recipe repository %s" % repo)
        abra_checkout = os.path.join(self.server.abra_dir, "recipes", recipe)
        with ReleaseCandidate(repo, abra_checkout, job["git_dir"], tag, job["head_sha"]):
            return [self.isolate(recipe, ident, version=tag, tiers=self.tier_order)]

    def suites_runs(self, job: dict, ident: str) -> list:
        base = job.get("base_ref") or "main"
        changed = git(job["git_dir"], "diff", "--name-only", "%s...%s" % (base, job["head_sha"])).stdout.split()
        work = tempfile.mkdtemp(prefix="canon-ci-suites-")
        try:
            suites = os.path.join(work, "suites")
            git(work, "clone", "--quiet", "--no-checkout", job["git_dir"], suites)
            git(suites, "checkout", "--quiet", "--detach", job["head_sha"])
            recipes = sorted({p.split("/", 1)[0] for p in changed if "/" in p
                              and os.path.isdir(os.path.join(suites, p.split("/", 1)[0]))})
            if not recipes:
                raise CIError("the pull request changes no recipe's suite (%s)" % (", ".join(changed) or "nothing"))
            return [self.isolate(r, "%s-%s" % (ident, r), tiers=self.suites_tier_order, suites_dir=suites)
                    for r in recipes]
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def answer(self, job: dict) -> dict:
        owner, _, name = job["repo"].partition("/")
        sha = job["head_sha"]
        ident = "ci-%s-%d-%s-%d" % (name, job["pr"], sha[:8], int(time.time()))
        answer = {"comment_id": job["comment_id"], "repo": job["repo"], "pr": job["pr"], "head_sha": sha,
                  "kind": "suites" if name == SUITES_REPO else "recipe", "state": "error", "runs": [], "error": None,
                  "started": time.time()}
        pr = self.client.get_pull(owner, name, job["pr"])
        if pr.get("state") != "open":
            answer.update(state="skipped", error="the pull request is %s" % pr.get("state"))
            return answer
        self.client.create_status(owner, name, sha, "pending", CONTEXT,
                                  "canon: running the lifecycle on %s" % sha[:12])
        try:
            runs = self.suites_runs(job, ident) if answer["kind"] == "suites" else self.recipe_runs(job, name, ident)
            answer["runs"] = runs
            answer["state"] = "success" if runs and all(r["outcome"] == "pass" for r in runs) else "failure"
        except CIError as exc:
            answer.update(state="failure", error=str(exc))
        answer["finished"] = time.time()
        description = self.describe(answer)
        target = ("file://" + os.path.dirname(answer["runs"][0]["result"])
                  if answer["runs"] and answer["runs"][0].get("result") else "")
        status = self.client.create_status(owner, name, sha, answer["state"], CONTEXT, description, target)
        comment = self.client.create_comment(owner, name, job["pr"], comment_body(job, answer))
        answer.update(status_id=status.get("id"), comment_id_posted=comment.get("id"),
                      comment_url=comment.get("html_url"), description=description)
        return answer

    @staticmethod
    def describe(answer: dict) -> str:
        if answer.get("error"):
            return clip_words(" ".join(answer["error"].split()), STATUS_DESCRIPTION_MAX)
        parts = []
        for r in answer["runs"]:
            f = r.get("failure") or {}
            parts.append("%s %s" % (r["recipe"], r["outcome"].upper() + (" at %s" % f["tier"] if f else "")))
        return clip_words("; ".join(parts), STATUS_DESCRIPTION_MAX)


def answer_pending(inventory: str | None = None, results_dir: str | None = None, tier_order=None,
                   suites_tier_order=SUITES_TIERS, repo: str | None = None, pr: int | None = None,
                   limit: int | None = None, deadline: int = DEFAULT_DEADLINE, exclusive: bool = True,
                   log=None) -> list:
    """Answer every ``!testme`` in the bench forge's CI queue not answered yet; the answers, in order.

    Each answer: ``comment_id`` (the job's ``!testme`` comment), ``repo``, ``pr``, ``head_sha``,
    ``kind`` (recipe or suites), ``state`` (success, failure, or skipped for a closed pull
    request), ``runs`` (per run: recipe, version, run_id, outcome, result path, failure, duration,
    doc = the result document), ``error`` (why the lifecycle could not run), ``status_id``,
    ``comment_id_posted``, ``comment_url``, ``description``. ``tier_order`` limits a recipe pull
    request's tiers (default: the harness's whole ladder); suites pull requests run
    ``suites_tier_order``. ``repo`` (owner/name) and ``pr`` answer only those jobs, ``limit`` at
    most that many. A second call with nothing new in the queue returns []. A job the forge could
    not be told about (ForgeError) is returned with state ``error`` and not marked: the next call
    tries it again.
    """
    inventory = inventory or default_inventory()
    forge = forge_settings(inventory)
    server = load_servers(inventory)[0]
    results_dir = results_dir or os.path.join(ROOT, "results")
    os.makedirs(results_dir, exist_ok=True)
    lock_path = os.path.join(server.state_dir, "ci", "ci.lock")
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    answers = []
    with flocked(lock_path):
        jobs = [j for j in pending_jobs(forge.queue, server.state_dir)
                if (repo is None or j.get("repo") == repo) and (pr is None or j.get("pr") == pr)]
        if not jobs:
            return []
        ci = CI(forge, server, inventory, results_dir, tier_order=tier_order, suites_tier_order=suites_tier_order,
                deadline=deadline, exclusive=exclusive, log=log)
        for job in jobs[:limit] if limit else jobs:
            try:
                answer = ci.answer(job)
            except ForgeError as exc:
                answer = {"comment_id": job.get("comment_id"), "repo": job.get("repo"), "pr": job.get("pr"),
                          "head_sha": job.get("head_sha"), "state": "error", "runs": [],
                          "error": "the forge failed: %s" % exc}
                answers.append(answer)
                continue   # not marked: the next call tries again
            mark_answered(server.state_dir, {k: v for k, v in answer.items() if k != "runs"}
                          | {"runs": [{k: v for k, v in r.items() if k != "doc"} for r in answer["runs"]]})
            answers.append(answer)
    return answers
