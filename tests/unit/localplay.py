"""One play on localhost hosts, one host per case: the role's real task files run on the
controller, each case's variables as its host's. For the unit tests that prove a task file does
what its Python rule says (tier_gate, promote_refusal/promote_mode)."""
from __future__ import annotations

import os
import subprocess

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_play(tmp_path, hosts: dict, play: list) -> subprocess.CompletedProcess:
    """Writes ``hosts`` as the inventory and ``play``, runs it with the project's ansible.cfg;
    it must end with rc 0 and no deprecation warning."""
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    res = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "[DEPRECATION WARNING]" not in res.stdout + res.stderr
    return res
