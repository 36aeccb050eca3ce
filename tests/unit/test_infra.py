"""Whose failure a failed tier is: the recipe's (fail), the server's (infra) or the harness's own
task (harness-error). The failure results below are ansible-core 2.19.14's own
``ansible_failed_result`` for each kind, recorded with a local playbook (rescue block), plus the
2.18 wordings the rules also accept."""
import pytest

from ansible_collections.coopcloud.canon.plugins.filter.tier_failure import tier_failure as tier_failure_filter
from ansible_collections.coopcloud.canon.plugins.module_utils import _infra

TB = "(traceback unavailable)"  # 2.19 puts this on every failure, deliberate or not

HARNESS = [
    # 2.19: an undefined variable in the harness's own task arguments
    ({"failed": True, "exception": TB, "msg": "Task failed: Finalization of task args for 'ansible.builtin.command' "
      "failed: Error while resolving value for '_raw_params': 'nope' is undefined"}, "template"),
    # 2.19: a filter that raised while templating
    ({"failed": True, "exception": TB, "msg": "Task failed: Finalization of task args for 'ansible.builtin.debug' "
      "failed: Error while resolving value for 'msg': The filter plugin 'ansible.builtin.from_json' failed: "
      "Expecting value: line 1 column 1 (char 0)"}, "template"),
    # 2.19: issue 14's conditional (a string where a boolean is required)
    ({"failed": True, "exception": TB, "msg": "Task failed: Conditional result (True) was derived from value of type "
      "'str' at 'roles/lifecycle/tasks/preflight.yml:19:25'. Conditionals must have a boolean result."},
     "conditional"),
    # 2.18 wordings
    ({"failed": True, "msg": "The conditional check 'canon_x.rc == 0' failed. The error was: error while evaluating "
      "conditional (canon_x.rc == 0): 'dict object' has no attribute 'rc'"}, "template"),
    ({"failed": True, "msg": "The task includes an option with an undefined variable. The error was: 'canon_y' is "
      "undefined"}, "template"),
    ({"failed": True, "msg": "MODULE FAILURE\nSee stdout/stderr for the exact error", "rc": 1,
      "module_stderr": "Traceback (most recent call last):\n  File \"x.py\", line 3\nKeyError: 'boom'"},
     "module-crash"),
    # 2.19: a module that raised
    ({"failed": True, "exception": TB, "msg": "Task failed: Module failed: 'boom'", "_ansible_parsed": True},
     "module-crash"),
    # a module called with arguments it does not take: the harness's call is wrong
    ({"failed": True, "exception": TB, "msg": "Unsupported parameters for (coopcloud.canon.abra_app) module: bogus. "
      "Supported parameters include: domain."}, "module-arguments"),
    ({"failed": True, "msg": "argument 'timeout' is of type str and we were unable to convert to int: "
      "\"'notanint'\" cannot be converted to an int"}, "module-arguments"),
    # a tool the harness shells out to is missing: the shell's 127, command's exec failure
    ({"failed": True, "rc": 127, "stderr": "/bin/sh: 1: yq: not found", "msg": "non-zero return code",
      "cmd": "yq .x f"}, "missing-tool"),
    ({"failed": True, "rc": 2, "msg": "Error executing command.", "cmd": "nosuchtool-xyz --x", "stderr": ""},
     "missing-tool"),
    ({"failed": True, "msg": "[Errno 2] No such file or directory: b'jq'"}, "missing-tool"),
    # the custom tier's own words when the harness could not run the suite at all
    ({"failed": True, "assertion": "not canon_runner_broken", "evaluated_to": False,
      "msg": "the custom suite could not run: exit 1 pytest is not installed for /usr/bin/python3: "
             "/usr/bin/python3: No module named pytest"}, "suite-runner"),
    # any other error the 2.19 task executor raised itself
    ({"failed": True, "exception": TB, "msg": "Task failed: Action failed: could not read the results folder"},
     "task-error"),
]

RECIPE = [
    # a module's deliberate fail_json about what it checked, assert's fail_msg: the recipe's
    {"failed": True, "exception": TB, "msg": "the recipe answered 500"},
    {"failed": True, "msg": "custom tests failed: E   AssertionError: expected 3 rows, got 2 | 1 failed"},
    # the same words inside a suite's own failure are the suite's, not the harness's
    {"failed": True, "msg": "custom tests failed: E   AssertionError: 'the custom suite could not run: x'"},
    {"failed": True, "msg": "abra app deploy failed (exit 1): FATA deploy timed out after 300s"},
    {"failed": True, "msg": "Status code was 502 and not [200]: HTTP Error 502: Bad Gateway", "status": 502},
    # a task timeout is what a stuck app looks like, not a harness fault
    {"failed": True, "exception": TB, "msg": "Task failed: Timed out after 600 second(s).",
     "timedout": {"period": 600}},
    # a command of the recipe's suite that exits 2 is the suite's answer
    {"failed": True, "rc": 2, "msg": "non-zero return code", "cmd": "pytest -q", "stderr": "1 failed"},
    # words the recipe's own output may contain, not Ansible's
    {"failed": True, "msg": "restore: the value of STATE is undefined in the app's answer"},
    {"failed": True, "msg": "custom tests failed: Traceback (most recent call last): ... AssertionError"},
]


@pytest.mark.parametrize("result, kind", HARNESS)
def test_harness_errors_are_recognised(result, kind):
    assert _infra.harness_error(result) == kind
    assert kind in _infra.HARNESS_KINDS
    rec = _infra.tier_failure(result, "upgrade - deploy the head release")
    assert rec["outcome"] == "harness-error" and rec["harness_error"] == kind
    # the record names the task and keeps the whole error
    assert "'upgrade - deploy the head release'" in rec["error"]
    assert result["msg"].splitlines()[0] in rec["error"]
    assert rec["task"] == "upgrade - deploy the head release"


@pytest.mark.parametrize("result", RECIPE)
def test_deliberate_failures_stay_the_recipes(result):
    assert _infra.harness_error(result) is None
    rec = _infra.tier_failure(result, "custom - the suite passed")
    assert rec["outcome"] == "fail" and rec["error"].startswith(result["msg"])
    assert "infra" not in rec and "harness_error" not in rec


@pytest.mark.parametrize("result, signature", [
    # an image that does not exist: the server (registry) could not give it, whatever the task
    ({"failed": True, "msg": "abra app deploy failed (exit 1): FATA image example/nosuch:1.0 could not be accessed "
      "on a registry to record its digest"}, "image-unavailable"),
    ({"failed": True, "msg": "non-zero return code", "rc": 1,
      "stderr": "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"},
     "engine-down"),
    ({"failed": True, "msg": "write /var/lib/docker/x: no space left on device"}, "disk-full"),
    # infra is decided before harness-error: a missing abra is the server's, not a harness bug
    ({"failed": True, "rc": 127, "stderr": "/bin/sh: 1: abra: not found", "msg": "non-zero return code"},
     "abra-missing"),
])
def test_infra_is_decided_first(result, signature):
    rec = _infra.tier_failure(result, "install - deploy")
    assert rec["outcome"] == "infra" and rec["infra"] == signature


def test_the_proxy_address_comes_from_the_caller():
    result = {"failed": True, "msg": "Status code was -1: <urlopen error [Errno 111] Connection refused>",
              "url": "http://10.9.8.7:8443/"}
    result["msg"] += " dial tcp 10.9.8.7:8443: connect: connection refused"
    assert _infra.tier_failure(result, "t")["outcome"] == "fail"
    assert _infra.tier_failure(result, "t", ["http://10.9.8.7:8443"])["infra"] == "proxy-down"
    assert tier_failure_filter(result, "t", "http://10.9.8.7:8443")["infra"] == "proxy-down"
    assert tier_failure_filter(result, "t", "")["outcome"] == "fail"


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:8480", "127.0.0.1:8480"),
    ("https://edge.example.org/", "edge.example.org:443"),
    ("http://edge.example.org", "edge.example.org:80"),
    ("", None),
])
def test_proxy_patterns(url, expected):
    pats = _infra.proxy_patterns(url)
    if expected is None:
        assert pats == ()
    else:
        assert any(p.search("connect to %s: connection refused" % expected) for p in pats)
        assert not any(p.search("connect to 192.0.2.1:1: connection refused") for p in pats)


def test_the_filter_takes_what_ansible_passes():
    assert tier_failure_filter("a plain string error", "t")["outcome"] == "fail"
    rec = tier_failure_filter({"msg": "Task failed: Module failed: 'x'"}, None)
    assert rec["outcome"] == "harness-error" and rec["task"] == ""
