import os
import shutil
import socket
import ssl
import stat
import subprocess
import threading

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _settings
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Result
from ansible_collections.coopcloud.canon.plugins.module_utils._readiness import pipe_receiver, tls_handshake, wait_ready
from ansible_collections.coopcloud.canon.plugins.modules import readiness as module


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def run(outcomes, stable=3, interval=1, timeout=30):
    clock = FakeClock()
    seq = iter(outcomes) if isinstance(outcomes, list) else None

    def attempt():
        return next(seq, (True, "ok")) if seq is not None else outcomes(clock.t)
    return wait_ready(attempt, stable, interval, timeout, clock=clock, sleep=clock.sleep)


def test_needs_stable_successes_in_a_row():
    res = run([(False, "refused"), (True, "a"), (False, "flap"), (True, "b"), (True, "c"), (True, "d")])
    assert res["ready"] and res["attempts"] == 6 and res["streak"] == 3
    assert res["first_ok_after"] == 1.0


def test_never_ready_is_bounded_in_time_and_says_why():
    res = run(lambda t: (False, "connection refused"), timeout=10)
    assert not res["ready"]
    assert res["elapsed"] <= 10 and res["attempts"] == 11   # t = 0, 1, ..., 10
    assert res["last_detail"] == "connection refused"


def test_port_that_opens_late_is_waited_for():
    res = run(lambda t: (t >= 7, "open" if t >= 7 else "closed"), stable=3, timeout=60)
    assert res["ready"] and res["first_ok_after"] == 7 and res["elapsed"] == 9


# ---------------------------------------------------------------- probe kinds (issue 17)


# what every probe resolved to before tls and exec existed: its keys must stay exactly these
OLD_KEYS = {"type", "service", "port", "path", "codes", "stable", "interval", "timeout", "send", "expect"}


@pytest.mark.parametrize("probe, expected", [
    # the kinds the bench uses today resolve exactly as before: no new key
    ({"type": "tcp", "port": 64738, "send": "hello\n", "expect": "channels:"},
     dict(_settings.PROBE_DEFAULTS, type="tcp", port=64738, send="hello\n", expect="channels:")),
    ({"type": "tcp", "port": 64738}, dict(_settings.PROBE_DEFAULTS, type="tcp", port=64738)),
    ({"path": "/xrpc/_health"}, dict(_settings.PROBE_DEFAULTS, path="/xrpc/_health")),
    ({"type": "tls", "port": 64738}, dict(_settings.PROBE_DEFAULTS, type="tls", port=64738)),
    ({"type": "exec", "service": "db", "command": ["pg_isready"], "expect": "accepting"},
     dict(_settings.PROBE_DEFAULTS, type="exec", service="db", command=["pg_isready"], expect="accepting")),
])
def test_probe_kinds_resolve(probe, expected):
    assert _settings.resolve_probe("p", probe) == expected


def test_the_old_kinds_gain_no_key():
    for probe in ({"type": "tcp"}, {"type": "http"}, {}):
        assert set(_settings.resolve_probe("p", probe)) == OLD_KEYS


@pytest.mark.parametrize("probe, words", [
    ({"type": "udp"}, "must be one of http, tcp, tls, exec"),
    ({"type": "exec"}, "command must be a non-empty argv"),
    ({"type": "exec", "command": []}, "command must be a non-empty argv"),
    ({"type": "exec", "command": "pg_isready"}, "command must be list"),
    ({"type": "exec", "command": ["sh", ""]}, "command must be a non-empty argv"),
    ({"type": "exec", "command": ["sh", 1]}, "command must be a non-empty argv"),
    ({"type": "exec", "command": ["true"], "send": "x"}, "send is for tcp"),
    ({"type": "tcp", "command": ["true"]}, "command is for exec"),
    ({"type": "http", "command": ["true"]}, "command is for exec"),
    ({"type": "tls", "send": "hello\n"}, "send and expect are for tcp"),
    ({"type": "tls", "expect": "channels:"}, "send and expect are for tcp"),
    ({"type": "tls", "sni": "x"}, "unknown setting"),
])
def test_probe_kinds_are_strict(probe, words):
    with pytest.raises(_settings.SettingsError, match=words):
        _settings.resolve_probe("p", probe)


# -- the TLS handshake, against a real TLS server and against what is not one

@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("no openssl to make a self-signed certificate")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=murmur",
                    "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")], check=True, capture_output=True)
    return str(d / "cert.pem"), str(d / "key.pem")


def _serve(server_side, handler):
    thread = threading.Thread(target=handler, args=(server_side,), daemon=True)
    thread.start()
    return thread


def _handshake_with(handler, deadline=3.0):
    ours, theirs = socket.socketpair()
    thread = _serve(theirs, handler)
    try:
        return tls_handshake(ours.sendall, pipe_receiver(ours.fileno()), deadline)
    finally:
        ours.close()
        thread.join(5)


def test_a_tls_server_completes_the_handshake(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)

    def murmur(sock):   # a self-signed server, as murmur's first start makes it
        try:
            with context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)   # wait for the client's Finished or its close
        except (ssl.SSLError, OSError):
            pass
    ok, detail = _handshake_with(murmur)
    assert ok, detail
    assert detail.startswith("TLS handshake completed (TLS")


def _plain(sock):   # the bench stand-in: a line protocol, no TLS
    sock.recv(4096)
    sock.sendall(b"error: unknown command\n")
    sock.close()


def _closes(sock):   # refused in all but name: nc connected, the server went away
    sock.close()


def _silent(sock):   # a port open in the warm-up that answers nothing yet
    sock.recv(4096)
    threading.Event().wait(2.0)
    sock.close()


@pytest.mark.parametrize("handler, words", [
    (_plain, "not a TLS handshake"),
    (_closes, "connection closed before the TLS handshake completed"),
    (_silent, "no TLS handshake within 0.5s"),
])
def test_what_is_not_a_tls_server_is_not_ready(handler, words):
    ok, detail = _handshake_with(handler, deadline=0.5)
    assert not ok and words in detail, detail


# -- the attempts, through the one docker client

class FakeDocker:
    def __init__(self, container="c1", rc=0, stdout="", stderr=""):
        self.container, self.result, self.calls = container, (rc, stdout, stderr), []

    def running_container(self, stack, service):
        self.calls.append(("running_container", stack, service))
        return self.container

    def exec(self, container, argv, input_text=None, check=True):
        self.calls.append(("exec", container, list(argv), check))
        rc, out, err = self.result
        return Result(argv=argv, rc=rc, stdout=out, stderr=err)


@pytest.mark.parametrize("docker, expect, ok, words", [
    (FakeDocker(container=None), "", False, "no running container of s_db"),
    (FakeDocker(rc=2, stderr="no response"), "", False, "pg_isready exited 2: no response"),
    (FakeDocker(rc=0, stdout="/tmp:5432 - rejecting connections"), "accepting", False, "without 'accepting'"),
    (FakeDocker(rc=0, stdout="/tmp:5432 - accepting connections"), "accepting", True, "pg_isready exited 0"),
    (FakeDocker(rc=0), "", True, "pg_isready exited 0"),
])
def test_an_exec_probe_runs_its_command_in_the_services_container(docker, expect, ok, words):
    got, detail = module.exec_attempt(docker, "s", "db", ["pg_isready", "-q"], expect)()
    assert got is ok and words in detail, detail
    if docker.container:
        assert docker.calls == [("running_container", "s", "db"), ("exec", "c1", ["pg_isready", "-q"], False)]


def test_a_tls_probe_streams_through_nc_in_the_probe_container(tmp_path, certificate):
    """The whole tls attempt through DockerClient.exec_stream: a stand-in ``docker`` binary
    relays ``exec -i <container> nc -w N host port`` to a local TLS server (and records its argv)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        sock, _addr = listener.accept()
        try:
            with context.wrap_socket(sock, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError):
            pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    fake = tmp_path / "docker"
    fake.write_text("#!/usr/bin/env python3\nimport socket, sys, threading, os\n"
                    "open(%r, 'w').write(' '.join(sys.argv[1:]))\n"
                    "s = socket.create_connection(('127.0.0.1', %d))\n"
                    "def up():\n    while True:\n        d = os.read(0, 65536)\n        if not d: break\n"
                    "        s.sendall(d)\n"
                    "threading.Thread(target=up, daemon=True).start()\n"
                    "while True:\n    d = s.recv(65536)\n    if not d: break\n"
                    "    os.write(1, d)\n" % (str(tmp_path / "argv"), port))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    logged = []
    docker = DockerClient(binary=str(fake), context="srv", log=logged.append)
    ok, detail = module.tls_attempt(docker, "probe1", "mumb_app", 64738, 5)()
    thread.join(5)
    listener.close()
    assert ok, detail
    assert "mumb_app:64738 TLS handshake completed" in detail
    assert (tmp_path / "argv").read_text() == "--context srv exec -i probe1 nc -w 5 mumb_app 64738"
    assert [r.argv[1:] for r in logged] == [["--context", "srv", "exec", "-i", "probe1", "nc", "-w", "5", "mumb_app",
                                            "64738"]]


def test_a_tls_probe_says_why_when_nc_cannot_connect(tmp_path):
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho \"nc: can't connect to remote host: Connection refused\" >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    ok, detail = module.tls_attempt(DockerClient(binary=str(fake)), "probe1", "mumb_app", 64738, 5)()
    assert not ok
    assert "connection closed before the TLS handshake completed" in detail and "Connection refused" in detail


# -- what a probe answered, in its detail: cut at a word, never mid-word (issue 17) ---------------

ANSWER = "Welcome to the bench channel server " * 6
STDERR = "psql: error: connection to server on socket failed: " + "the server is starting up and not accepting yet " * 4


def _cut_at_a_word(whole: str, kept: str, limit: int) -> bool:
    return kept.endswith("…") and len(kept) <= limit and whole.startswith(kept[:-1]) and whole[len(kept) - 1] == " "


def _tail_at_a_word(whole: str, kept: str, limit: int) -> bool:
    return kept.startswith("…") and len(kept) <= limit and whole.endswith(kept[1:]) and \
        whole[len(whole) - len(kept)] == " "


def test_a_tcp_answer_in_the_detail_is_cut_at_a_word():
    ok, detail = module.tcp_attempt(FakeDocker(rc=0, stdout=ANSWER), "probe1", "mumb_app", 64738, "hello", "channels")()
    shown = detail[len("answered '"):detail.index("' without")]
    assert not ok and _cut_at_a_word(ANSWER.strip(), shown, 80)


@pytest.mark.parametrize("docker, expect, words", [
    (FakeDocker(rc=0, stdout=ANSWER), "accepting", "pg_isready printed '"),
    (FakeDocker(rc=2, stderr=STDERR), "", "pg_isready exited 2: "),
])
def test_an_exec_probes_output_in_the_detail_is_cut_at_a_word(docker, expect, words):
    ok, detail = module.exec_attempt(docker, "s", "db", ["pg_isready", "-q"], expect)()
    assert not ok and detail.startswith(words)
    if docker.result[2]:   # stderr: its end says what went wrong
        assert _tail_at_a_word(STDERR.strip(), detail[len(words):], 120)
    else:
        assert _cut_at_a_word(ANSWER.strip(), detail[len(words):detail.index("' without")], 80)


def test_the_history_keeps_each_detail_cut_at_a_word():
    long = "connect mumb_app:64738 failed (exit 1) " + "nc: can't connect to remote host: refused " * 8
    res = run([(False, long)] + [(True, "ok")] * 3)
    kept = res["history"][0][2]
    assert _cut_at_a_word(long, kept, 200) and res["last_detail"] == "ok"


@pytest.mark.parametrize("text, limit, want", [
    ("short", 10, "short"),
    ("the server is starting up", 12, "…starting up"),
    ("the server is starting up", 11, "…up"),
    ("averyveryverylongsingletoken", 10, "…ngletoken"),   # one word longer than the limit: cut, marked
    (None, 5, ""),
])
def test_clip_words_tail_keeps_the_end_from_a_word(text, limit, want):
    from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words_tail
    got = clip_words_tail(text, limit)
    assert got == want and len(got) <= limit
