import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder, _settings


def t(name, outcome, **kw):
    return dict(name=name, outcome=outcome, **kw)


def test_level_climbs_until_first_failure():
    tiers = [t("preflight", "pass"), t("install", "pass"), t("upgrade", "fail"), t("backup_restore", "skipped")]
    assert _ladder.level(tiers) == {"level": 1, "name": "install", "stopped_at": "upgrade", "of": 5,
                                    "applicable": 5, "passed": 1, "not_applicable": []}
    assert _ladder.overall(tiers) == "fail"


def test_intended_not_applicable_does_not_stop_the_climb():
    tiers = [t("install", "pass"), t("upgrade", "pass"), t("backup_restore", "not-applicable", intended=True,
                                                           reason="stateless"), t("custom", "pass"), t("lint", "pass")]
    assert _ladder.level(tiers)["level"] == 5
    assert _ladder.overall(tiers) == "pass"


def test_unintended_skip_stops_the_climb_and_is_not_green():
    tiers = [t("install", "pass"), t("upgrade", "skipped", intended=False), t("backup_restore", "pass")]
    assert _ladder.level(tiers)["level"] == 1
    assert _ladder.overall(tiers) == "incomplete"


def test_nothing_verified_is_not_green():
    assert _ladder.overall([t("install", "not-applicable")]) == "fail"
    assert _ladder.overall([]) == "fail"


def test_result_document_and_table():
    doc = _ladder.result_document({"run_id": "r1", "recipe": "x"}, [t("install", "pass", duration=1.5)])
    assert doc["schema_version"] == 1 and doc["outcome"] == "pass"
    lines = _ladder.table(doc)
    assert lines[1].startswith("install") and "PASS" in lines[-1]
    with pytest.raises(ValueError):
        _ladder.result_document({"run_id": "r", "recipe": "x"}, [t("install", "green")])


def test_settings_defaults_and_unknown_keys():
    s = _settings.resolve({"deploy_timeout": 60}, "x")
    assert s["deploy_timeout"] == 60 and s["health_codes"] == [200]
    with pytest.raises(_settings.SettingsError, match="unknown setting"):
        _settings.resolve({"deploy_timout": 60}, "x")
    with pytest.raises(_settings.SettingsError, match="must be int"):
        _settings.resolve({"deploy_timeout": "60"}, "x")
    with pytest.raises(_settings.SettingsError, match="needs a reason"):
        _settings.resolve({"not_applicable": {"backup_restore": ""}}, "x")
    with pytest.raises(_settings.SettingsError, match="unknown tier"):
        _settings.resolve({"not_applicable": {"backups": "x"}}, "x")


def test_the_custom_suite_is_bounded_and_the_bound_is_positive():
    assert _settings.resolve({}, "x")["custom_timeout"] == 600
    assert _settings.resolve({"custom_timeout": 30}, "x")["custom_timeout"] == 30
    for bad in (0, -5):
        with pytest.raises(_settings.SettingsError, match="custom_timeout must be positive"):
            _settings.resolve({"custom_timeout": bad}, "x")
    with pytest.raises(_settings.SettingsError, match="must be int"):
        _settings.resolve({"custom_timeout": True}, "x")


NA_UPGRADE = "1.0.0+1.37 is the recipe's oldest release: nothing to upgrade from"
NA_CUSTOM = "no custom suite in tests/suites/x"


@pytest.mark.parametrize("tiers, outcome, text", [
    # two rungs not applicable: three of three applicable rungs passed, never "5/5"
    ([t("install", "pass"), t("upgrade", "not-applicable", reason=NA_UPGRADE), t("backup_restore", "pass"),
      t("custom", "not-applicable", reason=NA_CUSTOM), t("lint", "pass")], "pass",
     "PASS, 3 of 3 applicable rungs (upgrade n/a: %s; custom n/a: %s)" % (NA_UPGRADE, NA_CUSTOM)),
    ([t(n, "pass") for n in ("install", "upgrade", "backup_restore", "custom", "lint")], "pass",
     "PASS, 5 of 5 applicable rungs"),
    ([t("install", "pass"), t("upgrade", "fail", error="x"), t("backup_restore", "skipped")], "fail",
     "FAIL, 1 of 5 applicable rungs, stopped at upgrade"),
    ([t("install", "pass"), t("upgrade", "harness-error", task="upgrade - deploy", harness_error="template",
                              error="harness error")], "harness-error",
     "HARNESS-ERROR, 1 of 5 applicable rungs, stopped at upgrade"),
    ([t("install", "infra", infra="image-unavailable", error="image could not be accessed")], "infra",
     "INFRA, 0 of 5 applicable rungs, stopped at install"),
])
def test_levels_count_only_applicable_rungs(tiers, outcome, text):
    doc = _ladder.result_document({"run_id": "r1", "recipe": "x"}, tiers)
    assert doc["outcome"] == outcome
    assert doc["level_text"] == text
    assert _ladder.table(doc)[-1].startswith("x r1: " + text)


def test_not_applicable_is_not_counted_as_passed():
    tiers = [t("install", "pass"), t("upgrade", "not-applicable", reason=NA_UPGRADE)]
    lv = _ladder.level(tiers)
    assert lv["level"] == 2 and lv["passed"] == 1 and lv["applicable"] == 4
    assert lv["not_applicable"] == [{"tier": "upgrade", "reason": NA_UPGRADE}]


@pytest.mark.parametrize("outcomes, run", [
    (["pass", "harness-error"], "harness-error"),   # the harness broke: not a red recipe
    (["pass", "infra"], "infra"),
    (["fail", "harness-error"], "fail"),            # a recipe red elsewhere stands
    (["infra", "fail"], "infra"),                   # nothing the broken server showed is evidence
    (["pass", "fail"], "fail"),
])
def test_run_outcome_precedence(outcomes, run):
    tiers = [t("tier%d" % i, o) for i, o in enumerate(outcomes)]
    assert _ladder.overall(tiers) == run


def test_result_names_the_cause():
    he = _ladder.result_document({"run_id": "r", "recipe": "x"}, [
        t("install", "pass"), t("upgrade", "harness-error", task="upgrade - render", harness_error="template",
                                error="harness error (template) in task 'upgrade - render': 'x' is undefined")])
    assert he["harness_error"] == {"tier": "upgrade", "task": "upgrade - render", "kind": "template",
                                   "error": "harness error (template) in task 'upgrade - render': 'x' is undefined"}
    assert "HARNESS ERROR in upgrade task 'upgrade - render'" in _ladder.table(he)[-1]
    inf = _ladder.result_document({"run_id": "r", "recipe": "x"}, [t("install", "infra", infra="engine-down")])
    assert inf["infra"] == "engine-down" and "INFRA (engine-down)" in _ladder.table(inf)[-1]
    assert "infra" not in _ladder.result_document({"run_id": "r", "recipe": "x"}, [t("install", "pass")])


def test_table_wraps_a_long_detail_and_never_cuts_a_word():
    long = " ".join("word%d" % i for i in range(60))
    doc = _ladder.result_document({"run_id": "r", "recipe": "x"}, [t("install", "fail", error=long)])
    lines = _ladder.table(doc)[1:-1]
    assert len(lines) > 1 and all(len(line) <= 120 for line in lines)
    assert " ".join(" ".join(line.split()[3:] if i == 0 else line.split()) for i, line in enumerate(lines)) == long


@pytest.mark.parametrize("outcomes, status, words", [
    ([{"outcome": "pass", "results": "/r/a"}, {"outcome": "pass", "results": "/r/b"}], "pass",
     "2 run(s) passed: /r/a, /r/b"),
    ([{"outcome": "fail", "results": "/r/a", "level_text": "FAIL, 1 of 5 applicable rungs, stopped at upgrade"}],
     "red", "1 of 1 run(s) did not pass: FAIL, 1 of 5 applicable rungs, stopped at upgrade (/r/a)"),
    ([{"outcome": "pass", "results": "/r/a"}, {"outcome": "infra", "infra": "image-unavailable", "results": "/r/b"}],
     "infra", "INFRA (image-unavailable): the server could not take the run"),
    # canon's rule: any run that could not say anything makes the whole INFRA
    ([{"outcome": "fail", "results": "/r/a"}, {"outcome": "harness-error", "results": "/r/b",
                                               "harness_error": {"tier": "upgrade", "task": "upgrade - deploy"}}],
     "infra", "HARNESS ERROR in upgrade task 'upgrade - deploy': not the recipe's failure (/r/b)"),
    ([{"outcome": "incomplete", "results": "/r/a"}], "red", "INCOMPLETE (/r/a)"),
    ([], "red", "no run recorded an outcome"),
])
def test_runs_verdict(outcomes, status, words):
    got = _ladder.runs_verdict(outcomes)
    assert got["status"] == status and words in got["msg"]


@pytest.mark.parametrize("text, limit, want", [
    ("the restore did not bring back the state", 100, "the restore did not bring back the state"),
    ("the restore did not bring back the state", 20, "the restore did not…"),
    ("the restore did not bring back the state", 21, "the restore did not…"),
    ("averyveryverylongsingletoken here", 10, "averyvery…"),
    ("", 5, ""),
    (None, 5, ""),
])
def test_clip_words_never_cuts_mid_word(text, limit, want):
    got = _ladder.clip_words(text, limit)
    assert got == want and len(got) <= limit
    if got.endswith("…") and " " in got:
        assert (text or "").startswith(got[:-1]) and (text or "")[len(got) - 1] == " "
