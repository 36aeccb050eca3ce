"""execution-environment.yml: ansible-builder v3, the project's Python pins, and a build context.

The declared Python packages must be pyproject.toml's dependencies (plus pytest, which the
custom tier runs on the controller), with the same version ranges. When ansible-builder is
installed (on PATH, or in the lint venv /opt/canon-lint that `make lint` creates), `ansible-builder
create` must turn the file into a build context, and the context's own introspection step must
find the declared packages. No container runtime is needed for either.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EE_FILE = os.path.join(ROOT, "execution-environment.yml")
LINT_VENV_BUILDER = "/opt/canon-lint/bin/ansible-builder"


def ee() -> dict:
    with open(EE_FILE) as fh:
        return yaml.safe_load(fh)


def requirement_lines(path: str) -> list[str]:
    with open(os.path.join(ROOT, path)) as fh:
        return [line.split("#", 1)[0].strip() for line in fh if line.split("#", 1)[0].strip()]


def by_name(specs) -> dict:
    """{canonical name: specifier set as text}, refusing a package listed twice."""
    out = {}
    for spec in specs:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        assert name not in out, f"{req.name} listed twice"
        out[name] = str(req.specifier)
    return out


def ee_python() -> dict:
    deps = ee()["dependencies"]
    return by_name([deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"],
                    *requirement_lines(deps["python"])])


def project_python() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)["project"]
    pytest_pin = [r for r in project["optional-dependencies"]["test"]
                  if canonicalize_name(Requirement(r).name) == "pytest"]
    return by_name(project["dependencies"] + pytest_pin)


def test_the_file_is_builder_v3_with_a_documented_base_image():
    doc = ee()
    assert doc["version"] == 3
    base = doc["images"]["base_image"]["name"]
    assert base and ":" in base
    with open(EE_FILE) as fh:
        text = fh.read()
    # the placeholder says it is one, and how to set it without editing the file
    assert "PLACEHOLDER" in text and "--build-arg EE_BASE_IMAGE=" in text


def test_python_dependencies_are_pyprojects():
    assert ee_python() == project_python()


def test_system_and_galaxy_dependencies():
    deps = ee()["dependencies"]
    system = [line.split()[0] for line in requirement_lines(deps["system"])]
    assert "git" in system and "docker-ce-cli" in system
    with open(os.path.join(ROOT, deps["galaxy"])) as fh:
        galaxy = yaml.safe_load(fh)
    # the collection runs from the project checkout and needs no other collection
    assert galaxy.get("collections") == [] and not galaxy.get("roles")
    # and the docker CLI's repository is added before the system packages are installed
    assert any("docker-ce.repo" in step for step in ee()["additional_build_steps"]["prepend_base"])


def test_a_mismatch_is_seen():
    drifted = dict(project_python(), **{"pyyaml": ">=5,<7"})
    assert drifted != project_python()
    with pytest.raises(AssertionError, match="listed twice"):
        by_name(["PyYAML>=6", "pyyaml<7"])


def _builder() -> str | None:
    found = shutil.which("ansible-builder")
    if found:
        return found
    return LINT_VENV_BUILDER if os.access(LINT_VENV_BUILDER, os.X_OK) else None


def test_ansible_builder_creates_the_build_context(tmp_path):
    builder = _builder()
    if builder is None:
        pytest.skip("ansible-builder is not installed (not on PATH, nor in /opt/canon-lint: "
                    "/opt/canon-lint/bin/pip install ansible-builder)")
    ctx = tmp_path / "context"
    proc = subprocess.run([builder, "create", "-f", EE_FILE, "-c", str(ctx), "--output-filename", "Containerfile"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    containerfile = (ctx / "Containerfile").read_text()
    base = ee()["images"]["base_image"]["name"]
    assert f'ARG EE_BASE_IMAGE="{base}"' in containerfile
    deps = ee()["dependencies"]
    assert (f'ARG ANSIBLE_INSTALL_REFS="{deps["ansible_core"]["package_pip"]} '
            f'{deps["ansible_runner"]["package_pip"]}"') in containerfile
    assert "docker-ce.repo /etc/yum.repos.d/docker-ce.repo" in containerfile

    # The context's introspection step (what the builder stage runs) reads back what was declared.
    out_pip, out_bindep = tmp_path / "pip.txt", tmp_path / "bindep.txt"
    proc = subprocess.run([sys.executable, str(ctx / "_build" / "scripts" / "introspect.py"), "introspect",
                           "--user-pip", str(ctx / "_build" / "requirements.txt"),
                           "--user-bindep", str(ctx / "_build" / "bindep.txt"),
                           "--write-pip", str(out_pip), "--write-bindep", str(out_bindep)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pip_lines = [line.split("#", 1)[0].strip() for line in out_pip.read_text().splitlines() if line.strip()]
    assert by_name(pip_lines) == by_name(requirement_lines(deps["python"]))
    bindep_lines = [line.split("#", 1)[0].strip() for line in out_bindep.read_text().splitlines() if line.strip()]
    assert bindep_lines == requirement_lines(deps["system"])
