from ansible_collections.coopcloud.canon.plugins.module_utils import _drift
from ansible_collections.coopcloud.canon.plugins.module_utils._recipe import parse_env_sample


SAMPLE_360 = """TYPE=gitea
DOMAIN=gitea.example.com
#LETS_ENCRYPT_ENV=production
COMPOSE_FILE="compose.yml"
SECRET_JWT_SECRET_VERSION=v1 # length=43
SECRET_INTERNAL_TOKEN_VERSION=v1 # length=105
LFS_JWT_SECRET_URI=file:/run/secrets/jwt_secret
"""


def test_drift_finds_missing_settings_and_secrets_and_reports_obsolete():
    env = {"TYPE": "gitea:3.5.3+1.24.2-rootless", "DOMAIN": "w.example.org", "COMPOSE_FILE": "compose.yml",
           "SECRET_JWT_SECRET_VERSION": "v1", "OLD_SETTING": "x"}
    drift = _drift.env_drift(parse_env_sample(SAMPLE_360), env)
    assert drift["missing"] == [
        {"key": "SECRET_INTERNAL_TOKEN_VERSION", "default": "v1", "secret": "internal_token", "length": 105},
        {"key": "LFS_JWT_SECRET_URI", "default": "file:/run/secrets/jwt_secret", "secret": None, "length": None},
    ]
    assert drift["obsolete"] == ["OLD_SETTING"]
    assert _drift.drift_lines(drift["missing"]) == [
        "SECRET_INTERNAL_TOKEN_VERSION=v1 # length=105", "LFS_JWT_SECRET_URI=file:/run/secrets/jwt_secret"]


def test_no_drift_is_empty():
    sample = parse_env_sample(SAMPLE_360)
    env = {k: v["value"] for k, v in sample.items() if not v["commented"]}
    assert _drift.env_drift(sample, env) == {"missing": [], "obsolete": []}


def test_append_keeps_file_and_mode(tmp_path):
    p = tmp_path / "a.env"
    p.write_text("TYPE=gitea\nDOMAIN=a")
    p.chmod(0o600)
    _drift.append_env_lines(str(p), ["X=1"])
    assert p.read_text() == "TYPE=gitea\nDOMAIN=a\n# added by coopcloud.canon env drift reconciliation\nX=1\n"
    assert p.stat().st_mode & 0o777 == 0o600
