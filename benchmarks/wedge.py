#!/usr/bin/env python3
"""Benchmark: does the convergence watcher tell "stuck" from "slow but progressing"?

Target (the discourse issue): with timeout 3600 s and wedge window 60 s,
  - a stuck deploy (the same line forever, a healthcheck that never passes) is declared
    ``wedged`` in under 90 s, where abra's timeout-only check would have waited the hour;
  - a slow deploy that prints progress for longer than the window (one step every 10 s for
    110 s, drowned in a "waiting" line repeated every second) and then becomes healthy is
    declared ``converged`` and never ``wedged``.

Both stacks (``cvgb-<random>``) are deployed on the bench swarm at the same time and watched by
the loop the swarm_converge module runs (module_utils._converge.watch); they are removed in
``finally``. Prints a table and writes benchmarks/results/wedge.json. Usage: ``python3 benchmarks/wedge.py [--window 60] [--timeout 3600]``.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import STACK_LABEL, DockerClient  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._converge import watch  # noqa: E402

IMAGE = "canon-bench/busybox:1.36"
RESULTS = os.path.join(ROOT, "benchmarks", "results", "wedge.json")

STUCK = r"""
while true; do echo "$(date) waiting for smtp.invalid:25 ..."; sleep 1; done
"""
SLOW = r"""
i=0
while [ $i -lt 11 ]; do
  i=$((i+1)); echo "$(date) migrating: step $i/11"
  for s in 1 2 3 4 5 6 7 8 9 10; do echo "$(date) waiting for db ..."; sleep 1; done
done
touch /tmp/ready; echo "$(date) listening on :80"; exec sleep 3600
"""
HEALTHCHECK = {"test": ["CMD", "test", "-f", "/tmp/ready"], "interval": "2s", "start_period": "1h"}


def compose(command: str) -> str:
    doc = {"version": "3.8", "services": {"app": {
        "image": IMAGE, "command": ["sh", "-c", command.replace("$", "$$")], "stop_grace_period": "1s",
        "healthcheck": HEALTHCHECK}}}
    return json.dumps(doc, indent=2)  # JSON is YAML


def docker(*args, check=True) -> str:
    res = DockerClient(timeout=120).run(list(args), check=False)
    if check and not res.ok:
        raise RuntimeError("docker %s failed: %s" % (" ".join(args), res.stderr.strip()))
    return res.stdout


def machine() -> dict:
    return {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version(),
            "docker": docker("version", "--format", "{{.Server.Version}}").strip(),
            "other_stacks_running": len(docker("stack", "ls", "--format", "{{.Name}}").split())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--window", type=int, default=60)
    ap.add_argument("--timeout", type=int, default=3600)
    ap.add_argument("--poll", type=float, default=2)
    ap.add_argument("--target", type=float, default=90, help="seconds under which the stuck deploy must be wedged")
    args = ap.parse_args()

    prefix = "cvgb-" + secrets.token_hex(3)
    cases = {"stuck": STUCK, "slow-progressing": SLOW}
    expected = {"stuck": "wedged", "slow-progressing": "converged"}
    domains = {name: "%s-%s.bench.test" % (prefix, name) for name in cases}
    reports, errors = {}, {}
    tmp = tempfile.mkdtemp(prefix="wedge-bench-")
    info = machine()
    try:
        deployed_at = {}
        for name, command in cases.items():
            path = os.path.join(tmp, name + ".yml")
            with open(path, "w") as fh:
                fh.write(compose(command))
            docker("stack", "deploy", "-c", path, stack_name(domains[name]))
            deployed_at[name] = time.monotonic()

        def run(name):
            try:
                reports[name], _ = watch(DockerClient(), domains[name], timeout=args.timeout,
                                         wedge_window=args.window, poll=args.poll)
                reports[name]["since_deploy"] = round(time.monotonic() - deployed_at[name], 1)
            except Exception as exc:  # reported in the table, the stacks still get removed
                errors[name] = repr(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in cases]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        client = DockerClient()
        for d in domains.values():
            docker("stack", "rm", stack_name(d), check=False)
        for d in domains.values():
            client.wait_gone(stack_name(d), timeout=120)
            client.remove("network", client.list_names("network", label="%s=%s" % (STACK_LABEL, stack_name(d))))

    rows = []
    for name in cases:
        rep = reports.get(name, {})
        verdict = rep.get("verdict", "error")
        ok = verdict == expected[name]
        if name == "stuck":
            ok = ok and rep.get("since_deploy", 1e9) < args.target
            target = "wedged in < %d s (timeout %d s)" % (args.target, args.timeout)
        else:
            target = "converged, never wedged"
        rows.append({"case": name, "expected": expected[name], "verdict": verdict,
                     "elapsed_s": rep.get("elapsed"), "since_deploy_s": rep.get("since_deploy"),
                     "last_progress_age_s": rep.get("last_progress_age"),
                     "longest_quiet_s": rep.get("longest_quiet"),
                     "progress_events": (rep.get("progress_events") or {}).get("count"),
                     "polls": rep.get("polls"), "message": rep.get("message", errors.get(name, "")),
                     "target": target, "met": ok})

    head = "%-17s %-10s %-10s %9s %12s %13s %15s %4s  %s" % (
        "case", "expected", "verdict", "elapsed", "since deploy", "longest quiet", "progress events", "met", "message")
    print(head)
    print("-" * len(head))
    for r in rows:
        print("%-17s %-10s %-10s %8.1fs %11.1fs %12.1fs %15s %4s  %s" % (
            r["case"], r["expected"], r["verdict"], r["elapsed_s"] or 0, r["since_deploy_s"] or 0,
            r["longest_quiet_s"] or 0, r["progress_events"], "yes" if r["met"] else "NO", r["message"]))

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    doc = {"benchmark": "wedge", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit or "unknown", "machine": info,
           "parameters": {"timeout": args.timeout, "wedge_window": args.window, "poll": args.poll,
                          "target_s": args.target},
           "results": rows, "all_met": all(r["met"] for r in rows)}
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")
    print("\nwritten: %s" % os.path.relpath(RESULTS, ROOT))
    return 0 if doc["all_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
