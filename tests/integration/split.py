#!/usr/bin/env python3
"""Run the integration tests as two pytest sessions at once, one on each bench server.

    python3 tests/integration/split.py [pytest options...]

The bench has two independent engines and swarms (docs/bench.md, "The second server"), and most
of an integration test's time is spent waiting on a swarm. The session on the bench's own server
(``default``) runs every test file but those in ``SECOND``; the session on ``bench2.canon.test``
runs those (``CANON_TEST_SERVER``, conftest.py), so each test runs on one server and each server
has one session's harness runs at a time. Each session ends with its own secret scan of what it
wrote. Files stay on ``default`` when they need it: the live keycloak, the forge and its tags,
sweeps of both servers, the ssh inventory, the collection built and installed.

Each session holds its server's lock (conftest.py, ``server_to_this_session``); a test in one
session that deploys on the other server too (the sweep of both) takes that server's lock first
and waits for the session there to end (``other_servers_held``).

Both sessions run under the bench lock (``flock /tmp/canon-bench.lock``, the one the benchmarks
take), held here: a benchmark started meanwhile waits for the suite, and the suite for it.

Each session writes its own log; both are printed when the second one ends. The exit status is
the first non-zero of the two (0 when both passed). SIGINT and SIGTERM are passed to both, which
end the way Ctrl-C does (conftest.py), tearing their fixtures down.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# on bench2.canon.test: files, or single tests ("file::name"), that run the lifecycle on the
# session's server alone; about half the time of the rest. Not bluesky-pds's alias collision
# (its preflight names the live keycloak, which is on the bench's own server's proxy network).
SECOND = ["test_isolate.py", "test_exit_paths.py",
          *("test_recipes.py::" + t for t in (
              "test_mumble_is_green_alone_with_its_readiness_probe",
              "test_mumble_handshake_fails_inside_its_warm_up_without_the_probe",
              "test_mattermost_restore_is_red_alone_and_the_dump_was_taken",
              "test_discourse_preflight_reports_the_orphan_overlay_reference",
              "test_discourse_wedge_is_declared_fast",
              "test_discourse_slow_first_boot_converges_and_its_stale_test_is_red")),
          "test_warm_promote.py::test_gitea_advance",
          "test_warm_promote.py::test_promote_needs_a_green_cold_run_of_that_release"]
SCAN = "test_zz_secret_scan.py"            # last in each session: the scan of what it wrote
BENCH_LOCK = "/tmp/canon-bench.lock"


def sessions(args: list) -> dict:
    rel = os.path.relpath(HERE, ROOT)
    first = [*args, rel, *(("--deselect=%s" if "::" in f else "--ignore=%s") % os.path.join(rel, f) for f in SECOND)]
    second = [*args, *(os.path.join(rel, f) for f in SECOND + [SCAN])]
    return {"default": first, "bench2.canon.test": second}


def main(argv: list) -> int:
    """Both sessions under the bench lock (the project's one flock wrapper, module_utils/_flock)."""
    sys.path.insert(0, ROOT)
    import canon  # noqa: F401  (puts the checkout's collection on sys.path)
    from ansible_collections.coopcloud.canon.plugins.module_utils._flock import Busy, flocked
    holder = "make test (tests/integration/split.py, pid %d)" % os.getpid()
    try:
        with flocked(BENCH_LOCK, wait=False, holder=holder):
            return run_sessions(argv)
    except Busy as busy:
        print("split: waiting for the bench lock %s (held by %s)" % (BENCH_LOCK, busy.holder or "a benchmark"), flush=True)
    with flocked(BENCH_LOCK, holder=holder):
        return run_sessions(argv)


def run_sessions(argv: list) -> int:
    logs = tempfile.mkdtemp(prefix="canon-split-")
    procs = {}
    t0 = time.monotonic()
    for server, args in sessions(argv).items():
        log = open(os.path.join(logs, server + ".log"), "w")
        env = dict(os.environ, CANON_TEST_SERVER=server, PYTHONUNBUFFERED="1")
        argv_ = [sys.executable, "-m", "pytest", *args,
                 "--basetemp", os.path.join(tempfile.gettempdir(), "canon-it-" + server)]
        procs[server] = (subprocess.Popen(argv_, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log)
        print("split: %s session started (pid %d): %s" % (server, procs[server][0].pid, " ".join(args)), flush=True)

    def forward(signum, frame):
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    rcs = {}
    while len(rcs) < len(procs):
        for server, (proc, log) in procs.items():
            if server not in rcs and proc.poll() is not None:
                rcs[server] = proc.returncode
                log.close()
                print("\n===== %s session: exit %d after %.0f s =====" % (
                    server, proc.returncode, time.monotonic() - t0), flush=True)
                with open(log.name) as fh:
                    sys.stdout.write(fh.read())
                sys.stdout.flush()
        time.sleep(1)
    print("\nsplit: %s in %.0f s (logs in %s)" % (
        ", ".join("%s exit %d" % kv for kv in rcs.items()), time.monotonic() - t0, logs))
    return next((rc for rc in rcs.values() if rc != 0), 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
