import pytest

from ansible_collections.coopcloud.canon.plugins.module_utils import _lint as lint
from ansible_collections.coopcloud.canon.plugins.module_utils import _recipe as r


def test_versions_sort_semver_not_text():
    tags = ["1.10.0+1", "1.9.0+1", "1.2.0+2", "not-a-release", "1.2.0+1"]
    assert r.sort_versions(tags) == ["1.2.0+1", "1.2.0+2", "1.9.0+1", "1.10.0+1"]
    assert r.previous_version(tags, "1.10.0+1") == "1.9.0+1"
    assert r.previous_version(tags, "1.2.0+1") is None


def test_env_sample_parse():
    sample = r.parse_env_sample(
        "TYPE=gitea\nDOMAIN=gitea.example.com\n#LETS_ENCRYPT_ENV=production\n"
        "SECRET_DB_PASSWORD_VERSION=v1 # length=32\n## a comment with a = sign\nCOMPOSE_FILE=\"compose.yml\"\n")
    assert sample["TYPE"]["value"] == "gitea"
    assert sample["LETS_ENCRYPT_ENV"]["commented"] is True
    assert sample["SECRET_DB_PASSWORD_VERSION"] == {"value": "v1", "commented": False, "length": 32,
                                                    "options": {"length": "32"}}
    assert sample["COMPOSE_FILE"]["value"] == "compose.yml"


@pytest.mark.parametrize("bad", ["this is not an assignment", "KEY=\"unterminated", "1BAD=x"])
def test_env_sample_malformed(bad):
    with pytest.raises(r.RecipeError):
        r.parse_env_sample("TYPE=x\n" + bad + "\n")


def test_compose_findings():
    # the merged stack of compose.yml + compose.smtpauth.yml, as docker stack config prints it
    stack = {"services": {"app": {"image": "x:1", "depends_on": ["db", "smtp"]}, "db": {"image": "y:1"},
                          "noimage": {}},
             "secrets": {"pw": {"external": True, "name": "s_pw_v1"}}}
    findings = r.compose_findings(stack, "a.example.org", {}, files="compose.yml:compose.smtpauth.yml")
    msgs = [f["message"] for f in findings]
    assert any("depends_on smtp, which no file in COMPOSE_FILE defines" in m for m in msgs)
    assert any("noimage has no image" in m for m in msgs)
    assert not any("depends_on db" in m for m in msgs)
    assert {f["file"] for f in findings} == {"compose.yml:compose.smtpauth.yml"}


def test_compose_name_budget_finding():
    long = "x" * 50 + ".example.org"
    stack = long.replace(".", "_")[:45]
    merged = {"services": {"app": {"image": "x:1"}, "a-very-long-service-name": {"image": "x:1"}},
              "secrets": {"smtp_relay_password": {"name": stack + "_smtp_relay_password_v1"}}}
    findings = r.compose_findings(merged, long, {})
    assert [f["check"] for f in findings] == ["name-budget", "name-budget"]


def test_lint():
    # The lint moved to _lint (abra's rules beside L001-L003); the old case keeps its verdicts there.
    # merged stacks as docker stack config prints them (labels as a mapping)
    stack = {"services": {"app": {"image": "x:latest", "deploy": {"labels": {"coop-cloud.s.version": "1.0.0+1"}}}}}
    facts = lint.RecipeFacts(name="rec", stack=stack, sample_env={"TYPE": "rec"},
                             version="1.1.0+1", stack_name="s")
    found = lint.findings(lint.lint_recipe(facts), "error")
    assert sorted({f["rule"] for f in found} & {"L001", "L002", "L003"}) == ["L001", "L002"]
    facts.stack = {"services": {"app": {"image": "x:1.2", "deploy": {"labels": {"coop-cloud.s.version": "1.1.0+1"}}}}}
    assert [f for f in lint.findings(lint.lint_recipe(facts), "error") if f["rule"].startswith("L")] == []


def test_ambiguous_short_name_on_shared_network():
    docs = {"compose.yml": {
        "services": {
            "app": {"image": "pds:1", "networks": {"proxy": None, "internal": None}},
            "web": {"image": "web:1", "networks": {"proxy": None, "internal": None},
                    "environment": {"PDS_UPSTREAM": "app:3000"}},
        },
        "networks": {"proxy": {"external": True, "name": "proxy"}, "internal": {}}}}
    stack = "blue-1a2b3c_bench_canon_test"
    # another stack's "app" on proxy: ambiguous
    found = r.compose_findings(docs["compose.yml"], "blue-1a2b3c.bench.canon.test", {},
                               shared_aliases={"proxy": {"app": [stack, "warm-keycloak_bench_canon_test"]}})
    assert [f["check"] for f in found] == ["ambiguous-alias"]
    assert "warm-keycloak_bench_canon_test" in found[0]["message"] and "web reaches app" in found[0]["message"]
    # only our own stack answers to "app": fine
    assert r.compose_findings(docs["compose.yml"], "blue-1a2b3c.bench.canon.test", {},
                              shared_aliases={"proxy": {"app": [stack]}}) == []
    # the stack-qualified upstream (the recipe fix): no short-name reference at all
    docs["compose.yml"]["services"]["web"]["environment"] = {"PDS_UPSTREAM": "blue-1a2b3c_bench_canon_test_app:3000"}
    assert r.compose_findings(docs["compose.yml"], "blue-1a2b3c.bench.canon.test", {},
                              shared_aliases={"proxy": {"app": [stack, "warm-keycloak_bench_canon_test"]}}) == []
    # a renamed upstream: no short-name clash either
    docs["compose.yml"]["services"]["pds"] = docs["compose.yml"]["services"].pop("app")
    docs["compose.yml"]["services"]["web"]["environment"] = {"PDS_UPSTREAM": "pds:3000"}
    assert r.compose_findings(docs["compose.yml"], "blue-1a2b3c.bench.canon.test", {},
                              shared_aliases={"proxy": {"app": ["other"]}}) == []


def test_short_name_references_are_whole_words():
    services = {"app": {"spec": {}}, "web": {"spec": {"environment": {"A": "http://app/x", "B": "myapp:1", "C": "app.example.org"}}}}
    assert r.short_name_references(services) == [("web", "app")]


def test_docker_loader_output_without_pyyaml_is_a_clear_error(monkeypatch, tmp_path):
    # A module runs on the server, where PyYAML may be missing: a clear error, not an ImportError.
    from ansible_collections.coopcloud.canon.plugins.module_utils import _docker
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\nprintf 'services:\\n  app:\\n    image: x\\n'\n")
    fake.chmod(0o755)
    client = _docker.DockerClient(binary=str(fake))
    assert client.stack_config(["compose.yml"], {}, cwd=str(tmp_path)) == {"services": {"app": {"image": "x"}}}
    monkeypatch.setattr(_docker, "yaml", None)
    with pytest.raises(_docker.StackConfigError, match="needs PyYAML"):
        client.stack_config(["compose.yml"], {}, cwd=str(tmp_path))
