"""Whose failure a failed promote is: the recipe's (failed, refused), the server's (infra) or the
harness's own task (harness-error), decided once (module_utils/_infra.py) for the promote role,
promote.yml's exit code and canon.

The promote role asks the rule through the ``promote_failure`` filter, as the lifecycle asks
``tier_failure``; ``promote.yml`` ends with ``canon_outcome kind=promote`` (INFRA and HARNESS
ERROR exit 4, a red promote 2, green 0); canon's ``promote_record`` reads the role's outcome
(a harness error is infra with signature ``harness-error``, as ``cold_record`` reads it) and
nothing in canon counts either red. The inputs are a made-up recipe ("ledger": an api and a
worker, a database readiness probe), not the bench's six. In the slow tests ``ansible-playbook``
runs the role's own advance.yml on localhost hosts, one per case, against a stand-in docker and
abra, and promote.yml's own last task on recorded promotions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import xml.etree.ElementTree as ET

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.coopcloud.canon.plugins.filter.promote_failure import promote_failure as failure_filter
from ansible_collections.coopcloud.canon.plugins.module_utils import _infra, _ladder
from ansible_collections.coopcloud.canon.plugins.module_utils._names import stack_name
from localplay import ROOT, run_play

TB = "(traceback unavailable)"  # ansible-core 2.19 puts this on every failure
PROXY = "https://10.20.30.40:9443"
# swarm_converge's words when swarm's allocator never took the new release's tasks
STUCK = ("wedged: no progress for 4 min (last: task api.1 new 4 min ago); 3 task(s) stuck in swarm's new state "
         "(never allocated: api, worker); evidence: /r/ledger-1/evidence/converge/warm-canon-ledger.example.org")
# a template error in a promote task, as ansible-core 2.19.14 reports it (recorded, see test_infra.py)
TEMPLATE = ("Task failed: Finalization of task args for 'coopcloud.canon.routing_identity' failed: Error while "
            "resolving value for 'codes': 'dict object' has no attribute 'health_codes'")
READINESS = ("exec in warm-canon-ledger_example_org_api: pg_isready -d ledger never became ready: 12 attempts in "
             "60.3s, 3 in a row needed; last: pg_isready exited 2: /run/postgresql:5432 - no response")


# -- the rule -------------------------------------------------------------------------------
@pytest.mark.parametrize("result, recipe_outcome, want", [
    # the advance's deploy: tasks never allocated is the server's
    ({"failed": True, "msg": STUCK, "verdict": "wedged"}, "failed", ("infra", "allocator-stuck")),
    # the engine gone while reading what runs on the warm domain, before any advance
    ({"failed": True, "msg": "docker service ls failed (exit 1)", "rc": 1,
      "stderr": "error during connect: Get \"http://%2Fvar%2Frun%2Fdocker.sock/v1.47/services\": EOF"},
     "refused", ("infra", "engine-down")),
    # the routing identity through a proxy that refuses connections
    ({"failed": True, "msg": "no answer from https://10.20.30.40:9443/: <urlopen error [Errno 111] Connection refused>"},
     "failed", ("infra", "proxy-down")),
    # the recipe's own: a readiness probe red on the canonical, a refusal before the advance
    ({"failed": True, "exception": TB, "msg": READINESS}, "failed", ("failed", None)),
    ({"failed": True, "msg": "refusing to promote ledger 2.4.0: /r/c/result.json: cold run c of 2.4.0 is 'fail', not pass"},
     "refused", ("refused", None)),
    # a task timeout is what a stuck app looks like: the recipe's
    ({"failed": True, "exception": TB, "msg": "Task failed: Timed out after 600 second(s).", "timedout": {"period": 600}},
     "failed", ("failed", None)),
])
def test_whose_failure(result, recipe_outcome, want):
    rec = _infra.promote_failure(result, "promote - a step", [PROXY], recipe_outcome)
    assert (rec["outcome"], rec.get("infra")) == want
    assert "harness_error" not in rec
    assert rec["in_place_error"].startswith(result["msg"])
    if result.get("stderr"):
        assert result["stderr"] in rec["in_place_error"]  # the whole error: what decided it is kept


@pytest.mark.parametrize("result, kind", [
    ({"failed": True, "exception": TB, "msg": TEMPLATE}, "template"),
    ({"failed": True, "exception": TB, "msg": "Task failed: Module failed: 'NoneType' object is not subscriptable"},
     "module-crash"),
    ({"failed": True, "msg": "Unsupported parameters for (coopcloud.canon.env_drift) module: generate. "
      "Supported parameters include: domain, recipe, reconcile, version."}, "module-arguments"),
])
@pytest.mark.parametrize("recipe_outcome", ["failed", "refused"])
def test_a_harness_task_that_broke_is_a_harness_error_wherever_it_broke(result, kind, recipe_outcome):
    task = "promote - the warm domain answers from this stack, warm-canon-ledger.example.org"
    rec = _infra.promote_failure(result, task, [PROXY], recipe_outcome)
    assert rec["outcome"] == "harness-error" and "infra" not in rec
    assert rec["harness_error"] == {"kind": kind, "task": task, "error": result["msg"]}
    assert rec["in_place_error"].startswith("harness error (%s) in task %r: " % (kind, task))


def test_the_filter_takes_what_ansible_passes():
    assert failure_filter({"msg": STUCK}, "t", PROXY) == _infra.promote_failure({"msg": STUCK}, "t", [PROXY])
    assert failure_filter("a plain string error", None)["outcome"] == "failed"
    assert failure_filter({"msg": READINESS}, "t", "", "refused")["outcome"] == "refused"
    with pytest.raises(AnsibleFilterError, match="recipe_outcome must be one of failed, refused"):
        failure_filter({"msg": READINESS}, "t", "", "fail")


# -- promote.yml's verdict --------------------------------------------------------------------
def promotion(outcome, **extra):
    return dict({"outcome": outcome, "run_id": "ledger-1", "results": "/r/ledger-1/promote.json", "mode": "advance",
                 "in_place_error": "", "fallback": False, "fallback_error": ""}, **extra)


INFRA_PROMOTION = promotion("infra", infra="allocator-stuck", in_place_error=STUCK)
HARNESS_PROMOTION = promotion("harness-error", in_place_error="harness error (template) in task 'promote - x': " + TEMPLATE,
                              harness_error={"kind": "template", "task": "promote - x", "error": TEMPLATE})
FAILED_PROMOTION = promotion("failed", in_place_error=READINESS)
VERDICTS = [
    ([promotion("promoted")], "pass", "1 run(s) passed: /r/ledger-1/promote.json"),
    ([promotion("promoted-by-fallback", fallback=True, in_place_error=READINESS)], "pass", "passed"),
    ([promotion("current", mode="current")], "pass", "passed"),
    ([INFRA_PROMOTION], "infra", "INFRA (allocator-stuck): the server could not take the run, not the recipe's failure "
                                 "(/r/ledger-1/promote.json)"),
    ([HARNESS_PROMOTION], "infra", "HARNESS ERROR in promote task 'promote - x': not the recipe's failure"),
    ([FAILED_PROMOTION], "red", "PROMOTION FAILED: " + READINESS + " (/r/ledger-1/promote.json)"),
    ([promotion("refused", mode="", in_place_error="refusing to promote ledger 2.4.0: no")], "red",
     "PROMOTION REFUSED: refusing to promote ledger 2.4.0: no"),
    # the fallback's own error is the one said when it was used and failed too
    ([promotion("failed", fallback=True, in_place_error=READINESS, fallback_error="clean re-deploy: 0/1 running")],
     "red", "PROMOTION FAILED: clean re-deploy: 0/1 running"),
    # stopped before its record (promote.yml's rescue): no run
    ([{"outcome": "infra", "infra": "server-busy", "run_id": None, "results": "no promote.json written: refusing"}],
     "infra", "INFRA (server-busy)"),
    ([promotion("pending")], "red", "PROMOTION PENDING"),
    ([], "red", "no run recorded an outcome"),
]


@pytest.mark.parametrize("records, status, words", VERDICTS)
def test_promote_verdict(records, status, words):
    got = _ladder.runs_verdict(_ladder.promote_runs(records))
    assert got["status"] == status and words in got["msg"], got


# -- canon reads the role's outcome ---------------------------------------------------------
def job(promotions, status="successful", failures=()):
    return types.SimpleNamespace(promotions=list(promotions), status=status, failures=list(failures),
                                 started=1.0, finished=2.0, duration=1.0, deprecations=[])


SERVER = types.SimpleNamespace(name="edge-2", host="edge-2", vars={"canon_proxy_url": PROXY})


def test_promote_record_reads_the_roles_outcome():
    from canon.sweep import promote_record
    rec = promote_record(job([INFRA_PROMOTION]), "/r", SERVER)
    assert rec["outcome"] == "infra" and rec["infra"] == "allocator-stuck" and rec["detail"] == STUCK
    assert rec["result"] == "/r/ledger-1/promote.json"
    # the signature is the role's, even when the words that decided it are not in the detail
    rec = promote_record(job([promotion("infra", infra="engine-down", in_place_error="docker service ls failed")]), "/r")
    assert rec["outcome"] == "infra" and rec["infra"] == "engine-down"
    rec = promote_record(job([HARNESS_PROMOTION]), "/r", SERVER)
    assert rec["outcome"] == "infra" and rec["infra"] == "harness-error"
    assert rec["harness_error"]["kind"] == "template" and TEMPLATE in rec["detail"]
    rec = promote_record(job([FAILED_PROMOTION]), "/r", SERVER)
    assert rec["outcome"] == "failed" and "infra" not in rec and rec["detail"] == READINESS
    # the in-place failure decides, as in the role: a fallback that then hit the server keeps it red
    rec = promote_record(job([promotion("failed", fallback=True, in_place_error=READINESS, fallback_error=STUCK)]),
                         "/r", SERVER)
    assert rec["outcome"] == "failed" and rec["detail"] == STUCK
    assert _ladder.runs_verdict(_ladder.promote_runs([promotion("failed", fallback_error=STUCK)]))["status"] == "red"
    # a record written before the role decided: its in-place error is read by the same rules
    rec = promote_record(job([promotion("failed", in_place_error=STUCK)]), "/r", SERVER)
    assert rec["outcome"] == "infra" and rec["infra"] == "allocator-stuck"
    # promote.yml's rescue: stopped before the role wrote a record
    rec = promote_record(job([{"outcome": "infra", "infra": "server-busy", "run_id": None, "in_place_error": "x"}],
                             status="failed"), "/r", SERVER)
    assert rec["outcome"] == "infra" and rec["infra"] == "server-busy" and rec["result"] is None
    # a playbook that ended without any record: the signature is named too
    rec = promote_record(job([], status="failed", failures=[{"task": "t", "msg": "write /var/lib/docker/x: "
                                                                                 "no space left on device"}]), "/r")
    assert rec["outcome"] == "infra" and rec["infra"] == "disk-full"


def sweep_entry(promote):
    return {"recipe": "ledger", "status": "done", "version": "2.4.0",
            "cold": {"outcome": "pass", "tiers": [{"name": "install", "outcome": "pass", "duration": 1.0}],
                     "result": "/r/c/result.json", "run_id": "c"},
            "promote": promote}


@pytest.mark.parametrize("promoted", [INFRA_PROMOTION, HARNESS_PROMOTION])
def test_nothing_in_canon_counts_an_infra_or_harness_promote_red(promoted):
    from canon import redfix, report
    from canon.classifier import observation
    from canon.sweep import PROMOTE_RED, promote_record
    from canon.verdict import _observation
    rec = promote_record(job([promoted]), "/r", SERVER)
    entry = sweep_entry(rec)
    assert rec["outcome"] not in PROMOTE_RED and not redfix.red(entry)
    assert rec["outcome"] not in report.PROMOTE_FAILED
    cell = report.promote_failure(entry)
    assert cell.startswith("promote: infra (%s) — " % rec["infra"]), cell
    # never red: the banner names it apart, with its signature, as a cold run's infra
    assert report.red_items({"recipes": [entry]}) == []
    assert report.banner_groups({"recipes": [entry]})["infra"] == ["ledger (promote: %s)" % rec["infra"]]
    assert report.red_items({"recipes": [sweep_entry(promote_record(job([FAILED_PROMOTION]), "/r"))]}) == [
        "ledger promote"]
    # JUnit: an error of type infra, never a failure
    suite = ET.fromstring(report.junit_xml({"recipes": [entry], "summary": {}, "outcome": "infra"}))
    assert not suite.findall(".//failure")
    [error] = suite.findall(".//error")
    assert error.get("type") == "infra" and rec["infra"] in error.get("message")
    # classification: an infra observation with the role's signature, never recipe evidence
    obs = observation("isolated", "promote", rec)
    assert obs["outcome"] == "infra" and obs["fingerprint"] is None
    assert _observation(obs)["infra"] == rec["infra"]
    # a record read as the role wrote it (harness-error) is infra too
    raw = observation("isolated", "promote", dict(promoted, detail=promoted["in_place_error"]))
    assert raw["outcome"] == "infra"


def test_the_sweep_outcome_is_infra_not_fail():
    from canon.sweep import Sweep, promote_record
    sweep = Sweep.__new__(Sweep)
    sweep.doc = {"recipes": [sweep_entry(promote_record(job([INFRA_PROMOTION]), "/r", SERVER))],
                 "started_epoch": 0.0, "load": None}
    sweep.servers, sweep.sampler = [SERVER], types.SimpleNamespace(samples=[])
    sweep.save = lambda: None
    sweep.finish()
    assert sweep.doc["outcome"] == "infra" and sweep.doc["summary"]["infra"] == 1
    sweep.doc["recipes"] = [sweep_entry(promote_record(job([FAILED_PROMOTION]), "/r", SERVER))]
    sweep.finish()
    assert sweep.doc["outcome"] == "fail"


# -- the role asks the rule -----------------------------------------------------------------
PROMOTE_TASKS = os.path.join(ROOT, "roles", "promote", "tasks")


def load(name):
    with open(os.path.join(PROMOTE_TASKS, name)) as fh:
        return yaml.safe_load(fh)


def test_the_role_asks_the_filter_in_both_rescues():
    [advance] = load("advance.yml")
    decide = advance["rescue"][0]
    assert "coopcloud.canon.promote_failure(" in decide["ansible.builtin.set_fact"]["canon_promote"]
    assert "'failed'" in decide["ansible.builtin.set_fact"]["canon_promote"]
    [fallback] = [t for t in advance["rescue"] if "fallback.yml" in str(t.get("ansible.builtin.include_tasks"))]
    assert "canon_promote.outcome == 'failed'" in fallback["when"]
    [block] = [t for t in load("main.yml") if "block" in t]
    assert "coopcloud.canon.promote_failure(" in block["rescue"][0]["ansible.builtin.set_fact"]["canon_promote_failure"]
    assert "'refused'" in block["rescue"][0]["ansible.builtin.set_fact"]["canon_promote_failure"]
    for name in os.listdir(PROMOTE_TASKS):
        with open(os.path.join(PROMOTE_TASKS, name)) as fh:
            text = fh.read()
        # no task file restates the signatures or the harness kinds
        for restated in ("stuck in swarm", "no space left", "is undefined", "Task failed"):
            assert restated not in text, (name, restated)


FAKE_DOCKER = r'''#!{python}
"""A swarm with one stack, {stack}: before abra upgrades it, release {v1} running; after, {v2}
with its tasks as the case says ({tasks})."""
import json, os, sys
args = sys.argv[1:]
upgraded = os.path.exists({marker!r})
version = {v2!r} if upgraded else {v1!r}
state = {tasks!r} if upgraded else "running"
services = ["api", "worker"]
def out(text, rc=0, err=""):
    sys.stdout.write(text); sys.stderr.write(err); sys.exit(rc)
def svc(name):
    return {{"ID": "s-" + name, "Spec": {{"Name": "{stack}_" + name, "Mode": {{"Replicated": {{"Replicas": 1}}}},
            "Labels": {{"coop-cloud.{stack}.version": version}},
            "TaskTemplate": {{"ContainerSpec": {{"Image": "ledger/" + name + ":" + version}}}}}}}}
def task(name):
    status = {{"State": state, "Timestamp": "2026-01-05T10:00:00Z"}}
    if state == "running":
        status["ContainerStatus"] = {{"ContainerID": "c-" + name}}
    return {{"ID": "t-" + name, "ServiceID": "s-" + name, "Slot": 1, "DesiredState": "running", "Status": status}}
if args[:2] == ["service", "ls"]:
    out("\n".join("{stack}_" + s for s in services) + "\n")
if args[:2] == ["service", "inspect"]:
    out(json.dumps([svc(a.split("_")[-1]) for a in args[2:]]))
if args[:3] == ["service", "ps", "--quiet"]:
    out("\n".join("t-" + a.split("_")[-1] for a in args[4:]) + "\n")
if args[:3] == ["inspect", "--type", "task"]:
    out(json.dumps([task(a[2:]) for a in args[3:]]))
if args[:3] == ["inspect", "--type", "container"]:
    out(json.dumps([{{"Id": a, "Config": {{"Labels": {{"com.docker.swarm.service.id": "s-" + a[2:]}}}}, "State": {{}}}}
                    for a in args[3:]]))
if args[:2] == ["ps", "-q"]:
    out("c-api\n" if state == "running" else "")
if args[:1] == ["exec"]:
    out("", 2, "/run/postgresql:5432 - no response\n")
out("")
'''

FAKE_ABRA = '''#!/bin/sh
# abra's stand-in: every call succeeds; an upgrade moves the stack to the new release
echo "$*" >> {log}
[ "$1 $2" = "app upgrade" ] && touch {marker}
exit 0
'''
V1, V2 = "2.3.1+16.4", "2.4.0+16.4"
DOMAIN = "warm-canon-ledger.example.org"


def recipe_repo(path):
    """The ledger recipe as a git checkout with the two releases (no env drift between them)."""
    path.mkdir(parents=True)
    (path / ".env.sample").write_text("TYPE=ledger\nDOMAIN=ledger.example.com\nLETS_ENCRYPT_ENV=production\n")
    (path / "compose.yml").write_text("version: '3.8'\nservices:\n  api:\n    image: ledger/api:1\n"
                                      "  worker:\n    image: ledger/worker:1\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.org", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@example.org")
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "ledger"], ["tag", V1], ["tag", V2]):
        subprocess.run(["git", "-C", str(path)] + argv, check=True, env=env, capture_output=True)


@pytest.mark.slow
def test_the_roles_advance_records_whose_failure_it_was(tmp_path):
    stack = stack_name(DOMAIN)
    settings = {"warm_strategy": "in-place-then-redeploy", "heavy": False, "deploy_timeout": 60, "wedge_window": 3,
                "readiness": [], "identity_path": "", "identity_expect": "", "health_path": "/api/health",
                "content_marker": "", "health_codes": [200]}
    readiness = [{"type": "exec", "service": "api", "command": ["pg_isready", "-d", "ledger"], "stable": 2,
                  "interval": 1, "timeout": 2}]
    cases = {
        # the in-place advance: abra upgrades, swarm never allocates the new release's tasks
        "stuck": ("advance", "new", settings),
        # a template error in the promote role's own identity task (a settings key it expects is gone)
        "broken": ("verify", "running", {k: v for k, v in settings.items() if k != "health_codes"}),
        # the recipe's own: its readiness probe stays red on the canonical (no fallback for this recipe)
        "red": ("advance", "running", dict(settings, readiness=readiness, warm_strategy="in-place")),
    }
    hosts = {}
    for name, (mode, tasks, case_settings) in cases.items():
        root = tmp_path / name
        abra_dir = root / "abra"
        (abra_dir / "servers" / "default").mkdir(parents=True)
        (abra_dir / "servers" / "default" / (DOMAIN + ".env")).write_text(
            "TYPE=ledger:%s\nDOMAIN=%s\nLETS_ENCRYPT_ENV=production\n" % (V1 if mode == "advance" else V2, DOMAIN))
        recipe_repo(abra_dir / "recipes" / "ledger")
        marker = root / "upgraded"
        if mode == "verify":
            marker.write_text("")
        docker, abra = root / "docker", root / "abra-bin"
        docker.write_text(FAKE_DOCKER.format(python=sys.executable, stack=stack, v1=V1, v2=V2, tasks=tasks,
                                             marker=str(marker)))
        abra.write_text(FAKE_ABRA.format(log=root / "abra.log", marker=marker))
        docker.chmod(0o755)
        abra.chmod(0o755)
        hosts[name] = {
            "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
            "canon_recipe": "ledger", "canon_release": {"head": V2}, "canon_warm": {"domain": DOMAIN},
            "canon_warm_drift": True, "canon_settings": case_settings, "canon_run": {"run_id": "ledger-" + name},
            "canon_promote": {"outcome": "pending", "mode": mode, "in_place_error": "", "fallback": False,
                              "fallback_error": "", "drift": {}},
            "canon_tier": "promote", "canon_deadline": 600, "canon_app_env": {}, "canon_proxy_url": PROXY,
            "canon_probe_image": "busybox:stable", "canon_proxy_network": "proxy", "canon_heavy_lock_name": "heavy",
            "case_abra_bin": str(abra), "case_docker_bin": str(docker), "case_abra_dir": str(abra_dir),
            "case_state_dir": str(root / "state")}
    play = [{"name": "the promote's advance", "hosts": "all", "gather_facts": False,
             "module_defaults": {
                 "group/coopcloud.canon.abra": {"abra_bin": "{{ case_abra_bin }}", "docker_bin": "{{ case_docker_bin }}",
                                                "abra_dir": "{{ case_abra_dir }}", "server": "default",
                                                "docker_context": ""},
                 "group/coopcloud.canon.canon": {"state_dir": "{{ case_state_dir }}"}},
             "tasks": [
                 {"name": "the advance",
                  "ansible.builtin.include_role": {"name": "coopcloud.canon.promote", "tasks_from": "advance.yml"}},
                 {"name": "keep", "ansible.builtin.copy": {
                     "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "content": "{{ canon_promote | to_json }}"}},
             ]}]
    run_play(tmp_path, hosts, play)
    got = {name: json.loads((tmp_path / (name + ".json")).read_text()) for name in cases}
    calls = {name: (tmp_path / name / "abra.log").read_text() if (tmp_path / name / "abra.log").exists() else ""
             for name in cases}

    stuck = got["stuck"]
    assert stuck["outcome"] == "infra" and stuck["infra"] == "allocator-stuck", stuck
    assert "stuck in swarm's new state (never allocated: api, worker)" in stuck["in_place_error"], stuck
    assert "harness_error" not in stuck
    # the server could not take the deploy: no fallback removed the warm app to deploy it again
    assert stuck["fallback"] is False and "app upgrade" in calls["stuck"]
    assert "backup" not in calls["stuck"] and "app remove" not in calls["stuck"] and "undeploy" not in calls["stuck"]

    broken = got["broken"]
    assert broken["outcome"] == "harness-error" and "infra" not in broken, broken
    he = broken["harness_error"]
    assert he["kind"] == "template" and "health_codes" in he["error"], he
    assert he["task"].startswith("promote - the warm domain answers from this stack"), he
    assert broken["in_place_error"].startswith("harness error (template) in task "), broken
    assert broken["fallback"] is False and "app remove" not in calls["broken"]

    red = got["red"]
    assert red["outcome"] == "failed" and "infra" not in red and "harness_error" not in red, red
    assert "pg_isready" in red["in_place_error"] and "never became ready" in red["in_place_error"], red


def test_promote_yml_ends_with_the_verdict():
    with open(os.path.join(ROOT, "playbooks", "promote.yml")) as fh:
        [play] = yaml.safe_load(fh)
    last = play["tasks"][-1]
    assert last["coopcloud.canon.canon_outcome"]["kind"] == "promote"
    assert "canon_promotions" in last["coopcloud.canon.canon_outcome"]["outcomes"]
    [guarded] = [t for t in play["tasks"] if "rescue" in t]
    assert guarded["block"][0]["ansible.builtin.include_role"]["name"] == "coopcloud.canon.promote"
    assert "coopcloud.canon.promote_failure(" in guarded["rescue"][0]["ansible.builtin.set_fact"]["canon_start_failure"]


@pytest.mark.slow
@pytest.mark.parametrize("records, rc, words", [
    ([promotion("promoted")], 0, "1 run(s) passed"),
    ([INFRA_PROMOTION], 4, "INFRA (allocator-stuck)"),
    ([HARNESS_PROMOTION], 4, "HARNESS ERROR in promote task 'promote - x'"),
    ([FAILED_PROMOTION], 2, "PROMOTION FAILED: exec in"),
])
def test_promote_yml_exit_codes(tmp_path, records, rc, words):
    """promote.yml's own last task, run by ansible-playbook on recorded promotions."""
    with open(os.path.join(ROOT, "playbooks", "promote.yml")) as fh:
        [play] = yaml.safe_load(fh)
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"server": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "canon_promotions": records}}}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{"name": "verdict", "hosts": "all", "gather_facts": False,
                                                        "tasks": [play["tasks"][-1]]}], sort_keys=False))
    # -v and JSON results: the verdict's msg whole on one line, for a pass too
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    res = subprocess.run(["ansible-playbook", "-v", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == rc, res.stdout[-3000:] + res.stderr[-2000:]
    assert words in res.stdout, res.stdout[-3000:]


@pytest.mark.slow
def test_the_roles_rescue_records_whose_failure_it_was(tmp_path):
    """main.yml's own rescue, after a failing step: before any advance a refusal, the server's
    failure or the harness's; after the advance decided its outcome, the later failure beside it."""
    [block] = [t for t in load("main.yml") if "block" in t]
    steps = {
        "refusal": {"ansible.builtin.fail": {"msg": "refusing to promote ledger 2.4.0: /r/c/result.json: cold run c "
                                                    "of 2.4.0 is 'fail', not pass"}},
        "engine": {"ansible.builtin.fail": {"msg": "docker stack ls failed (exit 1): Cannot connect to the Docker "
                                                   "daemon at unix:///var/run/docker.sock. Is the docker daemon running?"}},
        "broken": {"ansible.builtin.debug": {"msg": "{{ canon_warm_before.app.version }}"}},
        "later": {"ansible.builtin.fail": {"msg": "abra app deploy failed (exit 1): FATA previous release gone"}},
    }
    hosts = {name: {"ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                    "canon_proxy_url": PROXY, "canon_warm_before": {},
                    "canon_promote": {"outcome": "failed" if name == "later" else "pending", "mode": "advance",
                                      "in_place_error": READINESS if name == "later" else "", "fallback": name == "later",
                                      "fallback_error": "", "drift": {}}}
             for name in steps}
    play = [{"name": "the promote's rescue", "hosts": "all", "gather_facts": False, "tasks": [
        {"name": "a promote step", "block": [dict(step, name="promote step %s" % name,
                                                  when="inventory_hostname == %r" % name)
                                             for name, step in steps.items()],
         "rescue": block["rescue"]},
        {"name": "keep", "ansible.builtin.copy": {
            "dest": str(tmp_path) + "/{{ inventory_hostname }}.json", "content": "{{ canon_promote | to_json }}"}},
    ]}]
    run_play(tmp_path, hosts, play)
    got = {name: json.loads((tmp_path / (name + ".json")).read_text()) for name in steps}
    assert got["refusal"]["outcome"] == "refused" and "is 'fail', not pass" in got["refusal"]["in_place_error"]
    assert got["engine"]["outcome"] == "infra" and got["engine"]["infra"] == "engine-down", got["engine"]
    broken = got["broken"]
    assert broken["outcome"] == "harness-error" and broken["harness_error"]["kind"] == "template", broken
    assert broken["harness_error"]["task"] == "promote step broken" and "no attribute 'app'" in broken["harness_error"]["error"]
    later = got["later"]
    assert later["outcome"] == "failed" and later["in_place_error"] == READINESS, later
    assert later["later_error"] == "abra app deploy failed (exit 1): FATA previous release gone", later


@pytest.mark.slow
@pytest.mark.parametrize("msg, rc, words", [
    # the claim refused because an isolation run has the server: the server could not take it
    ("refusing to start: an isolation run has server edge-2 to itself (ledger-20260105100000-0a0b0c)", 4,
     "INFRA (server-busy)"),
    # a claim refused for a reason of the promote's own (the base domain it was given): red
    ("refusing base domain example.org: every cold domain under it would be protected (a live service)", 2,
     "refusing base domain example.org"),
])
def test_promote_yml_says_why_a_promote_could_not_go_on(tmp_path, msg, rc, words):
    """promote.yml's rescue around the role, the role replaced by a step that fails as a claim does."""
    with open(os.path.join(ROOT, "playbooks", "promote.yml")) as fh:
        [play] = yaml.safe_load(fh)
    [guarded] = [t for t in play["tasks"] if "rescue" in t]
    guarded = dict(guarded, block=[{"name": "Claim a promote run", "ansible.builtin.fail": {"msg": msg}}])
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"server": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "canon_proxy_url": PROXY}}}}))
    (tmp_path / "play.yml").write_text(yaml.safe_dump([{"name": "promote", "hosts": "all", "gather_facts": False,
                                                        "tasks": [guarded, play["tasks"][-1]]}], sort_keys=False))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    res = subprocess.run(["ansible-playbook", "-v", "-i", str(tmp_path / "hosts.yml"), str(tmp_path / "play.yml")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == rc, res.stdout[-3000:] + res.stderr[-2000:]
    verdict = res.stdout[res.stdout.index("TASK [Promotion is its own outcome]"):] if rc == 4 else res.stdout
    assert words in verdict, res.stdout[-3000:]
