"""Every module: check -> real -> idempotent check -> idempotent, through a real playbook."""
import os
import subprocess

from conftest import ROOT, ansible_env, assert_no_deprecation


def test_module_states_on_the_bench():
    res = subprocess.run(["ansible-playbook", os.path.join(ROOT, "tests", "integration", "playbooks", "modules.yml")],
                         cwd=ROOT, env=ansible_env(), capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
    assert_no_deprecation("modules.yml", res.stdout, res.stderr)
    assert "failed=0" in res.stdout
