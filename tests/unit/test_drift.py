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
        {"key": "SECRET_INTERNAL_TOKEN_VERSION", "default": "v1", "secret": "internal_token", "length": 105,
         "options": {"length": "105"}, "generate": True},
        {"key": "LFS_JWT_SECRET_URI", "default": "file:/run/secrets/jwt_secret", "secret": None, "length": None,
         "options": {}, "generate": True},
    ]
    assert drift["changed"] == [] and drift["compose_file"] is None
    assert drift["obsolete"] == ["OLD_SETTING"]
    assert _drift.drift_lines(drift["missing"]) == [
        "SECRET_INTERNAL_TOKEN_VERSION=v1 # length=105", "LFS_JWT_SECRET_URI=file:/run/secrets/jwt_secret"]


def test_no_drift_is_empty():
    sample = parse_env_sample(SAMPLE_360)
    env = {k: v["value"] for k, v in sample.items() if not v["commented"]}
    assert _drift.env_drift(sample, env) == {"missing": [], "obsolete": [], "changed": [], "compose_file": None}


def test_append_keeps_file_and_mode(tmp_path):
    p = tmp_path / "a.env"
    p.write_text("TYPE=gitea\nDOMAIN=a")
    p.chmod(0o600)
    _drift.append_env_lines(str(p), ["X=1"])
    assert p.read_text() == "TYPE=gitea\nDOMAIN=a\n# added by coopcloud.canon env drift reconciliation\nX=1\n"
    assert p.stat().st_mode & 0o777 == 0o600


BONFIRE_OLD = """COMPOSE_FILE="compose.yml"
SECRET_SEEDS_PW_VERSION=v1
UPLOAD_LIMIT=10000000
LOG_LEVEL=info
"""
BONFIRE_NEW = """COMPOSE_FILE="compose.yml"
COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"
SECRET_SEEDS_PW_VERSION=v1
SECRET_POSTGRES_PASSWORD_VERSION=v1 # length=32 charset=hex
SECRET_ORCID_CLIENT_SECRET_VERSION=v1 # generate=false
UPLOAD_LIMIT=20000000
LOG_LEVEL=debug
"""
ORCID = """secrets:
  orchid_client_secret:
    external: true
    name: ${STACK_NAME}_orchid_client_secret_${SECRET_ORCID_CLIENT_SECRET_VERSION:-v1}
"""


def test_drift_added_removed_changed_and_compose_file():
    env = {"COMPOSE_FILE": "compose.yml", "SECRET_SEEDS_PW_VERSION": "v1", "UPLOAD_LIMIT": "10000000",
           "LOG_LEVEL": "warning", "GONE": "1"}
    names = _drift.compose_secret_names({"compose.auth.orcid.yml": ORCID, "broken.yml": "a: [\n"})
    assert names == {"SECRET_ORCID_CLIENT_SECRET_VERSION": "orchid_client_secret"}
    drift = _drift.env_drift(parse_env_sample(BONFIRE_NEW), env, old_sample=parse_env_sample(BONFIRE_OLD),
                             compose_names=names)
    assert drift["compose_file"] == {"app": "compose.yml", "sample": "compose.yml:compose.postgres.yml",
                                     "files_added": ["compose.postgres.yml"], "files_removed": [], "files_absent": []}
    assert [(m["key"], m["secret"], m["generate"]) for m in drift["missing"]] == [
        ("SECRET_POSTGRES_PASSWORD_VERSION", "postgres_password", True),
        ("SECRET_ORCID_CLIENT_SECRET_VERSION", "orchid_client_secret", False)]     # named by compose, not guessed
    assert drift["obsolete"] == ["GONE"]
    assert drift["changed"] == [
        {"key": "COMPOSE_FILE", "old_default": "compose.yml", "new_default": "compose.yml:compose.postgres.yml",
         "app": "compose.yml", "follows_default": True},
        {"key": "UPLOAD_LIMIT", "old_default": "10000000", "new_default": "20000000", "app": "10000000",
         "follows_default": True},
        {"key": "LOG_LEVEL", "old_default": "info", "new_default": "debug", "app": "warning", "follows_default": False}]
    assert _drift.drift_lines(drift["missing"]) == [
        "SECRET_POSTGRES_PASSWORD_VERSION=v1 # length=32 charset=hex",
        "SECRET_ORCID_CLIENT_SECRET_VERSION=v1 # generate=false"]


def test_compose_file_same_files_is_no_drift():
    sample = parse_env_sample('COMPOSE_FILE="compose.yml"\n')
    assert _drift.env_drift(sample, {})["compose_file"] is None            # unset means compose.yml
    assert _drift.env_drift(sample, {"COMPOSE_FILE": "compose.yml:x.yml"})["compose_file"]["files_removed"] == ["x.yml"]
    # the app's own overlay, which the new release dropped: a deploy would fail
    gone = _drift.env_drift(sample, {"COMPOSE_FILE": "compose.yml:x.yml"}, release_files=["compose.yml"])
    assert gone["compose_file"]["files_absent"] == ["x.yml"]
    kept = _drift.env_drift(sample, {"COMPOSE_FILE": "compose.yml:x.yml"}, release_files=["compose.yml", "x.yml"])
    assert kept["compose_file"]["files_absent"] == []
    # the same files, one of them gone from the release: still drift
    assert _drift.env_drift(sample, {}, release_files=["other.yml"])["compose_file"]["files_absent"] == ["compose.yml"]


def test_is_compose_path():
    assert [p for p in ["compose.yml", "postgres/compose.postgres.tune.yml", "abra.sh", "compose.yml.tmpl",
                        "docker-compose.yml"] if _drift.is_compose_path(p)] == [
        "compose.yml", "postgres/compose.postgres.tune.yml"]
