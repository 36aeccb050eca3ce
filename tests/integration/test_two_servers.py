"""A sweep sharded across two abra servers: the bench's engine and the second one that
playbooks/bench.yml starts beside it (docs/bench.md, "The second server").

`canon sweep -i inventory/bench-two/hosts.yml` on three light recipes at cap 1: the driver assigns
each to a server; what each engine itself reports (its own `docker events`, its own objects) must
show every recipe deployed there and nowhere else, never two at once on one engine, and nothing
left on either afterwards.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, docker, ledger_runs, leftovers

INVENTORY = os.path.join(ROOT, "inventory", "bench-two", "hosts.yml")
SECOND = "bench2.canon.test"          # its abra server name and its docker context's name
CONTEXTS = {"default": None, SECOND: SECOND}
RECIPES = ["custom-html", "keycloak", "bluesky-pds"]
CAP = 1


@pytest.fixture
def second_server(other_servers_held):
    state = subprocess.run(["docker", "--context", SECOND, "info", "--format", "{{.Swarm.LocalNodeState}}"],
                           capture_output=True, text=True, timeout=60)
    if state.returncode != 0 or state.stdout.strip() != "active":
        pytest.fail("the second server %s does not answer (%s): run playbooks/bench.yml"
                    % (SECOND, (state.stderr or state.stdout).strip()))
    # a different engine and swarm, not the first under another name (the engines' own IDs come
    # from the one /etc/docker/key.json both read, so compare their swarms and data roots)
    fmt = "{{.Swarm.NodeID}} {{.Swarm.Cluster.ID}} {{.DockerRootDir}}"
    first, second = docker("info", "--format", fmt).split(), docker("info", "--format", fmt, context=SECOND).split()
    assert all(a != b for a, b in zip(first, second)), (first, second)
    return SECOND


def watch_events(context, path):
    """Each engine's service events, streamed to a file while the sweep runs: `docker events
    --since` alone reads the engine's ring buffer of its last 256 events, which a busy engine has
    long overwritten by the end of a sweep."""
    argv = ["docker", *(["--context", context] if context else []), "events", "--filter", "type=service",
            "--format", "{{json .}}"]
    return subprocess.Popen(argv, stdout=open(path, "w"), stderr=subprocess.DEVNULL)


def service_events(path) -> list:
    events = []
    for line in open(path).read().splitlines():
        ev = json.loads(line)
        events.append({"action": ev.get("Action") or ev.get("status"), "t": int(ev["timeNano"]) / 1e9,
                       "name": (ev.get("Actor") or {}).get("Attributes", {}).get("name", "")})
    return events


def most_at_once(intervals: list) -> int:
    points = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals], key=lambda p: (p[0], p[1]))
    now = peak = 0
    for _, step in points:
        now += step
        peak = max(peak, now)
    return peak


def test_a_sweep_shards_recipes_across_two_servers(second_server, tmp_path):
    profile = tmp_path / "profile.yml"
    # cold runs only: the warm canonicals are another test's business
    profile.write_text(json.dumps({"recipes": {r: {"warm": False} for r in RECIPES}}))
    results = tmp_path / "results"
    logs = {server: str(tmp_path / ("events-%s.jsonl" % server)) for server in CONTEXTS}
    watchers = [watch_events(context, logs[server]) for server, context in CONTEXTS.items()]
    try:
        time.sleep(1)   # both streams open before anything is deployed
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
        res = subprocess.run([sys.executable, "-m", "canon", "sweep", "-i", INVENTORY, *RECIPES, "--cap", str(CAP),
                              "--profile", str(profile), "--results", str(results)],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
        time.sleep(2)   # the last removals reach the streams
    finally:
        for w in watchers:
            w.terminate()
            w.wait(timeout=30)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    (sweep_dir,) = [os.path.join(results, d) for d in os.listdir(results) if d.startswith("sweep-")]
    doc = json.load(open(os.path.join(sweep_dir, "sweep.json")))

    # one document: both servers, each recipe on the server it was assigned, every one green
    assert [s["name"] for s in doc["servers"]] == ["default", SECOND]
    assert all(s["cap"] == CAP for s in doc["servers"])
    assigned = {r: s["name"] for s in doc["servers"] for r in s["recipes"]}
    assert sorted(assigned) == sorted(RECIPES)
    assert set(assigned.values()) == {"default", SECOND}, assigned
    for r in doc["recipes"]:
        assert r["server"] == assigned[r["recipe"]]
        assert r["cold"]["outcome"] == "pass", (r["recipe"], r["cold"].get("failure"))
    # the report says where each ran
    report = open(os.path.join(sweep_dir, "results.md")).read()
    for r in doc["recipes"]:
        assert any(r["recipe"] in line and r["server"] in line for line in report.splitlines()), report

    stacks = {r["recipe"]: [d.replace(".", "_") for d in r["cold"]["domains"].values()] for r in doc["recipes"]}
    r_base = {r["recipe"]: r["cold"]["domains"]["base"].replace(".", "_") for r in doc["recipes"]}
    for server, context in CONTEXTS.items():
        events = service_events(logs[server])
        mine = {recipe: [e for e in events if any(e["name"].startswith(s + "_") for s in stacks[recipe])]
                for recipe in RECIPES}
        for recipe in RECIPES:
            created = [e for e in mine[recipe] if e["action"] == "create"]
            if assigned[recipe] == server:
                # deployed here (at least its base app), and every service it made is gone again
                base = r_base[recipe]
                assert any(e["name"].startswith(base + "_") for e in created), (server, recipe, mine[recipe])
                assert {e["name"] for e in mine[recipe] if e["action"] == "remove"} == {e["name"] for e in created}
            else:
                assert mine[recipe] == [], "%s ran on %s, assigned to %s" % (recipe, server, assigned[recipe])
        # the cap held on this engine: a recipe's window runs from its first service to its last removal
        windows = [(min(e["t"] for e in evs), max(e["t"] for e in evs)) for evs in mine.values() if evs]
        assert windows and most_at_once(windows) <= CAP, (server, windows)
        # nothing of any run left on this engine
        domains = [d for r in doc["recipes"] for d in r["cold"]["domains"].values()]
        assert leftovers(domains, context=context) == {}, server
    run_ids = {r["cold"]["run_id"] for r in doc["recipes"]}
    assert not [r for r in ledger_runs(server=None) if r["run_id"] in run_ids and r.get("status") == "running"]
