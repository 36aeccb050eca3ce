"""mumble's own test: the protocol handshake on TCP 64738.

Run by the lifecycle's custom tier with CANON_APP_STACK, CANON_PROBE_IMAGE and
CANON_PROXY_NETWORK set. The server is reached as <stack>_app:64738 from a throwaway container
on the proxy network. It connects ONCE, with no retries, on purpose: it passes against a
warmed-up server and fails when it runs inside the warm-up window (after a start or a restore,
which on a loaded node lasts several seconds). Readiness is the harness's job (a readiness
probe before the tier), not this test's.
"""
import os
import subprocess

PORT = 64738


def exchange(line):
    target = "%s_app" % os.environ["CANON_APP_STACK"]
    script = "printf '%s\\n' | nc -w 5 %s %d" % (line, target, PORT)
    proc = subprocess.run(
        ["docker", "run", "--rm", "--network", os.environ.get("CANON_PROXY_NETWORK", "proxy"),
         os.environ.get("CANON_PROBE_IMAGE", "canon-bench/busybox:1.36"), "sh", "-c", script],
        capture_output=True, text=True, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


def test_hello_returns_the_channel_list():
    rc, out, err = exchange("hello")
    assert "channels: Root,Lobby" in out.splitlines(), \
        "no channel list from %s_app:%d (rc=%d, stdout=%r, stderr=%r)" % (
            os.environ["CANON_APP_STACK"], PORT, rc, out, err.strip())
