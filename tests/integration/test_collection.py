"""The collection builds, installs into an empty collections path, and runs by its FQCN there."""
import glob
import json
import os
import subprocess

from conftest import ROOT, ansible_env, leftovers


def test_build_install_and_run_isolate_by_fqcn(tmp_path):
    build = subprocess.run(["ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), ROOT],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert build.returncode == 0, build.stdout + build.stderr
    [tarball] = glob.glob(str(tmp_path / "coopcloud-canon-*.tar.gz"))
    # Nothing of the clone's local state goes into the artifact.
    listing = subprocess.run(["tar", "tzf", tarball], capture_output=True, text=True).stdout.split()
    assert not [p for p in listing if p.startswith((".collections", "results/", ".ci"))]
    assert "plugins/modules/abra_app.py" in listing and "playbooks/isolate.yml" in listing

    cpath = tmp_path / "collections"
    # Away from the clone and its ansible.cfg: only the installed collection is visible.
    env = ansible_env(ANSIBLE_COLLECTIONS_PATH=str(cpath))
    env.pop("ANSIBLE_CONFIG")
    inst = subprocess.run(["ansible-galaxy", "collection", "install", "-p", str(cpath), tarball],
                          capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path))
    assert inst.returncode == 0, inst.stdout + inst.stderr
    assert (cpath / "ansible_collections" / "coopcloud" / "canon" / "MANIFEST.json").exists(), inst.stdout
    doc = subprocess.run(["ansible-doc", "coopcloud.canon.abra_app"], capture_output=True, text=True, env=env,
                         cwd=str(tmp_path))
    assert doc.returncode == 0 and "present" in doc.stdout, doc.stderr
    results = tmp_path / "results"
    run = subprocess.run(["ansible-playbook", "-i", os.path.join(ROOT, "inventory", "bench", "hosts.yml"),
                          "coopcloud.canon.isolate", "-e",
                          json.dumps({"recipe": "custom-html", "canon_results_dir": str(results)})],
                         capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    [result] = glob.glob(str(results / "*" / "result.json"))
    with open(result) as fh:
        doc = json.load(fh)
    assert doc["outcome"] == "pass" and doc["level"]["level"] == 5
    assert leftovers(doc["domains"].values()) == {}
