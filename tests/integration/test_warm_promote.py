"""Warm canonicals on the bench: collision-free domains, promote, drift, fallback, identity."""
import glob
import json
import os
import shutil
import subprocess
import uuid

import pytest

import urllib.error
import urllib.request

from conftest import (ABRA_DIR, BENCH_ROOT, LIVE_KEYCLOAK, PROXY, ROOT, SERVER, ledger_runs, leftovers, run_playbook,
                      wait_for)


def http_get(domain, path):
    req = urllib.request.Request(PROXY + path, headers={"Host": domain})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return ""


ABRA = os.path.join(BENCH_ROOT, "bin", "abra")


def cold(results_dir, recipe, version=None):
    extra = {"recipe": recipe, "canon_tier_order": ["install"]}
    if version:
        extra["version"] = version
    pb = run_playbook("isolate.yml", results_dir, **extra)
    assert pb.rc == 0, pb.stdout[-3000:]
    doc = pb.results[-1]
    return os.path.join(results_dir, doc["run_id"], "result.json"), doc


def promote(results_dir, recipe, cold_result, **extra):
    pb = run_playbook("promote.yml", results_dir, recipe=recipe, cold_result=cold_result, **extra)
    runs = sorted((d for d in os.listdir(results_dir) if os.path.exists(os.path.join(results_dir, d, "promote.json"))),
                  key=lambda d: os.path.getmtime(os.path.join(results_dir, d, "promote.json")))
    with open(os.path.join(results_dir, runs[-1], "promote.json")) as fh:
        return pb, json.load(fh)


@pytest.fixture
def warm(results_dir):
    """Removes the warm canonicals a test made, whatever happened."""
    made = []
    yield made
    for recipe in made:
        pb = run_playbook("warm_teardown.yml", results_dir, recipe=recipe)
        assert pb.rc == 0, pb.stdout[-2000:]


def test_keycloak_canonical_never_collides_with_the_live_provider(results_dir, warm):
    cold_result, _ = cold(results_dir, "keycloak")
    warm.append("keycloak")
    pb, rec = promote(results_dir, "keycloak", cold_result)
    assert pb.rc == 0, pb.stdout[-3000:]
    assert rec["outcome"] == "promoted" and rec["mode"] == "fresh"
    assert rec["domain"] == "warm-canon-keycloak.bench.canon.test" != LIVE_KEYCLOAK
    # Asking for the live provider's domain explicitly is refused with the reason, before anything.
    pb, rec = promote(results_dir, "keycloak", cold_result, warm_domain=LIVE_KEYCLOAK)
    assert pb.rc != 0
    assert rec["outcome"] == "refused"
    assert "is protected (live service)" in rec["in_place_error"]
    # (the session fixture checks the live keycloak's spec and data are byte-for-byte unchanged)


def test_promote_needs_a_green_cold_run_of_that_release(results_dir, warm, tmp_path):
    cold_result, doc = cold(results_dir, "gitea", "3.5.3+1.24.2-rootless")
    warm.append("gitea")
    pb, rec = promote(results_dir, "gitea", cold_result, version="3.6.0+1.25.0-rootless")
    assert pb.rc != 0 and rec["outcome"] == "refused"
    assert "refusing to promote gitea 3.6.0+1.25.0-rootless" in rec["in_place_error"]
    red = dict(doc, outcome="fail")
    red_path = tmp_path / "red.json"
    red_path.write_text(json.dumps(red))
    records = sorted(glob.glob(os.path.join(results_dir, "*", "promote.json")))
    # A red cold run is refused with the playbook's input, before anything is claimed: no lease,
    # no promote record (the release mismatch above needs the warm registry, so the role says it)
    pb = run_playbook("promote.yml", results_dir, recipe="gitea", cold_result=str(red_path),
                      version="3.5.3+1.24.2-rootless")
    assert pb.rc != 0, pb.stdout[-3000:]
    assert "cold run %s is 'fail', not pass" % doc["run_id"] in pb.stdout, pb.stdout[-3000:]
    assert sorted(glob.glob(os.path.join(results_dir, "*", "promote.json"))) == records
    assert not [r for r in ledger_runs() if r.get("status") == "running"]


@pytest.mark.parametrize("drift", [True, False], ids=["drift-reconciled", "drift-off-fallback"])
def test_gitea_advance(results_dir, warm, drift):
    old, _ = cold(results_dir, "gitea", "3.5.3+1.24.2-rootless")
    new, _ = cold(results_dir, "gitea", "3.6.0+1.25.0-rootless")
    warm.append("gitea")
    pb, rec = promote(results_dir, "gitea", old, version="3.5.3+1.24.2-rootless")
    assert pb.rc == 0 and rec["outcome"] == "promoted", pb.stdout[-3000:]
    pb, rec = promote(results_dir, "gitea", new, version="3.6.0+1.25.0-rootless", warm_drift=drift)
    assert pb.rc == 0, pb.stdout[-3000:]
    assert rec["mode"] == "advance" and rec["previous"] == "3.5.3+1.24.2-rootless"
    assert rec["drift"]["missing"] == ["LFS_JWT_SECRET_URI"]
    if drift:
        assert rec["outcome"] == "promoted" and not rec["fallback"]
        assert rec["drift"]["added"] == ["LFS_JWT_SECRET_URI=file:/run/secrets/jwt_secret"]
    else:
        # in place: the empty setting crash-loops gitea and swarm rolls the update back
        assert rec["outcome"] == "promoted-by-fallback" and rec["fallback"]
        assert rec["in_place_error"].startswith(("rolled-back", "crashloop")), rec["in_place_error"]
        logs = subprocess.run(["grep", "-rl", "read-only file system",
                               os.path.join(results_dir, rec["run_id"], "evidence")], capture_output=True, text=True)
        assert logs.stdout.strip(), "the crash's own error is not in the evidence"
    canonical = json.loads(open(os.path.join(BENCH_ROOT, "state", "canon", SERVER, "gitea.json")).read())
    assert canonical["version"] == "3.6.0+1.25.0-rootless" and canonical["status"] == "live"


@pytest.fixture
def colliding_bluesky():
    """Another bluesky-pds deployed beside the warm one: its 'app' answers on the proxy network too."""
    domain = "coll-%s.bench.canon.test" % uuid.uuid4().hex[:6]
    env = dict(os.environ, ABRA_DIR=ABRA_DIR)

    def run(*a):
        return subprocess.run([ABRA, *a, "-n"], env=env, capture_output=True, text=True, timeout=600)

    try:
        assert run("app", "new", "bluesky-pds", "0.3.0+0.4.107", "--server", "default", "--domain", domain).returncode == 0
        assert run("app", "secret", "generate", domain, "--all", "--machine").returncode == 0
        res = run("app", "deploy", domain)
        assert res.returncode == 0, res.stderr
        # It must really answer as itself before it can collide with anything.
        assert wait_for(lambda: ('"did":"did:web:%s"' % domain) in http_get(domain, "/xrpc/_health"), timeout=90), \
            "the colliding bluesky-pds never answered"
        yield domain
    finally:
        run("app", "undeploy", domain)
        run("app", "remove", domain, "--force")
        assert leftovers([domain]) == {}


@pytest.fixture
def bluesky_fix_release():
    """The recipe fix as a release tag on the bench repo (what the fix PR becomes); removed after."""
    repo = os.path.join(BENCH_ROOT, "repos", "bluesky-pds")
    tag = "0.3.1+0.4.107"
    src = os.path.join(ROOT, "roles", "bench", "files", "recipe-fixes", "bluesky-pds", tag)
    work = repo + ".fixwork"
    shutil.rmtree(work, ignore_errors=True)
    subprocess.run(["git", "clone", "-q", repo, work], check=True)
    try:
        for name in os.listdir(work):
            if name != ".git":
                p = os.path.join(work, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        shutil.copytree(src, work, dirs_exist_ok=True)

        def wgit(*a):
            return subprocess.run(["git", "-C", work, *a], capture_output=True, text=True, check=True)

        wgit("add", "-A")
        wgit("-c", "user.name=canon-test", "-c", "user.email=canon-test@bench.canon.test", "commit", "-q", "-m",
             "fix: the PDS answers to a name no other stack uses")
        wgit("tag", tag)
        wgit("push", "-q", "origin", "HEAD:refs/heads/fix-pds-alias", "refs/tags/" + tag)
        yield tag
    finally:
        shutil.rmtree(work, ignore_errors=True)
        subprocess.run(["git", "-C", repo, "tag", "-d", tag], capture_output=True)
        subprocess.run(["git", "-C", repo, "branch", "-D", "fix-pds-alias"], capture_output=True)
        # the warm canonical's checkout in the shared ABRA_DIR fetched the tag too
        subprocess.run(["git", "-C", os.path.join(ABRA_DIR, "recipes", "bluesky-pds"), "tag", "-d", tag],
                       capture_output=True)


def test_bluesky_identity_names_the_wrong_backend_then_the_fix_promotes(results_dir, warm, colliding_bluesky,
                                                                        bluesky_fix_release):
    cold_result, _ = cold(results_dir, "bluesky-pds", "0.3.0+0.4.107")
    warm.append("bluesky-pds")
    pb, rec = promote(results_dir, "bluesky-pds", cold_result, version="0.3.0+0.4.107")
    assert pb.rc != 0
    assert rec["outcome"] == "failed"
    assert "wrong-backend" in rec["in_place_error"], rec["in_place_error"]
    # a first canonical that never became healthy is not left deployed
    assert leftovers([rec["domain"]]) == {}
    # The recipe fix (service renamed) as a release: cold green, then the promote is green.
    fixed, _ = cold(results_dir, "bluesky-pds", bluesky_fix_release)
    pb, rec = promote(results_dir, "bluesky-pds", fixed, version=bluesky_fix_release)
    assert pb.rc == 0, pb.stdout[-3000:]
    assert rec["outcome"] == "promoted"
