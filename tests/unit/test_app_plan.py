import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._app import plan, write_env, env_changes


def obs(exists=False, deployed=False, version=None):
    return {"domain": "a.example.org", "exists": exists, "deployed": deployed, "deployed_version": version}


@pytest.mark.parametrize("observed,state,kw,steps", [
    (obs(), "present", {}, ["new"]),
    (obs(True), "present", {}, []),
    (obs(), "deployed", {}, ["new", "deploy"]),
    (obs(True), "deployed", {}, ["deploy"]),
    (obs(True, True, "1.0.0+1"), "deployed", {"version": "1.0.0+1"}, []),
    (obs(True, True, "1.0.0+1"), "deployed", {"version": "1.1.0+1"}, ["upgrade"]),
    (obs(True, True, "1.0.0+1"), "deployed", {"force": True}, ["redeploy"]),
    (obs(True, True, "1.0.0+1"), "deployed", {"env_diff": {"X": (None, "1")}}, ["env", "redeploy"]),
    (obs(True, True), "undeployed", {}, ["undeploy"]),
    (obs(True), "undeployed", {}, []),
    (obs(True, True), "absent", {}, ["undeploy", "remove"]),
    (obs(True), "absent", {}, ["remove"]),
    (obs(), "absent", {}, []),
])
def test_plan(observed, state, kw, steps):
    assert plan(observed, state, **kw) == steps


def test_downgrade_in_place_is_refused():
    with pytest.raises(ValueError, match="downgrade"):
        plan(obs(True, True, "1.1.0+1"), "deployed", version="1.0.0+1")


def test_env_write_replaces_commented_and_appends(tmp_path):
    p = tmp_path / "a.env"
    p.write_text("TYPE=x\n#COMPOSE_FILE=\"compose.yml:compose.smtp.yml\"\nTIMEOUT=300\n")
    assert env_changes(str(p), {"TIMEOUT": "120", "TYPE": "x"}) == {"TIMEOUT": ("300", "120")}
    write_env(str(p), {"COMPOSE_FILE": "compose.yml", "TIMEOUT": "120", "NEW": "1"})
    assert p.read_text() == "TYPE=x\nCOMPOSE_FILE=compose.yml\nTIMEOUT=120\nNEW=1\n"
    assert env_changes(str(p), {"TIMEOUT": "120"}) == {}


def test_env_write_chained_key_ends_with_the_value(tmp_path):
    # bonfire's .env: two active COMPOSE_FILE lines, the second chains onto the first
    p = tmp_path / "b.env"
    p.write_text('TYPE=bonfire\nCOMPOSE_FILE="compose.yml"\nX=1\nCOMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\n'
                 '#COMPOSE_FILE="$COMPOSE_FILE:compose.mail.yml"\n')
    assert env_changes(str(p), {"COMPOSE_FILE": "compose.yml:compose.postgres.yml"}) == {}
    write_env(str(p), {"COMPOSE_FILE": "compose.yml:compose.postgres.yml:compose.mail.yml"})
    assert env_changes(str(p), {"COMPOSE_FILE": "compose.yml:compose.postgres.yml:compose.mail.yml"}) == {}
    assert p.read_text().splitlines()[3] == "COMPOSE_FILE=compose.yml:compose.postgres.yml:compose.mail.yml"


def test_env_write_replaces_a_whole_multi_line_value(tmp_path):
    p = tmp_path / "m.env"
    p.write_text('A=1\nMOTD="one\ntwo"\nB=2\n')
    write_env(str(p), {"MOTD": "three"})
    assert p.read_text() == "A=1\nMOTD=three\nB=2\n"


@pytest.mark.parametrize("value", ["plain", "with space", "pa$word", "a # b", "it's", "q\"uote", "back\\slash",
                                   "mix '$x' \"y\" \\$z", "", "${NOT_EXPANDED}"])
def test_env_write_reads_back_as_given(tmp_path, value):
    p = tmp_path / "r.env"
    p.write_text("TYPE=x\n")
    write_env(str(p), {"VALUE": value})
    assert env_changes(str(p), {"VALUE": value}) == {}
