"""The module base (plugins/module_utils/_module.py): the option groups merged into each module's
spec, and kept equal to meta/runtime.yml's action groups; names refused before any command;
clients built when first used; a CommandError ended through fail_json with cmd, rc, stdout and
stderr, never a traceback, while an unknown exception stays one."""
from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.coopcloud.canon.plugins.module_utils._module import (
    GROUPS, CanonModule, abra_options, canon_options, check_names, given, merge_specs, name_checks)
from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import CommandError, Result

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = "ansible_collections.coopcloud.canon.plugins.modules."
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                 if f.endswith(".py") and not f.startswith("_"))
DOMAIN = "cust-1a2b3c.bench.canon.test"


# -- a stand-in for AnsibleModule: the params given, fail_json and exit_json raise -----------------
class Ended(Exception):
    def __init__(self, how, result):
        super().__init__(how)
        self.how, self.result = how, result


def fake_module_class(params: dict):
    class Fake:
        def __init__(self, argument_spec, **kwargs):
            self.argument_spec, self.kwargs = argument_spec, kwargs
            self.params = {k: v.get("default") for k, v in argument_spec.items()}
            self.params.update(params)
            self.check_mode, self._diff = False, False

        def fail_json(self, **result):
            raise Ended("fail", dict(result, failed=True))

        def exit_json(self, **result):
            raise Ended("exit", result)
    return Fake


def base(params: dict, spec=None, **kwargs) -> CanonModule:
    return CanonModule(fake_module_class(params), spec or {}, **kwargs)


# -- the spec merge ---------------------------------------------------------------------------------
def test_the_groups_options_come_first_then_the_modules_own():
    spec = merge_specs(dict(domain=dict(type="str", required=True)), ("abra",))
    assert list(spec) == list(abra_options()) + ["domain"]
    assert spec["domain"] == dict(type="str", required=True)
    assert merge_specs(dict(x=dict(type="int")), ("canon",)) == dict(canon_options(), x=dict(type="int"))
    assert merge_specs(None) == {}


@pytest.mark.parametrize("spec,groups,why", [
    (dict(server=dict(type="str")), ("abra",), "option server is the module's own and the option group's"),
    (dict(state_dir=dict(type="path")), ("canon",), "option state_dir is the module's own"),
    ({}, ("nope",), "no option group 'nope'"),
])
def test_an_option_given_twice_or_an_unknown_group_is_refused(spec, groups, why):
    with pytest.raises(ValueError, match=why):
        merge_specs(spec, groups)


def test_each_call_gets_its_own_copy_of_a_groups_options():
    one = merge_specs({}, ("abra",))
    one["server"]["default"] = "changed"
    assert merge_specs({}, ("abra",))["server"]["default"] == "default"


class _Captured(Exception):
    pass


def _capture(*_args, **kwargs):
    raise _Captured(kwargs)


def argument_spec_of(name: str, monkeypatch) -> dict:
    mod = importlib.import_module(PKG + name)
    monkeypatch.setattr(mod, "AnsibleModule", _capture)
    with pytest.raises(_Captured) as exc:
        mod.main()
    return exc.value.args[0]["argument_spec"]


def runtime_groups() -> dict:
    with open(os.path.join(ROOT, "meta", "runtime.yml")) as fh:
        return yaml.safe_load(fh)["action_groups"]


def test_the_action_groups_are_the_option_groups():
    assert sorted(runtime_groups()) == sorted(GROUPS)


@pytest.mark.parametrize("name", MODULES)
def test_a_member_of_an_action_group_takes_every_option_of_the_group(name, monkeypatch):
    """module_defaults for a group hand all its options to every member: a member without one
    would fail with 'Unsupported parameters'; one that reads it otherwise would get a surprise."""
    spec = argument_spec_of(name, monkeypatch)
    for group, members in runtime_groups().items():
        if name in members:
            options = GROUPS[group][0]()
            assert {k: spec.get(k) for k in options} == options, (name, group)


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_names_the_action_group_of_a_member(name):
    """A member extends its group's attributes fragment (ansible-doc shows ``action_group``), and
    only a member does."""
    mod = importlib.import_module(PKG + name)
    refs = yaml.safe_load(mod.DOCUMENTATION).get("extends_documentation_fragment") or []
    prefix = "coopcloud.canon.attributes.actiongroup_"
    assert sorted(r[len(prefix):] for r in refs if r.startswith(prefix)) == \
        sorted(g for g, members in runtime_groups().items() if name in members)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_each_action_group_fragment_names_its_group(group):
    frag = importlib.import_module("ansible_collections.coopcloud.canon.plugins.doc_fragments.attributes")
    attribute = yaml.safe_load(getattr(frag.ModuleDocFragment, "ACTIONGROUP_" + group.upper()))["attributes"]
    assert attribute["action_group"]["membership"] == ["coopcloud.canon." + group]
    assert "group/coopcloud.canon.%s" % group in " ".join(attribute["action_group"]["description"])
    for option in GROUPS[group][0]():
        assert "I(%s)" % option in " ".join(attribute["action_group"]["description"]), (group, option)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_stands_on_the_base(name):
    with open(os.path.join(ROOT, "plugins", "modules", name + ".py"), encoding="utf-8") as fh:
        source = fh.read()
    assert "CanonModule(AnsibleModule," in source and "AnsibleModule(argument_spec" not in source, name


# -- names ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value,entry,checked", [
    (None, {}, False),
    ("", {}, False),                                    # an optional option left out
    ("", {"default": ""}, False),
    ("", {"default": "default"}, True),                 # "" is not the default: a bad value
    ("", {"required": True}, True),
    ("x", {}, True),
    ([], {"type": "list"}, True),
])
def test_which_values_are_checked(value, entry, checked):
    assert given(value, entry) is checked


def test_names_and_the_groups_names_in_order():
    assert name_checks(("domain", ("proxy_url", "http_url")), ("abra",)) == [
        ("domain", "domain"), ("proxy_url", "http_url"), ("server", "server"), ("docker_context", "docker_context")]
    assert name_checks(("docker_context", "server"), ("abra",)) == [
        ("docker_context", "docker_context"), ("server", "server")]
    with pytest.raises(ValueError, match="no rule for names of kind 'nickname'"):
        name_checks(("nickname",))


@pytest.mark.parametrize("params,checks,message", [
    ({"domain": "a..b"}, [("domain", "domain")], "domain"),
    ({"recipe": "Gitea;id"}, [("recipe", "recipe")], "recipe name 'Gitea;id' is not valid"),
    ({"server": "-H"}, [("server", "server")], "server name '-H' is not valid"),
    ({"docker_context": "--help"}, [("docker_context", "docker_context")], "docker_context '--help'"),
    ({"proxy_url": "file:///etc"}, [("proxy_url", "http_url")], "proxy_url 'file:///etc'"),
    ({"domains": [DOMAIN, "x y"]}, [("domains", "domain")], "'x y'"),   # every element of a list
])
def test_a_bad_name_is_refused_naming_it(params, checks, message):
    with pytest.raises(NameError_, match=message.replace("(", r"\(").replace(".", r"\.")):
        check_names(params, {k: {} for k in params}, checks)


def test_the_base_refuses_a_bad_name_before_any_client_exists():
    with pytest.raises(Ended) as end:
        base({"domain": "bad domain"}, dict(domain=dict(type="str", required=True)), groups=("abra",),
             names=("domain",))
    assert end.value.how == "fail" and "bad domain" in end.value.result["msg"]
    assert set(end.value.result) == {"msg", "failed"}


def test_the_groups_names_are_checked_too():
    with pytest.raises(Ended) as end:
        base({"docker_context": "-H tcp://x"}, {}, groups=("abra",))
    assert "docker_context '-H tcp://x'" in end.value.result["msg"]


@pytest.fixture
def no_commands(monkeypatch):
    """subprocess.Popen records and refuses: a module must not get as far as a command."""
    tried = []

    def refuse(argv, *a, **k):
        tried.append(argv)
        raise AssertionError("ran %r" % (argv,))
    monkeypatch.setattr(subprocess, "Popen", refuse)
    return tried


def run_module(name: str, args: dict) -> dict:
    mod = importlib.import_module(PKG + name)
    out = io.StringIO()
    with patch_module_args(args), contextlib.redirect_stdout(out):
        with pytest.raises(SystemExit):
            mod.main()
    return json.loads(out.getvalue())


@pytest.mark.parametrize("name,args,words", [
    ("abra_app", dict(domain=DOMAIN, recipe="x/../y"), "recipe name 'x/../y'"),
    ("abra_app", dict(domain=DOMAIN, server="Bad Server"), "server name 'Bad Server'"),
    ("abra_backup", dict(domain=DOMAIN, state="created", docker_context="a"), "docker_context 'a'"),
    ("swarm_converge", dict(domain="-" * 70), "domain"),
    ("canon_lock", dict(name="heavy", run_id="../x", state_dir="/nonexistent"), "run id '../x'"),
    ("gitea_pull_request", dict(api_url="http://forge", token="t0ken-t0ken", owner="..", repo="r", head="h"),
     "owner '..'"),
    ("routing_identity", dict(domain=DOMAIN, path="no-slash"), "path 'no-slash'"),
])
def test_a_module_refuses_a_bad_name_before_any_command(name, args, words, no_commands, tmp_path):
    abra_group = name in ("abra_app", "abra_backup", "swarm_converge")
    res = run_module(name, dict(args, evidence_dir=str(tmp_path)) if abra_group else args)
    assert res["failed"] and words in res["msg"] and "exception" not in res, res
    assert no_commands == []
    assert os.listdir(tmp_path) == []


# -- clients ----------------------------------------------------------------------------------------
def test_clients_are_built_when_first_used_and_once(tmp_path):
    redact = tmp_path / "redact"
    redact.write_text("s3cret-value\n")
    m = base({"evidence_dir": str(tmp_path / "ev"), "redact_file": str(redact), "docker_context": "bench2"},
             groups=("abra",))
    assert m._clients == {}
    assert m.docker is m.docker and m.docker.context == "bench2" and m.docker.binary == "docker"
    assert set(m._clients) == {"docker"}
    assert m.abra.redactor is m.evidence.redactor is m.redactor
    assert m.redactor("the s3cret-value") != "the s3cret-value"
    assert m.abra.log == m.evidence.log_command and m.abra.abra_dir is None
    assert not (tmp_path / "ev").exists()   # nothing written until something is


def test_the_docker_client_refuses_a_context_that_is_no_name():
    m = base({"docker_bin": "docker", "docker_context": "a b"}, dict(docker_bin=dict(), docker_context=dict()))
    with pytest.raises(NameError_):
        m.docker


def test_abra_dir_falls_back_to_abras_own_default():
    assert base({}, groups=("abra",)).abra_dir == os.path.expanduser("~/.abra")
    assert base({"abra_dir": "/srv/abra"}, groups=("abra",)).abra_dir == "/srv/abra"


# -- failing ----------------------------------------------------------------------------------------
def command_error() -> CommandError:
    res = Result(argv=["docker", "stack", "ls"], rc=3, stdout="out", stderr="no daemon", duration=0.1)
    return CommandError("docker stack ls failed (exit 3): no daemon", res)


def test_a_command_error_ends_with_cmd_rc_stdout_and_stderr():
    m = base({})
    with pytest.raises(Ended) as end:
        with m.failing(domain=DOMAIN):
            raise command_error()
    assert end.value.result == {"failed": True, "msg": "docker stack ls failed (exit 3): no daemon",
                                "cmd": ["docker", "stack", "ls"], "rc": 3, "stdout": "out", "stderr": "no daemon",
                                "domain": DOMAIN}


def test_a_named_error_ends_with_its_message_and_the_result_wins():
    m = base({})
    with pytest.raises(Ended) as end:
        with m.failing(KeyError, removed={"r": 1}):
            raise KeyError("gone")
    assert end.value.result == {"failed": True, "msg": "'gone'", "removed": {"r": 1}}
    with pytest.raises(Ended) as end:
        m.fail(command_error(), msg="unknown recipe x")
    assert end.value.result["msg"] == "unknown recipe x" and end.value.result["rc"] == 3


def test_an_unknown_error_stays_a_traceback():
    """A defect of the harness must not read as a clean failure: the lifecycle tells a module
    traceback (harness-error) from a red recipe."""
    m = base({})
    with pytest.raises(ZeroDivisionError):
        with m.failing(ValueError):
            1 / 0


def test_an_error_that_says_what_it_knows_gives_it_all():
    class Knows(Exception):
        def as_dict(self):
            return {"msg": "forge said no", "status": 409}
    with pytest.raises(Ended) as end:
        base({}).fail(Knows(), api_calls=[])
    assert end.value.result == {"failed": True, "msg": "forge said no", "status": 409, "api_calls": []}


def test_a_real_module_fails_cleanly_when_docker_fails(tmp_path):
    """swarm_converge with a docker that exits 3: fail_json with the command, its exit code and
    its output, not a traceback."""
    docker = tmp_path / "docker"
    docker.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 3\n")
    docker.chmod(0o755)
    res = run_module("swarm_converge", dict(domain=DOMAIN, docker_bin=str(docker), timeout=5, poll=0.1))
    assert res["failed"] and "exception" not in res, res
    assert res["rc"] == 3 and res["cmd"][0] == str(docker) and "Cannot connect" in res["stderr"]


CANON_GROUP_PLAY = """
- name: The canon group's defaults reach every member
  hosts: localhost
  gather_facts: false
  module_defaults:
    group/coopcloud.canon.canon:
      state_dir: "{{ state }}"
  tasks:
    - name: As the lifecycle's block runs them
      block:
        - name: Take a lock
          coopcloud.canon.canon_lock: {name: heavy, run_id: run-1}
        - name: Release it in an included file
          ansible.builtin.include_tasks: release.yml
        - name: Fail
          ansible.builtin.fail: {msg: boom}
      rescue:
        - name: Read the registry
          coopcloud.canon.canon_registry: {recipe: gitea}
      always:
        - name: Tear down
          coopcloud.canon.canon_teardown: {run_id: run-1}
"""


@pytest.mark.slow
def test_module_defaults_of_the_canon_group_reach_its_members(tmp_path):
    """ansible-core's own reading of meta/runtime.yml: one state_dir for the group reaches the
    members in the block, an included file, rescue and always."""
    (tmp_path / "play.yml").write_text(CANON_GROUP_PLAY)
    (tmp_path / "release.yml").write_text(
        "- name: Release\n  coopcloud.canon.canon_lock: {name: heavy, run_id: run-1, state: released}\n")
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    res = subprocess.run(["ansible-playbook", "-i", "localhost,", "-c", "local", str(tmp_path / "play.yml"),
                          "-e", "state=%s" % (tmp_path / "state"), "-e", "ansible_python_interpreter=" + sys.executable],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "ok=5" in out and "rescued=1" in out and "failed=0" in out, out
    assert "boom" in out and "Unsupported parameters" not in out and "missing required" not in out
    assert (tmp_path / "state" / "locks").is_dir() and os.listdir(tmp_path / "state" / "locks") == []
