"""Every entry point refuses bad input before it touches anything (issue 15, parts 1 and 2).

The pure rules (_inputs: which recipes are known, the one-line refusal) are table-driven. The
``canon`` CLI runs in this process against a throwaway inventory whose state, ABRA_DIR and results
live under tmp_path: each bad command line must exit 2 with one line on stderr (no traceback)
and leave those folders unmade. The playbooks are checked structurally (the first task is
``validate_argument_spec``; isolate and promote refuse ``--check`` before any role runs) and, in
the slow tests, for real with ``ansible-playbook`` against the same kind of throwaway inventory:
nothing there reaches the bench, so the tests are safe to run beside it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from ansible_collections.coopcloud.canon.plugins.plugin_utils import _inputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = os.path.join(ROOT, "roles")
ROLE_RECIPES = ["bluesky-pds", "canary-crash", "canary-empty-backup", "canary-static-upgrade", "custom-html",
                "discourse", "gitea", "keycloak", "mattermost-lts", "mumble"]


# -- the rules -----------------------------------------------------------------------------
def test_the_known_recipes_are_the_roles_with_settings_and_the_enrolled():
    # lifecycle, promote and bench are roles without recipe settings: not recipes
    assert _inputs.role_recipes(ROLES) == ROLE_RECIPES
    assert _inputs.known_recipes(ROLES, [{"recipe": "peertube"}, "lasuite-docs", {"x": 1}]) == \
        sorted(ROLE_RECIPES + ["peertube", "lasuite-docs"])
    assert _inputs.role_recipes("/nonexistent") == []


def test_a_role_is_a_recipe_only_with_canon_recipe_settings(tmp_path):
    for role, text in {"with_settings": "canon_recipe_settings: {}\n", "plain": "x: 1\n", "broken": "a: [\n"}.items():
        (tmp_path / role / "defaults").mkdir(parents=True)
        (tmp_path / role / "defaults" / "main.yml").write_text(text)
    (tmp_path / "no_defaults").mkdir()
    assert _inputs.role_recipes(str(tmp_path)) == ["with-settings"]


@pytest.mark.parametrize("name,expected", [
    ("gitea", ""),
    ("mattermost-lts", ""),
    ("no-such-recipe", "unknown recipe no-such-recipe: the known recipes are bluesky-pds, "),
    ("Custom-HTML", "recipe name 'Custom-HTML' is not valid"),
    ("gitea;id", "recipe name 'gitea;id' is not valid"),
    ("../gitea", "is not valid"),
    ("gitea\n", "is not valid"),
    ("", "recipe name is empty"),
    (["gitea"], "recipe must be one recipe name (a string), got a list"),
    ({"name": "gitea"}, "got a mapping"),
    (7, "got a int"),
    (None, "got nothing"),
])
def test_recipe_problem(name, expected):
    got = _inputs.recipe_problem(name, ROLE_RECIPES)
    if expected:
        assert got.startswith(expected) or expected in got, got
        assert "\n" not in got
    else:
        assert got == ""


def test_recipe_problems_keeps_only_the_bad_ones():
    assert _inputs.recipe_problems(["gitea", "nope", "mumble"], ROLE_RECIPES) == \
        ["unknown recipe nope: the known recipes are " + ", ".join(ROLE_RECIPES)]
    assert _inputs.recipe_problems([], ROLE_RECIPES) == []


@pytest.mark.parametrize("version,bad", [
    ("", False), (None, False), ("1.1.0+1.37", False), ("3.6.0+1.25.0-rootless", False),
    ("1.0;rm", True), ("$(id)", True), ("1.1.0+1..37", True), ("latest", True), ("1.1.0+1.37 --chaos", True),
])
def test_version_problem(version, bad):
    got = _inputs.version_problem(version)
    assert bool(got) == bad and ("not a recipe release tag" in got if bad else got == "")


@pytest.mark.parametrize("doc,words", [
    ({"recipe": "gitea", "outcome": "pass", "run_id": "r"}, ""),
    ({"outcome": "pass", "run_id": "r"}, ""),                       # an older result without its recipe
    ({"recipe": "gitea", "outcome": "fail", "run_id": "r"}, "cold run r is 'fail', not pass"),
    ({"recipe": "mumble", "outcome": "pass", "run_id": "r"}, "cold run r is of recipe mumble, not gitea"),
    (["pass"], "is not a result.json (a JSON object"),
    ("{not json", "is not a result.json: "),
    (None, "is not a file"),
])
def test_cold_result_problem(tmp_path, doc, words):
    path = tmp_path / "result.json"
    if isinstance(doc, str):
        path.write_text(doc)
    elif doc is not None:
        path.write_text(json.dumps(doc))
    got = _inputs.cold_result_problem(str(path), "gitea")
    assert (words in got and got.startswith("cold_result ")) if words else got == "", got


# -- the canon CLI -------------------------------------------------------------------------
@pytest.fixture
def sandbox(tmp_path):
    """A throwaway inventory: one server whose state, ABRA_DIR and results are under tmp_path
    (none made yet), enrolling one recipe that has no role."""
    inv = tmp_path / "hosts.yml"
    inv.write_text(yaml.safe_dump({"canon_servers": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        "canon_state_dir": str(tmp_path / "state"), "canon_abra_dir": str(tmp_path / "abra"),
        "canon_abra_bin": "/bin/false", "canon_docker_bin": "/bin/false",
        "canon_results_dir": str(tmp_path / "results"),
        "canon_enrolled": ["gitea", {"recipe": "enrolled-only"}]}}}}))
    (tmp_path / "profiles").mkdir()
    files = {"missing": str(tmp_path / "profiles" / "nonexistent.yml"), "dir": str(tmp_path / "profiles")}
    for name, text in {"malformed": "recipes: [a\n", "list": "- gitea\n", "unknown": "recipes:\n  nope: {}\n",
                       "scalar": "recipes:\n  gitea: 3\n", "settings": "recipes:\n  gitea: {settings: [1]}\n",
                       "binary": "\udcff"}.items():
        path = tmp_path / "profiles" / (name + ".yml")
        if name == "binary":
            path.write_bytes(b"\xff\xfe\x00recipes")
        else:
            path.write_text(text)
        files[name] = str(path)
    green = {"recipe": "gitea", "run_id": "gitea-20260101000000-abcdef", "outcome": "pass", "server": "default",
             "versions": {"head": "3.6.0+1.25.0-rootless"}}
    for name, doc in {"green": green, "red": dict(green, outcome="fail"), "other": dict(green, recipe="mumble"),
                      "notobject": [green]}.items():
        (tmp_path / (name + ".json")).write_text(json.dumps(doc))
        files[name] = str(tmp_path / (name + ".json"))
    (tmp_path / "badsweep").mkdir()
    (tmp_path / "badsweep" / "sweep.json").write_text("{")
    files["badsweep"] = str(tmp_path / "badsweep")
    return {"tmp": tmp_path, "inv": str(inv), "files": files}


def untouched(tmp_path) -> list:
    return [d for d in ("state", "abra", "results") if (tmp_path / d).exists()]


# (argv, words the one line must hold); {name} is a file of the sandbox, {inv} its inventory
BAD_COMMAND_LINES = [
    (["sweep", "--plan", "--profile", "{missing}"], "no such file"),
    (["sweep", "--plan", "--profile", "{dir}"], "no such file"),
    (["sweep", "--plan", "--profile", "{malformed}"], "not YAML (line 2)"),
    (["sweep", "--plan", "--profile", "{binary}"], "cannot be read"),
    (["sweep", "--plan", "--profile", "{list}"], "expected a mapping"),
    (["sweep", "--plan", "--profile", "{unknown}"], "unknown recipe nope: the known recipes are"),
    (["sweep", "--plan", "--profile", "{scalar}"], "recipes.gitea must be a mapping"),
    (["sweep", "--plan", "--profile", "{settings}"], "recipes.gitea.settings must be a mapping"),
    (["sweep", "--plan", "nope"], "unknown recipe nope: the known recipes are"),
    (["sweep", "--plan", "gitea", "--cap", "0"], "--cap: cap 0 refused: 1 to 3 deploys at once"),
    (["sweep", "--plan", "gitea", "--cap", "4"], "--cap: cap 4 refused: 1 to 3 deploys at once"),
    (["sweep", "--plan", "gitea", "--cap", "two"], "--cap: 'two' is not a whole number"),
    (["redfix", "--cap", "4", "--no-forge"], "--cap: cap 4 refused"),
    (["sweep", "--plan", "gitea", "--deadline", "-5"], "--deadline: must be at least 1, got -5"),
    (["sweep", "--plan", "gitea", "--deadline", "0"], "--deadline: must be at least 1"),
    (["sweep", "--plan", "gitea", "--load", "gpu=1"], "load spec 'gpu=1'"),
    (["sweep", "--resume", "{missing}"], "nothing to resume"),
    (["sweep", "--resume", "{badsweep}"], "is not readable JSON"),
    (["isolate", "nope"], "unknown recipe nope: the known recipes are"),
    (["isolate", "gitea", "--runs", "0"], "--runs: must be at least 1"),
    (["isolate", "gitea", "--runs", "abc"], "--runs: 'abc' is not a whole number"),
    (["isolate", "gitea", "--deadline", "-5"], "--deadline: must be at least 1, got -5"),
    (["isolate", "gitea", "--tiers", "install,fly"], "unknown tier 'fly'"),
    (["isolate", "gitea", "--tiers", "install,,"], "unknown tier '', ''"),
    (["isolate", "gitea", "--version", "1.0;rm"], "is not a recipe release tag"),
    (["isolate"], "the following arguments are required: recipe"),
    (["classify", "nope", "--from", "{badsweep}"], "unknown recipe nope"),
    (["classify", "gitea", "--from", "{missing}"], "no sweep"),
    (["classify", "gitea", "--from", "{badsweep}"], "is not readable JSON"),
    (["classify", "gitea", "--from", "{badsweep}", "--budget", "0"], "--budget: must be at least 1"),
    (["classify", "gitea", "--from", "{badsweep}", "--results", "x"], "unrecognized arguments: --results"),
    (["redfix", "nope", "--no-forge"], "unknown recipe nope"),
    (["redfix", "--profile", "{unknown}", "--no-forge"], "unknown recipe nope"),
    (["redfix", "--budget", "-1"], "--budget: must be at least 1"),
    (["report", "{missing}"], "no sweep to report"),
    (["report", "{badsweep}"], "is not readable JSON"),
    (["report", "{badsweep}", "--deadline", "5"], "unrecognized arguments: --deadline"),
    (["bogus"], "invalid choice: 'bogus'"),
    ([], "the following arguments are required"),
]


@pytest.mark.parametrize("argv,words", BAD_COMMAND_LINES, ids=[" ".join(a) or "none" for a, _ in BAD_COMMAND_LINES])
def test_a_bad_command_line_is_one_line_and_exit_2_and_writes_nothing(sandbox, capsys, argv, words):
    from canon.cli import EXIT_REFUSED, main
    argv = [a.format(**sandbox["files"]) for a in argv]
    if argv and argv[0] in ("sweep", "isolate", "classify", "redfix"):
        argv += ["-i", sandbox["inv"]]
    if argv and argv[0] in ("sweep", "isolate", "redfix"):
        argv += ["--results", str(sandbox["tmp"] / "results")]
    assert main(argv) == EXIT_REFUSED
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert words in err, err
    assert untouched(sandbox["tmp"]) == []


@pytest.mark.parametrize("argv", [
    ["sweep", "--plan", "gitea", "enrolled-only", "--cap", "3", "--deadline", "60"],
    ["isolate", "custom-html", "--runs", "2", "--tiers", "install,custom", "--version", "1.1.0+1.37"],
    ["isolate", "enrolled-only"],
    ["redfix", "mumble", "--no-forge", "--profile", os.path.join(ROOT, "profiles", "today.yml")],
])
def test_good_command_lines_pass_the_checks(sandbox, argv):
    """The green side: known recipes (a role's, or only enrolled) and good numbers get through
    ``check_inputs`` (the command itself is not run)."""
    from canon.cli import check_inputs, parser
    check_inputs(parser().parse_args(argv + ["-i", sandbox["inv"]]))
    assert untouched(sandbox["tmp"]) == []


def test_every_profile_in_the_repository_passes():
    from canon.cli import load_profile
    from canon.inventory import load_servers
    known = _inputs.known_recipes(ROLES, [e for s in load_servers() for e in s.enrolled])
    for name in os.listdir(os.path.join(ROOT, "profiles")):
        if name.endswith(".yml"):
            assert load_profile(os.path.join(ROOT, "profiles", name), known)


# -- the playbooks -------------------------------------------------------------------------
USER_PLAYBOOKS = ["isolate.yml", "promote.yml", "teardown.yml", "warm_teardown.yml", "redfix.yml", "fix_pr.yml"]


def play(name: str) -> dict:
    with open(os.path.join(ROOT, "playbooks", name)) as fh:
        [doc] = yaml.safe_load(fh)
    return doc


@pytest.mark.parametrize("name", USER_PLAYBOOKS)
def test_each_playbook_validates_its_extra_vars_first(name):
    first = play(name)["tasks"][0]
    assert "ansible.builtin.validate_argument_spec" in first, first


@pytest.mark.parametrize("name,role", [("isolate.yml", "lifecycle"), ("promote.yml", "promote")])
def test_isolate_and_promote_validate_through_their_roles_entry_point_and_refuse_check_mode(name, role):
    tasks = play(name)["tasks"]
    entry = name[:-4]
    assert "roles/%s/meta/argument_specs.yml" % role in tasks[0]["vars"]["canon_spec_file"]
    assert ".argument_specs.%s.options" % entry in tasks[0]["ansible.builtin.validate_argument_spec"]["argument_spec"]
    with open(os.path.join(ROLES, role, "meta", "argument_specs.yml")) as fh:
        options = yaml.safe_load(fh)["argument_specs"][entry]["options"]
    assert options["recipe"]["required"] is True
    refuse = next(i for i, t in enumerate(tasks) if t.get("when") == "ansible_check_mode")
    # the lifecycle runs inside a block (its rescue tells a run that could not start)
    role_at = next(i for i, t in enumerate(tasks)
                   if "ansible.builtin.include_role" in t or any("ansible.builtin.include_role" in b for b in t.get("block", [])))
    assert "ansible.builtin.fail" in tasks[refuse] and refuse < role_at


def playbook(name: str, sandbox, *extra, check: bool = False) -> subprocess.CompletedProcess:
    argv = ["ansible-playbook", "-i", sandbox["inv"], os.path.join(ROOT, "playbooks", name)]
    for e in extra:
        argv += ["-e", json.dumps(e)]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    res = subprocess.run(argv + (["--check"] if check else []), cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    # as the integration tests hold every playbook: a deprecation today is an error next release
    assert "[DEPRECATION WARNING]" not in res.stdout + res.stderr, res.stdout + res.stderr
    return res


BAD_PLAYBOOK_RUNS = [
    ("isolate.yml", {"recipe": "no-such-recipe"}, "unknown recipe no-such-recipe: the known recipes are"),
    ("isolate.yml", {"recipe": "custom-html", "version": "1.0;rm"}, "'1.0;rm' is not a recipe release tag"),
    ("isolate.yml", {"recipe": "custom-html", "runs": "abc"}, "argument 'runs' is of type"),
    ("isolate.yml", {"recipe": "custom-html", "runs": 0}, "runs must be at least 1"),
    ("isolate.yml", {}, "missing required arguments: recipe"),
    ("promote.yml", {"recipe": "nope", "cold_result": "/etc/hostname"}, "unknown recipe nope"),
    ("promote.yml", {"recipe": "gitea", "cold_result": "/nonexistent/result.json"}, "is not a file"),
    ("promote.yml", {"recipe": "gitea", "cold_result": "{red}"}, "is 'fail', not pass"),
    ("promote.yml", {"recipe": "gitea", "cold_result": "{other}"}, "is of recipe mumble, not gitea"),
    ("promote.yml", {"recipe": "gitea", "cold_result": "/etc/hostname", "warm_drift": "maybe"},
     "argument 'warm_drift' is of type"),
    ("warm_teardown.yml", {"recipe": "nope"}, "unknown recipe nope"),
    # teardown's names are checked by canon_teardown before it reads the (sandbox's) ledger
    ("teardown.yml", {"run_id": "../x"}, "run id '../x' is not valid"),
    ("teardown.yml", {"run_id": "gitea-20260101000000-abcdef", "recipe": "gitea"}, "mutually exclusive"),
    ("redfix.yml", {"cap": "x"}, "argument 'cap' is of type"),
    ("fix_pr.yml", {"recipe": "gitea", "fix_kind": "merge"}, "fix_kind must be one of"),
]


@pytest.mark.slow
@pytest.mark.parametrize("name,extra,words", BAD_PLAYBOOK_RUNS,
                         ids=["%s-%d" % (c[0][:-4], i) for i, c in enumerate(BAD_PLAYBOOK_RUNS)])
def test_a_playbook_refuses_bad_extra_vars_before_anything(sandbox, name, extra, words):
    extra = {k: v.format(**sandbox["files"]) if isinstance(v, str) else v for k, v in extra.items()}
    res = playbook(name, sandbox, extra, {"canon_results_dir": str(sandbox["tmp"] / "results")})
    out = res.stdout + res.stderr
    assert res.returncode == 2 and words in out, out[-3000:]
    assert "Traceback" not in out and "failed=1" in out and "changed=0" in out, out[-3000:]
    assert untouched(sandbox["tmp"]) == []


@pytest.mark.slow
@pytest.mark.parametrize("name,extra,words", [
    ("isolate.yml", {"recipe": "custom-html"}, "isolate.yml has no dry run"),
    ("promote.yml", {"recipe": "gitea", "cold_result": "{green}"}, "promote.yml has no dry run"),
])
def test_check_mode_is_refused_at_once(sandbox, name, extra, words):
    extra = {k: v.format(**sandbox["files"]) for k, v in extra.items()}
    res = playbook(name, sandbox, extra, {"canon_results_dir": str(sandbox["tmp"] / "results")}, check=True)
    out = res.stdout + res.stderr
    assert res.returncode == 2 and words in out and "changed=0" in out, out[-3000:]
    assert untouched(sandbox["tmp"]) == []


# -- the CLI's help and version ------------------------------------------------------------
def subparsers() -> dict:
    import argparse

    from canon.cli import parser
    [sub] = [a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_every_argument_of_every_subcommand_has_help():
    import argparse
    for name, sub in subparsers().items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help and action.help.strip(), "%s %s has no help" % (name, action.option_strings or action.dest)


@pytest.mark.parametrize("name,has,has_not", [
    ("report", ["sweep"], ["--inventory", "--server", "--deadline", "--wait", "--results"]),
    ("classify", ["--from", "--budget", "--kind", "--server"], ["--results", "--cap", "--profile", "--runs"]),
    ("isolate", ["--runs", "--version", "--tiers", "--results"], ["--cap", "--budget", "--plan", "--from"]),
    ("sweep", ["--plan", "--cap", "--resume", "--results"], ["--runs", "--budget", "--from", "--no-forge"]),
    ("redfix", ["--no-forge", "--budget", "--cap"], ["--plan", "--runs", "--from", "--resume"]),
])
def test_each_subcommand_lists_only_its_own_options(name, has, has_not, capsys):
    from canon.cli import main
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for opt in has:
        assert opt in out, opt
    for opt in has_not:
        assert opt not in out, opt


def test_version_names_the_collection_version_and_the_harness_commit(capsys):
    from canon.cli import main
    with open(os.path.join(ROOT, "galaxy.yml")) as fh:
        version = yaml.safe_load(fh)["version"]
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("canon (coopcloud.canon %s, harness commit " % version) and commit[:7] in out, out


def test_version_outside_a_git_checkout_says_so(tmp_path):
    from canon.cli import collection_version, harness_commit
    assert harness_commit(str(tmp_path)) == "unknown (not a git checkout)"
    assert collection_version(str(tmp_path)) == "unknown"
    (tmp_path / "MANIFEST.json").write_text(json.dumps({"collection_info": {"version": "9.8.7"}}))
    assert collection_version(str(tmp_path)) == "9.8.7"
