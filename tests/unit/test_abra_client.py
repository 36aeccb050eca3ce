"""Exact argv of every abra call, and parsers against recorded outputs."""
import json

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _abra
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Result


class Recorder(_abra.AbraClient):
    def __init__(self, outputs=None, **kw):
        super().__init__(binary="/opt/abra", **kw)
        self.calls = []
        self.outputs = outputs or {}

    def run(self, argv, check=True, secret_output=False, timeout=None):
        self.calls.append(argv)
        out = self.outputs.get(argv[1] + " " + argv[2], "")
        return Result(argv=argv, rc=0, stdout=out, stderr="")


def test_every_command_carries_no_input_flag():
    for name in _abra.COMMANDS:
        assert "-n" in _abra.COMMANDS[name], name
        assert _abra.COMMANDS[name][-1] == "-n", name   # last: nothing can be built after it


@pytest.mark.parametrize("command,fields,argv", [
    # an optional positional sits right after the required one, flags after both
    ("deploy", dict(domain="d.org", version="", chaos=False), ["app", "deploy", "d.org", "-n"]),
    ("deploy", dict(domain="d.org", version=None, force=True), ["app", "deploy", "d.org", "--force", "-n"]),
    ("deploy", dict(domain="d.org", version="2.0.0+1", no_converge_checks=True),
     ["app", "deploy", "d.org", "2.0.0+1", "--no-converge-checks", "-n"]),
    ("app_new", dict(recipe="r", version="1.0.0+1", server="s", domain="d.org"),
     ["app", "new", "r", "1.0.0+1", "--server", "s", "--domain", "d.org", "-n"]),
    ("ls", dict(server="s"), ["app", "ls", "--server", "s", "-m", "-n"]),
])
def test_build_from_named_formats(command, fields, argv):
    assert _abra.build(command, **fields) == argv


@pytest.mark.parametrize("command,fields,error", [
    ("deploy", dict(), "'domain' is required"),
    ("deploy", dict(domain=""), "'domain' is required"),
    ("app_new", dict(recipe="r", server="s"), "'domain' is required"),
    ("deploy", dict(domain="d.org", chaoss=True), "takes no chaoss"),   # a typo is not dropped silently
    ("undeploy", dict(domain="d.org", version="1"), "takes no version"),
    ("deplo", dict(domain="d.org"), "unknown abra command"),
])
def test_build_refuses_missing_and_unknown_fields(command, fields, error):
    with pytest.raises(ValueError, match=error):
        _abra.build(command, **fields)


@pytest.mark.parametrize("call,argv", [
    (lambda c: c.recipe_fetch("gitea"), ["recipe", "fetch", "gitea", "-n"]),
    (lambda c: c.app_new("gitea", "srv", "g.example.org"),
     ["app", "new", "gitea", "--server", "srv", "--domain", "g.example.org", "-n"]),
    (lambda c: c.app_new("gitea", "srv", "g.example.org", version="3.5.3+1.24.2"),
     ["app", "new", "gitea", "3.5.3+1.24.2", "--server", "srv", "--domain", "g.example.org", "-n"]),
    (lambda c: c.secret_generate("g.example.org"),
     ["app", "secret", "generate", "g.example.org", "--all", "--machine", "-n"]),
    (lambda c: c.deploy("g.example.org"), ["app", "deploy", "g.example.org", "-n"]),
    (lambda c: c.deploy("g.example.org", version="1.0.0+1", chaos=True, force=True, converge_checks=False),
     ["app", "deploy", "g.example.org", "1.0.0+1", "--chaos", "--force", "--no-converge-checks", "-n"]),
    (lambda c: c.upgrade("g.example.org", "1.1.0+2"), ["app", "upgrade", "g.example.org", "1.1.0+2", "-n"]),
    (lambda c: c.upgrade("g.example.org", "1.1.0+2", converge_checks=False),
     ["app", "upgrade", "g.example.org", "1.1.0+2", "--no-converge-checks", "-n"]),
    (lambda c: c.undeploy("g.example.org"), ["app", "undeploy", "g.example.org", "-n"]),
    (lambda c: c.remove("g.example.org"), ["app", "remove", "g.example.org", "--force", "-n"]),
    (lambda c: c.backup_create("g.example.org"), ["app", "backup", "create", "g.example.org", "-n"]),
    (lambda c: c.restore("g.example.org"), ["app", "restore", "g.example.org", "-n"]),
    (lambda c: c.ps("g.example.org"), ["app", "ps", "g.example.org", "-n"]),
])
def test_exact_argv(call, argv):
    c = Recorder()
    call(c)
    assert c.calls == [["/opt/abra"] + argv]


def test_fata_message_is_extracted():
    err = "\x1b[31mFATA\x1b[0m[0001] gitea.example.org is already deployed\n"
    assert _abra.fata_message(err) == "gitea.example.org is already deployed"
    assert _abra.fata_message("FATA unable to find recipe nope\n") == "unable to find recipe nope"
    assert _abra.fata_message("all good\n") == ""


def test_failure_carries_cmd_rc_stdout_stderr(tmp_path):
    script = tmp_path / "abra"
    script.write_text("#!/bin/sh\necho out; echo 'FATA boom happened' >&2; exit 1\n")
    script.chmod(0o755)
    c = _abra.AbraClient(binary=str(script), abra_dir=str(tmp_path))
    with pytest.raises(_abra.AbraError) as exc:
        c.deploy("x.example.org")
    d = exc.value.as_dict()
    assert d["rc"] == 1 and d["stdout"].strip() == "out" and "boom happened" in d["stderr"]
    assert d["cmd"][1:4] == ["app", "deploy", "x.example.org"]
    assert exc.value.fata == "boom happened"


def test_env_is_c_locale_with_abra_dir(tmp_path):
    script = tmp_path / "abra"
    script.write_text('#!/bin/sh\necho "$LC_ALL $ABRA_DIR"\n')
    script.chmod(0o755)
    c = _abra.AbraClient(binary=str(script), abra_dir="/x/abra")
    assert c.ps("a.example.org").stdout.strip() == "C /x/abra"


def test_secret_output_is_withheld_from_logs_and_redacted(tmp_path):
    script = tmp_path / "abra"
    script.write_text("#!/bin/sh\necho '[{\"name\": \"db_password\", \"value\": \"s3cr3tValue99\"}]'\n")
    script.chmod(0o755)
    logged = []
    c = _abra.AbraClient(binary=str(script), log=logged.append)
    res = c.secret_generate("a.example.org")
    assert "s3cr3tValue99" not in res.stdout
    assert "s3cr3tValue99" not in logged[0].stdout
    assert c.redactor("the value s3cr3tValue99 leaked") == "the value [REDACTED] leaked"


def test_parse_generated_secrets_machine_output():
    text = '[{"name": "admin_password", "value": "correct horse battery"}, {"name": "k", "value": "0123456789"}]'
    assert _abra.parse_generated_secrets(text) == {"admin_password": "correct horse battery", "k": "0123456789"}


def test_parse_generated_secrets_table():
    text = ("┌─────────────┬──────────────────────────────────┐\n"
            "│ NAME        │ VALUE                            │\n"
            "├─────────────┼──────────────────────────────────┤\n"
            "│ db_password │ 0f3c8a9b2d4e6f1a3c5e7b9d0f2a4c6e │\n"
            "└─────────────┴──────────────────────────────────┘\n")
    assert _abra.parse_generated_secrets(text) == {"db_password": "0f3c8a9b2d4e6f1a3c5e7b9d0f2a4c6e"}


def test_parse_app_ls():
    text = json.dumps({"default": {"apps": [
        {"appName": "a.example.org", "recipe": "gitea", "status": "deployed", "version": "3.5.3+1.24.2",
         "server": "default"}]}})
    apps = _abra.parse_app_ls(text)
    assert apps == [{"server": "default", "domain": "a.example.org", "recipe": "gitea", "status": "deployed",
                     "version": "3.5.3+1.24.2", "chaos": None}]


def test_read_env_file(tmp_path):
    p = tmp_path / "a.env"
    p.write_text('TYPE=gitea:3.5.3\n# comment\nDOMAIN="a.example.org"\nSECRET_X_VERSION=v1 # length=32\n')
    assert _abra.read_env_file(str(p)) == {"TYPE": "gitea:3.5.3", "DOMAIN": "a.example.org", "SECRET_X_VERSION": "v1"}


def test_secret_generate_one_argv():
    c = Recorder()
    c.secret_generate_one("g.example.org", "jwt_secret", "v2")
    assert c.calls == [["/opt/abra", "app", "secret", "generate", "g.example.org", "jwt_secret", "v2", "--machine", "-n"]]


def test_missing_binary_is_a_clear_failure_not_a_traceback(tmp_path):
    c = _abra.AbraClient(binary=str(tmp_path / "no-such-abra"))
    with pytest.raises(_abra.AbraError) as exc:
        c.recipe_fetch("gitea")
    assert exc.value.result.rc == 127 and "cannot run" in exc.value.result.stderr
