"""Exact argv of the docker client's calls: every docker command line of the collection and of
the driver is built here, nowhere else (tests/unit/test_layers.py keeps it that way)."""
from __future__ import annotations

import json

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient, DockerError
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Result


class Recorder(DockerClient):
    def __init__(self, stdout="", rc=0, **kw):
        super().__init__(binary="/usr/bin/docker", **kw)
        self.calls, self.stdout, self.rc = [], stdout, rc

    def run(self, args, check=True, input_text=None, timeout=None):
        self.calls.append((self.argv(args), check, timeout))
        res = Result(argv=self.argv(args), rc=self.rc, stdout=self.stdout, stderr="boom" if self.rc else "")
        if check and not res.ok:
            raise DockerError("docker failed", res)
        return res


@pytest.mark.parametrize("call,argv", [
    (lambda d: d.stack_names(), ["stack", "ls", "--format", "{{.Name}}"]),
    (lambda d: d.stack_rm("a_example_org"), ["stack", "rm", "a_example_org"]),
    (lambda d: d.swarm_state(), ["info", "--format", "{{.Swarm.LocalNodeState}}"]),
    (lambda d: d.data_root(), ["info", "--format", "{{.DockerRootDir}}"]),
    (lambda d: d.endpoint(), ["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"]),
    (lambda d: d.run_detached("img:1", ["sleep", "3600"], "proxy", {"coopcloud.canon.probe": "a_example_org"}),
     ["run", "-d", "--rm", "--network", "proxy", "--label", "coopcloud.canon.probe=a_example_org", "img:1",
      "sleep", "3600"]),
    (lambda d: d.remove_containers(["c1", "c2"]), ["rm", "-f", "c1", "c2"]),
    (lambda d: d.containers_labelled("coopcloud.canon.load"),
     ["ps", "-a", "--filter", "label=coopcloud.canon.load", "--format", "{{json .}}"]),
    (lambda d: d.container_events(10.0, 12.5),
     ["events", "--since", "10.000", "--until", "12.500", "--filter", "type=container",
      "--filter", "event=start", "--filter", "event=die", "--format", "{{.Status}}"]),
])
def test_exact_argv(call, argv):
    d = Recorder()
    call(d)
    assert [c[0] for c in d.calls] == [["/usr/bin/docker"] + argv]


@pytest.mark.parametrize("kw,prefix", [
    ({}, []),
    ({"context": "srv"}, ["--context", "srv"]),
    ({"host": "ssh://srv"}, ["--host", "ssh://srv"]),
    ({"host": "ssh://srv", "context": "srv"}, ["--host", "ssh://srv"]),  # docker refuses both
])
def test_the_target_engine_comes_first(kw, prefix):
    d = Recorder(**kw)
    d.stack_names()
    assert d.calls[0][0] == ["/usr/bin/docker"] + prefix + ["stack", "ls", "--format", "{{.Name}}"]


def test_the_endpoint_is_the_host_given_else_the_contexts():
    d = Recorder(host="ssh://ci@srv", context="srv")
    assert d.endpoint() == "ssh://ci@srv" and d.calls == []   # docker is not asked
    d = Recorder(stdout="ssh://ci@srv\n", context="srv")
    assert d.endpoint() == "ssh://ci@srv"
    assert d.calls[0][0] == ["/usr/bin/docker", "--context", "srv", "context", "inspect", "--format",
                             "{{.Endpoints.docker.Host}}"]
    assert Recorder(stdout="unix:///var/run/docker.sock\n").endpoint() == "unix:///var/run/docker.sock"
    assert Recorder(stdout="", rc=1).endpoint() == ""
    assert Recorder(stdout="/var/lib/docker\n").data_root() == "/var/lib/docker"
    assert Recorder(stdout="", rc=1).data_root() == ""


@pytest.mark.parametrize("endpoint,local", [
    ("unix:///var/run/docker.sock", True), ("unix:///var/lib/canon-bench/second/docker.sock", True),
    ("ssh://ci@ci.example.org", False), ("tcp://127.0.0.1:2375", False), ("tcp://srv:2376", False),
    ("", False), (None, False), ("npipe:////./pipe/docker_engine", False),
])
def test_only_a_unix_socket_is_an_engine_on_this_machine(endpoint, local):
    from ansible_collections.coopcloud.canon.plugins.module_utils._docker import endpoint_is_local
    assert endpoint_is_local(endpoint) is local


def test_nothing_to_remove_runs_nothing():
    d = Recorder()
    assert d.remove_containers([]) is None
    assert d.calls == []


def test_removals_never_raise_but_listings_do():
    d = Recorder(rc=1)
    assert not d.remove_containers(["c1"]).ok
    assert not d.stack_rm("s").ok
    with pytest.raises(DockerError):
        d.stack_names()
    with pytest.raises(DockerError):
        d.run_detached("img", ["true"], "none", {})


def test_labelled_containers_are_parsed_per_line():
    rows = [{"ID": "abc", "Labels": "coopcloud.canon.load=42"}, {"ID": "def", "Labels": ""}]
    d = Recorder(stdout="\n".join(json.dumps(r) for r in rows) + "\n\n")
    assert d.containers_labelled("coopcloud.canon.load") == rows


def test_a_detached_container_id_is_stripped():
    assert Recorder(stdout="0123abcd\n").run_detached("img", ["true"], "none", {"k": 1}) == "0123abcd"
