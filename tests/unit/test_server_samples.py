"""The sampler and the disk check describe the server they name: what the engine says through its
docker context, and the controller's /proc and disk only when they are said to be the controller's
(an engine on this machine); an engine reached over ssh never gets the controller's numbers."""
from __future__ import annotations

import types

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import Result

from canon import load, report, sweep, timeline


class FakeDocker(DockerClient):
    """Answers from recorded docker output, keyed by the command after the target flags."""

    def __init__(self, answers: dict, calls: list, **kw):
        super().__init__(binary="docker", **kw)
        self.answers, self.calls = answers, calls

    def run(self, args, check=True, input_text=None, timeout=None):
        self.calls.append(self.argv(args))
        rc, out = self.answers.get(tuple(args[:2]), (0, ""))
        return Result(argv=self.argv(args), rc=rc, stdout=out, stderr="" if rc == 0 else "boom")


def server(tmp_path, endpoint: str, root: str = "/var/lib/docker", min_free: float = 0.0, context: str = "srv"):
    calls = []
    answers = {("context", "inspect"): (0, endpoint + "\n"), ("info", "--format"): (0, root + "\n"),
               ("stack", "ls"): (0, "a_example_org\nb_example_org\n"), ("events", "--since"): (0, "start\ndie\nstart\n")}
    s = types.SimpleNamespace(name="srv", state_dir=str(tmp_path / "state"), min_free_disk_gb=min_free, calls=calls)
    s.docker = lambda timeout=60: FakeDocker(answers, calls, context=context)
    return s


LOCAL = "unix:///var/run/docker.sock"
REMOTE = "ssh://ci@ci.example.org"


def test_a_remote_engine_gets_no_load_or_memory_of_the_controller(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "controller_load", lambda: pytest.fail("read the controller's /proc"))
    monkeypatch.setattr(load, "controller_cpu", lambda: pytest.fail("read the controller's /proc"))
    s = server(tmp_path, REMOTE)
    sample = load.Sampler(s).sample()
    assert sample["load1"] is None and sample["mem_used_pct"] is None and sample["cpu"] is None
    # what the engine itself says still counts, asked through the server's context
    assert sample["stacks"] == 2 and sample["tasks_changed"] == 3
    assert ["docker", "--context", "srv", "context", "inspect", "--format", "{{.Endpoints.docker.Host}}"] in s.calls
    assert all(c[:3] == ["docker", "--context", "srv"] for c in s.calls)


def test_an_engine_on_the_controller_gets_the_controllers_load(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "controller_load", lambda: (1.5, 42.0))
    monkeypatch.setattr(load, "controller_cpu", lambda: (700, 1000))
    sample = load.Sampler(server(tmp_path, LOCAL)).sample()
    assert (sample["load1"], sample["mem_used_pct"], sample["stacks"], sample["cpu"]) == (1.5, 42.0, 2, [700, 1000])


def test_the_endpoint_is_asked_once_per_sampler(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "controller_load", lambda: (1.0, 10.0))
    s = server(tmp_path, LOCAL)
    sampler = load.Sampler(s)
    sampler.sample()
    sampler.sample()
    assert sum(c[3:5] == ["context", "inspect"] for c in s.calls) == 1 and sampler.local is True


def test_a_docker_that_cannot_name_its_endpoint_is_not_taken_for_this_machine(tmp_path, monkeypatch):
    monkeypatch.setattr(load, "controller_load", lambda: pytest.fail("read the controller's /proc"))
    s = server(tmp_path, "")
    assert load.engine_on_controller(s) is False


def test_the_controllers_load_reads_proc():
    load1, mem = load.controller_load()
    assert load1 >= 0 and 0 <= mem <= 100
    busy, total = load.controller_cpu()
    assert 0 <= busy <= total and total > 0


def test_the_fingerprint_says_how_busy_the_cpus_were_between_its_first_and_last_sample():
    samples = [{"t": 100.0, "load1": 0.5, "cpu": [1000, 4000]}, {"t": 103.0, "load1": 0.6, "cpu": [1300, 4600]},
               {"t": 106.0, "load1": 0.7, "cpu": [1450, 5200]}]
    assert load.fingerprint(samples)["cpu_busy_pct"] == 37.5     # 450 of 1200 ticks
    assert load.fingerprint(samples[:1])["cpu_busy_pct"] is None    # one sample spans no time
    assert load.fingerprint([dict(s, cpu=None) for s in samples])["cpu_busy_pct"] is None


def test_the_fingerprint_says_whose_load_it_holds():
    local = [{"t": 100.0 + 5 * i, "load1": 2.0 + i, "mem_used_pct": 30.0, "stacks": 1, "tasks_changed": 0}
             for i in range(3)]
    fp = load.fingerprint(local)
    assert fp["host"] == load.HOST_CONTROLLER and fp["load1_max"] == 4.0 and fp["mem_used_pct_max"] == 30.0
    remote = [dict(s, load1=None, mem_used_pct=None) for s in local]
    fp = load.fingerprint(remote)
    assert fp["host"] == load.HOST_NOT_MEASURED
    assert fp["load1_mean"] is None and fp["load1_max"] is None and fp["mem_used_pct_max"] is None
    assert fp["stacks_max"] == 1 and fp["samples"] == 3


def test_the_report_names_the_controllers_load_and_what_was_not_measured():
    doc = {"load": {"spec": {"cpu": 6}, "samples": [],
                    "fingerprint": {"samples": 3, "load1_mean": 3.0, "load1_max": 4.0, "mem_used_pct_max": 30.0,
                                    "host": "controller", "stacks_max": 1}}}
    assert report.load_text(doc) == "cpu 6 (controller load1 mean 3.00, max 4.00; controller memory ≤ 30%; stacks ≤ 1)"
    doc["load"]["fingerprint"] = {"samples": 3, "load1_mean": None, "load1_max": None, "mem_used_pct_max": None,
                                  "host": "not measured", "stacks_max": 1}
    assert report.load_text(doc) == ("cpu 6 (load1 and memory not measured (the engine is not on the controller); "
                                     "stacks ≤ 1)")


def test_the_timeline_labels_the_controllers_load():
    samples = [{"t": 100.0 + 5 * i, "load1": 1.0 + i, "stacks": 1} for i in range(4)]
    doc = {"sweep_id": "s", "started_epoch": 100.0, "finished_epoch": 120.0, "recipes": [],
           "load": {"samples": samples, "fingerprint": {"host": "controller"}}}
    assert "controller load1" in timeline.timeline_svg(doc)
    doc["load"]["fingerprint"] = {}
    assert "controller load1" not in timeline.timeline_svg(doc)


def test_the_disk_check_measures_the_engines_data_root_only_on_the_controller(tmp_path):
    local = server(tmp_path, LOCAL, root="/srv/docker-data")
    assert sweep.disk_paths(local) == [("/srv/docker-data", "the engine's data root"),
                                       (local.state_dir, "the state directory")]
    remote = server(tmp_path, REMOTE, root="/srv/docker-data")
    assert sweep.disk_paths(remote) == [(remote.state_dir, "the state directory")]
    assert not any(c[3:5] == ["info", "--format"] for c in remote.calls)


def test_a_short_disk_is_named_as_the_controllers(tmp_path):
    s = server(tmp_path, REMOTE, min_free=10 ** 4)
    detail = sweep.disk_shortage(s)
    assert detail.startswith("the state directory on the controller (%s): " % s.state_dir)
    assert detail.endswith("GiB free, under the minimum of 10000 GiB")
    assert sweep.disk_shortage(server(tmp_path, REMOTE, min_free=0.0)) is None
