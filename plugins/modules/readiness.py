#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: readiness
short_description: Wait until an app is ready - N successful probes in a row, in bounded time
description:
  - Swarm calls a task running long before the app behind it answers (a protocol port that
    opens after a warm-up, longer on a loaded node). A test run before that fails for the
    harness's reasons, not the recipe's. This module runs the recipe's declared probes before a
    tier and fails with the history of attempts when the app never became ready.
  - C(http) probes go through the proxy with the app's domain as Host header (or straight to
    C(https://<domain>)). C(tcp) probes connect from a throwaway container on the app's network
    to C(<stack>_<service>:<port>), send I(send) and, when I(expect) is set, require it in the
    answer.
  - C(tls) probes reach C(<stack>_<service>:<port>) the same way (C(nc) in the probe container)
    and succeed when a TLS handshake completes over that connection; the handshake runs in the
    module (Python's ssl), the certificate is not verified (self-signed servers such as murmur).
  - C(exec) probes run I(command) (argv) in the running container of C(<stack>_<service>) and
    succeed when it exits 0 and, when I(expect) is set, its output contains it.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
  - coopcloud.canon.attributes.actiongroup_abra
  - coopcloud.canon.abra
attributes:
  check_mode:
    support: full
    description: Probes are read-only and run the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes the app. A tcp or tls probe starts and removes its own probe container;
      an exec probe runs its command in the app's container, which must itself change nothing.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  probes:
    description:
      - Probes as in the recipe settings' C(readiness) list; every key is optional.
      - C(type) (http, tcp, tls or exec), C(service), C(port), C(path), C(codes), C(stable)
        (successes in a row), C(interval) (s), C(timeout) (s), C(send) (tcp), C(expect) (tcp,
        exec), C(command) (exec, an argv list).
    type: list
    elements: dict
    required: true
  proxy_url:
    description: Reach HTTP through this URL with the domain as Host header; empty for https://<domain>.
    type: str
    default: ""
  probe_image:
    description: Image of the throwaway container tcp and tls probes run from (needs C(sh) and C(nc)).
    type: str
    default: busybox:stable
  network:
    description: The network the probe container joins to reach the service.
    type: str
    default: proxy
"""

EXAMPLES = r"""
- name: Wait for mumble's protocol port
  coopcloud.canon.readiness:
    domain: mumb-1a2b3c.bench.canon.test
    probes:
      - {type: tcp, port: 64738, send: "hello\n", expect: "channels:", stable: 3}
    probe_image: canon-bench/busybox:1.36

- name: Wait until murmur speaks TLS on its port, and a command in the app's container agrees
  coopcloud.canon.readiness:
    domain: mumble.example.org
    probes:
      - {type: tls, port: 64738, stable: 3}
      - {type: exec, command: [sh, -c, "test -s /data/mumble-server.sqlite"], stable: 1}
"""

RETURN = r"""
probes:
  description: Per probe - ready, attempts, streak, elapsed, first_ok_after, last_detail, history.
  type: list
  elements: dict
  returned: always
elapsed:
  description: Seconds spent waiting in all.
  type: float
  returned: always
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import PROBE_LABEL
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words, clip_words_tail
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, stack_name, validate_url_path
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError
from ansible_collections.coopcloud.canon.plugins.module_utils._readiness import (
    pipe_receiver, tcp_probe_script, tls_handshake, wait_ready)
from ansible_collections.coopcloud.canon.plugins.module_utils._settings import SettingsError, resolve_probe


def http_attempt(url, host, codes, timeout):
    def attempt():
        try:
            resp = open_url(url, headers={"Host": host} if host else None, timeout=timeout,
                            follow_redirects="none", validate_certs=False)
            code = resp.getcode()
        except HTTPError as exc:
            code = exc.code
        except (URLError, OSError, ValueError) as exc:
            return False, "no answer: %s" % exc
        return code in codes, "HTTP %s" % code
    return attempt


def tcp_attempt(docker, container, host, port, send, expect):
    def attempt():
        res = docker.exec(container, tcp_probe_script() + [send, host, str(port)], check=False)
        answer = (res.stdout or "").strip()
        if res.rc != 0 and not answer:
            return False, "connect %s:%s failed (exit %d) %s" % (host, port, res.rc, clip_words_tail(res.stderr.strip(), 120))
        if expect and expect not in answer:
            return False, "answered %r without %r" % (clip_words(answer, 80), expect)
        return True, "answered %r" % clip_words(answer, 80)
    return attempt


def tls_attempt(docker, container, host, port, deadline):
    """A TLS handshake with ``host:port`` through ``nc`` in the probe container."""
    def attempt():
        stream = docker.exec_stream(container, ["nc", "-w", str(int(deadline)), host, str(port)])
        if stream is None:
            return False, "could not start docker exec in the probe container"

        def send(data):
            stream.stdin.write(data)
            stream.stdin.flush()
        ok, detail = tls_handshake(send, pipe_receiver(stream.stdout.fileno()), deadline)
        closed = docker.close_stream(stream)
        if not ok and closed.stderr.strip():
            detail += " (%s)" % clip_words_tail(closed.stderr.strip(), 120)
        return ok, "%s:%s %s" % (host, port, detail)
    return attempt


def exec_attempt(docker, stack, service, command, expect):
    """``command`` in the running container of ``<stack>_<service>``: exit 0, and ``expect`` in its output."""
    def attempt():
        container = docker.running_container(stack, service)
        if not container:
            return False, "no running container of %s_%s" % (stack, service)
        res = docker.exec(container, command, check=False)
        out = (res.stdout or "").strip()
        if res.rc != 0:
            return False, "%s exited %d: %s" % (command[0], res.rc, clip_words_tail((res.stderr or res.stdout or "").strip(), 120))
        if expect and expect not in out:
            return False, "%s printed %r without %r" % (command[0], clip_words(out, 80), expect)
        return True, "%s exited 0%s" % (command[0], ": %r" % clip_words(out, 80) if out else "")
    return attempt


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True), probes=dict(type="list", elements="dict", required=True),
        proxy_url=dict(type="str", default=""), probe_image=dict(type="str", default="busybox:stable"),
        network=dict(type="str", default="proxy"),
    ), groups=("abra",), names=("domain", ("proxy_url", "http_url"), ("probe_image", "image"), "network"),
        supports_check_mode=True)
    p = m.params
    try:
        probes = [resolve_probe("probes[%d]" % i, pr) for i, pr in enumerate(p["probes"])]
        for i, probe in enumerate(probes):
            validate_url_path(probe["path"], "probes[%d].path" % i)
    except (NameError_, SettingsError) as exc:
        m.fail(exc)
    docker, evidence = m.docker, m.evidence
    stack = stack_name(p["domain"])
    start = time.monotonic()
    results, container = [], None
    try:
        for probe in probes:
            if probe["type"] == "http":
                base = p["proxy_url"] or "https://%s" % p["domain"]
                attempt = http_attempt(base + probe["path"], p["domain"] if p["proxy_url"] else None,
                                       probe["codes"], min(probe["interval"] + 5, 15))
                what = "http %s%s" % (p["domain"], probe["path"])
            elif probe["type"] == "exec":
                attempt = exec_attempt(docker, stack, probe["service"], probe["command"], probe["expect"])
                what = "exec in %s_%s: %s" % (stack, probe["service"], " ".join(probe["command"]))
            else:
                if container is None:
                    container = docker.run_detached(p["probe_image"], ["sleep", "3600"], p["network"],
                                                    {PROBE_LABEL: stack})
                host = "%s_%s" % (stack, probe["service"])
                if probe["type"] == "tls":
                    attempt = tls_attempt(docker, container, host, probe["port"], min(probe["interval"] + 5, 15))
                else:
                    attempt = tcp_attempt(docker, container, host, probe["port"], probe["send"], probe["expect"])
                what = "%s %s:%s" % (probe["type"], host, probe["port"])
            outcome = wait_ready(attempt, probe["stable"], probe["interval"], probe["timeout"])
            outcome["probe"] = what
            results.append(outcome)
            if not outcome["ready"]:
                break
    except CommandError as exc:
        m.fail(exc)
    finally:
        if container:
            docker.remove_containers([container])
    elapsed = round(time.monotonic() - start, 2)
    evidence.write("readiness.txt", "\n".join(
        "%s: %s after %ss, %d attempts; last: %s\n  %s" % (
            r["probe"], "ready" if r["ready"] else "NEVER READY", r["elapsed"], r["attempts"], r["last_detail"],
            "\n  ".join("%6.2fs %s %s" % h for h in r["history"])) for r in results) + "\n",
        subdir="readiness/%s" % p["domain"])
    bad = [r for r in results if not r["ready"]]
    if bad:
        r = bad[0]
        m.fail(msg="%s never became ready: %d attempts in %ss, %d in a row needed; last: %s"
               % (r["probe"], r["attempts"], r["elapsed"], probes[len(results) - 1]["stable"], r["last_detail"]),
               probes=results, elapsed=elapsed)
    m.exit(changed=False, probes=results, elapsed=elapsed)


if __name__ == "__main__":
    main()
