"""swarm_converge on the real bench swarm: each test deploys its own tiny stacks (``cvg-<random>``)
with ``docker stack deploy`` and removes them, with their networks and volumes, in a finalizer.

Converged and crash loop go through a real playbook; the others call the module's logic directly.
"""
from __future__ import annotations

import json
import os
import secrets
import subprocess
import textwrap

import pytest
from conftest import CONVERGE_PREFIX, ROOT, ansible_env, assert_no_deprecation, docker, remove_stack

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._evidence import Evidence
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Redactor
from ansible_collections.coopcloud.canon.plugins.module_utils._converge import watch, write_evidence

IMAGE = "canon-bench/busybox:1.36"
SECRET = "hunter2-s3cr3t-value"


def compose(stack: str, command: str, version: str = "1.0.0+1", healthcheck: str = "", deploy: str = "") -> str:
    """One service ``app``; sh ignores SIGTERM as PID 1, hence the short stop grace period."""
    return textwrap.dedent("""\
        version: "3.8"
        services:
          app:
            image: %s
            command: ["sh", "-c", %s]
            stop_grace_period: 1s
        %s
            deploy:
              labels:
                - "coop-cloud.%s.version=%s"
        %s
        """) % (IMAGE, json.dumps(command.replace("$", "$$")), textwrap.indent(healthcheck, "    "), stack, version,
                textwrap.indent(deploy, "      "))


@pytest.fixture
def stacks(tmp_path):
    """deploy(name, compose_text_for(stack)) -> domain; every stack is removed afterwards."""
    prefix = CONVERGE_PREFIX + secrets.token_hex(3)
    made = []

    def deploy(name: str, text_for) -> str:
        domain = "%s-%s.bench.test" % (prefix, name)
        stack = stack_name(domain)
        path = tmp_path / ("%s-%d.yml" % (name, len(made)))
        path.write_text(text_for(stack))
        if stack not in made:
            made.append(stack)
        docker("stack", "deploy", "--prune", "-c", str(path), stack)
        return domain

    yield deploy
    client = DockerClient()
    left = {stack: remove_stack(client, stack) for stack in made}
    assert not any(left.values()), left


def run_converge(tmp_path, domain: str, check: bool = False, **options) -> dict:
    """swarm_converge through a real playbook; returns the registered result."""
    out = tmp_path / ("result-%s.json" % secrets.token_hex(3))
    play = [{
        "name": "swarm_converge", "hosts": "bench", "gather_facts": False,
        "tasks": [
            {"name": "Watch", "coopcloud.canon.swarm_converge": dict(domain=domain, **options),
             "register": "converge", "ignore_errors": True},
            {"name": "Keep the result", "delegate_to": "localhost",
             "ansible.builtin.copy": {"content": "{{ converge | to_json }}", "dest": str(out)},
             "check_mode": False},
        ]}]
    book = tmp_path / "converge.yml"
    book.write_text(json.dumps(play))
    argv = ["ansible-playbook", "-i", os.path.join(ROOT, "inventory", "bench", "hosts.yml"), str(book)]
    res = subprocess.run(argv + (["--check"] if check else []), cwd=ROOT, env=ansible_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0 and out.exists(), res.stdout[-3000:] + res.stderr[-2000:]
    assert_no_deprecation(str(book), res.stdout, res.stderr)
    return json.loads(out.read_text())


HEALTHY_WHEN_FILE = textwrap.dedent("""\
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 2s
      start_period: 1h
    """)


def test_converges_through_a_playbook_in_check_and_real_mode(stacks, tmp_path):
    domain = stacks("ok", lambda stack: compose(stack, "echo started; touch /tmp/ready; exec sleep 3600",
                                                healthcheck=HEALTHY_WHEN_FILE))
    for check in (True, False):
        res = run_converge(tmp_path, domain, check=check, timeout=120, wedge_window=30, version="1.0.0+1",
                           evidence_dir=str(tmp_path / "evidence"))
        assert not res.get("failed") and res["changed"] is False, res
        assert res["verdict"] == "converged" and res["waiting_for"] == {}
        assert res["replicas"]["app"] == {"running": 1, "desired": 1, "healthy": 1, "update_state": None,
                                          "version": "1.0.0+1"}
        assert res["evidence"] == [] and not (tmp_path / "evidence").exists()


def test_same_line_forever_and_a_healthcheck_that_never_passes_is_wedged(stacks, tmp_path):
    window = 12
    domain = stacks("wedge", lambda stack: compose(
        stack, "while true; do echo \"$(date) waiting for smtp.invalid:25 (password %s)\"; sleep 1; done" % SECRET,
        healthcheck=textwrap.dedent("""\
            healthcheck:
              test: ["CMD-SHELL", "echo smtp.invalid:25 unreachable; exit 1"]
              interval: 2s
              start_period: 1h
            """)))
    client = DockerClient()
    report, observer = watch(client, domain, timeout=3600, wedge_window=window, poll=2)
    assert report["verdict"] == "wedged", report
    assert window <= report["elapsed"] <= window + 8, report["elapsed"]
    assert report["message"].startswith("wedged: no progress for %d s (last: " % window), report["message"]
    assert report["replicas"]["app"]["running"] == 0 and "starting" in report["waiting_for"]["app"]
    assert report["last_health_output"]["app"] == "smtp.invalid:25 unreachable"
    assert "waiting for smtp.invalid:25" in report["last_log_lines"]["app"][-1]

    evidence = Evidence(str(tmp_path / "bundle"), Redactor({SECRET}))
    files = write_evidence(client, evidence, domain, report, observer)
    names = sorted(os.path.basename(f) for f in files)
    assert names == sorted(["verdict.json", "%s_app.service-ps.txt" % stack_name(domain), "task-errors.txt",
                            "app.health.txt", "app.logs.txt"])
    assert all(os.path.dirname(f) == str(tmp_path / "bundle" / "converge" / domain) for f in files)
    text = {os.path.basename(f): open(f).read() for f in files}
    assert "smtp.invalid:25 unreachable" in text["app.health.txt"]
    assert "waiting for smtp.invalid:25" in text["app.logs.txt"]
    assert "Starting" in text["%s_app.service-ps.txt" % stack_name(domain)]
    assert all(SECRET not in body for body in text.values()) and "[REDACTED]" in text["app.logs.txt"]


def test_slow_but_printing_progress_converges_and_is_never_wedged(stacks):
    domain = stacks("slow", lambda stack: compose(
        stack, "i=0; while [ $i -lt 11 ]; do i=$((i+1)); echo \"$(date) step $i/11\"; sleep 2; done; "
               "touch /tmp/ready; echo ready; exec sleep 3600", healthcheck=HEALTHY_WHEN_FILE))
    report, _observer = watch(DockerClient(), domain, timeout=120, wedge_window=10, poll=2)
    assert report["verdict"] == "converged", report
    assert report["elapsed"] >= 18  # it did take longer than the wedge window, twice over
    assert report["progress_events"]["count"] >= 10 and report["longest_quiet"] < 10
    assert any(line.endswith("step 11/11") for line in report["last_log_lines"]["app"])


def test_exit_1_at_start_is_a_crashloop_long_before_the_timeout(stacks, tmp_path):
    domain = stacks("crash", lambda stack: compose(
        stack, "echo 'FATAL: config file /etc/app.conf missing' >&2; exit 1",
        deploy="restart_policy:\n  delay: 2s\n"))
    res = run_converge(tmp_path, domain, timeout=3600, wedge_window=60, evidence_dir=str(tmp_path / "evidence"))
    assert res["failed"] is True and res["verdict"] == "crashloop", res
    assert res["elapsed"] < 60, res["elapsed"]
    assert res["msg"].startswith("crashloop: 3 tasks of app failed within 60 s (last error: task: non-zero exit (1))")
    assert res["msg"].endswith("; evidence: %s" % (tmp_path / "evidence" / "converge" / domain))
    assert res["task_errors"] == {"app": ["task: non-zero exit (1)"]}
    assert "FATAL: config file /etc/app.conf missing" in res["last_log_lines"]["app"]
    written = sorted(os.listdir(tmp_path / "evidence" / "converge" / domain))
    assert written == sorted(["verdict.json", "%s_app.service-ps.txt" % stack_name(domain), "task-errors.txt",
                              "app.logs.txt"])
    assert sorted(res["evidence"]) == sorted(str(tmp_path / "evidence" / "converge" / domain / f) for f in written)


def test_failed_update_with_rollback_is_rolled_back_then_a_good_redeploy_converges(stacks):
    good = "echo v1 up; touch /tmp/ready; exec sleep 3600"
    rollback = "update_config:\n  failure_action: rollback\n  monitor: 5s\n  order: stop-first\n"
    domain = stacks("roll", lambda stack: compose(stack, good, healthcheck=HEALTHY_WHEN_FILE, deploy=rollback))
    client = DockerClient()
    report, _ = watch(client, domain, timeout=120, wedge_window=30, version="1.0.0+1")
    assert report["verdict"] == "converged", report

    stacks("roll", lambda stack: compose(stack, "echo 'v2: cannot write app.ini' >&2; exit 1", version="2.0.0+1",
                                         healthcheck=HEALTHY_WHEN_FILE, deploy=rollback))
    report, _ = watch(client, domain, timeout=300, wedge_window=60, version="2.0.0+1")
    assert report["verdict"] == "rolled-back", report
    assert report["message"].startswith("rolled-back: app update rolled back (rollback_"), report["message"]

    # a fresh deploy resets swarm's update status: the old rollback does not poison the next watch
    stacks("roll", lambda stack: compose(stack, good, version="1.0.1+1", healthcheck=HEALTHY_WHEN_FILE,
                                         deploy=rollback))
    report, _ = watch(client, domain, timeout=120, wedge_window=30, version="1.0.1+1")
    assert report["verdict"] == "converged", report
