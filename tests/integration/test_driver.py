"""The `canon` command's refusals, interruption, resume and infra outcome on the real bench."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from conftest import ROOT, ledger_runs, leftovers, wait_for


def canon_argv(*args):
    return ["canon", *args]


def canon(*args, timeout=900, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.run(canon_argv(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)


def start(*args) -> subprocess.Popen:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.Popen(canon_argv(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def inventory_with(tmp_path, **group_vars) -> str:
    """A copy of the bench inventory with some group variables changed."""
    dest = tmp_path / "inventory"
    shutil.copytree(os.path.join(ROOT, "inventory", "bench"), dest)
    path = dest / "group_vars" / "bench.yml"
    data = yaml.safe_load(path.read_text())
    data.update(group_vars)
    path.write_text(yaml.safe_dump(data))
    return str(dest / "hosts.yml")


def sweep_doc(results_dir) -> dict:
    d = next(os.path.join(results_dir, x) for x in os.listdir(results_dir) if x.startswith("sweep-"))
    with open(os.path.join(d, "sweep.json")) as fh:
        return json.load(fh)


def test_an_empty_set_of_recipes_is_an_error_not_a_green_sweep(tmp_path, results_dir):
    res = canon("sweep", "-i", inventory_with(tmp_path, canon_enrolled=[]), "--results", results_dir)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "empty set is not a green sweep" in res.stderr
    assert os.listdir(results_dir) == []


@pytest.mark.parametrize("cap", ["0", "4"])
def test_a_cap_outside_1_to_3_is_refused(results_dir, cap):
    res = canon("sweep", "custom-html", "--cap", cap, "--results", results_dir)
    assert res.returncode == 2 and "cap %s refused" % cap in res.stderr, res.stderr


def test_bad_load_spec_is_refused_before_anything(results_dir):
    res = canon("sweep", "custom-html", "--load", "cpu=$(reboot)", "--results", results_dir)
    assert res.returncode == 2 and "load spec" in res.stderr, res.stderr
    assert os.listdir(results_dir) == []


def test_too_little_disk_is_infra_not_a_red_recipe(tmp_path, results_dir):
    res = canon("sweep", "custom-html", "-i", inventory_with(tmp_path, canon_min_free_disk_gb=10 ** 6),
                "--results", results_dir)
    assert res.returncode == 3, res.stdout + res.stderr
    doc = sweep_doc(results_dir)
    assert doc["outcome"] == "infra"
    assert doc["recipes"][0]["cold"] == dict(doc["recipes"][0]["cold"], outcome="infra", infra="disk-full")
    assert not doc["recipes"][0]["cold"].get("run_id")          # nothing was deployed


def test_one_sweep_per_server_ctrl_c_keeps_what_finished_and_resume_redoes_only_the_rest(results_dir, tmp_path):
    # cap 1, canary-crash first (quick and red), then custom-html: stop while custom-html runs
    proc = start("sweep", "canary-crash", "custom-html", "--cap", "1", "--results", results_dir)
    try:
        # while it runs, a second sweep and an isolation of the same server refuse at once
        assert wait_for(lambda: [r for r in ledger_runs() if r["recipe"] == "canary-crash"], timeout=120)
        second = canon("sweep", "custom-html", "--results", str(tmp_path / "second"))
        assert second.returncode == 2, second.stdout + second.stderr
        assert "server default is busy: a sweep by pid %d" % proc.pid in second.stderr, second.stderr
        iso = canon("isolate", "custom-html", "--results", str(tmp_path / "iso"))
        assert iso.returncode == 2 and "busy" in iso.stderr, iso.stderr
        assert not os.path.exists(tmp_path / "second") or not os.listdir(tmp_path / "second")

        def crash_done():
            try:
                doc = sweep_doc(results_dir)
            except (StopIteration, FileNotFoundError, json.JSONDecodeError):
                return False
            return doc["recipes"][0]["status"] == "done" and doc["recipes"][0]["recipe"] == "canary-crash"
        assert wait_for(crash_done, timeout=300)
        assert wait_for(lambda: [r for r in ledger_runs() if r["recipe"] == "custom-html"], timeout=120)
        time.sleep(3)
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=400)
    assert proc.returncode == 130, out + err
    before = sweep_doc(results_dir)
    assert [r["status"] for r in before["recipes"]] == ["done", "interrupted"]
    crash_run = before["recipes"][0]["cold"]["run_id"]
    sweep_dir = os.path.join(results_dir, before["sweep_id"])
    res = canon("sweep", "--resume", sweep_dir)
    assert res.returncode == 1, res.stdout + res.stderr           # canary-crash is red: the sweep is red
    after = sweep_doc(results_dir)
    assert after["sweep_id"] == before["sweep_id"] and after.get("resumed")
    assert after["recipes"][0]["cold"]["run_id"] == crash_run      # not redone
    assert after["recipes"][1]["status"] == "done" and after["recipes"][1]["cold"]["outcome"] == "pass"
    # the playbooks ran clean on the tested ansible-core, through ansible-runner as well
    assert [r["recipe"] for r in after["recipes"] if r["cold"].get("deprecations")] == []
    assert not [r for r in ledger_runs() if r.get("status") == "running"]
    # the interrupted custom-html run left nothing
    interrupted = before["recipes"][1]["cold"]
    assert interrupted["run_id"] and not [r for r in ledger_runs() if r["run_id"] == interrupted["run_id"]]
    assert leftovers(list((interrupted.get("domains") or {}).values())) == {}


def test_two_sweeps_started_at_once_one_runs_the_other_refuses(tmp_path):
    # started in the same instant: the server's lock decides; the loser says who holds it and
    # writes nothing, and the recipe is deployed by one run only
    a = start("sweep", "canary-crash", "--results", str(tmp_path / "a"))
    b = start("sweep", "canary-crash", "--results", str(tmp_path / "b"))
    seen, domains = set(), set()

    def note_runs():
        for r in ledger_runs():
            if r["recipe"] == "canary-crash":
                seen.add(r["run_id"])
                domains.update(d for d in (r.get("domains") or {}).values() if isinstance(d, str))
        return a.poll() is not None and b.poll() is not None
    wait_for(note_runs, timeout=600, interval=0.5)
    outs = {p.pid: p.communicate(timeout=60) for p in (a, b)}
    codes = {p.pid: p.returncode for p in (a, b)}
    assert sorted(codes.values()) == [1, 2], (codes, outs)     # canary-crash is red; the other refused
    loser = next(p for p in (a, b) if codes[p.pid] == 2)
    winner = next(p for p in (a, b) if codes[p.pid] == 1)
    assert "server default is busy: a sweep by pid %d" % winner.pid in outs[loser.pid][1], outs[loser.pid][1]
    loser_dir = tmp_path / ("a" if loser is a else "b")
    assert not loser_dir.exists() or not any(loser_dir.iterdir())
    assert len(seen) == 1, seen                                  # one harness run of the recipe, never two
    assert domains and leftovers(sorted(domains)) == {}
