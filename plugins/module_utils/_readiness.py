# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Readiness: a probe must succeed ``stable`` times in a row, within a bounded time.

:func:`wait_ready` is the loop, with the clock and the probe injected, so the rule (N in a row,
a failure resets the count, bounded time) is unit-tested without a swarm.
"""

from __future__ import annotations

import os
import select
import ssl
import time

from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words


def wait_ready(attempt, stable: int, interval: float, timeout: float, clock=time.monotonic, sleep=time.sleep) -> dict:
    """Call ``attempt()`` (returns ``(ok, detail)``) until it succeeds ``stable`` times in a row.

    Returns ``{"ready", "attempts", "streak", "elapsed", "first_ok_after", "last_detail", "history"}``;
    ``history`` keeps the last 20 ``(elapsed, ok, detail)``.
    """
    start = clock()
    streak = attempts = 0
    first_ok = None
    history = []
    detail = ""
    while True:
        attempts += 1
        ok, detail = attempt()
        elapsed = round(clock() - start, 2)
        history.append((elapsed, bool(ok), clip_words(detail, 200)))
        history = history[-20:]
        if ok:
            streak += 1
            if first_ok is None:
                first_ok = elapsed
            if streak >= stable:
                return {"ready": True, "attempts": attempts, "streak": streak, "elapsed": elapsed,
                        "first_ok_after": first_ok, "last_detail": detail, "history": history}
        else:
            streak = 0
        if clock() - start + interval > timeout:
            return {"ready": False, "attempts": attempts, "streak": streak, "elapsed": round(clock() - start, 2),
                    "first_ok_after": first_ok, "last_detail": detail, "history": history}
        sleep(interval)


def tcp_probe_script() -> list:
    """argv run inside the probe container: send ``$1`` to ``$2:$3`` and print the answer.

    busybox ``nc`` has no ``-z``; a refused connection exits non-zero, an open one prints what
    the server answered.
    """
    return ["sh", "-c", 'printf "%b" "$1" | nc -w 2 "$2" "$3"', "probe"]


def tls_handshake(send, receive, deadline: float, server_hostname: str | None = None,
                  clock=time.monotonic) -> tuple:
    """Complete a TLS client handshake over a byte stream: ``send(bytes)`` writes to the peer,
    ``receive(seconds)`` returns what it answered (``b""``: closed, ``None``: nothing in time).
    ``(ok, detail)``; ok only once the handshake completed.

    The stream is the probe container's ``nc`` to ``<stack>_<service>:<port>`` (the app is reached
    on its network, as tcp probes reach it), so the TLS runs here, in Python's ssl, and the probe
    image needs nothing more than ``nc``. The certificate is not verified: the question is whether
    the server speaks TLS on the port yet, and murmur, for one, generates a self-signed
    certificate on first start.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_hostname or None)
    start = clock()
    while True:
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            left = deadline - (clock() - start)
            if left <= 0:
                return False, "no TLS handshake within %ss" % deadline
            try:
                pending = outgoing.read()
                if pending:
                    send(pending)
                chunk = receive(left)
            except OSError as exc:   # the peer went away mid-write (reset, broken pipe)
                return False, "connection closed before the TLS handshake completed: %s" % exc
            if chunk is None:
                return False, "no TLS handshake within %ss" % deadline
            if not chunk:
                return False, "connection closed before the TLS handshake completed"
            incoming.write(chunk)
            continue
        except ssl.SSLError as exc:   # e.g. a plain-text answer: "wrong version number"
            return False, "not a TLS handshake: %s" % (exc.reason or exc)
        pending = outgoing.read()
        try:
            if pending:
                send(pending)   # TLS 1.3: the client's Finished, so the server sees a whole handshake
        except OSError:
            pass   # the handshake completed on our side; the server may close at once
        cipher = tls.cipher()
        return True, "TLS handshake completed (%s, %s)" % (tls.version(), cipher[0] if cipher else "?")


def pipe_receiver(fd: int):
    """``receive(seconds)`` over a readable file descriptor (a process's stdout): what is there
    within the time (``b""`` at end of file, ``None`` when nothing came)."""
    def receive(seconds: float):
        ready, _w, _x = select.select([fd], [], [], max(seconds, 0))
        if not ready:
            return None
        return os.read(fd, 65536)
    return receive
