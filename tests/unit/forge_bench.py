"""A bench-forge of its own for a test: temp dir, free loopback port, one recipe repo mirrored.

Used by test_forge_module.py and test_forge_contract.py. The server is the real
roles/bench/files/bench-forge, started as a process; the repositories are real git.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_FORGE = os.path.join(ROOT, "roles", "bench", "files", "bench-forge")
MODULE = os.path.join(ROOT, "plugins", "modules", "gitea_pull_request.py")
OWNER, REPO = "coop-cloud", "custom-html"
TOKEN = "tok-3f9c2a7d51e84b06a1c9"
GIT_ENV = dict(GIT_AUTHOR_NAME="canon test", GIT_AUTHOR_EMAIL="t@bench.canon.test",
               GIT_COMMITTER_NAME="canon test", GIT_COMMITTER_EMAIL="t@bench.canon.test",
               GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(repo, *args) -> str:
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("GIT_")}, **GIT_ENV)
    res = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise AssertionError("git %s: %s" % (" ".join(args), res.stderr))
    return res.stdout.strip()


class BenchForge:
    """A running bench-forge in tmp: root/{token,state.json,requests.jsonl,ci-queue.jsonl,git/}."""

    def __init__(self, tmp):
        self.tmp = tmp
        self.root = os.path.join(tmp, "forge")
        self.repos = os.path.join(tmp, "repos")
        self.work = os.path.join(self.repos, REPO)
        os.makedirs(self.root)
        with open(os.path.join(self.root, "token"), "w") as fh:
            fh.write(TOKEN + "\n")
        os.makedirs(self.work)
        git(self.work, "init", "--quiet", "--initial-branch=main")
        self.commit("compose.yml", "version: '3.8'\n", "chore: publish 1.0.0+1.36 release")
        git(self.work, "tag", "-a", "1.0.0+1.36", "-m", "Release 1.0.0+1.36")
        self.mirror_result = self.run_tool("mirror", "--repos", self.repos, "--git-root", os.path.join(self.root, "git"),
                                           "--owner", OWNER)
        self.port = free_port()
        self.api_url = "http://127.0.0.1:%d/api/v1" % self.port
        self.log = open(os.path.join(tmp, "bench-forge.log"), "w")
        self.proc = subprocess.Popen([sys.executable, BENCH_FORGE, "serve", "--root", self.root,
                                      "--port", str(self.port)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("bench-forge did not start: " + open(self.log.name).read())
                time.sleep(0.05)

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.log.close()

    @staticmethod
    def run_tool(*args) -> dict:
        res = subprocess.run([sys.executable, BENCH_FORGE, *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    # git ------------------------------------------------------------------------------------------
    def commit(self, path, content, message) -> str:
        with open(os.path.join(self.work, path), "w") as fh:
            fh.write(content)
        git(self.work, "add", path)
        git(self.work, "commit", "--quiet", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push_branch(self, branch, content="fixed\n", message="fix: the fix") -> str:
        """A commit on branch (created from main when new), pushed to the mirror; its sha."""
        branches = git(self.work, "branch", "--list", branch)
        git(self.work, "checkout", "--quiet", *([branch] if branches else ["-b", branch, "main"]))
        sha = self.commit("fix.txt", content, message)
        git(self.work, "push", "--quiet", "mirror", branch)
        git(self.work, "checkout", "--quiet", "main")
        return sha

    # state and logs -----------------------------------------------------------------------------
    def state(self) -> dict:
        path = os.path.join(self.root, "state.json")
        if not os.path.exists(path):
            return {}
        with open(path) as fh:
            return json.load(fh)

    def set_state(self, **values):
        state = self.state()
        state.update(values)
        with open(os.path.join(self.root, "state.json"), "w") as fh:
            json.dump(state, fh)

    def jsonl(self, name) -> list:
        path = os.path.join(self.root, name)
        if not os.path.exists(path):
            return []
        with open(path) as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def requests(self) -> list:
        return self.jsonl("requests.jsonl")

    def queue(self) -> list:
        return self.jsonl("ci-queue.jsonl")

    def module_args(self, **extra) -> dict:
        args = dict(api_url=self.api_url, token_file=os.path.join(self.root, "token"), owner=OWNER, repo=REPO,
                    head="fix/healthcheck", title="fix: the healthcheck")
        args.update(extra)
        return args


def run_module(args: dict, tmp, check=False, env=None, timeout=120, process=False):
    """(result, raw output) of the module. In this process by default (its main() with Ansible's
    argument plumbing, stdout captured); with process=True as Ansible runs it, a python process
    reading an arguments file, and the raw output is its stdout and stderr."""
    payload = {"ANSIBLE_MODULE_ARGS": dict(args, _ansible_check_mode=check)}
    run_env = dict(os.environ)
    run_env.pop("GITEA_TOKEN", None)
    run_env.update(env or {})
    if not process:
        return _run_in_process(payload, run_env)
    path = os.path.join(str(tmp), "args-%d.json" % time.monotonic_ns())
    with open(path, "w") as fh:
        json.dump(payload, fh)
    run_env["PYTHONPATH"] = os.path.join(ROOT, ".collections")
    res = subprocess.run([sys.executable, MODULE, path], capture_output=True, text=True, env=run_env, timeout=timeout)
    os.unlink(path)
    try:
        return json.loads(res.stdout), res.stdout + res.stderr
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (res.stdout, res.stderr))


def _run_in_process(payload: dict, env: dict):
    import contextlib
    import io
    from unittest import mock

    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.coopcloud.canon.plugins.modules import gitea_pull_request

    out, err = io.StringIO(), io.StringIO()
    with patch_module_args(payload["ANSIBLE_MODULE_ARGS"]), \
            mock.patch.dict(os.environ, env, clear=True), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            gitea_pull_request.main()
        except SystemExit:
            pass
    try:
        return json.loads(out.getvalue()), out.getvalue() + err.getvalue()
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (out.getvalue(), err.getvalue()))
