"""The preflight on real conventions: docker's own loader (``docker stack config``) over a
fixture recipe that pins each convention the real recipes use, and the checks on the merged
stack, table-driven."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _recipe as r
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import (
    DockerClient, DockerError, StackConfigError, client_too_old)
from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import parse_env
from loader import needs_loader, stack_config_docker

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "fixtures", "recipes")
DOMAIN = "chained-1a2b3c.bench.canon.test"
VERSION = "1.0.0+1.27"


DOCKER = stack_config_docker()


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """The fixture recipe as a git repository with its release tag, as abra fetches it."""
    repo = tmp_path_factory.mktemp("recipes") / "chained"
    shutil.copytree(os.path.join(FIXTURES, "chained"), repo)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(git + ["add", "-A"], check=True)
    subprocess.run(git + ["commit", "-qm", "release"], check=True)
    subprocess.run(git + ["tag", VERSION], check=True)
    return str(repo)


def _inspect(chained, tmp_path, compose_file=None):
    return r.inspect_release(DockerClient(binary=DOCKER), chained, VERSION, DOMAIN, {}, workdir=str(tmp_path),
                             compose_file=compose_file)


@needs_loader
def test_chained_default_merges_and_is_clean(chained, tmp_path):
    rel = _inspect(chained, tmp_path)
    assert rel["files"] == ["compose.yml", "compose.postgres.yml"]
    stack = rel["stack"]
    app = stack["services"]["app"]
    # merged, not replaced: the overlay's environment adds to the base's
    assert app["environment"]["DOMAIN"] == DOMAIN and app["environment"]["DB_HOST"] == "db"
    assert app["environment"]["MOTD"] == "first line\nsecond line"            # a multi-line value
    # interpolation after YAML parsing: a value holding ": " stays a string
    assert app["deploy"]["labels"]["greeting"] == "hello: world"
    # the config version exported by abra.sh, the secret version of the sample
    stack_ = DOMAIN.replace(".", "_")
    assert stack["configs"]["entrypoint_conf"]["name"] == stack_ + "_entrypoint_conf_v3"
    assert stack["secrets"]["db_password"]["name"] == stack_ + "_db_password_v1"
    assert rel["templates"]["entrypoint_conf"].startswith("#!/bin/sh")
    assert r.compose_findings(stack, DOMAIN, rel["env"], files=":".join(rel["files"]),
                              templates=rel["templates"]) == []
    assert rel["overlays"] == ["compose.yml:compose.postgres.yml:postgres/compose.tune.yml",
                               "compose.yml:compose.postgres.yml:compose.oauth.yml"]


@needs_loader
def test_subfolder_overlay_loads(chained, tmp_path):
    rel = _inspect(chained, tmp_path, "compose.yml:compose.postgres.yml:postgres/compose.tune.yml")
    assert rel["stack"]["services"]["db"]["configs"] == [{"source": "tune", "target": "/tune.sh"}]
    assert r.compose_findings(rel["stack"], DOMAIN, rel["env"]) == []


@needs_loader
def test_overlay_with_undefined_secret_is_found(chained, tmp_path):
    rel = _inspect(chained, tmp_path, "compose.yml:compose.postgres.yml:compose.oauth.yml")
    found = r.compose_findings(rel["stack"], DOMAIN, rel["env"])
    assert [(f["check"], f["message"]) for f in found] == [
        ("undefined-secret", "service app uses the secret oauth_client_secret, which no file in COMPOSE_FILE defines")]
    # the commented secret version is in the env (an overlay's secret gets its real name)
    assert rel["stack"]["secrets"]["oauth_client"]["name"].endswith("_oauth_client_secret_v2")


@needs_loader
def test_alias_check_reads_templates_not_paths(chained, tmp_path):
    rel = _inspect(chained, tmp_path)
    aliases = {"proxy": {"db": ["other_stack"]}}
    # app and db do not meet on proxy (db is internal only): no ambiguity whatever other stacks run
    assert r.compose_findings(rel["stack"], DOMAIN, rel["env"], shared_aliases=aliases,
                              templates=rel["templates"]) == []
    services = {n: {"spec": s, "files": ["x"]} for n, s in rel["stack"]["services"].items()}
    # the template's postgres://db:5432 and DB_HOST=db count; DATA_DIR=/srv/db/data does not
    assert r.short_name_references(services, rel["templates"]) == [("app", "db")]
    services["app"]["spec"]["environment"] = {"DATA_DIR": "/srv/db/data"}
    assert r.short_name_references(services, {}) == []


@needs_loader
def test_missing_compose_file_and_escape(chained, tmp_path):
    with pytest.raises(r.RecipeError, match="COMPOSE_FILE names compose.nope.yml, which release 1.0.0\\+1.27 does not have"):
        _inspect(chained, tmp_path / "a", "compose.yml:compose.nope.yml")
    with pytest.raises(r.RecipeError, match="outside the recipe"):
        _inspect(chained, tmp_path / "b", "compose.yml:../../etc/passwd")


@needs_loader
def test_docker_refusal_is_a_recipe_error(tmp_path):
    (tmp_path / "compose.yml").write_text('services:\n  a:\n    image: "x:${TAG:?set TAG}"\n')
    with pytest.raises(r.RecipeError, match="required variable TAG is missing a value: set TAG"):
        r.load_stack(DockerClient(binary=DOCKER), str(tmp_path), ["compose.yml"], {}, "1.0.0+1")
    (tmp_path / "compose.yml").write_text('services:\n  a:\n    image: "x\n')
    with pytest.raises(r.RecipeError, match="compose files compose.yml of release 1.0.0\\+1 do not load"):
        r.load_stack(DockerClient(binary=DOCKER), str(tmp_path), ["compose.yml"], {}, "1.0.0+1")


@needs_loader
def test_a_malformed_overlay_is_named_with_its_line(tmp_path):
    # docker's own message names neither the file nor the overlay's line; the error leads with both
    (tmp_path / "compose.yml").write_text("services:\n  app:\n    image: nginx:1.27\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "compose.x.yml").write_text(
        "services:\n  app:\n    environment:\n      - A=1\n     - B=2\n")
    with pytest.raises(r.RecipeError) as err:
        r.load_stack(DockerClient(binary=DOCKER), str(tmp_path), ["compose.yml", "sub/compose.x.yml"], {}, "1.0.0+1")
    message = str(err.value)
    assert message.startswith("compose files compose.yml:sub/compose.x.yml of release 1.0.0+1 do not load: "
                              "sub/compose.x.yml:5:")
    assert "; docker: " in message
    # a file docker refuses for what it means, not its syntax, keeps docker's words alone
    assert r.yaml_problem(str(tmp_path), ["compose.yml"]) is None


def _fake_docker(tmp_path, script: str) -> str:
    path = tmp_path / "docker"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_stack_config_argv_cwd_and_env_isolation(tmp_path, monkeypatch):
    monkeypatch.setenv("DOMAIN", "leaked.example.org")
    out = tmp_path / "seen"
    docker = _fake_docker(tmp_path, 'echo "$@" > %s; pwd >> %s; echo "DOMAIN=$DOMAIN X=$X" >> %s\n'
                                    'printf "services:\\n  a:\\n    image: x:1\\n"\n' % (out, out, out))
    logged = []
    client = DockerClient(binary=docker, context="remote", log=logged.append)
    stack = client.stack_config(["compose.yml", "sub/b.yml"], {"X": "1"}, cwd=str(tmp_path))
    assert stack == {"services": {"a": {"image": "x:1"}}}
    argv, cwd, env = out.read_text().splitlines()
    # no --context: the loader is client-side; the caller's DOMAIN never leaks in
    assert argv == "stack config -c compose.yml -c sub/b.yml"
    assert cwd == str(tmp_path) and env == "DOMAIN= X=1"
    assert logged and logged[0].argv[1:] == ["stack", "config", "-c", "compose.yml", "-c", "sub/b.yml"]


@pytest.mark.parametrize("script,error,match", [
    ('[ "$1" = --version ] && { echo "Docker version 20.10.24+dfsg1, build 297e128"; exit 0; }\n'
     'echo "docker: \'config\' is not a docker command." >&2; exit 1\n', DockerError,
     "docker client 20.10.24 has no `docker stack config`.*docker CLI 23 or later"),
    ('[ "$1" = --version ] && { echo "Docker version 28.2.2, build e6534b4"; exit 0; }\n'
     'echo "yaml: line 3: found unexpected end of stream" >&2; exit 1\n', StackConfigError,
     "docker stack config -c compose.yml: yaml: line 3"),
    ('echo "not: [yaml"\n', StackConfigError, "printed what is not YAML"),
    ('echo "- a list"\n', StackConfigError, "printed no mapping"),
])
def test_stack_config_failures(tmp_path, script, error, match):
    client = DockerClient(binary=_fake_docker(tmp_path, script))
    with pytest.raises(error, match=match) as err:
        client.stack_config(["compose.yml"], {}, cwd=str(tmp_path))
    assert err.type is error


@pytest.mark.parametrize("text,message", [
    ("Docker version 20.10.24+dfsg1, build 297e128", "docker client 20.10.24 has no"),
    ("Docker version 22.06.0-beta.0", "docker client 22.06.0 has no"),
    ("Docker version 23.0.0, build e92dd87", None),
    ("Docker version 28.2.2, build e6534b4", None),
    ("something else", None),
])
def test_client_too_old(text, message):
    got = client_too_old(text)
    assert (got is None) if message is None else got.startswith(message)


STACK = "s_example_org"


@pytest.mark.parametrize("stack,checks", [
    ({"services": {"a": {"image": "x:1"}}}, []),
    ({"services": {"a": {}}}, ["image"]),
    ({"services": {"a": {"image": "x:1", "secrets": [{"source": "pw"}]}}}, ["undefined-secret"]),
    ({"services": {"a": {"image": "x:1", "secrets": [{"source": "pw"}]}}, "secrets": {"pw": {"external": True}}}, []),
    ({"services": {"a": {"image": "x:1", "configs": [{"source": "c"}]}}}, ["undefined-config"]),
    ({"services": {"a": {"image": "x:1", "networks": {"backend": None}}}}, ["undefined-network"]),
    ({"services": {"a": {"image": "x:1"}}, "networks": {}}, []),                  # "default" needs no definition
    ({"services": {"a": {"image": "x:1", "volumes": [{"type": "volume", "source": "data", "target": "/d"}]}}},
     ["undefined-volume"]),
    ({"services": {"a": {"image": "x:1", "volumes": [{"type": "bind", "source": "/srv", "target": "/d"},
                                                     {"type": "tmpfs", "target": "/t"}]}}}, []),
    ({"services": {"a": {"image": "x:1", "volumes": ["data:/d", "/srv:/s", "./x:/x"]}}}, ["undefined-volume"]),
    ({"services": {"a": {"image": "x:1", "depends_on": ["b"]}}}, ["undefined-service"]),
    ({"services": {"a": {"image": "x:1"}}, "secrets": {"k": {"name": STACK + "_" + "k" * 55 + "_v1"}}}, ["name-budget"]),
    ({"services": {"a": {"image": "x:1"}}, "secrets": {"k": {"name": STACK + "_" + "k" * 40 + "_v1"}}}, []),
    ({"services": {"a": {"image": "x:1"}}, "configs": {"c" * 60: {"file": "x"}}}, ["name-budget"]),
])
def test_findings_table(stack, checks):
    assert [f["check"] for f in r.compose_findings(stack, "s.example.org", {})] == checks


def test_budget_counts_the_real_version():
    # 64 characters with v1, 65 with the v10 abra.sh exports: over swarm's 64
    name64 = STACK + "_" + "c" * (64 - len(STACK) - 4) + "_v1"
    assert len(name64) == 64
    assert r.compose_findings({"services": {}, "configs": {"c": {"name": name64}}}, "s.example.org", {}) == []
    found = r.compose_findings({"services": {}, "configs": {"c": {"name": name64[:-2] + "v10"}}}, "s.example.org", {})
    assert [f["message"] for f in found] == ["config name %s is 65 characters, over swarm's 64" % (name64[:-2] + "v10")]


@pytest.mark.parametrize("text,host,hit", [
    ("http://app/x", "app", True), ("app:3000", "app", True), ("DB_HOST=db", "db", True),
    ("postgres://u:p@db:5432/x", "db", True), ("db", "db", True), ('"db"', "db", True),
    ("/srv/db/data", "db", False), ("db/data", "db", False), ("myapp:1", "app", False),
    ("app.example.org", "app", False), ("app_data", "app", False), ("echo app is up", "app", False),
    ("/run/secrets/db_password", "db", False), ("--host=db", "db", True), ("$db", "db", False),
])
def test_mentions_host(text, host, hit):
    assert r.mentions_host(text, host) is hit


@pytest.mark.parametrize("spec,nets", [
    ({}, ["default"]), ({"networks": ["a", "b"]}, ["a", "b"]), ({"networks": {"a": None}}, ["a"]),
    ({"network_mode": "host"}, []),
])
def test_service_networks(spec, nets):
    assert r.service_networks(spec) == nets


def test_recipe_env_precedence():
    sample = parse_env('A=sample\nCONF_VERSION=v1\n#SECRET_X_VERSION=v2\nSECRET_Y_VERSION=v1\n#SECRET_Y_VERSION=v9\n')
    env = r.recipe_env(sample, "export CONF_VERSION=v4\n", {"A": "run"}, "s.example.org")
    assert env == {"A": "run", "CONF_VERSION": "v4", "SECRET_X_VERSION": "v2", "SECRET_Y_VERSION": "v1",
                   "DOMAIN": "s.example.org", "STACK_NAME": "s_example_org"}


@pytest.mark.parametrize("tags,expected", [
    (["1.0.0+1.9", "1.0.0+1.10", "1.0.0+1.9-rootless", "0.9.0+2"], ["0.9.0+2", "1.0.0+1.9", "1.0.0+1.9-rootless", "1.0.0+1.10"]),
    (["3.5.3+1.24.2-rootless", "3.6.0+1.25.0-rootless", "3.5.10+1.24.2-rootless"],
     ["3.5.3+1.24.2-rootless", "3.5.10+1.24.2-rootless", "3.6.0+1.25.0-rootless"]),
    (["v1.0.0", "v1.0.1"], []),
])
def test_version_order(tags, expected):
    assert r.sort_versions(tags) == expected


def test_version_key_upstream_numeric():
    assert r.version_key("1.0.0+1.9") < r.version_key("1.0.0+1.10")
    assert r.version_key("v2.4.8") < r.version_key("0.0.1+1")        # not a release: sorts first, no TypeError


@pytest.mark.parametrize("tags,message", [
    ([], "recipe x has no release tags: abra releases are git tags X.Y.Z+upstream (e.g. 1.0.0+2.4.8), "
         "and this recipe has no tag at all"),
    (["v1.0.0", "v1.0.1"], "recipe x has no release tags of the form X.Y.Z+upstream (e.g. 1.0.0+2.4.8), "
                           "which abra releases take; its 2 tag(s): v1.0.0, v1.0.1"),
    (["1.0.0+1", "v1"], None),
])
def test_no_release_message(tags, message):
    assert r.no_release_message("x", tags) == message


@needs_loader
def test_interpolation_is_compose_s_after_parsing(tmp_path):
    """The cases a substitution before YAML parsing got wrong: a value holding ': ' in an unquoted
    list label (it became a mapping and crashed a module), nested and unset-only defaults."""
    (tmp_path / "compose.yml").write_text(
        "services:\n"
        "  app:\n"
        "    image: x:${TAG-1.0}\n"
        "    environment:\n"
        "      NESTED: ${A:-${B}}\n"
        "      EMPTY_KEPT: ${E-default}\n"
        "      EMPTY_DEFAULTED: ${E:-default}\n"
        "    deploy:\n"
        "      labels:\n"
        "        - traefik.note=${NOTE}\n")
    env = {"B": "from-b", "E": "", "NOTE": "hello: world"}
    stack = r.load_stack(DockerClient(binary=DOCKER), str(tmp_path), ["compose.yml"], env, "1.0.0+1")
    app = stack["services"]["app"]
    assert app["image"] == "x:1.0"
    # docker's stack loader (docker 28.2.2) does not nest defaults: the deploy gets "${B}" as
    # written. What a deploy does is what counts, so the preflight sees the same.
    assert app["environment"] == {"NESTED": "${B}", "EMPTY_KEPT": "", "EMPTY_DEFAULTED": "default"}
    assert app["deploy"]["labels"] == {"traefik.note": "hello: world"}
    assert r.compose_findings(stack, "s.example.org", env) == []
