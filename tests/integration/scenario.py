"""The bench scenario the six failures need beyond the recipes themselves.

* gitea's warm canonical already runs the older release (3.5.3), so promoting 3.6.0 is an
  in-place advance whose .env has drifted;
* another bluesky-pds stack is deployed beside the warm one, so a short alias on the shared
  proxy network answers from the wrong backend.

``seed()`` sets it up through the collection's own playbooks (and abra for the colliding stack,
as an operator would); ``unseed()`` removes every warm canonical of the enrolled recipes and the
colliding stack. Used by the redfix integration test and by ``make showcase``.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH_ROOT = os.environ.get("CANON_BENCH_ROOT", "/var/lib/canon-bench")
ABRA = os.path.join(BENCH_ROOT, "bin", "abra")
ABRA_DIR = os.path.join(BENCH_ROOT, "abra")
PROXY = "http://127.0.0.1:8480"
GITEA_OLD = "3.5.3+1.24.2-rootless"
BLUESKY = "0.3.0+0.4.107"
ENROLLED = ["discourse", "mattermost-lts", "mumble", "bluesky-pds", "gitea", "keycloak"]


def playbook(name: str, results_dir: str, **extra_vars) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0")
    argv = ["ansible-playbook", os.path.join(ROOT, "playbooks", name),
            "-e", json.dumps(dict(extra_vars, canon_results_dir=results_dir))]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)


def http_get(domain: str, path: str) -> str:
    req = urllib.request.Request(PROXY + path, headers={"Host": domain})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return ""


def abra(*args) -> subprocess.CompletedProcess:
    return subprocess.run([ABRA, *args, "-n"], env=dict(os.environ, ABRA_DIR=ABRA_DIR), capture_output=True,
                          text=True, timeout=600)


def seed_gitea(results_dir: str) -> None:
    before = set(os.listdir(results_dir)) if os.path.isdir(results_dir) else set()
    res = playbook("isolate.yml", results_dir, recipe="gitea", version=GITEA_OLD, canon_tier_order=["install"])
    if res.returncode != 0:
        raise RuntimeError("gitea %s is not green cold: %s" % (GITEA_OLD, res.stdout[-2000:]))
    # this run's result, not an earlier one's left in the same folder
    runs = [os.path.join(results_dir, d, "result.json") for d in set(os.listdir(results_dir)) - before
            if d.startswith("gitea-")]
    runs = [r for r in runs if os.path.exists(r)]
    if len(runs) != 1:
        raise RuntimeError("gitea %s: expected one new result.json in %s, found %s" % (GITEA_OLD, results_dir, runs))
    cold = runs[0]
    res = playbook("promote.yml", results_dir, recipe="gitea", version=GITEA_OLD, cold_result=cold)
    if res.returncode != 0:
        raise RuntimeError("gitea %s did not become the canonical: %s" % (GITEA_OLD, res.stdout[-2000:]))


def seed_colliding_bluesky() -> str:
    domain = "coll-%s.bench.canon.test" % uuid.uuid4().hex[:6]
    for args in (("app", "new", "bluesky-pds", BLUESKY, "--server", "default", "--domain", domain),
                 ("app", "secret", "generate", domain, "--all", "--machine"),
                 ("app", "deploy", domain)):
        res = abra(*args)
        if res.returncode != 0:
            raise RuntimeError("abra %s: %s" % (" ".join(args[:3]), res.stderr))
    deadline = time.time() + 90
    while time.time() < deadline:
        if ('"did":"did:web:%s"' % domain) in http_get(domain, "/xrpc/_health"):
            return domain
        time.sleep(1)
    raise RuntimeError("the colliding bluesky-pds on %s never answered" % domain)


def remove_app(domain: str) -> None:
    abra("app", "undeploy", domain)
    abra("app", "remove", domain, "--force")


def released_tags_only() -> list:
    """Remove tags the bench sources do not release (fix candidates left by an interrupted run)
    from the bench recipe repos and from abra's shared checkouts: the sweep tests each recipe's
    newest *release*. Returns what was removed."""
    removed = []
    for recipe in ENROLLED:
        released = set(os.listdir(os.path.join(ROOT, "roles", "bench", "files", "recipes", recipe)))
        for repo in (os.path.join(BENCH_ROOT, "repos", recipe), os.path.join(ABRA_DIR, "recipes", recipe)):
            if not os.path.isdir(os.path.join(repo, ".git")) and not os.path.exists(os.path.join(repo, "HEAD")):
                continue
            tags = subprocess.run(["git", "-C", repo, "tag", "-l"], capture_output=True, text=True).stdout.split()
            for tag in sorted(set(tags) - released):
                subprocess.run(["git", "-C", repo, "tag", "-d", tag], capture_output=True)
                removed.append("%s:%s" % (repo, tag))
    return removed


def seed(results_dir: str) -> dict:
    # a clean start: no canonical of an enrolled recipe, no colliding stack, releases only
    unseed(results_dir)
    released_tags_only()
    seed_gitea(results_dir)
    return {"colliding_bluesky": seed_colliding_bluesky()}


def unseed(results_dir: str, seeded: dict | None = None) -> list:
    """Remove the warm canonicals of the enrolled recipes and the colliding stack; the problems seen."""
    problems = []
    for recipe in ENROLLED:
        res = playbook("warm_teardown.yml", results_dir, recipe=recipe)
        if res.returncode != 0:
            problems.append("warm_teardown %s: %s" % (recipe, res.stdout[-500:]))
    colliding = {(seeded or {}).get("colliding_bluesky")} | {
        name[:-4] for name in os.listdir(os.path.join(ABRA_DIR, "servers", "default"))
        if name.startswith("coll-") and name.endswith(".env")}
    for domain in sorted(d for d in colliding if d):
        remove_app(domain)
    return problems


if __name__ == "__main__":
    import sys
    # absolute: the playbooks resolve a relative results folder against their own directory
    out = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "/tmp/canon-scenario")
    os.makedirs(out, exist_ok=True)
    if sys.argv[1:2] == ["seed"]:
        print(json.dumps(seed(out)))
    elif sys.argv[1:2] == ["unseed"]:
        state = json.loads(sys.argv[3]) if len(sys.argv) > 3 else None
        print("\n".join(unseed(out, state)) or "unseeded")
    else:
        sys.exit("usage: scenario.py seed|unseed [results_dir] [seed-json]")
