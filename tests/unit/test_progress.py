"""canon/progress.py: event lines off a terminal, the live line on one, -q/-v, whole words, ETA."""
from __future__ import annotations

import io

import pytest

from canon.progress import NORMAL, QUIET, VERBOSE, Progress, clock, remaining_seconds, shorten, tier_line
from canon.runner import Job


class Stream(io.StringIO):
    def __init__(self, tty: bool):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


SNAP = {"elapsed": 125.0, "running": {"gitea": {"tier": "upgrade"}}, "done": 1, "total": 4, "red": 1}
ENTRY = {"recipe": "mumble", "cold": {"outcome": "fail", "failure": {"tier": "custom", "error": "no channel list"}},
         "promote": {"outcome": "skipped"}}


@pytest.mark.parametrize("seconds, text", [(0, "00:00"), (59.9, "00:59"), (405, "06:45"), (3600, "1:00:00"),
                                           (3725, "1:02:05"), (-3, "00:00")])
def test_clock(seconds, text):
    assert clock(seconds) == text


@pytest.mark.parametrize("text, limit, expected", [
    ("short enough", 70, "short enough"),
    ("no channel list from mumble after the handshake was refused", 30, "no channel list from mumble…"),
    ("a    b\n c", 10, "a b c"),
    ("x" * 50, 10, "x" * 9 + "…"),             # one word longer than the limit: cut inside it
    ("", 10, ""), (None, 10, ""),
])
def test_shorten_cuts_at_a_word_boundary(text, limit, expected):
    got = shorten(text, limit)
    assert got == expected and len(got) <= limit


def test_shorten_never_ends_mid_word():
    error = "the restore did not bring back the state written before the backup: found changed-marker"
    got = shorten(error, 70)
    assert got.endswith("…") and error.startswith(got[:-1]) and not error[len(got) - 1].isalnum()


@pytest.mark.parametrize("tier, line", [
    ({"name": "install", "outcome": "pass", "duration": 114.3}, "gitea: install pass in 114.3 s"),
    ({"name": "custom", "outcome": "fail", "duration": 8.6, "error": "tests failed"},
     "gitea: custom fail in 8.6 s: tests failed"),
    ({"name": "lint", "outcome": "skipped", "duration": 0, "reason": "blocked: custom did not pass"},
     "gitea: lint skipped in 0.0 s: blocked: custom did not pass"),
    ({"name": "upgrade", "outcome": "pass", "duration": 3.0, "reason": "ignored when green"},
     "gitea: upgrade pass in 3.0 s"),
    ({"name": "x", "outcome": "pass", "duration": True}, "gitea: x pass"),
])
def test_tier_line(tier, line):
    assert tier_line("gitea", tier) == line


@pytest.mark.parametrize("estimate, elapsed, done, total, left", [
    (None, 10, 0, 3, None),           # no plan, no ETA
    (600, 100, 1, 3, 500),            # on plan
    (600, 0, 3, 3, 0.0),              # all done
    (600, 900, 1, 4, 112.5),          # behind the plan: a quarter of the unfinished share, never 0
    (600, 10, 0, 0, None),
])
def test_remaining_seconds(estimate, elapsed, done, total, left):
    assert remaining_seconds(estimate, elapsed, done, total) == left


def drive(progress):
    progress.estimate = 600.0
    progress.started("sweep s1 started")
    progress.tier_started("gitea", "install", 3.0)
    progress.tier_done("gitea", {"name": "install", "outcome": "pass", "duration": 12.0}, 15.0)
    progress.update(SNAP)
    progress.finished(ENTRY, SNAP)


def test_off_a_terminal_every_event_is_a_plain_line():
    out = Stream(tty=False)
    drive(Progress(stream=out))
    assert out.getvalue().splitlines() == [
        "sweep s1 started (the plan estimates 10:00)",
        "[00:03] gitea: install ...",
        "[00:15] gitea: install pass in 12.0 s",
        "[02:05] mumble           cold fail        promote skipped      (1/4 done, about 07:55 left)"
        "  custom: no channel list",
    ]
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()


def test_on_a_terminal_the_status_line_carries_the_tiers():
    out = Stream(tty=True)
    drive(Progress(stream=out, now=iter(range(0, 100, 5)).__next__))
    text = out.getvalue()
    assert "gitea: install ..." not in text and "install pass" not in text     # default: in the status line only
    assert "1/4 done, 1 red, about 07:55 left | gitea:upgrade" in text
    assert "mumble" in text and "sweep s1 started" in text


def test_verbose_writes_tiers_on_a_terminal_too():
    out = Stream(tty=True)
    drive(Progress(stream=out, verbosity=VERBOSE, now=iter(range(0, 100, 5)).__next__))
    assert "gitea: install pass in 12.0 s" in out.getvalue()


@pytest.mark.parametrize("tty", [True, False])
def test_quiet_says_nothing(tty):
    out = Stream(tty=tty)
    drive(Progress(stream=out, verbosity=QUIET, now=iter(range(0, 100, 5)).__next__))
    assert out.getvalue() == ""


def test_normal_is_the_default():
    assert Progress(stream=Stream(tty=False)).verbosity == NORMAL


def test_job_tells_each_new_tier_record_once():
    told = []
    job = Job("isolate.yml", {}, "ident", "inv", 10, on_tier=lambda _i, t: told.append(t["name"]))

    def facts(tiers):
        job._event({"event": "runner_on_ok", "event_data": {"resolved_action": "ansible.builtin.set_fact",
                                                            "res": {"ansible_facts": {"canon_tiers": tiers}}}})
    facts([])
    facts([{"name": "preflight"}])
    facts([{"name": "preflight"}, {"name": "install"}])
    facts([{"name": "preflight"}, {"name": "install"}])                      # the same list again: nothing new
    job._event({"event": "runner_on_ok", "event_data": {"resolved_action": "ansible.builtin.set_fact",
                                                        "res": {"ansible_facts": {"other": 1}}}})
    facts([{"name": "preflight"}])                                           # a second run of the job
    assert told == ["preflight", "install", "preflight"]


# -- red is a recipe's failure only; infra and interrupted runs are counted apart (issue 17) ------

def _sweep_doc(recipes):
    return {"schema": "coopcloud.canon/sweep", "schema_version": 1, "sweep_id": "sweep-20261206200000-abc123",
            "server": "default", "cap": 2, "duration": 61.0, "outcome": "fail", "systemic": [], "recipes": recipes}


RECIPES = [
    {"recipe": "discourse", "status": "done", "cold": {"outcome": "fail", "failure": {"tier": "custom", "error": "e"}},
     "promote": {"outcome": "skipped"}},
    {"recipe": "gitea", "status": "done", "cold": {"outcome": "pass"}, "promote": {"outcome": "failed"}},
    {"recipe": "keycloak", "status": "done", "cold": {"outcome": "infra", "infra": "engine-down"},
     "promote": {"outcome": "skipped"}},
    {"recipe": "custom-html", "status": "done",
     "cold": {"outcome": "infra", "infra": "harness-error",
              "failure": {"tier": "upgrade", "task": "upgrade - write the marker", "error": "template error"}},
     "promote": {"outcome": "skipped"}},
    {"recipe": "mumble", "status": "interrupted", "cold": {"outcome": "interrupted"}, "promote": {"outcome": "not-run"}},
    {"recipe": "bluesky-pds", "status": "done", "cold": {"outcome": "pass"}, "promote": {"outcome": "promoted"}},
]


def test_the_live_line_counts_only_a_recipes_red():
    import threading
    import time
    from canon.sweep import Sweep
    sweep = Sweep.__new__(Sweep)
    sweep._lock, sweep._running = threading.Lock(), {}
    sweep.doc = dict(_sweep_doc([dict(r) for r in RECIPES]), started_epoch=time.time())
    snap = sweep.snapshot()
    assert (snap["done"], snap["red"], snap["infra"]) == (6, 2, 2)
    out = Stream(tty=True)
    Progress(stream=out).update(snap)
    assert "6/6 done, 2 red, 2 infra | -" in out.getvalue()


def test_the_end_summary_opens_with_the_reports_banner(capsys):
    from canon import report
    from canon.cli import summarise_sweep
    doc = _sweep_doc(RECIPES)
    summarise_sweep(doc, "results/sweep-20261206200000-abc123", {})
    lines = capsys.readouterr().out.splitlines()
    banner = ("2 of 6 red: discourse custom, gitea promote; 2 infra: keycloak (engine-down), custom-html "
              "(harness-error in upgrade); 1 interrupted: mumble")
    assert lines[0] == "sweep sweep-20261206200000-abc123 on default: FAIL in 61 s (cap 2)"
    assert lines[1] == "  " + banner == "  " + report.banner_text(doc)
    html_line = next(line for line in lines if line.split()[:1] == ["custom-html"])
    assert "cold infra (harness-error)" in html_line and "upgrade task 'upgrade - write the marker': template error" \
        in html_line
