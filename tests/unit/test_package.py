"""The collection tarball holds what an installed collection runs, and nothing of the clone.

Built with ``ansible-galaxy collection build`` into a temporary folder (about 2 s). Every file
git tracks is either in the tarball or left out on purpose (SHIPPED_NOT), and nothing left out
on purpose slips in; the metadata is complete and ``requires_ansible`` is the ansible-core range
pyproject.toml tests with.
"""
from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import tarfile

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Left out of the tarball on purpose (galaxy.yml build_ignore): tests and benchmarks with their
# data, the bench (stand-in binaries, bench recipes, its playbook, the custom suites written for
# its stand-ins), the clone's dev config.
SHIPPED_NOT = ("tests/unit/", "tests/integration/", "tests/conftest.py", "tests/suites/", "benchmarks/", "roles/bench/",
               "playbooks/bench.yml", "ansible.cfg", ".ansible-lint", ".ansible-lint-ignore", "Makefile",
               ".gitignore", ".collections/", ".ci/", ".hypothesis/", ".benchmarks/", ".pytest_cache/", "results/")


def left_out(path: str) -> bool:
    return path.startswith(SHIPPED_NOT) or "/__pycache__/" in "/" + path or path.endswith(".pyc")


@pytest.fixture(scope="module")
def tarball(tmp_path_factory):
    out = tmp_path_factory.mktemp("build")
    res = subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(out), ROOT],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    [path] = glob.glob(str(out / "coopcloud-canon-*.tar.gz"))
    with tarfile.open(path) as tar:
        files = {m.name for m in tar.getmembers() if m.isfile() or m.issym()}
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    return {"path": path, "files": files, "manifest": manifest}


def tracked() -> list:
    res = subprocess.run(["git", "-C", ROOT, "ls-files"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("not a git checkout")
    return [p for p in res.stdout.splitlines() if os.path.isfile(os.path.join(ROOT, p))]


pytestmark = pytest.mark.slow


def test_nothing_left_out_on_purpose_is_shipped(tarball):
    assert sorted(p for p in tarball["files"] if left_out(p)) == []


def test_every_tracked_file_is_shipped_unless_left_out_on_purpose(tarball):
    missing = sorted(p for p in tracked() if not left_out(p) and p not in tarball["files"] and p != "galaxy.yml")
    assert missing == []


def test_what_an_installed_collection_runs_is_there(tarball):
    files = tarball["files"]
    for must in ("LICENSE", "README.md", "meta/runtime.yml", "playbooks/isolate.yml", "playbooks/promote.yml",
                 "playbooks/teardown.yml", "canon/cli.py", "profiles/today.yml", "fixes/bench.yml",
                 "roles/lifecycle/meta/argument_specs.yml", "plugins/filter/inputs.py"):
        assert must in files, must
    for module in glob.glob(os.path.join(ROOT, "plugins", "modules", "*.py")):
        assert "plugins/modules/" + os.path.basename(module) in files
    # the bench's custom suites are the bench's: an installed collection runs its server's own
    # (canon_suites_dir, unset by default), and nothing it runs reads tests/suites
    assert not [p for p in files if p.startswith("tests/suites/")]
    assert not [p for p in files if p.startswith("roles/bench") or "bench/files/recipes" in p]


def test_the_license_is_the_gpl_3_text():
    with open(os.path.join(ROOT, "LICENSE")) as fh:
        text = fh.read()
    assert text.lstrip().startswith("GNU GENERAL PUBLIC LICENSE") and "Version 3, 29 June 2007" in text
    assert len(text) > 30000   # the full text, not a notice


def test_the_metadata_is_complete(tarball):
    info = tarball["manifest"]["collection_info"]
    with open(os.path.join(ROOT, "galaxy.yml")) as fh:
        galaxy = yaml.safe_load(fh)
    assert info["version"] == galaxy["version"]
    assert info["license"] == ["GPL-3.0-or-later"]
    for key in ("repository", "documentation", "issues", "homepage"):
        assert re.match(r"^https://", info[key] or ""), key


def test_requires_ansible_is_the_tested_range():
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as fh:
        runtime = yaml.safe_load(fh)
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        pin = re.search(r'"ansible-core(>=[0-9.]+,<[0-9.]+)"', fh.read()).group(1)
    lower, upper = re.match(r">=([0-9.]+),<([0-9.]+)", pin).groups()
    got = re.match(r">=([0-9.]+),\s*<([0-9.]+)", runtime["requires_ansible"]).groups()
    # 2.19 and 2.19.0 name the same release
    assert tuple(v.removesuffix(".0") if v.count(".") == 2 else v for v in got) == (lower, upper)


def test_the_sanity_and_lint_venvs_pin_the_tested_ansible_core():
    """The venvs make sanity and make lint build (hacking/sanity.sh, the Makefile's lint target)
    and the execution environment install the ansible-core range pyproject.toml tests with."""
    with open(os.path.join(ROOT, "pyproject.toml")) as fh:
        pin = "ansible-core" + re.search(r'"ansible-core(>=[0-9.]+,<[0-9.]+)"', fh.read()).group(1)
    for path in ("hacking/sanity.sh", "Makefile", "execution-environment.yml"):
        with open(os.path.join(ROOT, path)) as fh:
            pins = re.findall(r"ansible-core[<>=!~][^'\"\s]*", fh.read())
        assert pins and set(pins) == {pin}, (path, pins, pin)


def test_the_readme_command_installs_the_clone_from_inside_it(tmp_path):
    """``ANSIBLE_COLLECTIONS_PATH=<path> ansible-galaxy collection install .`` in the clone (a plain
    ``install .`` finds the clone's own .collections link and does nothing)."""
    with open(os.path.join(ROOT, "README.md")) as fh:
        assert "ANSIBLE_COLLECTIONS_PATH=~/.ansible/collections ansible-galaxy collection install .\n" in fh.read()
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=str(tmp_path))
    res = subprocess.run(["ansible-galaxy", "collection", "install", "."], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0 and "was installed successfully" in res.stdout, res.stdout + res.stderr
    installed = tmp_path / "ansible_collections" / "coopcloud" / "canon"
    assert (installed / "MANIFEST.json").is_file() and (installed / "roles" / "lifecycle").is_dir()
    assert not (installed / "tests" / "unit").exists() and not (installed / "roles" / "bench").exists()
