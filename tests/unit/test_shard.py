"""Sharding a sweep across abra servers (canon/shard.py) and the sweep's per-server schedule."""
from __future__ import annotations

import json
import os
import threading
import time

import pytest

from canon.inventory import Server
from canon.report import markdown_table
from canon.shard import estimates, expected_seconds, lpt_order, shard
from canon.sweep import Sweep, SweepError


def plans(*names, heavy=()):
    return [{"recipe": n, "heavy": n in heavy, "settings": {}, "warm": False} for n in names]


# -- the pure assignment --------------------------------------------------------------------
@pytest.mark.parametrize("servers, durations, heavy, want", [
    # one server: everything on it
    ([("a", 2)], {}, (), {"r1": "a", "r2": "a", "r3": "a"}),
    # LPT over two servers of cap 1: 100+40 against 90+50
    ([("a", 1), ("b", 1)], {"r1": 100, "r2": 90, "r3": 50, "r4": 40}, (),
     {"r1": "a", "r2": "b", "r3": "b", "r4": "a"}),
    # a cap-2 server takes more of equal recipes than a cap-1 one
    ([("a", 2), ("b", 1)], {"r1": 100, "r2": 100, "r3": 100, "r4": 100}, (),
     {"r1": "a", "r2": "b", "r3": "a", "r4": "a"}),
    # heavy recipes deploy one at a time on a server: two heavy ones go to two servers even with
    # room under the cap, and the light ones fill in around them
    ([("a", 3), ("b", 3)], {"h1": 300, "h2": 300, "r1": 60, "r2": 60}, ("h1", "h2"),
     {"h1": "a", "h2": "b", "r1": "a", "r2": "b"}),
    # no history: heavy counts double, so it goes first and alone
    ([("a", 1), ("b", 1)], {}, ("h",), {"h": "a", "r1": "b", "r2": "b"}),
])
def test_lpt_assignment(servers, durations, heavy, want):
    got = shard(plans(*want, heavy=heavy), servers, durations)
    assert got == want


def test_same_inputs_same_shards_whatever_the_plan_order():
    servers = [("a", 2), ("b", 2), ("c", 1)]
    durations = {"r%d" % i: 30 * (i % 4 + 1) for i in range(9)}
    ps = plans(*durations)
    first = shard(ps, servers, durations)
    assert shard(list(reversed(ps)), servers, durations) == first
    assert set(first.values()) == {"a", "b", "c"}


def test_a_pinned_recipe_stays_and_the_rest_balance_around_it():
    durations = {"warm": 300, "r1": 100, "r2": 100, "r3": 100, "r4": 100}
    got = shard(plans(*durations), [("a", 1), ("b", 1)], durations, pinned={"warm": "b"})
    assert got["warm"] == "b"
    # 300 s of the pinned one on b: three of the 100 s recipes go to a, then one to b
    assert sorted(got[r] for r in ("r1", "r2", "r3", "r4")) == ["a", "a", "a", "b"]


def test_eligibility_limits_where_a_recipe_may_run():
    got = shard(plans("r1", "r2", "r3"), [("a", 3), ("b", 3)], {"r1": 10, "r2": 10, "r3": 10},
                eligible={"r1": {"b"}, "r2": {"b"}, "r3": {"b"}})
    assert set(got.values()) == {"b"}


@pytest.mark.parametrize("kw, message", [
    ({"pinned": {"r1": "zz"}}, "pinned to server zz"),
    ({"eligible": {"r1": {"zz"}}}, "enrolled on zz only"),
])
def test_a_constraint_naming_no_server_of_the_sweep_is_an_error(kw, message):
    with pytest.raises(ValueError, match=message):
        shard(plans("r1"), [("a", 1)], {}, **kw)


def test_expected_seconds_and_order():
    durations = {"a": 100, "b": 300, "c": 200}
    assert expected_seconds({"recipe": "x"}, durations) == 200            # the median of the known
    assert expected_seconds({"recipe": "x", "heavy": True}, durations) == 400
    assert expected_seconds({"recipe": "a"}, durations) == 100
    assert [p["recipe"] for p in lpt_order(plans("a", "b", "c"), durations)] == ["b", "c", "a"]
    assert estimates(plans("a", "b", "c"), [("s", 2)], {"a": "s", "b": "s", "c": "s"}, durations) == {"s": 300.0}


# -- the sweep: one document, recipes sharded, each server its own cap --------------------------
def server(tmp_path, name, cap=1):
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    return Server(host=name.split(".")[0], name=name, state_dir=str(state), abra_dir=str(tmp_path / "abra"),
                  docker_bin="true", docker_host="", cap=cap, min_free_disk_gb=0.0, docker_context=name)


def test_the_sweep_document_says_which_server_each_recipe_is_on(tmp_path):
    servers = [server(tmp_path, "default"), server(tmp_path, "two.example")]
    sweep = Sweep(servers, plans("r1", "r2", "r3"), str(tmp_path / "results"), "inv", cap=None)
    doc = sweep.doc
    assert doc["server"] == "default" and doc["cap"] == 1     # single-server fields stay
    assert [s["name"] for s in doc["servers"]] == ["default", "two.example"]
    on = {r["recipe"]: r["server"] for r in doc["recipes"]}
    assert sorted(on.values()) in (["default", "default", "two.example"], ["default", "two.example", "two.example"])
    for s in doc["servers"]:
        assert s["recipes"] == [r for r, where in on.items() if where == s["name"]]


def test_a_single_server_sweep_keeps_its_document(tmp_path):
    sweep = Sweep(server(tmp_path, "default", cap=2), plans("r1", "r2"), str(tmp_path / "results"), "inv", cap=2)
    assert sweep.doc["servers"] == [{"name": "default", "host": "default", "cap": 2, "recipes": ["r1", "r2"]}]
    assert {r["server"] for r in sweep.doc["recipes"]} == {"default"}


def test_a_warm_canonical_pins_its_recipe_to_its_server(tmp_path):
    servers = [server(tmp_path, "default"), server(tmp_path, "two.example")]
    canon = tmp_path / "state" / "canon" / "two.example"
    canon.mkdir(parents=True)
    (canon / "gitea.json").write_text(json.dumps({"domain": "warm-canon-gitea.example"}))
    for _ in range(3):
        ps = [dict(p, warm=True) for p in plans("gitea", "r1", "r2", "r3")]
        sweep = Sweep(servers, ps, str(tmp_path / "results"), "inv", cap=None)
        assert sweep.assignment["gitea"] == "two.example"


def test_a_resumed_sweep_keeps_the_servers_it_assigned(tmp_path):
    servers = [server(tmp_path, "default"), server(tmp_path, "two.example")]
    first = Sweep(servers, plans("r1", "r2"), str(tmp_path / "results"), "inv", cap=None)
    flipped = {r: ("default" if s == "two.example" else "two.example") for r, s in first.assignment.items()}
    resume = dict(first.doc, recipes=[dict(r, server=flipped[r["recipe"]]) for r in first.doc["recipes"]])
    again = Sweep(servers, plans("r1", "r2"), str(tmp_path / "results"), "inv", cap=None, resume=resume)
    assert again.assignment == flipped


@pytest.mark.parametrize("caps", [{"default": 0}, {"two.example": 4}])
def test_a_server_cap_outside_1_to_3_is_refused(tmp_path, caps):
    servers = [server(tmp_path, "default"), server(tmp_path, "two.example")]
    with pytest.raises(SweepError, match="refused"):
        Sweep(servers, plans("r1"), str(tmp_path / "results"), "inv", cap=None, caps=caps)


class RecordingSweep(Sweep):
    """The real scheduler loop; each recipe's playbooks replaced by a short wait that records
    what ran at once on which server (the playbooks themselves run in the integration test)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.live: dict = {}
        self.peak: dict = {}
        self.heavy_peak: dict = {}
        self.mutex = threading.Lock()

    def run_recipe(self, plan):
        where = plan["server"]
        with self.mutex:
            self.live.setdefault(where, []).append(plan)
            self.peak[where] = max(self.peak.get(where, 0), len(self.live[where]))
            self.heavy_peak[where] = max(self.heavy_peak.get(where, 0), sum(p["heavy"] for p in self.live[where]))
        time.sleep(0.05)
        with self.mutex:
            self.live[where].remove(plan)
        entry = self.entry(plan["recipe"])
        entry.update(status="done", cold={"outcome": "pass"}, promote={"outcome": "not-enrolled"})


def test_the_schedule_holds_each_servers_cap_and_heavy_rule(tmp_path):
    servers = [server(tmp_path, "default", cap=2), server(tmp_path, "two.example", cap=1)]
    ps = plans(*["r%d" % i for i in range(8)], "h1", "h2", "h3", heavy=("h1", "h2", "h3"))
    sweep = RecordingSweep(servers, ps, str(tmp_path / "results"), "inv", cap=None, sampler_interval=60)
    doc = sweep.run()
    assert doc["outcome"] == "pass"
    assert sweep.peak["default"] <= 2 and sweep.peak["two.example"] <= 1
    assert max(sweep.heavy_peak.values()) <= 1
    assert {r["server"] for r in doc["recipes"]} == {"default", "two.example"}
    saved = json.load(open(os.path.join(sweep.dir, "sweep.json")))
    assert [r["server"] for r in saved["recipes"]] == [r["server"] for r in doc["recipes"]]
    # the report says where each recipe ran
    table = markdown_table(saved)
    assert "servers default (cap 2: " in table and "two.example (cap 1: " in table
    for r in saved["recipes"]:
        assert any(line.startswith("| %s on %s |" % (r["recipe"], r["server"])) for line in table.splitlines())


def test_a_single_server_report_is_unchanged(tmp_path):
    sweep = RecordingSweep(server(tmp_path, "default", cap=2), plans("r1", "r2"), str(tmp_path / "results"), "inv",
                           cap=2, sampler_interval=60)
    table = markdown_table(sweep.run())
    assert "server default; cap 2;" in table and " on default" not in table


def test_the_command_line_takes_several_servers_for_a_sweep_only():
    from canon.cli import EXIT_REFUSED, main, parser
    args = parser().parse_args(["sweep", "custom-html", "--server", "default", "--server", "bench2.canon.test"])
    assert args.server == ["default", "bench2.canon.test"] and args.recipes == ["custom-html"]
    args = parser().parse_args(["isolate", "custom-html"])
    assert args.recipe == "custom-html" and args.server is None
    assert main(["isolate", "custom-html", "--server", "default", "--server", "default"]) == EXIT_REFUSED
