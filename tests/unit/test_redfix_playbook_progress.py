"""playbooks/redfix.yml shows canon redfix's phases as they end, with its progress lines.

A stand-in for ``canon redfix`` (through ``canon_redfix_argv``) writes redfix's own phase lines
to stderr, a second apart (the classification 15 s), and prints M2: the play must show each phase's lines under the
phase's name, in order, then M2, and fail with the exit code when the command does. Marked slow:
it runs ansible-playbook on localhost (no bench, nothing else touched)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from canon import ROOT

pytestmark = pytest.mark.slow

STAND_IN = """#!/bin/sh
say() { echo "$1" >&2; sleep 1; }
say "redfix redfix-1: sweep 1 (reproduce) ..."
say "[00:03] mumble: install pass in 3.0 s"
say "classify mumble ..."
sleep 15  # a phase that takes a while: the play shows sweep 1 before the command ends
say "fix mumble ..."
say "redfix redfix-1: sweep 2 (with the fixes) ..."
say "[00:05] mumble           cold pass        promote promoted"
echo "# redfix redfix-1 on default: green"
exit "$1"
"""


def play(tmp_path, rc: int):
    stand_in = tmp_path / "canon-redfix"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "-i", "localhost,", "-c", "local", os.path.join(ROOT, "playbooks", "redfix.yml"),
         "-e", "ansible_python_interpreter=%s" % sys.executable, "-e", "canon_results_dir=%s" % tmp_path,
         "-e", json.dumps({"canon_redfix_argv": [str(stand_in), str(rc)]})],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def shown(stdout: str) -> list[tuple[str, list[str]]]:
    """(task name, the lines of its msg) of each debug task that printed a list."""
    out = []
    for task, body in re.findall(r"TASK \[(.*?)\] \*+\n(.*?)(?=\nTASK \[|\nPLAY RECAP)", stdout, re.S):
        lines = re.findall(r"^    - '?(.*?)'?$", body, re.M)
        if "msg:" in body and lines:
            out.append((task, lines))
    return out


def test_the_phases_are_shown_in_order_with_their_lines(tmp_path):
    res = play(tmp_path, 0)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    tasks = shown(res.stdout)
    names = [t for t, _ in tasks]
    assert names[0] == "Redfix sweep 1 (reproduce)" and names[-1] == "M2", names
    lines = [line for _, ls in tasks[:-1] for line in ls]
    assert lines == ["redfix redfix-1: sweep 1 (reproduce) ...", "[00:03] mumble: install pass in 3.0 s",
                     "classify mumble ...", "fix mumble ...", "redfix redfix-1: sweep 2 (with the fixes) ...",
                     "[00:05] mumble           cold pass        promote promoted", "canon redfix exited 0"]
    assert tasks[-1][1] == ["# redfix redfix-1 on default: green"]
    # the sweep's first line was shown before the command ended (a phase, not the whole run)
    first = next(ls for t, ls in tasks if t == "Redfix sweep 1 (reproduce)")
    assert "canon redfix exited 0" not in first
    logs = list(tmp_path.glob("redfix-progress-*.log"))
    assert len(logs) == 1 and logs[0].read_text().splitlines()[-1] == "canon redfix exited 0"


def test_a_red_redfix_fails_the_play_with_its_exit_code(tmp_path):
    res = play(tmp_path, 1)
    assert res.returncode != 0
    assert "canon redfix exited 1:" in res.stdout + res.stderr
