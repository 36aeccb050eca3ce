"""Bad extra vars to every user-facing playbook: refused with a clear message, nothing created.

For isolate.yml, promote.yml, teardown.yml, redfix.yml and warm_teardown.yml a seeded generator picks a few
bad inputs from pools per variable (recipe names with shell and path characters, recipes no role or
enrolment knows, runs of 0, -1 or
"x", versions with shell characters, cold results that do not exist or are another recipe's, a
protected warm domain, run ids with path characters, values of the wrong type). Each runs
``ansible-playbook`` for real on the bench. It must end with rc != 0, a failed task whose message
names the bad variable or value, no Python traceback (nor Ansible's "An exception occurred" /
"MODULE FAILURE"), and the bench as it was: the ledger (runs, leases, locks, registry), the app
``.env`` files and docker's stacks, services, volumes, secrets, configs, networks and containers
other than swarm tasks (which come and go by themselves).

The bench is shared: run under ``flock /tmp/canon-bench.lock``.
"""
from __future__ import annotations

import glob
import json
import os
import random
import re

import pytest

from conftest import ABRA_DIR, SERVER, STATE_DIR, docker, run_playbook

SEED = 20261127
PER_PLAYBOOK = 7
LIVE = "warm-keycloak.bench.canon.test"

BAD_RECIPES = ["custom-html;id", "$(touch /tmp/canon-pwned)", "../custom-html", "custom-html/../gitea",
               "custom html", "custom-html\nid", "Custom-HTML", "custom-html\u202e", "a" * 300, "-n",
               "custom_html", "custom-html`id`"]
BAD_VERSIONS = ["1.1.0+1.37;id", "$(id)", "1.1.0+1.37 --chaos", "../1.1.0+1.37", "1.1.0+1..37", "latest`id`"]
# Valid names that no role and no enrolment knows: refused up front, naming the known ones.
UNKNOWN_RECIPES = ["no-such-recipe", "peertube", "gitea-next"]
BAD_RUN_IDS = ["../x", "a/b", "../../state", "$(id)", "custom-html-2026;id", "x" * 100, ".."]


def other_servers_runs() -> set:
    """Runs in the shared ledger that are another server's (the other session of a split run)."""
    out = set()
    for path in glob.glob(os.path.join(STATE_DIR, "runs", "*", "run.json")):
        try:
            with open(path) as fh:
                run = json.load(fh)
        except (OSError, ValueError):
            continue
        if run.get("server") != SERVER:
            out.add(run.get("run_id"))
    return out


def snapshot() -> dict:
    """What a harness run on the session's server could leave: the ledger (its runs, and the
    leases, locks and registry not held by another server's run), its app .env files, and its
    engine's objects."""
    others = other_servers_runs()
    state = {}
    for sub in ("runs", "leases", "locks", "canon"):
        base = os.path.join(STATE_DIR, sub)
        for path in glob.glob(os.path.join(base, "**", "*"), recursive=True):
            rel = os.path.relpath(path, STATE_DIR)
            parts = rel.split(os.sep)
            if sub == "runs" and parts[1] in others or sub == "canon" and parts[1] != SERVER:
                continue
            try:
                st = os.stat(path)
                if not os.path.isfile(path):
                    continue
                if sub in ("leases", "locks"):
                    with open(path) as fh:
                        if json.load(fh).get("run_id") in others:
                            continue
            except (OSError, ValueError):     # released meanwhile by another server's run
                continue
            state[rel] = (st.st_size, st.st_mtime_ns)
    envs = sorted(os.path.relpath(p, ABRA_DIR) for p in glob.glob(os.path.join(ABRA_DIR, "servers", SERVER, "*.env")))
    objects = {}
    for kind, args in (("stack", ["stack", "ls"]), ("service", ["service", "ls"]), ("volume", ["volume", "ls"]),
                       ("secret", ["secret", "ls"]), ("config", ["config", "ls"]), ("network", ["network", "ls"])):
        objects[kind] = sorted(docker(*args, "--format", "{{.Name}}").split())
    # Containers that are not a swarm task (a service's tasks come and go by themselves: restarts,
    # health checks), e.g. the probe containers readiness starts.
    rows = docker("ps", "-a", "--format", '{{.Names}} {{.Label "com.docker.swarm.service.name"}}').splitlines()
    objects["container"] = sorted(r.split()[0] for r in rows if len(r.split()) == 1)
    return {"ledger": state, "env": envs, "docker": objects}


def cold_results(tmp_dir: str) -> dict:
    """Result files a promote may be handed: another recipe's green run, a failed one, not JSON."""
    docs = {
        "other-recipe": {"recipe": "custom-html", "run_id": "custom-html-20260101000000-abcdef", "outcome": "pass",
                         "server": "default", "versions": {"head": "1.1.0+1.37"}},
        "failed": {"recipe": "custom-html", "run_id": "custom-html-20260101000000-abcdef", "outcome": "fail",
                   "server": "default", "versions": {"head": "1.1.0+1.37"}},
        "green": {"recipe": "custom-html", "run_id": "custom-html-20260101000000-abcdef", "outcome": "pass",
                  "server": "default", "versions": {"head": "1.1.0+1.37"}},
    }
    paths = {}
    for name, doc in docs.items():
        paths[name] = os.path.join(tmp_dir, name + ".json")
        with open(paths[name], "w") as fh:
            json.dump(doc, fh)
    paths["not-json"] = os.path.join(tmp_dir, "not-json.json")
    with open(paths["not-json"], "w") as fh:
        fh.write("outcome: pass\n")
    return paths


def cases() -> list:
    """(playbook, extra vars, words the message may use) per case; seeded, PER_PLAYBOOK each.
    ``{cold:NAME}`` in a value is a file from :func:`cold_results`."""
    rng = random.Random(SEED)
    pools = {
        "isolate.yml": [
            lambda: ({"recipe": rng.choice(BAD_RECIPES)}, ["recipe"]),
            lambda: ({"recipe": "custom-html", "runs": rng.choice([0, -1, "x", "0", "-3", "1.5x"])}, ["runs"]),
            lambda: ({"recipe": "custom-html", "version": rng.choice(BAD_VERSIONS)}, ["version"]),
            lambda: ({"recipe": rng.choice([["custom-html"], {"name": "custom-html"}, 7])}, ["recipe"]),
            lambda: ({}, ["recipe"]),
            lambda: ({"recipe": rng.choice(UNKNOWN_RECIPES)}, ["unknown recipe"]),
        ],
        "promote.yml": [
            lambda: ({"recipe": rng.choice(BAD_RECIPES), "cold_result": "{cold:green}"}, ["recipe"]),
            lambda: ({"recipe": "custom-html", "cold_result": rng.choice(
                ["/nonexistent/result.json", "{cold:dir}", "{cold:not-json}", "{cold:failed}"])}, ["cold"]),
            lambda: ({"recipe": "gitea", "cold_result": "{cold:other-recipe}"}, ["cold", "recipe"]),
            lambda: ({"recipe": "custom-html", "cold_result": "{cold:green}", "warm_domain": rng.choice(
                [LIVE, "x." + LIVE])}, ["protected"]),
            lambda: ({"recipe": "custom-html", "cold_result": "{cold:green}", "version": rng.choice(BAD_VERSIONS)},
                     ["version"]),
            lambda: ({"recipe": "custom-html", "cold_result": "{cold:green}", "warm_domain": rng.choice(
                ["a;b.bench.canon.test", "../x.bench.canon.test", "a" * 70 + ".bench.canon.test"])}, ["domain"]),
            lambda: ({"recipe": "custom-html"}, ["cold"]),
            lambda: ({"recipe": rng.choice(UNKNOWN_RECIPES), "cold_result": "{cold:green}"}, ["unknown recipe"]),
        ],
        "teardown.yml": [
            lambda: ({"run_id": rng.choice(BAD_RUN_IDS)}, ["run id", "run_id"]),
            lambda: ({"recipe": rng.choice(BAD_RECIPES)}, ["recipe"]),
            lambda: ({"run_id": "custom-html-20260101000000-abcdef", "recipe": "custom-html"},
                     ["mutually exclusive", "run_id"]),
            lambda: ({"run_id": rng.choice([["x"], {"id": 1}])}, ["run id", "run_id"]),
        ],
        "redfix.yml": [
            lambda: ({"recipes": [rng.choice(BAD_RECIPES)]}, ["recipes"]),
            lambda: ({"recipes": rng.choice(["gitea", {"name": "gitea"}, 7])}, ["recipes"]),
            lambda: ({"load": rng.choice(["cpu=$(reboot)", "gpu=1", "cpu=6;id", "deploys=gitea"])}, ["load"]),
            lambda: ({"cap": rng.choice([4, -1, "x"]), "recipes": ["custom-html"]}, ["cap"]),
            lambda: ({"budget": rng.choice([0, "x", 1000])}, ["budget"]),
            lambda: ({"profile": rng.choice(["/nonexistent/profile.yml", "p.yml;id"])}, ["profile"]),
        ],
        "warm_teardown.yml": [
            lambda: ({"recipe": rng.choice(BAD_RECIPES)}, ["recipe"]),
            lambda: ({}, ["recipe"]),
            lambda: ({"recipe": rng.choice([["gitea"], {"name": "gitea"}])}, ["recipe"]),
            lambda: ({"recipe": rng.choice(UNKNOWN_RECIPES)}, ["unknown recipe"]),
        ],
    }
    out = []
    for playbook, pool in pools.items():
        picked = [pool[i % len(pool)]() for i in range(len(pool))]        # every kind once
        picked += [rng.choice(pool)() for _ in range(PER_PLAYBOOK - len(picked))]
        seen = set()
        for extra, words in picked:
            key = json.dumps(extra, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append((playbook, extra, words))
    return out


CASES = cases()


def failure_messages(output: str) -> list:
    """The msg of every failed task (the json result format: ``FAILED! => {...}``)."""
    msgs = []
    for m in re.finditer(r"(?:FAILED!|failed:.*?) => (\{.*?\})\s*$", output, re.M):
        try:
            msgs.append(str(json.loads(m.group(1)).get("msg", "")))
        except ValueError:
            msgs.append(m.group(1))
    return msgs


@pytest.mark.parametrize("playbook,extra,words", CASES,
                         ids=["%s-%d" % (c[0].split(".")[0], i) for i, c in enumerate(CASES)])
def test_bad_extra_vars_are_refused_and_create_nothing(playbook, extra, words, results_dir, tmp_path):
    files = cold_results(str(tmp_path))
    files["dir"] = str(tmp_path)

    def fill(value):
        if isinstance(value, str):
            return re.sub(r"\{cold:([a-z-]+)\}", lambda m: files[m.group(1)], value)
        return value

    extra = {k: fill(v) for k, v in extra.items()}
    before = snapshot()
    pb = run_playbook(playbook, results_dir, timeout=240, **extra)
    out = pb.stdout + pb.stderr
    after = snapshot()
    where = "%s %r" % (playbook, extra)
    assert pb.rc != 0, "%s was accepted:\n%s" % (where, pb.stdout[-3000:])
    for bad in ("Traceback", "An exception occurred during task execution", "MODULE FAILURE"):
        assert bad not in out, "%s: %s\n%s" % (where, bad, out[-3000:])
    msgs = [m for m in failure_messages(pb.stdout) if m.strip()]
    values = [v for v in extra.values() if isinstance(v, str)]
    assert msgs and any(any(w in m.lower() for w in words) or any(v in m for v in values) for m in msgs), \
        "%s: no failed task names the bad input: %s\n%s" % (where, msgs, pb.stdout[-3000:])
    assert after == before, "%s changed the bench: %s" % (where, {
        k: (sorted(set(after[k]) ^ set(before[k])) if k != "docker" else
            {kind: sorted(set(after[k][kind]) ^ set(before[k][kind])) for kind in after[k]}) for k in after})
    assert not os.path.exists("/tmp/canon-pwned")
