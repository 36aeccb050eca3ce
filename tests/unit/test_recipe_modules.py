"""abra_recipe, env_drift and abra_app_info in-process against a real git checkout and a fake
abra: a malformed env file fails with the file and the line (never a traceback), a recipe without
X.Y.Z+upstream tags fails naming them, and env_drift returns the release note and the drift."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.coopcloud.canon.plugins.modules import abra_app_info, abra_recipe, env_drift
from loader import needs_loader, stack_config_docker

FIXTURE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "recipes", "chained")
DOMAIN = "chai-1a2b3c.bench.canon.test"


def _run(module, args: dict) -> dict:
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        try:
            module.main()
        except SystemExit:
            pass
    return json.loads(out.getvalue())


def _git(repo, *args):
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"] + list(args),
                   check=True, capture_output=True)


@pytest.fixture
def abra_dir(tmp_path):
    """An ABRA_DIR with the fixture recipe checked out as abra fetches it, and a fake abra."""
    d = tmp_path / "abra"
    repo = d / "recipes" / "chained"
    shutil.copytree(FIXTURE, repo)
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "1.0.0")
    _git(repo, "tag", "1.0.0+1.27")
    (d / "servers" / "default").mkdir(parents=True)
    fake = tmp_path / "abra-bin"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    return d, repo, str(fake)


def _common(abra_dir, fake, docker="docker"):
    return {"abra_dir": str(abra_dir), "abra_bin": fake, "docker_bin": docker}


@needs_loader
def test_abra_recipe_preflights_the_fixture(abra_dir):
    d, _repo, fake = abra_dir
    res = _run(abra_recipe, dict(_common(d, fake, stack_config_docker()), recipe="chained", domain=DOMAIN, shared_networks=False))
    assert not res.get("failed"), res
    assert res["compose_files"] == ["compose.yml", "compose.postgres.yml"]
    assert res["findings"] == []
    assert res["overlays"][-1] == "compose.yml:compose.postgres.yml:compose.oauth.yml"
    res = _run(abra_recipe, dict(_common(d, fake, stack_config_docker()), recipe="chained", domain=DOMAIN, shared_networks=False,
                                 env={"COMPOSE_FILE": "compose.yml:compose.postgres.yml:compose.oauth.yml"}))
    assert [f["check"] for f in res["findings"]] == ["undefined-secret"]


@needs_loader
def test_abra_recipe_malformed_sample_names_file_and_line(abra_dir):
    d, repo, fake = abra_dir
    (repo / ".env.sample").write_text("TYPE=chained\nMOTD=\"never closed\nX=1\n")
    _git(repo, "commit", "-qam", "broken")
    _git(repo, "tag", "1.0.1+1.27")
    res = _run(abra_recipe, dict(_common(d, fake, stack_config_docker()), recipe="chained", domain=DOMAIN, shared_networks=False))
    assert res["failed"] and "exception" not in res
    assert res["msg"] == "1.0.1+1.27:.env.sample line 2: the double quote of MOTD is never closed"


def test_abra_recipe_names_tags_that_are_not_releases(abra_dir):
    d, repo, fake = abra_dir
    _git(repo, "tag", "-d", "1.0.0+1.27")
    _git(repo, "tag", "v1.0.0")
    res = _run(abra_recipe, dict(_common(d, fake), recipe="chained", domain=DOMAIN, shared_networks=False))
    assert res["failed"] and "exception" not in res
    assert res["msg"].endswith("its 1 tag(s): v1.0.0")


def test_env_drift_reports_and_returns_the_release_note(abra_dir):
    d, repo, fake = abra_dir
    env_path = d / "servers" / "default" / (DOMAIN + ".env")
    env_path.write_text("TYPE=chained:1.0.0+1.27\nDOMAIN=%s\nCOMPOSE_FILE=\"compose.yml\"\n"
                        "SECRET_DB_PASSWORD_VERSION=v1\nMOTD=hi\n" % DOMAIN)
    res = _run(env_drift, dict(_common(d, fake), domain=DOMAIN, recipe="chained", version="1.0.0+1.27",
                               reconcile=False))
    assert not res.get("failed"), res
    assert res["release_note"] == "1.0.0: the database moves to its own overlay\n"
    assert res["from_version"] == "1.0.0+1.27"
    assert res["compose_file"] == {"app": "compose.yml", "sample": "compose.yml:compose.postgres.yml",
                                   "files_added": ["compose.postgres.yml"], "files_removed": [], "files_absent": []}
    assert res["missing"] == [] and res["changed"] is False and res["changed_keys"] == []


def test_env_drift_malformed_app_env_names_file_and_line(abra_dir):
    d, _repo, fake = abra_dir
    env_path = d / "servers" / "default" / (DOMAIN + ".env")
    env_path.write_text("TYPE=chained:1.0.0+1.27\nthis line is broken\n")
    res = _run(env_drift, dict(_common(d, fake), domain=DOMAIN, recipe="chained", version="1.0.0+1.27"))
    assert res["failed"] and "exception" not in res
    assert res["msg"] == "%s line 2 is not KEY=VALUE: 'this line is broken'" % env_path


def test_abra_app_info_malformed_app_env_names_file_and_line(abra_dir):
    d, _repo, fake = abra_dir
    env_path = d / "servers" / "default" / (DOMAIN + ".env")
    env_path.write_text("TYPE=chained\nA='open\n")
    res = _run(abra_app_info, dict(_common(d, fake, "/bin/false"), domain=DOMAIN))
    assert res["failed"] and "exception" not in res
    assert res["msg"] == "%s line 2: the single quote of A is never closed" % env_path
