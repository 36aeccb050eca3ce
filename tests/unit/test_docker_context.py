"""The harness's docker calls reach the app's server: the docker context named after it."""
from __future__ import annotations

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient

from canon.inventory import Server


def test_the_docker_client_names_the_context_on_every_command_line():
    assert DockerClient().argv(["stack", "ls"]) == ["docker", "stack", "ls"]
    assert DockerClient(binary="/usr/bin/docker", context="bench2.canon.test").argv(["stack", "ls"]) == [
        "/usr/bin/docker", "--context", "bench2.canon.test", "stack", "ls"]


def test_the_drivers_own_docker_calls_use_the_servers_context():
    s = Server(host="bench2", name="bench2.canon.test", state_dir="/s", abra_dir="/a", docker_bin="docker",
               docker_host="", cap=2, min_free_disk_gb=1.0, docker_context="bench2.canon.test")
    # --context on the command line wins over a DOCKER_HOST in the driver's environment
    assert s.docker().argv(["stack", "ls"]) == ["docker", "--context", "bench2.canon.test", "stack", "ls"]
    s.docker_host = "unix:///elsewhere.sock"   # a daemon address wins over the context
    assert s.docker().argv(["stack", "ls"]) == ["docker", "--host", "unix:///elsewhere.sock", "stack", "ls"]
    s.docker_host, s.docker_context = "", ""
    assert s.docker().argv(["stack", "ls"]) == ["docker", "stack", "ls"]


def test_a_docker_context_name_follows_dockers_rule():
    from ansible_collections.coopcloud.canon.plugins.module_utils._names import NameError_, validate_docker_context
    assert validate_docker_context("") == "" and validate_docker_context(None) == ""
    for good in ("default", "bench2.canon.test", "ci-a.example.org", "x_1+2"):
        assert validate_docker_context(good) == good
    for bad in ("a", "-H", "--help", ".x", "a b", "a/b", "ctx;id", "x\n"):
        try:
            validate_docker_context(bad)
        except NameError_ as exc:
            assert "docker_context" in str(exc)
        else:
            raise AssertionError("%r accepted" % bad)
