import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _ladder, _settings


def t(name, outcome, **kw):
    return dict(name=name, outcome=outcome, **kw)


def test_level_climbs_until_first_failure():
    tiers = [t("preflight", "pass"), t("install", "pass"), t("upgrade", "fail"), t("backup_restore", "skipped")]
    assert _ladder.level(tiers) == {"level": 1, "name": "install", "stopped_at": "upgrade", "of": 5}
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
