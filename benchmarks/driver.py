#!/usr/bin/env python3
"""Benchmarks of the canon driver: sweep makespan, harness overhead, classification cost.

    python3 benchmarks/driver.py makespan SWEEP [SWEEP ...] [--save]
    python3 benchmarks/driver.py overhead [--runs 3] [--profile]
    python3 benchmarks/driver.py classification-cost CLASSIFY_JSON [...] [--save]

``makespan`` reads finished sweeps (a results folder with ``sweep.json``, or a ``sweep.json``
copy such as benchmarks/results/sweeps/<id>.json): the makespan against the lower bound
max(longest recipe, sum of recipe times / cap), with a recipe's time its cold duration plus its
promote duration, and the slot time the scheduler left idle. It runs nothing.

``overhead`` runs ``canon isolate custom-html`` and benchmarks/plain_lifecycle.sh (the same abra
calls as a plain script) alternately, each under the bench lock (/tmp/canon-bench.lock, taken
here; the time spent waiting for it is not counted), checks after every pair that the script
made the abra calls the harness's evidence records, and reports the medians and their ratio.

``classification-cost`` reads classification documents (``<sweep>/classify/<recipe>.json``):
the runs each verdict took against a fixed protocol of 10 isolated + 10 loaded runs, and the
seconds they took (each run's ``result.json`` duration, found in ``<sweep>/runs/``).

``busy-cpu`` runs ``canon isolate RECIPE`` alone and again beside one CPU burner per core (a
stand-in for other work on the machine, e.g. the unit tests), under the bench lock, with the
classifier's sampler beside each run: the share of the CPUs' time spent working over the run
(``cpu_busy_pct``) and the load average, against the threshold from which an isolated re-run
counts as loaded (canon.load.BUSY_CPU_PCT).

Each writes benchmarks/results/<name>.json and prints a summary. docs/performance.md has the
numbers of this machine.
"""
from __future__ import annotations

import argparse
import contextlib
import difflib
import glob
import json
import os
import platform
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "benchmarks", "results")
RECIPE = "custom-html"  # the simplest bench recipe; plain_lifecycle.sh is its lifecycle
PLAIN_SCRIPT = os.path.join(ROOT, "benchmarks", "plain_lifecycle.sh")
BENCH_LOCK = "/tmp/canon-bench.lock"
MAKESPAN_TARGET = 1.2
OVERHEAD_TARGET = 1.3
FIXED_PROTOCOL = {"isolated": 10, "loaded": 10}
sys.path.insert(0, ROOT)


# -- shared --------------------------------------------------------------------------------
def machine() -> dict:
    """What the numbers were measured on: the controller's machine (cores, kernel, Python: the
    bench's engine runs on it too) and the version of the engine docker reaches by default."""
    info = {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()}
    try:
        with open("/etc/debian_version") as fh:
            info["debian"] = fh.read().strip()
    except OSError:
        pass
    import canon  # noqa: F401  (puts the checkout's collection on sys.path)
    from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
    res = DockerClient(timeout=30).run(["version", "--format", "{{.Server.Version}}"], check=False)
    info["docker"] = res.stdout.strip() or None
    return info


def git_commit() -> str:
    res = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    return res.stdout.strip() or "unknown"


def write_result(name: str, doc: dict) -> str:
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def rel(path: str) -> str:
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def dash(value) -> str:
    return "-" if value is None else str(value)


def median(values: list):
    return round(statistics.median(values), 1) if values else None


# -- makespan ------------------------------------------------------------------------------
def read_sweep(path: str) -> tuple[dict, str]:
    """A sweep document from a results folder or a sweep.json file, and the file it came from."""
    if os.path.isdir(path):
        path = os.path.join(path, "sweep.json")
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("schema") != "coopcloud.canon/sweep" or doc.get("schema_version") != 1:
        raise ValueError("%s is not a coopcloud.canon/sweep v1 document" % path)
    return doc, path


def stage_duration(stage: dict | None) -> float:
    return float((stage or {}).get("duration") or 0)


def busy_profile(intervals: list, start: float, end: float) -> dict:
    """Seconds of [start, end] during which k recipes were running, for every k seen."""
    events = sorted([(a, 1) for a, b in intervals] + [(b, -1) for a, b in intervals])
    profile, running, last = {}, 0, start
    for t, step in events:
        t = min(max(t, start), end)
        profile[running] = profile.get(running, 0.0) + (t - last)
        running, last = running + step, t
    profile[running] = profile.get(running, 0.0) + (end - last)
    return {str(k): round(v, 1) for k, v in sorted(profile.items()) if round(v, 1) > 0}


def makespan_of(doc: dict) -> dict:
    """The makespan, its lower bound and the idle slot time of one sweep document."""
    from canon.inventory import is_heavy
    cap = int(doc["cap"])
    started = float(doc["started_epoch"])
    finished = float(doc.get("finished_epoch") or started + float(doc.get("duration") or 0))
    makespan = float(doc.get("duration") or finished - started)
    recipes, intervals = [], []
    for r in doc["recipes"]:
        cold, promote = r.get("cold") or {}, r.get("promote") or {}
        took = stage_duration(cold) + stage_duration(promote)
        begin = cold.get("started_epoch")
        ends = [s.get("finished_epoch") for s in (cold, promote) if s.get("finished_epoch")]
        try:
            heavy = is_heavy(r["recipe"], r.get("settings"))
        except Exception:  # a recipe this checkout has no role for
            heavy = False
        rec = {"recipe": r["recipe"], "version": r.get("version"), "heavy": heavy,
               "cold": {"outcome": cold.get("outcome"), "duration": stage_duration(cold)},
               "promote": {"outcome": promote.get("outcome"), "duration": stage_duration(promote)},
               "time": round(took, 1)}
        if begin and ends:
            rec["start"] = round(float(begin) - started, 1)
            rec["end"] = round(float(max(ends)) - started, 1)
            intervals.append((float(begin), float(max(ends))))
        recipes.append(rec)
    total = sum(r["time"] for r in recipes)
    longest = max(recipes, key=lambda r: r["time"])
    bound = max(longest["time"], total / cap)
    heavy_total = sum(r["time"] for r in recipes if r["heavy"])
    bound_heavy = max(bound, heavy_total)
    first = min((a for a, _ in intervals), default=started)
    last = max((b for _, b in intervals), default=finished)
    return {
        "sweep_id": doc["sweep_id"], "outcome": doc.get("outcome"), "server": doc.get("server"), "cap": cap,
        "harness_commit": doc.get("harness_commit"), "started": doc.get("started"),
        "load": (doc.get("load") or {}).get("spec"), "load_fingerprint": (doc.get("load") or {}).get("fingerprint"),
        "makespan": round(makespan, 1), "sum_recipe_times": round(total, 1),
        "longest_recipe": {"recipe": longest["recipe"], "time": longest["time"]},
        "lower_bound": round(bound, 1), "ratio": round(makespan / bound, 3),
        "target": MAKESPAN_TARGET, "met": makespan / bound <= MAKESPAN_TARGET,
        "lower_bound_heavy_serial": round(bound_heavy, 1),
        "ratio_heavy_serial": round(makespan / bound_heavy, 3),
        "idle_slot_seconds": round(cap * makespan - total, 1),
        "idle_slot_share": round((cap * makespan - total) / (cap * makespan), 3),
        "before_first_recipe": round(first - started, 1), "after_last_recipe": round(finished - last, 1),
        "seconds_with_n_running": busy_profile(intervals, started, finished),
        "start_order": [r["recipe"] for r in sorted((r for r in recipes if "start" in r), key=lambda r: r["start"])],
        "recipes": recipes,
    }


def cmd_makespan(args) -> int:
    reports = []
    for path in args.sweeps:
        doc, source = read_sweep(path)
        if doc.get("outcome") in (None, "running", "interrupted"):
            # An interrupted sweep's duration is where it was stopped, not a makespan.
            print("%s: the sweep did not run to its end (outcome %s); skipped" % (path, doc.get("outcome")),
                  file=sys.stderr)
            continue
        if args.save:
            dest_dir = os.path.join(RESULTS, "sweeps")
            os.makedirs(dest_dir, exist_ok=True)
            dest = os.path.join(dest_dir, doc["sweep_id"] + ".json")
            if os.path.abspath(source) != os.path.abspath(dest):
                shutil.copyfile(source, dest)
            source = dest
        rep = makespan_of(doc)
        rep["source"] = rel(source)
        reports.append(rep)
    if not reports:
        print("no finished sweep to measure", file=sys.stderr)
        return 2
    out = write_result("makespan", {"benchmark": "makespan", "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                    "machine": machine(), "sweeps": reports})
    for rep in reports:
        print("sweep %s (cap %d, load %s): outcome %s" % (rep["sweep_id"], rep["cap"], rep["load"], rep["outcome"]))
        print("  %-16s %-6s %9s %9s %9s %7s %7s" % ("recipe", "heavy", "cold s", "promote s", "time s", "start", "end"))
        for r in rep["recipes"]:
            print("  %-16s %-6s %9.1f %9.1f %9.1f %7s %7s" % (
                r["recipe"], "yes" if r["heavy"] else "", r["cold"]["duration"], r["promote"]["duration"], r["time"],
                r.get("start", "-"), r.get("end", "-")))
        print("  makespan %.1f s; lower bound max(longest %.1f s (%s), sum %.1f s / cap %d) = %.1f s; ratio %.3f "
              "(target <= %.1f: %s)" % (rep["makespan"], rep["longest_recipe"]["time"], rep["longest_recipe"]["recipe"],
                                        rep["sum_recipe_times"], rep["cap"], rep["lower_bound"], rep["ratio"],
                                        MAKESPAN_TARGET, "met" if rep["met"] else "NOT met"))
        print("  idle slot time: %d x %.1f - %.1f = %.1f s (%.0f %% of the slots); before the first recipe %.1f s, "
              "after the last %.1f s" % (rep["cap"], rep["makespan"], rep["sum_recipe_times"], rep["idle_slot_seconds"],
                                         100 * rep["idle_slot_share"], rep["before_first_recipe"], rep["after_last_recipe"]))
        print("  seconds with n recipes running: %s" % ", ".join(
            "%s: %s" % kv for kv in rep["seconds_with_n_running"].items()))
    print("written: %s" % rel(out))
    return 0


# -- overhead ------------------------------------------------------------------------------
@contextlib.contextmanager
def bench_lock(path: str = BENCH_LOCK):
    """Hold the bench lock (the same flock(2) lock as ``flock /tmp/canon-bench.lock``); yields the wait."""
    import canon  # noqa: F401  (puts the checkout's collection on sys.path)
    from ansible_collections.coopcloud.canon.plugins.module_utils._flock import flocked
    t0 = time.monotonic()
    with flocked(path):
        yield round(time.monotonic() - t0, 1)


def wait_until_idle(limit: float = 600) -> float:
    """Wait until no harness run is live on the bench server (a run whose guardian is still
    tearing it down can outlive the bench lock of whoever started it); the seconds waited."""
    from canon.inventory import default_inventory, load_servers
    from ansible_collections.coopcloud.canon.plugins.module_utils._ledger import Ledger
    server = load_servers(default_inventory())[0]
    t0 = time.monotonic()
    while Ledger(server.state_dir).live_runs(server=server.name) and time.monotonic() - t0 < limit:
        time.sleep(2)
    return round(time.monotonic() - t0, 1)


def evidence_calls(run_dir: str) -> list:
    """The abra calls a harness run recorded, in order: ``{"argv": [...], "seconds": s}``."""
    calls = []
    for path in sorted(glob.glob(os.path.join(run_dir, "evidence", "commands", "*.log"))):
        with open(path, errors="replace") as fh:
            head = fh.read(4096).splitlines()
        argv = shlex.split(head[0][2:]) if head and head[0].startswith("$ ") else []
        seconds = next((float(m.group(1)) for line in head[:4] for m in [re.match(r"duration: ([\d.]+)s", line)] if m),
                       None)
        calls.append({"argv": argv, "seconds": seconds})
    return calls


def trace_calls(path: str) -> list:
    """The abra calls plain_lifecycle.sh made (its PLAIN_TRACE file)."""
    calls = []
    with open(path) as fh:
        for line in fh:
            phase, ms, argv = line.rstrip("\n").split("\t", 2)
            calls.append({"phase": phase, "argv": ["abra"] + argv.split(" "), "seconds": int(ms) / 1000})
    return calls


def normalise(argv: list, domains: dict) -> str:
    """An abra call with the binary, the domains (by order of appearance) and
    ``--no-converge-checks`` taken out, so the harness's and the script's calls compare."""
    words = []
    for word in argv[1:]:
        if word == "--no-converge-checks":
            continue
        if re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+\.test", word):
            word = domains.setdefault(word, "<domain%d>" % (len(domains) + 1))
        words.append(word)
    return "abra " + " ".join(words)


def compare_calls(harness: list, plain: list) -> dict:
    h_domains, p_domains = {}, {}
    h = [normalise(c["argv"], h_domains) for c in harness]
    p = [normalise(c["argv"], p_domains) for c in plain if c.get("phase", "main") == "main"]
    return {"same": h == p, "harness": h, "plain": p,
            "diff": [line for line in difflib.unified_diff(h, p, "harness", "plain", lineterm="", n=0)
                     if not line.startswith("@@")]}


def run_timed(cmd: list, env: dict | None, log_path: str, timeout: int) -> dict:
    with open(log_path, "w") as log:
        t0 = time.monotonic()
        try:
            res = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, timeout=timeout)
            rc = res.returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        return {"seconds": round(time.monotonic() - t0, 1), "rc": rc, "log": log_path}


def canon_command() -> list:
    """``canon`` from this checkout (run with the repository as the working directory): an
    installed ``canon`` script may be an editable install of another clone."""
    return [sys.executable, "-m", "canon"]


def harness_run(recipe: str, work: str, n, timeout: int, env: dict | None = None) -> dict:
    results = os.path.join(work, "harness-%s" % n)
    os.makedirs(results, exist_ok=True)
    rec = run_timed(canon_command() + ["isolate", recipe, "--runs", "1", "--results", results], env,
                    os.path.join(work, "harness-%s.log" % n), timeout)
    runs = [d for d in glob.glob(os.path.join(results, recipe + "-*")) if os.path.isdir(d)]
    rec["run_dir"] = runs[0] if len(runs) == 1 else None
    if rec["run_dir"]:
        with open(os.path.join(rec["run_dir"], "result.json")) as fh:
            result = json.load(fh)
        rec.update(run_id=result["run_id"], outcome=result["outcome"], result_duration=result.get("duration"),
                   tiers={t["name"]: t.get("duration") for t in result.get("tiers", [])},
                   versions=result.get("versions", {}), teardown_clean=(result.get("teardown") or {}).get("clean"))
        calls = evidence_calls(rec["run_dir"])
        rec["abra_calls"] = len(calls)
        rec["abra_seconds"] = round(sum(c["seconds"] or 0 for c in calls), 1)
        rec["calls"] = calls
    rec["ok"] = rec["rc"] == 0 and rec.get("outcome") == "pass"
    return rec


def plain_tiers(log_path: str) -> dict:
    """Seconds per tier of a plain_lifecycle.sh run, from its "[<t> s] <tier>: done" lines;
    ``cleanup`` is the time from the last tier to the end of its EXIT trap."""
    tiers, last = {}, 0.0
    with open(log_path, errors="replace") as fh:
        for line in fh:
            m = re.match(r"\[\s*([\d.]+) s\] (?:(\w+): done|cleaned up)", line)
            if m:
                t = float(m.group(1))
                tiers[m.group(2) or "cleanup"] = round(t - last, 1)
                last = t
    return tiers


def plain_run(versions: dict, work: str, n: int, timeout: int) -> dict:
    trace = os.path.join(work, "plain-%d.trace" % n)
    env = dict(os.environ, PLAIN_TRACE=trace)
    if versions:  # the releases the harness tested; else the script's defaults
        env.update(HEAD=versions["head"], PREV=versions["upgrade_base"])
    rec = run_timed(["bash", PLAIN_SCRIPT], env, os.path.join(work, "plain-%d.log" % n), timeout)
    calls = trace_calls(trace) if os.path.exists(trace) else []
    main = [c for c in calls if c["phase"] == "main"]
    rec.update(abra_calls=len(main), abra_seconds=round(sum(c["seconds"] for c in main), 1),
               cleanup_seconds=round(sum(c["seconds"] for c in calls if c["phase"] == "cleanup"), 1), calls=calls)
    rec["tiers"] = plain_tiers(rec["log"])
    rec["ok"] = rec["rc"] == 0
    return rec


# Where a harness run's time goes: task names (as the junit callback reports them) to what
# the task does; the first match wins. Task names are the lifecycle role's own.
TASK_CATEGORIES = [
    ("claim: canon_run (input and domain checks, ledger, guardian)", r"^Claim the run"),
    ("preflight: abra recipe fetch, releases, compose chain, lint", r"^Fetch the recipe|^Record the releases"),
    ("abra app deploy / upgrade (--no-converge-checks)", r" - deploy \S+ on "),
    ("convergence watcher (swarm_converge)", r" - watch .* converge"),
    ("readiness probes", r"readiness probes"),
    ("HTTP checks through the proxy", r" - GET |the content is the app's own"),
    ("data markers (docker exec)", r"seed data|write the state|change the state|read the state|seeded data survived"),
    ("version and image check (abra_app_info)", r"what runs (before|after)"),
    ("env drift: the upgrade app's .env against the head's .env.sample (env_drift)", r"reconcile the \.env"),
    ("abra app backup create / restore", r"take a backup|backup_restore - restore$"),
    ("abra app undeploy / remove of the upgrade app", r"remove the upgrade app"),
    ("custom suite (pytest)", r"custom - pytest"),
    ("evidence capture (abra app ps, service ps, inspect, logs)", r"^Capture evidence"),
    ("result.json (written twice)", r"^Write the result|^Add the teardown"),
    ("teardown: canon_teardown (undeploy, remove, leftovers, networks gone)", r"^Tear down"),
    ("heavy lock", r"heavy"),
]


def profile_tasks(junit_dir: str) -> dict:
    """Per-category seconds of one harness run, from the junit callback's report."""
    import xml.etree.ElementTree as ET
    cases = []
    for path in glob.glob(os.path.join(junit_dir, "*.xml")):
        for case in ET.parse(path).getroot().iter("testcase"):
            # "[host] <play>: [<role> : ]<task>"
            name = re.sub(r"^\[[^]]*\] [^:]*: (?:[\w.]+ : )?", "", case.get("name", ""))
            cases.append((name, float(case.get("time") or 0)))
    categories = {label: 0.0 for label, _ in TASK_CATEGORIES}
    other, other_n = 0.0, 0
    for name, secs in cases:
        label = next((label for label, rx in TASK_CATEGORIES if re.search(rx, name)), None)
        if label:
            categories[label] += secs
        else:
            other, other_n = other + secs, other_n + 1
    categories["other tasks (%d: set_fact, assert, include, find, copy, debug)" % other_n] = other
    top = sorted(cases, key=lambda c: -c[1])[:15]
    return {"tasks": len(cases), "task_seconds": round(sum(c[1] for c in cases), 1),
            "categories": {k: round(v, 1) for k, v in categories.items() if round(v, 1) > 0},
            "slowest_tasks": [{"task": n, "seconds": round(t, 1)} for n, t in top]}


def overhead_doc(harness: list, plain: list, pairs: list, profile: dict | None, work: str, runs: int,
                 complete: bool) -> dict:
    """The overhead benchmark's record from the runs so far."""
    ok_h = [r["seconds"] for r in harness if r["ok"]]
    ok_p = [r["seconds"] for r in plain if r["ok"]]
    med_h, med_p = median(ok_h), median(ok_p)
    ratio = round(med_h / med_p, 3) if med_h and med_p else None
    tiers, plain_tier = {}, {}
    for r in harness:
        if r["ok"]:
            for name, secs in r["tiers"].items():
                tiers.setdefault(name, []).append(secs or 0)
    for r in plain:
        if r["ok"]:
            for name, secs in r.get("tiers", {}).items():
                plain_tier.setdefault(name, []).append(secs)
    both = [p for p in pairs if "harness" in p and "plain" in p]
    return {
        "benchmark": "overhead", "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "complete": complete, "machine": machine(), "commit": git_commit(), "recipe": RECIPE, "runs": runs,
        "harness_command": "python3 -m canon isolate %s --runs 1 --results <dir>" % RECIPE,
        "plain_command": "bash benchmarks/plain_lifecycle.sh",
        "harness_ok": "%d of %d" % (len(ok_h), len(harness)), "plain_ok": "%d of %d" % (len(ok_p), len(plain)),
        "median_harness_seconds": med_h, "median_plain_seconds": med_p, "ratio": ratio,
        "target": OVERHEAD_TARGET, "met": ratio is not None and ratio <= OVERHEAD_TARGET,
        "median_harness_result_duration": median([r["result_duration"] for r in harness if r["ok"]]),
        "median_harness_tiers": {k: median(v) for k, v in tiers.items()},
        "median_plain_tiers": {k: median(v) for k, v in plain_tier.items()},
        "median_harness_abra_seconds": median([r["abra_seconds"] for r in harness if r["ok"]]),
        "median_plain_abra_seconds": median([r["abra_seconds"] for r in plain if r["ok"]]),
        "same_abra_calls": bool(both) and all(p.get("calls", {}).get("same") for p in both),
        "abra_calls": both[0].get("calls", {}).get("harness") if both else None,
        "pairs": [dict({"n": p["n"], "order": p["order"], "same_abra_calls": p.get("calls", {}).get("same"),
                        "ratio": round(p["harness"]["seconds"] / p["plain"]["seconds"], 3)
                        if p in both and p["harness"]["ok"] and p["plain"]["ok"] else None},
                       **{k: {f: v for f, v in p[k].items() if f != "calls"} for k in ("harness", "plain") if k in p})
                  for p in pairs],
        "profile": profile,
        "work": work,
    }


def cmd_overhead(args) -> int:
    work = args.work or tempfile.mkdtemp(prefix="canon-overhead-")
    os.makedirs(work, exist_ok=True)
    print("work folder (logs, evidence): %s" % work)
    harness, plain, pairs = [], [], []
    versions = None
    for n in range(1, args.runs + 1):
        # Alternate which goes first, so a drift of the bench over time hits both alike.
        order = ["harness", "plain"] if n % 2 or versions is None else ["plain", "harness"]
        pair = {"n": n, "order": order}
        pairs.append(pair)
        for kind in order:
            with bench_lock(args.lock) as waited:
                idle_wait = wait_until_idle()
                if kind == "harness":
                    rec = harness_run(RECIPE, work, n, args.timeout)
                    if rec.get("versions"):
                        versions = {"head": rec["versions"]["head"], "upgrade_base": rec["versions"]["upgrade_base"]}
                    harness.append(rec)
                else:
                    rec = plain_run(versions, work, n, args.timeout)
                    plain.append(rec)
            rec["lock_wait"], rec["idle_wait"] = waited, idle_wait
            pair[kind] = rec
            print("  run %d %-7s %6.1f s  rc %s%s  (waited %.0f s for the bench lock, %.0f s for live runs to end)" % (
                n, kind, rec["seconds"], rec["rc"], "" if rec["ok"] else "  FAILED: see %s" % rec["log"], waited,
                idle_wait))
            # Written after every run: an interrupted benchmark keeps what it measured.
            write_result("overhead", overhead_doc(harness, plain, pairs, None, work, args.runs, False))
        if pair["harness"].get("calls") is not None and pair["plain"]["calls"]:
            pair["calls"] = compare_calls(pair["harness"]["calls"], pair["plain"]["calls"])
            if not pair["calls"]["same"]:
                print("  run %d: the script's abra calls differ from the harness's:\n    %s"
                      % (n, "\n    ".join(pair["calls"]["diff"])))
    profile = None
    if args.profile:
        # One more harness run, untimed for the ratio: Ansible's junit callback records every
        # task's time (the callback itself costs a little, so this run is not in the medians).
        junit = os.path.join(work, "junit")
        env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.junit", JUNIT_OUTPUT_DIR=junit,
                   JUNIT_HIDE_TASK_ARGUMENTS="true")
        with bench_lock(args.lock) as waited:
            wait_until_idle()
            rec = harness_run(RECIPE, work, "profile", args.timeout, env)
        profile = dict(profile_tasks(junit), seconds=rec["seconds"], result_duration=rec.get("result_duration"),
                       tiers=rec.get("tiers"), ok=rec["ok"], log=rec["log"])
        print("  profile run %.1f s (%s), %d tasks, %.1f s inside tasks (waited %.0f s for the bench lock)" % (
            rec["seconds"], "ok" if rec["ok"] else "FAILED", profile["tasks"], profile["task_seconds"], waited))
    doc = overhead_doc(harness, plain, pairs, profile, work, args.runs, True)
    out = write_result("overhead", doc)
    print("%s: harness median %s s (%s ok), plain script median %s s (%s ok): ratio %s (target <= %.1f: %s)"
          % (RECIPE, doc["median_harness_seconds"], doc["harness_ok"], doc["median_plain_seconds"], doc["plain_ok"],
             doc["ratio"], OVERHEAD_TARGET, "met" if doc["met"] else "NOT met"))
    print("  inside abra: harness %s s, plain %s s; the harness's result.json duration %s s" % (
        doc["median_harness_abra_seconds"], doc["median_plain_abra_seconds"], doc["median_harness_result_duration"]))
    print("  median seconds per tier, harness / plain: %s" % ", ".join(
        "%s %s / %s" % (k, doc["median_harness_tiers"].get(k, "-"), doc["median_plain_tiers"].get(k, "-"))
        for k in list(doc["median_harness_tiers"]) + [k for k in doc["median_plain_tiers"]
                                                      if k not in doc["median_harness_tiers"]]))
    print("  same abra calls in every pair: %s" % doc["same_abra_calls"])
    if profile:
        print("  where a harness run's time goes (profile run, %.1f s in %d tasks):" % (profile["task_seconds"],
                                                                                        profile["tasks"]))
        for label, secs in sorted(profile["categories"].items(), key=lambda kv: -kv[1]):
            print("    %6.1f s  %s" % (secs, label))
    print("written: %s" % rel(out))
    every_ok = all(r["ok"] for r in harness + plain)
    return 0 if every_ok and doc["ratio"] is not None else 1


# -- classification cost ---------------------------------------------------------------------
def read_classification(path: str) -> dict:
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("schema") != "coopcloud.canon/classification" or doc.get("schema_version") != 1:
        raise ValueError("%s is not a coopcloud.canon/classification v1 document" % path)
    return doc


def run_duration(run_id: str, doc_path: str, saved: dict) -> float | None:
    """A re-run's duration: its result.json in the sweep's runs/ folder, else the copy saved in
    benchmarks/results/classification-run-durations.json."""
    folder = os.path.dirname(os.path.abspath(doc_path))
    if os.path.basename(folder) == "classify":
        result = os.path.join(os.path.dirname(folder), "runs", run_id, "result.json")
        if os.path.exists(result):
            with open(result) as fh:
                duration = json.load(fh).get("duration")
            if duration is not None:
                return float(duration)
    return saved.get(run_id)


def cost_of(doc: dict, path: str, saved: dict) -> dict:
    runs = sorted((dict(r, arm=arm) for arm, a in doc["arms"].items() for r in a.get("runs", [])),
                  key=lambda r: r.get("order", 0))
    reruns = [r for r in runs if not r.get("origin")]
    for r in reruns:
        r["duration"] = run_duration(r["run_id"], path, saved) if r.get("run_id") else None
    per_arm = {arm: [r for r in reruns if r["arm"] == arm] for arm in FIXED_PROTOCOL}
    known = [r["duration"] for r in reruns if r["duration"] is not None]
    wall = None
    if isinstance(doc.get("started"), (int, float)) and isinstance(doc.get("finished"), (int, float)):
        wall = round(doc["finished"] - doc["started"], 1)
    fixed_runs = sum(FIXED_PROTOCOL.values())
    # The classifier's own count of runs after the origin (infra ones included).
    used = int((doc.get("budget") or {}).get("used", len(reruns)))
    # The fixed protocol's seconds: its runs at the mean duration measured per arm here (an arm
    # this classification never ran gets the other arm's mean); without any duration, the wall
    # time per run.
    means = {arm: statistics.mean([r["duration"] for r in rs if r["duration"] is not None])
             for arm, rs in per_arm.items() if any(r["duration"] is not None for r in rs)}
    if not means and wall and used:
        means = {arm: wall / used for arm in FIXED_PROTOCOL}
    fixed_seconds = None
    if means:
        fallback = statistics.mean(means.values())
        fixed_seconds = round(sum(n * means.get(arm, fallback) for arm, n in FIXED_PROTOCOL.items()), 1)
    spent = round(sum(known), 1) if len(known) == used else None
    sweep = re.search(r"sweep-\d{14}-[0-9a-f]{6}", os.path.abspath(path))
    return {
        "sweep": sweep.group(0) if sweep else None,
        "recipe": doc["recipe"], "kind": doc["kind"], "verdict": doc["verdict"], "clear": doc["clear"],
        "leaning": doc.get("leaning"), "source": rel(path),
        "origin": next(({"arm": r["arm"], "outcome": r["outcome"], "tier": r.get("tier")} for r in runs if r.get("origin")), None),
        "runs_spent": used, "runs_by_arm": {arm: len(rs) for arm, rs in per_arm.items()},
        "budget": doc.get("budget"),
        "fixed_protocol_runs": fixed_runs, "runs_saved": fixed_runs - used,
        "runs_saved_share": round((fixed_runs - used) / fixed_runs, 3),
        "seconds_spent_runs": spent, "seconds_known_for": "%d of %d runs" % (len(known), used),
        "seconds_wall": wall,
        "mean_run_seconds": {arm: round(v, 1) for arm, v in means.items()},
        "fixed_protocol_seconds_estimate": fixed_seconds,
        "seconds_saved_estimate": round(fixed_seconds - (spent if spent is not None else wall or 0), 1)
        if fixed_seconds is not None and (spent is not None or wall) else None,
        "p_value": (doc.get("confidence") or {}).get("p_value"),
        "reruns": [{"order": r.get("order"), "arm": r["arm"], "run_id": r.get("run_id"), "outcome": r["outcome"],
                    "tier": r.get("tier"), "duration": r["duration"]} for r in reruns],
    }


def cmd_classification_cost(args) -> int:
    saved_dir = os.path.join(RESULTS, "classifications")
    durations_file = os.path.join(RESULTS, "classification-run-durations.json")
    saved = {}
    if os.path.exists(durations_file):
        with open(durations_file) as fh:
            saved = json.load(fh)
    reports = []
    for path in args.documents:
        doc = read_classification(path)
        rep = cost_of(doc, path, saved)
        if args.save:
            os.makedirs(saved_dir, exist_ok=True)
            sweep = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
            dest = os.path.join(saved_dir, "%s-%s.json" % (sweep, doc["recipe"]))
            if os.path.abspath(path) != os.path.abspath(dest):
                shutil.copyfile(path, dest)
            saved.update({r["run_id"]: r["duration"] for r in rep["reruns"] if r["run_id"] and r["duration"] is not None})
            rep["source"] = rel(dest)
        reports.append(rep)
    if args.save:
        with open(durations_file, "w") as fh:
            json.dump(dict(sorted(saved.items())), fh, indent=2)
            fh.write("\n")
    total_used = sum(r["runs_spent"] for r in reports)
    total_fixed = sum(r["fixed_protocol_runs"] for r in reports)
    doc = {"benchmark": "classification-cost", "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(),
           "fixed_protocol": "%d isolated + %d loaded runs per classification" % (
               FIXED_PROTOCOL["isolated"], FIXED_PROTOCOL["loaded"]),
           "runs_spent": total_used, "fixed_protocol_runs": total_fixed,
           "runs_saved_share": round((total_fixed - total_used) / total_fixed, 3) if total_fixed else None,
           "classifications": reports}
    out = write_result("classification-cost", doc)
    print("%-28s %-16s %-7s %-15s %5s %8s %6s %7s %7s %8s %6s" % (
        "sweep", "recipe", "kind", "verdict", "runs", "iso/load", "saved", "run s", "wall s", "fixed s~", "p"))
    for r in reports:
        print("%-28s %-16s %-7s %-15s %5d %8s %5.0f%% %7s %7s %8s %6s" % (
            r["sweep"] or "-", r["recipe"], r["kind"], r["verdict"] + ("" if r["clear"] else "?"), r["runs_spent"],
            "%d/%d" % (r["runs_by_arm"]["isolated"], r["runs_by_arm"]["loaded"]), 100 * r["runs_saved_share"],
            dash(r["seconds_spent_runs"]), dash(r["seconds_wall"]), dash(r["fixed_protocol_seconds_estimate"]),
            "%.3g" % r["p_value"] if r["p_value"] is not None else "-"))
    print("runs: %d spent against %d for the fixed protocol (%s each)" % (total_used, total_fixed, doc["fixed_protocol"]))
    print("written: %s" % rel(out))
    return 0


# -- busy-cpu ------------------------------------------------------------------------------
BURNER = "while True:\n    pass\n"


def sampled_run(recipe: str, work: str, n: str, timeout: int, burners: int) -> dict:
    """One ``canon isolate`` with the classifier's sampler beside it and ``burners`` processes
    spinning on the CPUs for its whole length."""
    from canon.inventory import default_inventory, load_servers
    from canon.load import Sampler, fingerprint
    server = load_servers(default_inventory())[0]
    spinning = [subprocess.Popen([sys.executable, "-c", BURNER]) for _ in range(burners)]
    sampler = Sampler(server, interval=3.0)
    sampler.start()
    try:
        rec = harness_run(recipe, work, n, timeout)
    finally:
        sampler.stop()
        for proc in spinning:
            proc.kill()
            proc.wait()
    load = fingerprint(sampler.samples)
    return {"recipe": recipe, "burners": burners, "ok": rec["ok"], "outcome": rec.get("outcome"),
            "seconds": rec["seconds"], "run_id": rec.get("run_id"), "cpu_busy_pct": load.get("cpu_busy_pct"),
            "load1_mean": load.get("load1_mean"), "load1_max": load.get("load1_max"), "samples": load.get("samples")}


def cmd_busy_cpu(args) -> int:
    from canon.load import BUSY_CPU_PCT
    work = args.work or tempfile.mkdtemp(prefix="canon-busy-")
    os.makedirs(work, exist_ok=True)
    burners = args.burners or os.cpu_count() or 1
    runs = []
    for recipe in args.recipes.split(","):
        for i in range(1, args.runs + 1):
            for spin in (0, burners):
                with bench_lock(args.lock):
                    wait_until_idle()
                    time.sleep(args.settle)       # the previous run's teardown and load settle
                    rec = sampled_run(recipe, work, "%s-%d-%d" % (recipe, i, spin), args.timeout, spin)
                runs.append(rec)
                print("%-12s run %d, %d burner(s): %s in %.0f s, CPUs %s %% busy, load1 mean %s"
                      % (recipe, i, spin, rec["outcome"], rec["seconds"], dash(rec["cpu_busy_pct"]),
                         dash(rec["load1_mean"])))
    alone = [r["cpu_busy_pct"] for r in runs if not r["burners"] and r["cpu_busy_pct"] is not None]
    beside = [r["cpu_busy_pct"] for r in runs if r["burners"] and r["cpu_busy_pct"] is not None]
    doc = {"benchmark": "busy-cpu", "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "machine": machine(), "commit": git_commit(), "threshold_pct": BUSY_CPU_PCT, "burners": burners,
           "alone_max_pct": max(alone, default=None), "beside_min_pct": min(beside, default=None),
           "separates": bool(alone and beside) and max(alone) < BUSY_CPU_PCT <= min(beside),
           "runs": runs, "work": work}
    out = write_result("busy-cpu", doc)
    print("alone: at most %s %% busy; beside %d burner(s): at least %s %%; threshold %g %%: %s"
          % (dash(doc["alone_max_pct"]), burners, dash(doc["beside_min_pct"]), BUSY_CPU_PCT,
             "separates them" if doc["separates"] else "does NOT separate them"))
    print("written: %s" % rel(out))
    return 0 if doc["separates"] else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/driver.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    m = sub.add_parser("makespan", help="a sweep's makespan against its lower bound (reads sweep.json)")
    m.add_argument("sweeps", nargs="+", help="sweep results folders or sweep.json files")
    m.add_argument("--save", action="store_true", help="copy each sweep.json into benchmarks/results/sweeps/")
    o = sub.add_parser("overhead", help="canon isolate against a plain script of the same abra calls (uses the bench)")
    o.add_argument("--runs", type=int, default=3)
    o.add_argument("--lock", default=BENCH_LOCK, help="the bench lock file (default %(default)s)")
    o.add_argument("--work", help="folder for the runs' logs and evidence (default: a new one under /tmp)")
    o.add_argument("--timeout", type=int, default=1800, help="seconds one run may take")
    o.add_argument("--profile", action="store_true",
                   help="then one more harness run with Ansible's junit callback: seconds per kind of task")
    c = sub.add_parser("classification-cost", help="runs and seconds per verdict against a fixed 10+10 protocol")
    c.add_argument("documents", nargs="+", help="classification documents (<sweep>/classify/<recipe>.json)")
    c.add_argument("--save", action="store_true",
                   help="copy the documents into benchmarks/results/classifications/ and their runs' durations "
                        "into benchmarks/results/classification-run-durations.json")
    b = sub.add_parser("busy-cpu",
                       help="how busy an isolated run keeps the CPUs, alone and beside other work (uses the bench)")
    b.add_argument("--recipes", default="custom-html,mumble", help="comma-separated (default %(default)s)")
    b.add_argument("--runs", type=int, default=2, help="runs per recipe and condition (default %(default)s)")
    b.add_argument("--burners", type=int, help="CPU burners beside the busy runs (default: one per core)")
    b.add_argument("--settle", type=float, default=20.0, help="seconds of quiet before each run (default %(default)s)")
    b.add_argument("--lock", default=BENCH_LOCK, help="the bench lock file (default %(default)s)")
    b.add_argument("--work", help="folder for the runs' logs and evidence (default: a new one under /tmp)")
    b.add_argument("--timeout", type=int, default=1800, help="seconds one run may take")
    args = ap.parse_args(argv)
    if args.command in ("overhead", "busy-cpu") and args.runs < 1:
        ap.error("--runs must be at least 1")
    return {"makespan": cmd_makespan, "overhead": cmd_overhead,
            "classification-cost": cmd_classification_cost, "busy-cpu": cmd_busy_cpu}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
