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


class FakeAbra:
    """abra app undeploy with a given result; the redactor hides the one secret value."""

    def __init__(self, rc, stderr):
        from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Redactor, Result
        self.result = Result(argv=["abra", "app", "undeploy", "a.example.org", "-n"], rc=rc, stdout="", stderr=stderr)
        self.redactor = Redactor()
        self.redactor.add("s3cr3t-value")

    def undeploy(self, domain, check=True):
        assert check is False
        return self.result


class FakeDocker:
    """A stack whose services are gone, whose task stops after ``stops_after`` looks, and whose
    network docker removes once it has."""

    def __init__(self, services=(), stops_after=2, networks=("a_example_org_internal",)):
        self.services, self.looks, self.stops_after, self.networks = list(services), 0, stops_after, list(networks)
        self.removed = []

    def list_names(self, kind, label=None):
        assert label == "com.docker.stack.namespace=a_example_org"
        return self.services if kind == "service" else [n for n in self.networks if n not in self.removed]

    def stack_containers(self, stack):
        self.looks += 1
        return ["c1"] if self.looks <= self.stops_after else []

    def remove(self, kind, names):
        assert kind == "network" and self.looks > self.stops_after, "removed before the task stopped"
        self.removed += names
        return list(names)


IN_USE = ("Failed to remove network 4vcg: Error response from daemon: rpc error: code = FailedPrecondition "
          "desc = network 4vcg is in use by task qwo4failed to remove some resources from stack: a_example_org")


def test_undeploy_that_succeeds_removes_nothing_itself():
    from ansible_collections.coopcloud.canon.plugins.module_utils._app import undeploy
    docker = FakeDocker()
    assert undeploy(FakeAbra(0, ""), docker, "a.example.org") == [] and docker.removed == []


def test_undeploy_beaten_by_a_stopping_task_removes_the_network_once_the_task_stopped():
    from ansible_collections.coopcloud.canon.plugins.module_utils._app import undeploy
    docker = FakeDocker()
    assert undeploy(FakeAbra(1, IN_USE), docker, "a.example.org", poll=0) == ["a_example_org_internal"]
    assert docker.removed == ["a_example_org_internal"]


@pytest.mark.parametrize("stderr,services,stops_after", [
    ("FATA a.example.org is not deployed? s3cr3t-value", [], 0),     # another failure
    (IN_USE, ["a_example_org_app"], 0),                              # services still there: not that race
    (IN_USE, [], 10 ** 6),                                           # the task never stops
])
def test_any_other_undeploy_failure_is_abras_error(stderr, services, stops_after):
    from ansible_collections.coopcloud.canon.plugins.module_utils._abra import AbraError
    from ansible_collections.coopcloud.canon.plugins.module_utils._app import undeploy
    docker = FakeDocker(services=services, stops_after=stops_after)
    with pytest.raises(AbraError, match=r"^abra app undeploy failed \(exit 1\): ") as err:
        undeploy(FakeAbra(1, stderr), docker, "a.example.org", wait=0.05, poll=0.01)
    assert docker.removed == [] and "s3cr3t-value" not in str(err.value) + err.value.result.stderr
