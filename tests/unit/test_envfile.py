"""The one env reader: abra's (godotenv's) rules, one convention per case."""

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _envfile as ef


@pytest.mark.parametrize("text,key,value", [
    ("A=1\n", "A", "1"),
    ("export A=1\n", "A", "1"),
    ("A = 1\n", "A", "1"),
    ("A=1 # length=3\n", "A", "1"),
    ("A=a#b\n", "A", "a#b"),                                   # '#' without whitespace is data
    ("A='x $B y'\nB=2\n", "A", "x $B y"),                      # single quotes: literal
    ("B=2\nA=\"x $B ${B}\\n\"\n", "A", "x 2 2\n"),             # double quotes: expansion, escapes
    ("A=\"x \\$B\"\n", "A", "x $B"),
    ("A=\"a\\\\nb\"\n", "A", "a\\nb"),                       # an escaped backslash, then a plain n
    ("A=\"t\\tq\\\"\"\n", "A", "ttq\""),                       # any other \X is X
    ("A=$NEVER_SET\n", "A", ""),
    ("A=\"line1\nline2\"\nB=3\n", "A", "line1\nline2"),       # multi-line quoted value
    ("C=\"compose.yml\"\nC=\"$C:compose.x.yml\"\n", "C", "compose.yml:compose.x.yml"),   # chaining
    ("A=1\n#A=2\n", "A", "1"),                                 # a comment never shadows
    ("#A=2\nA=1\n", "A", "1"),
    ("A=\r\n", "A", ""),
])
def test_active_values(text, key, value):
    assert ef.parse_env(text).active[key] == value


def test_commented_lines_are_known_not_active():
    env = ef.parse_env("A=1\n#B=2\n# C=\"never closed\n#   export D=4 # length=9\n")
    assert env.active == {"A": "1"}
    assert env.commented == {"B": "2", "C": "\"never closed", "D": "4"}
    assert env.entry("D").options == {"length": "9"}
    assert env.entry("A").commented is False


def test_commented_multi_line_value_opens_no_quote():
    # the wordpress case: a commented-out multi-line value is not an unterminated quote
    env = ef.parse_env("#PHP_INI=\"upload=1\n#memory=2\"\nTYPE=wordpress\n")
    assert env.active == {"TYPE": "wordpress"}


def test_bonfire_compose_file_chaining_and_overlays():
    env = ef.parse_env(
        'COMPOSE_FILE="compose.yml"\n'
        'COMPOSE_FILE="$COMPOSE_FILE:compose.postgres.yml"\n'
        '# COMPOSE_FILE="$COMPOSE_FILE:postgres/compose.postgres.tune.yml"\n'
        '#COMPOSE_FILE="$COMPOSE_FILE:compose.auth.github.yml"\n'
        '# SECRET_GITHUB_CLIENT_SECRET_VERSION=v1\n')
    assert env.active["COMPOSE_FILE"] == "compose.yml:compose.postgres.yml"
    assert env.overlays() == ["compose.yml:compose.postgres.yml:postgres/compose.postgres.tune.yml",
                              "compose.yml:compose.postgres.yml:compose.auth.github.yml"]
    assert env.secrets() == {"SECRET_GITHUB_CLIENT_SECRET_VERSION": {"version": "v1", "commented": True, "options": {}}}


def test_traefik_style_overlays_and_default():
    env = ef.parse_env('TYPE=traefik\n# COMPOSE_FILE="compose.yml:compose.ovh.yml"\n#COMPOSE_FILE="compose.yml"\n')
    assert "COMPOSE_FILE" not in env.active
    assert env.overlays() == ["compose.yml:compose.ovh.yml"]      # the default itself is no overlay
    assert ef.compose_files(env.active.get("COMPOSE_FILE")) == ["compose.yml"]


def test_secret_options():
    env = ef.parse_env('SECRET_HMAC_VERSION=v1       # length=64 charset=hex\n'
                       'SECRET_TOKEN_VERSION="v2" # generate=false\n#SECRET_X_VERSION=v1 # length=8\n')
    assert env.secrets() == {
        "SECRET_HMAC_VERSION": {"version": "v1", "commented": False, "options": {"length": "64", "charset": "hex"}},
        "SECRET_TOKEN_VERSION": {"version": "v2", "commented": False, "options": {"generate": "false"}},
        "SECRET_X_VERSION": {"version": "v1", "commented": True, "options": {"length": "8"}},
    }


@pytest.mark.parametrize("text,line", [
    ("A=1\nthis is not an assignment\n", 2),
    ("A=1\n\nB=\"never closed\nC=3\n", 3),
    ("1BAD=x\n", 1),
    ("A=\"x\" trailing\n", 1),
])
def test_malformed_names_file_and_line(text, line):
    with pytest.raises(ef.EnvFileError) as err:
        ef.parse_env(text, name="recipes/x/.env.sample")
    assert str(err.value).startswith("recipes/x/.env.sample line %d" % line)


def test_read_env_absent_and_undecodable(tmp_path):
    assert ef.read_env(str(tmp_path / "none.env")).active == {}
    bad = tmp_path / "bad.env"
    bad.write_bytes(b"A=\xff\n")
    with pytest.raises(ef.EnvFileError, match="bad.env is not UTF-8"):
        ef.read_env(str(bad))


@pytest.mark.parametrize("value,files", [
    (None, ["compose.yml"]), ("", ["compose.yml"]), ("compose.yml:compose.x.yml", ["compose.yml", "compose.x.yml"]),
    ("compose.yml::postgres/t.yml", ["compose.yml", "postgres/t.yml"]),
])
def test_compose_files(value, files):
    assert ef.compose_files(value) == files


def test_shell_exports_reads_only_exports():
    text = "#!/bin/sh\nexport APP_ENTRYPOINT_VERSION=v4\n  export PG=\"v6\"\nNOT_EXPORTED=v1\nexport_x() { :; }\n"
    assert ef.shell_exports(text) == {"APP_ENTRYPOINT_VERSION": "v4", "PG": "v6"}


@pytest.mark.parametrize("key,name", [("SECRET_DB_PASSWORD_VERSION", "db_password"), ("DB_VERSION", None)])
def test_secret_key_name(key, name):
    assert ef.secret_key_name(key) == name
