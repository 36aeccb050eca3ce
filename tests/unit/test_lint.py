"""abra ``recipe lint`` parity (R001-R015) and the harness's L001-L003, each rule red and green
on a fixture recipe written here as a real git repository (tags included)."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from ansible_collections.coopcloud.canon.plugins.module_utils import _lint as lint
from ansible_collections.coopcloud.canon.plugins.module_utils import _recipe
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient
from loader import needs_loader, stack_config_docker

RELEASE = "1.0.0+1.25.3"
STACK = "rec_example_com"

COMPOSE = {
    "version": "3.8",
    "services": {
        "app": {
            "image": "nginx:1.25.3",
            "networks": ["proxy"],
            "healthcheck": {"test": ["CMD", "true"], "interval": "5s"},
            "deploy": {"labels": [
                "traefik.enable=true",
                "traefik.http.routers.${STACK_NAME}.rule=Host(`${DOMAIN}`)",
                "coop-cloud.${STACK_NAME}.version=" + RELEASE,
            ]},
            "secrets": ["db_password"],
        },
    },
    "networks": {"proxy": {"external": True}},
    "secrets": {"db_password": {"external": True, "name": "${STACK_NAME}_db_password_${SECRET_DB_PASSWORD_VERSION}"}},
}
SAMPLE = "TYPE=rec\n\nDOMAIN=rec.example.com\n#LETS_ENCRYPT_ENV=production\nSECRET_DB_PASSWORD_VERSION=v1 # length=32\n"
README = """# rec

<!-- metadata -->
* **Category**: Apps
* **Status**: 2, beta
* **Image**: [`nginx`](https://hub.docker.com/_/nginx), 4, upstream
* **Healthcheck**: Yes
* **Backups**: No
* **Email**: No
* **Tests**: No
* **SSO**: No
<!-- endmetadata -->
"""
ABRA_SH = "export APP_CONF_VERSION=v1\n"


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@t", "HOME": str(cwd), "PATH": "/usr/bin:/bin"})


def write_recipe(root, files: dict, tags: dict):
    """A recipe repository: ``files`` (path -> text, None leaves the file out) in one commit,
    ``tags`` (name -> annotated?) on it."""
    root.mkdir()
    _git(root, "init", "-q")
    for path, text in files.items():
        if text is not None:
            (root / path).write_text(text)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "recipe")
    for tag, annotated in tags.items():
        _git(root, "tag", *(["-a", "-m", tag] if annotated else []), tag)
    return root


def facts_of(root, name="rec", version=RELEASE):
    """What the abra_recipe module hands the rules: env from .env.sample, the chain's documents
    substituted with it and merged."""
    sample_path = root / ".env.sample"
    sample_env = None
    env = {"STACK_NAME": STACK}
    if sample_path.exists():
        sample = _recipe.parse_env_sample(sample_path.read_text())
        sample_env = {k: v["value"] for k, v in sample.items() if not v["commented"]}
        env.update(sample_env)
        env.update(DOMAIN="rec.example.com", STACK_NAME=STACK)
    stack, versions = load(root, ["compose.yml"], env)
    return lint.gather_facts(str(root), name, stack, sample_env, versions, version=version, stack_name=STACK)


def load(tree, files: list, env: dict) -> tuple:
    """The merged stack by docker's own loader (as the abra_recipe module reads it) and each
    file's own ``version:``."""
    stack = _recipe.load_stack(DockerClient(binary=stack_config_docker()), str(tree), files, env, "test")
    return stack, _recipe.compose_file_versions(str(tree), files)


def outcomes(facts) -> dict:
    return {r["rule"]: r["outcome"] for r in lint.lint_recipe(facts)}


def _compose(mutate):
    doc = yaml.safe_load(yaml.safe_dump(COMPOSE))
    mutate(doc)
    return yaml.safe_dump(doc, sort_keys=False)


def _app(**changes):
    def mutate(doc):
        for k, v in changes.items():
            if v is None:
                doc["services"]["app"].pop(k, None)
            else:
                doc["services"]["app"][k] = v
    return mutate


def _labels(*labels):
    return _app(deploy={"labels": list(labels)})


GOOD_LABELS = COMPOSE["services"]["app"]["deploy"]["labels"]

# (case id, compose mutation, other file overrides, tags, version linted, {rule: expected outcome})
CASES = [
    ("green", None, {}, None, RELEASE, {r.ref: ("skip" if r.ref == "R013" else "pass") for r in lint.RULES}),
    ("R001 version 3.7", lambda d: d.update(version="3.7"), {}, None, RELEASE, {"R001": "fail"}),
    ("R001 no version", lambda d: d.pop("version"), {}, None, RELEASE, {"R001": "fail"}),
    ("R002 no healthcheck", _app(healthcheck=None), {}, None, RELEASE, {"R002": "fail"}),
    ("R002 db without healthcheck", lambda d: d["services"].update(db={"image": "postgres:16"}), {}, None, RELEASE,
     {"R002": "fail", "R009": "pass"}),
    ("R003 untagged", _app(image="nginx"), {}, None, RELEASE, {"R003": "fail", "R004": "fail", "R005": "fail", "L001": "fail"}),
    ("R003 registry port is no tag", _app(image="registry.local:5000/nginx"), {}, None, RELEASE,
     {"R003": "fail", "L001": "fail"}),
    ("R003 digest pin is a tag-less but pinned image", _app(image="nginx@sha256:" + "a" * 64), {}, None, RELEASE,
     {"R003": "pass", "L001": "pass"}),
    ("R004 latest", _app(image="nginx:latest"), {}, None, RELEASE, {"R003": "pass", "R004": "fail", "L001": "fail"}),
    ("R005 not semver-like", _app(image="nginx:stable-alpine"), {}, None, RELEASE, {"R004": "pass", "R005": "fail"}),
    ("R005 v-prefixed two parts", _app(image="traefik:v2.4"), {}, None, RELEASE, {"R005": "pass", "L001": "pass"}),
    ("R005 suffix", _app(image="postgres:16-alpine"), {}, None, RELEASE, {"R005": "pass", "L001": "pass"}),
    ("R006 no tags", None, {}, {}, None, {"R006": "fail", "R014": "pass", "L002": "skip"}),
    ("R007 no metadata block", None, {"README.md": "# rec\n"}, None, RELEASE, {"R007": "fail"}),
    ("R007 SSO missing", None, {"README.md": README.replace("* **SSO**: No\n", "")}, None, RELEASE, {"R007": "fail"}),
    ("R007 no README", None, {"README.md": None}, None, RELEASE, {"R007": "fail"}),
    ("R008 no .env.sample", None, {".env.sample": None}, None, RELEASE,
     {"R008": "fail", "R010": "skip", "L003": "fail"}),
    ("R009 no app service", lambda d: d["services"].update(web=d["services"].pop("app")), {}, None, RELEASE,
     {"R009": "fail", "R010": "pass"}),
    ("R010 no traefik label", _labels("coop-cloud.${STACK_NAME}.version=" + RELEASE), {}, None, RELEASE, {"R010": "fail"}),
    ("R010 traefik.enable=false", _labels("traefik.enable=false", "coop-cloud.${STACK_NAME}.version=" + RELEASE),
     {}, None, RELEASE, {"R010": "fail"}),
    # docker's loader refuses a YAML boolean as a label value: "true" is the form that deploys.
    # It interpolates values, never mapping keys: a version label keyed by ${STACK_NAME} in the
    # mapping form reaches the swarm with the literal key, so no service carries the version.
    ("R010 mapping labels", _app(deploy={"labels": {"traefik.enable": "true",
                                                    "coop-cloud.${STACK_NAME}.version": RELEASE}}),
     {}, None, RELEASE, {"R010": "pass", "L002": "fail"}),
    ("R010 skipped without DOMAIN", _labels("coop-cloud.${STACK_NAME}.version=" + RELEASE),
     {".env.sample": "TYPE=rec\nSECRET_DB_PASSWORD_VERSION=v1\n"}, None, RELEASE, {"R010": "skip"}),
    ("R011 service without image", lambda d: d["services"].update(worker={"healthcheck": {"test": ["NONE"]}}),
     {}, None, RELEASE, {"R011": "fail", "R002": "pass"}),
    ("R012 configs without abra.sh", lambda d: d.update(configs={"app_conf": {"file": "app.conf"}}),
     {"abra.sh": None}, None, RELEASE, {"R012": "fail"}),
    ("R012 configs with abra.sh", lambda d: d.update(configs={"app_conf": {"file": "app.conf"}}),
     {}, None, RELEASE, {"R012": "pass"}),
    ("R012 no configs, no abra.sh", None, {"abra.sh": None}, None, RELEASE, {"R012": "pass"}),
    ("R014 lightweight tag", None, {}, {RELEASE: True, "0.9.0+1.25.0": False}, RELEASE, {"R014": "fail", "R006": "pass"}),
    ("R015 long secret name", lambda d: d["secrets"].update(github_client_secret={"external": True}),
     {}, None, RELEASE, {"R015": "fail"}),
    ("L001 testing", _app(image="nginx:testing"), {}, None, RELEASE, {"L001": "fail", "R004": "pass", "R005": "fail"}),
    ("L001 release candidate", _app(image="nginx:2.0.0-rc1"), {}, None, RELEASE, {"L001": "fail", "R005": "pass"}),
    ("L001 main branch", _app(image="ghcr.io/org/app:main"), {}, None, RELEASE, {"L001": "fail"}),
    ("L001 dated stable", _app(image="org/app:2024.06.1"), {}, None, RELEASE, {"L001": "pass"}),
    ("L002 label of another release", _labels("traefik.enable=true", "coop-cloud.${STACK_NAME}.version=0.9.0+1"),
     {}, None, RELEASE, {"L002": "fail"}),
    ("L002 no label", _labels("traefik.enable=true"), {}, None, RELEASE, {"L002": "fail"}),
    ("L002 old per-service label only", _labels("traefik.enable=true", "coop-cloud.${STACK_NAME}.app.version=v1-abc"),
     {}, None, RELEASE, {"L002": "fail"}),
    ("L003 RECIPE instead of TYPE", None, {".env.sample": SAMPLE.replace("TYPE=rec", "RECIPE=rec")}, None, RELEASE,
     {"L003": "pass"}),
    ("L003 RECIPE wins over TYPE", None, {".env.sample": "RECIPE=rec\nTYPE=other\n" + SAMPLE.split("\n", 1)[1]},
     None, RELEASE, {"L003": "pass"}),
    ("L003 TYPE names another recipe", None, {".env.sample": SAMPLE.replace("TYPE=rec", "TYPE=other")}, None, RELEASE,
     {"L003": "fail"}),
    ("L003 TYPE only commented", None, {".env.sample": SAMPLE.replace("TYPE=rec", "#TYPE=rec")}, None, RELEASE,
     {"L003": "fail"}),
]


@needs_loader
@pytest.mark.parametrize("case_id,mutate,files,tags,version,expected", CASES, ids=[c[0] for c in CASES])
def test_rule_outcomes(tmp_path, case_id, mutate, files, tags, version, expected):
    tree = {"compose.yml": _compose(mutate or (lambda d: None)), ".env.sample": SAMPLE, "README.md": README,
            "abra.sh": ABRA_SH}
    tree.update(files)
    root = write_recipe(tmp_path / "rec", tree, {RELEASE: True} if tags is None else tags)
    got = outcomes(facts_of(root, version=version))
    assert {rule: got[rule] for rule in expected} == expected


def test_every_abra_rule_and_level():
    # abra's LintRules: 15 rules, R008-R012 and R014 at error level, the rest warn.
    abra = [r for r in lint.RULES if r.origin == "abra"]
    assert [r.ref for r in abra] == ["R%03d" % i for i in range(1, 16)]
    assert sorted(r.ref for r in abra if r.level == "error") == ["R008", "R009", "R010", "R011", "R012", "R014"]
    assert [r.ref for r in lint.RULES if r.origin == "canon"] == ["L001", "L002", "L003"]
    assert set(lint._CHECKS) == set(lint.RULES_BY_REF)


def test_findings_split_errors_warnings_skips(tmp_path):
    tree = {"compose.yml": _compose(_app(image="nginx:latest", healthcheck=None)), ".env.sample": SAMPLE,
            "README.md": README, "abra.sh": ABRA_SH}
    root = write_recipe(tmp_path / "rec", tree, {RELEASE: True, "old": False})
    results = lint.lint_recipe(facts_of(root))
    assert sorted(f["rule"] for f in lint.findings(results, "error")) == ["L001", "R014"]
    assert sorted(f["rule"] for f in lint.findings(results, "warn")) == ["R002", "R004", "R005"]
    assert [s["rule"] for s in lint.skipped(results)] == ["R013"]
    assert "old" in next(f["message"] for f in lint.findings(results, "error") if f["rule"] == "R014")


def test_working_tree_when_untagged(tmp_path):
    tree = {"compose.yml": _compose(lambda d: None), ".env.sample": SAMPLE, "README.md": None, "abra.sh": ABRA_SH}
    root = write_recipe(tmp_path / "rec", tree, {})
    (root / "README.md").write_text(README)  # untracked: the working tree is what is linted
    facts = facts_of(root, version=None)
    assert facts.readme == README and facts.has_abra_sh and facts.tags == {}


@pytest.mark.parametrize("image,expected", [
    ("nginx", ("nginx", "", "")),
    ("nginx:1.25", ("nginx", "1.25", "")),
    ("registry.local:5000/org/app", ("registry.local:5000/org/app", "", "")),
    ("registry.local:5000/org/app:2.1", ("registry.local:5000/org/app", "2.1", "")),
    ("app@sha256:abc", ("app", "", "sha256:abc")),
    ("app:1.0@sha256:abc", ("app", "1.0", "sha256:abc")),
])
def test_split_image(image, expected):
    assert lint.split_image(image) == expected


@pytest.mark.parametrize("tag,semver_like,unstable", [
    ("1", True, False), ("1.25", True, False), ("1.25.3", True, False), ("v2.4.8", True, False),
    ("16-alpine", True, False), ("1.14.0-rootless", True, False), ("1.2.3.4", False, False),
    ("latest", False, True), ("testing", False, True), ("stable-alpine", False, False),
    ("2.0.0-rc1", True, True), ("1.4-beta.2", True, True), ("nightly-2024", False, True),
    ("main", False, True), ("2024.06.1", True, False), ("", False, False),
])
def test_tag_classes(tag, semver_like, unstable):
    assert (lint.is_semver_like(tag), lint.is_unstable_tag(tag)) == (semver_like, unstable)


@pytest.mark.parametrize("env,expected", [
    ({"TYPE": "gitea"}, "gitea"), ({"RECIPE": "gitea"}, "gitea"), ({"TYPE": "gitea:3.5.3+1.24.2"}, "gitea"),
    ({"RECIPE": "a", "TYPE": "b"}, "a"), ({}, None),
])
def test_recipe_of_env(env, expected):
    assert lint.recipe_of_env(env) == expected


def test_l002_names_the_old_label_form(tmp_path):
    tree = {"compose.yml": _compose(_labels("traefik.enable=true", "coop-cloud.${STACK_NAME}.app.version=v2.4.8-d7d63b0d")),
            ".env.sample": SAMPLE, "README.md": README, "abra.sh": ABRA_SH}
    root = write_recipe(tmp_path / "rec", tree, {RELEASE: True})
    l002 = next(r for r in lint.lint_recipe(facts_of(root)) if r["rule"] == "L002")
    assert l002["outcome"] == "fail"
    assert "coop-cloud.%s.app.version=v2.4.8-d7d63b0d" % STACK in l002["messages"][0]


# -- the abra_recipe module, run as Ansible runs it, on a recipe checkout in $ABRA_DIR/recipes --
def run_abra_recipe(tmp_path, compose_mutation):
    import json
    import os
    import sys

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    abra_dir = tmp_path / "abra"
    (abra_dir / "recipes").mkdir(parents=True)
    write_recipe(abra_dir / "recipes" / "rec", {"compose.yml": _compose(compose_mutation), ".env.sample": SAMPLE,
                                                "README.md": README, "abra.sh": ABRA_SH}, {RELEASE: True})
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "abra").write_text("#!/bin/sh\nexit 0\n")  # `abra recipe fetch` succeeds
    (fake / "abra").chmod(0o755)
    args = tmp_path / "args.json"
    args.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "recipe": "rec", "version": RELEASE, "domain": "rec.example.com", "shared_networks": False,
        "abra_dir": str(abra_dir), "abra_bin": str(fake / "abra"), "docker_bin": stack_config_docker(),
        "evidence_dir": str(tmp_path / "evidence")}}))
    env = dict(os.environ, PYTHONPATH=os.path.join(root, ".collections"))
    res = subprocess.run([sys.executable, os.path.join(root, "plugins", "modules", "abra_recipe.py"), str(args)],
                         capture_output=True, text=True, env=env, timeout=60)
    return json.loads(res.stdout)


@needs_loader
def test_module_returns_errors_warnings_and_skips(tmp_path):
    green = run_abra_recipe(tmp_path / "green", lambda d: None)
    assert not green.get("failed"), green.get("msg")
    assert green["lint"] == [] and green["lint_warnings"] == []
    assert [s["rule"] for s in green["lint_skipped"]] == ["R013"]
    assert [r.split()[0] for r in green["lint_rules"]] == [r.ref for r in lint.RULES]
    assert {r["outcome"] for r in green["lint_results"]} == {"pass", "skip"}
    red = run_abra_recipe(tmp_path / "red", _app(image="nginx:testing", healthcheck=None))
    assert [f["rule"] for f in red["lint"]] == ["L001"] and red["lint"][0]["level"] == "error"
    assert sorted({f["rule"] for f in red["lint_warnings"]}) == ["R002", "R005"]


# -- the bench recipes: the lint rung stays green on every release of every one -----------------
def _bench_releases():
    import os

    root = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "roles", "bench", "files")
    for kind in ("recipes", "recipe-fixes"):
        for recipe in sorted(os.listdir(os.path.join(root, kind))):
            path = os.path.join(root, kind, recipe)
            if os.path.isdir(path):
                for tag in sorted(os.listdir(path)):
                    yield pytest.param(recipe, os.path.join(path, tag), id="%s/%s/%s" % (kind, recipe, tag))


@needs_loader
@pytest.mark.parametrize("recipe,tree", list(_bench_releases()))
def test_bench_recipe_has_no_lint_error(recipe, tree):
    import os

    sample = _recipe.parse_env_sample(open(os.path.join(tree, ".env.sample")).read())
    sample_env = {k: v["value"] for k, v in sample.items() if not v["commented"]}
    stack_name = recipe.replace("-", "_") + "_example_com"
    env = dict(sample_env, DOMAIN=recipe + ".example.com", STACK_NAME=stack_name)
    files = [f for f in env.get("COMPOSE_FILE", "compose.yml").split(":") if f]
    stack, versions = load(tree, files, env)
    readme = os.path.join(tree, "README.md")
    # bench-repos tags every release with `git tag -a`: the tags are annotated.
    facts = lint.RecipeFacts(name=recipe, stack=stack, compose_versions=versions, sample_env=sample_env,
                             tags={os.path.basename(tree): True},
                             readme=open(readme).read() if os.path.exists(readme) else None,
                             has_abra_sh=os.path.exists(os.path.join(tree, "abra.sh")),
                             version=os.path.basename(tree), stack_name=stack_name)
    assert lint.findings(lint.lint_recipe(facts), "error") == []
