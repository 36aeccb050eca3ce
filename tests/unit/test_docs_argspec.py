"""Module docs say what the argument specs take; ansible-doc renders every module and role.

For each module in plugins/modules, DOCUMENTATION (YAML, with its doc fragments merged) is
compared with the argument_spec that main() hands to AnsibleModule, captured by replacing
AnsibleModule with a function that raises before anything runs. For each role with
meta/argument_specs.yml, the options are documented and cover defaults/main.yml. ansible-doc
itself (the project's ansible-core, ANSIBLE_CONFIG=ansible.cfg) must render every module and role
with exit code 0 and nothing on stderr.
"""
from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from ansible.module_utils.basic import PASSWORD_MATCH, env_fallback
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "ansible_collections.coopcloud.canon.plugins"
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                 if f.endswith(".py") and not f.startswith("_"))
ROLES = sorted(r for r in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.isfile(os.path.join(ROOT, "roles", r, "meta", "argument_specs.yml")))

# An option whose value is a credential; a bool flag named like one (abra_app's secrets: generate
# them or not) carries none.
SECRET_NAME = re.compile(r"(^|_)(token|password|passwd|passphrase|secret|api_key|private_key)s?$")
# What Ansible itself compares between a doc entry and a spec entry.
COMPARED = ("type", "required", "default", "choices", "elements", "aliases")


class _UniqueKeys(yaml.SafeLoader):
    """YAML that refuses a key given twice (Ansible would keep the last one and warn)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):
    return yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader: no object construction


class _Captured(Exception):
    """Raised by the AnsibleModule stand-in: carries the keyword arguments main() passed."""

    def __init__(self, kwargs):
        super().__init__("argument spec captured")
        self.kwargs = kwargs


def _capture(*_args, **kwargs):
    raise _Captured(kwargs)


def module_kwargs(name: str, monkeypatch) -> dict:
    """The keyword arguments the module's main() gives AnsibleModule, without running it."""
    mod = importlib.import_module(f"{PACKAGE}.modules.{name}")
    monkeypatch.setattr(mod, "AnsibleModule", _capture)
    with pytest.raises(_Captured) as exc:
        mod.main()
    return exc.value.kwargs


def fragment_options(ref: str) -> dict:
    """Options of a doc fragment named coopcloud.canon.<name>[.<VAR>]."""
    parts = ref.split(".")
    assert parts[:2] == ["coopcloud", "canon"], f"fragment {ref} is not this collection's"
    var = parts[3].upper() if len(parts) > 3 else "DOCUMENTATION"  # ansible-doc upper-cases it too
    frag = importlib.import_module(f"{PACKAGE}.doc_fragments.{parts[2]}").ModuleDocFragment
    return load_yaml(getattr(frag, var))["options"]


def documented(name: str) -> dict:
    """The module's DOCUMENTATION parsed, with its fragments' options merged in."""
    mod = importlib.import_module(f"{PACKAGE}.modules.{name}")
    doc = load_yaml(mod.DOCUMENTATION)
    options = dict(doc.get("options") or {})
    refs = doc.get("extends_documentation_fragment") or []
    for ref in [refs] if isinstance(refs, str) else refs:
        for key, value in fragment_options(ref).items():
            assert key not in options, f"{name}: {key} documented both in the module and in {ref}"
            options[key] = value
    doc["options"] = options
    return doc


def _norm(entry: dict, key: str):
    value = entry.get(key)
    if key == "type":
        return value or "str"
    if key == "required":
        return bool(value)
    if key == "aliases":
        return sorted(value or [])
    if isinstance(value, tuple):
        return list(value)
    return value


def mismatches(doc_options: dict, spec: dict, where: str) -> list[str]:
    """Every difference between documented options and an argument spec, one line each."""
    found = []
    for key in sorted(set(spec) - set(doc_options)):
        found.append(f"{where}{key}: in the argument spec, not documented")
    for key in sorted(set(doc_options) - set(spec)):
        found.append(f"{where}{key}: documented, not in the argument spec")
    for key in sorted(set(spec) & set(doc_options)):
        d, s = doc_options[key] or {}, spec[key]
        if not d.get("description"):
            found.append(f"{where}{key}: no description")
        for attr in COMPARED:
            if _norm(d, attr) != _norm(s, attr):
                found.append(f"{where}{key}: {attr} is {_norm(d, attr)!r} in the docs, "
                             f"{_norm(s, attr)!r} in the spec")
        if s.get("required") and s.get("default") is not None:
            found.append(f"{where}{key}: required and with a default in the spec")
        fallback = s.get("fallback")
        if fallback and fallback[0] is env_fallback:
            text = json.dumps(d.get("description"))
            for var in fallback[1]:
                if var not in text:
                    found.append(f"{where}{key}: falls back to ${var}, the docs do not say so")
        sub_spec, sub_doc = s.get("options"), d.get("suboptions")
        if sub_spec or sub_doc:
            found += mismatches(sub_doc or {}, sub_spec or {}, f"{where}{key}.")
    return found


def secret_problems(spec: dict, where: str = "") -> list[str]:
    """Credentials without no_log, and names Ansible would warn about without an explicit no_log."""
    found = []
    for key, s in spec.items():
        if SECRET_NAME.search(key) and _norm(s, "type") != "bool" and s.get("no_log") is not True:
            found.append(f"{where}{key}: a credential without no_log=True")
        if PASSWORD_MATCH.search(key) and "no_log" not in s:
            found.append(f"{where}{key}: looks like a password to Ansible and sets no no_log")
        if s.get("options"):
            found += secret_problems(s["options"], f"{where}{key}.")
    return found


# -- the module files themselves -------------------------------------------------------------
def test_every_module_is_found():
    assert len(MODULES) >= 16 and "canon_run" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docs_match_the_argument_spec(name, monkeypatch):
    doc = documented(name)
    assert doc["module"] == name
    assert doc.get("short_description") and doc.get("description")
    spec = module_kwargs(name, monkeypatch)["argument_spec"]
    assert mismatches(doc["options"], spec, f"{name}: ") == []


@pytest.mark.parametrize("name", MODULES)
def test_credentials_are_no_log(name, monkeypatch):
    spec = module_kwargs(name, monkeypatch)["argument_spec"]
    assert secret_problems(spec, f"{name}: ") == []


@pytest.mark.parametrize("name", MODULES)
def test_check_mode_attribute_says_what_the_module_does(name, monkeypatch):
    support = documented(name).get("attributes", {}).get("check_mode", {}).get("support")
    declared = module_kwargs(name, monkeypatch).get("supports_check_mode", False)
    assert support in ("full", "partial", "none"), f"{name}: check_mode support undocumented"
    assert (support != "none") == declared, \
        f"{name}: docs say check_mode {support}, supports_check_mode={declared}"


@pytest.mark.parametrize("name", MODULES)
def test_examples_and_return_are_yaml(name):
    mod = importlib.import_module(f"{PACKAGE}.modules.{name}")
    examples = load_yaml(mod.EXAMPLES)
    assert isinstance(examples, list) and examples, f"{name}: EXAMPLES has no task"
    assert any(f"coopcloud.canon.{name}" in task for task in examples), \
        f"{name}: no example calls coopcloud.canon.{name}"
    returned = load_yaml(mod.RETURN)
    assert isinstance(returned, dict) and returned, f"{name}: RETURN documents nothing"
    assert return_problems(returned, f"{name}: RETURN ", top=True) == []


def _text(description) -> bool:
    if isinstance(description, list):
        return bool(description) and all(isinstance(d, str) and d for d in description)
    return isinstance(description, str) and bool(description)


def return_problems(returned: dict, where: str, top: bool = False) -> list[str]:
    """Return values without a description (text), a type, or (at the top) when they are returned.
    A flow mapping whose unquoted description holds a comma shows up here as extra keys."""
    found = []
    allowed = {"description", "type", "returned", "elements", "contains", "sample", "version_added"}
    for key, value in returned.items():
        if not isinstance(value, dict):
            found.append(f"{where}{key}: not a mapping")
            continue
        if not _text(value.get("description")):
            found.append(f"{where}{key}: no description")
        if not value.get("type"):
            found.append(f"{where}{key}: no type")
        if top and not value.get("returned"):
            found.append(f"{where}{key}: does not say when it is returned")
        if set(value) - allowed:
            found.append(f"{where}{key}: unknown keys {sorted(set(value) - allowed)}")
        if isinstance(value.get("contains"), dict):
            found += return_problems(value["contains"], f"{where}{key}.")
    return found


# The comparison itself must see a difference when there is one.
def test_a_mismatch_is_reported():
    spec = {"state": {"type": "str", "choices": ["a", "b"], "default": "a"},
            "token": {"type": "str"},
            "dir": {"type": "path", "fallback": (env_fallback, ["CANON_DIR"])},
            "verify": {"type": "dict", "options": {"attempts": {"type": "int", "default": 3}}}}
    docs = {"state": {"description": "x", "type": "str", "choices": ["a"], "default": "a"},
            "dir": {"description": "a directory", "type": "path"},
            "verify": {"description": "y", "type": "dict",
                       "suboptions": {"attempts": {"description": "z", "type": "int", "default": 5}}},
            "extra": {"description": "gone", "type": "bool"}}
    assert mismatches(docs, spec, "") == [
        "token: in the argument spec, not documented",
        "extra: documented, not in the argument spec",
        "dir: falls back to $CANON_DIR, the docs do not say so",
        "state: choices is ['a'] in the docs, ['a', 'b'] in the spec",
        "verify.attempts: default is 5 in the docs, 3 in the spec",
    ]
    assert secret_problems(spec) == ["token: a credential without no_log=True"]
    assert secret_problems({"secrets": {"type": "bool"}, "db_password": {"type": "str", "no_log": True}}) == []


def test_garbled_yaml_is_reported():
    with pytest.raises(yaml.YAMLError):
        load_yaml("options:\n  a: {description: x}\n  a: {description: y}\n")
    # An unquoted comma in a flow mapping makes keys of the words after it.
    returned = load_yaml("x:\n  description: d\n  type: dict\n  returned: always\n  contains:\n"
                         "    y: {description: one (a, b)., type: str}\n")
    assert return_problems(returned, "", top=True) == ["x.y: unknown keys ['b).']"]


# -- roles -----------------------------------------------------------------------------------
def role_specs(role: str) -> dict:
    with open(os.path.join(ROOT, "roles", role, "meta", "argument_specs.yml")) as fh:
        return load_yaml(fh.read())["argument_specs"]


def role_defaults(role: str) -> dict:
    path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
    if not os.path.isfile(path):
        return {}
    with open(path) as fh:
        return yaml.safe_load(fh) or {}


def test_lifecycle_and_promote_have_argument_specs():
    assert {"lifecycle", "promote", "bench"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_role_options_are_documented(role):
    specs = role_specs(role)
    assert "main" in specs
    for entry, spec in specs.items():
        assert spec.get("short_description"), f"{role}:{entry} has no short_description"
        assert spec.get("options"), f"{role}:{entry} documents no option"
        for key, option in spec["options"].items():
            assert option.get("description"), f"{role}:{entry} {key} has no description"
            assert option.get("type"), f"{role}:{entry} {key} has no type"


@pytest.mark.parametrize("role", ROLES)
def test_role_defaults_are_options_and_satisfy_the_spec(role):
    options = role_specs(role)["main"]["options"]
    defaults = role_defaults(role)
    assert sorted(set(defaults) - set(options)) == [], f"{role}: defaults/main.yml sets undocumented variables"
    literal = {k: v for k, v in defaults.items() if "{{" not in json.dumps(v)}
    for key, value in literal.items():
        if "default" in options[key]:
            assert options[key]["default"] == value, \
                f"{role}: {key} defaults to {value!r}, the argument spec says {options[key]['default']!r}"
    # The role's own defaults pass its argument validation (what Ansible runs before the role).
    spec = {k: {a: v for a, v in o.items() if a != "description"} for k, o in options.items()}
    required = {k: "x" for k, o in options.items() if o.get("required") and k not in literal}
    result = ArgumentSpecValidator(spec).validate({**literal, **required})
    assert result.error_messages == [], f"{role}: {result.error_messages}"


# -- ansible-doc, as users run it ------------------------------------------------------------
def _ansible_doc(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run([sys.executable, "-m", "ansible.cli.doc", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


# ansible-doc renders each name it is given in turn and fails as a whole (exit 1, the broken
# plugin named on stderr) when one cannot be rendered: one call per kind keeps this file at a
# few seconds instead of one interpreter start per module and role.
MODULE_NAMES = tuple("coopcloud.canon." + m for m in MODULES)
ROLE_NAMES = tuple("coopcloud.canon." + r for r in ROLES)
CALLS = {
    "modules": MODULE_NAMES,
    "modules-json": ("--json", *MODULE_NAMES),
    "roles": ("-t", "role", *ROLE_NAMES),
    "role-list": ("-t", "role", "-l", "--json", "coopcloud.canon"),
}


@pytest.fixture(scope="module")
def rendered():
    """Every ansible-doc call of this file, run concurrently once: call name -> result."""
    with ThreadPoolExecutor(max_workers=len(CALLS)) as pool:
        return dict(zip(CALLS, pool.map(lambda args: _ansible_doc(list(args)), CALLS.values())))


def _section(text: str, kind: str, name: str) -> str:
    """The part of a multi-plugin ansible-doc text output about one plugin."""
    parts = re.split(r"(?m)^> ", text)
    head = re.compile(rf"{kind}:? +\*?{re.escape(name)}\*? ")
    found = [p for p in parts if head.match(p)]
    assert len(found) == 1, f"ansible-doc rendered {name} {len(found)} times"
    return found[0]


def _clean(proc) -> None:
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "", proc.stderr


def _rendered_alone(rendered, call: str, kind: str, name: str, *args: str) -> str:
    """ansible-doc's text about one plugin: from the shared call, or (when that call failed, so
    the failure lands on the broken plugin only) from a call of its own."""
    proc = rendered[call]
    if proc.returncode == 0 and not proc.stderr.strip():
        return _section(proc.stdout, kind, name)
    alone = _ansible_doc([*args, name])
    _clean(alone)
    return _section(alone.stdout, kind, name)


@pytest.mark.parametrize("name", MODULES)
def test_ansible_doc_renders_the_module(rendered, name, monkeypatch):
    text = _rendered_alone(rendered, "modules", "MODULE", f"coopcloud.canon.{name}")
    for key in module_kwargs(name, monkeypatch)["argument_spec"]:
        assert re.search(rf"(?m)^\s*[-=]?\s*{key}\b", text), f"{name}: option {key} not rendered"


def test_ansible_doc_merges_the_fragments_like_the_test_does(rendered, monkeypatch):
    proc = rendered["modules-json"]
    _clean(proc)
    docs = json.loads(proc.stdout)
    for name in MODULES:
        spec = module_kwargs(name, monkeypatch)["argument_spec"]
        assert sorted(docs[f"coopcloud.canon.{name}"]["doc"]["options"]) == sorted(spec), name


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_renders_the_role(rendered, role):
    text = _rendered_alone(rendered, "roles", "ROLE", f"coopcloud.canon.{role}", "-t", "role")
    for key in role_specs(role)["main"]["options"]:
        assert re.search(rf"(?m)^\s*[-=]?\s*{key}\b", text), f"{role}: {key} not rendered"


def test_ansible_doc_lists_every_role_with_a_spec(rendered):
    proc = rendered["role-list"]
    _clean(proc)
    assert sorted(json.loads(proc.stdout)) == [f"coopcloud.canon.{r}" for r in ROLES]


def test_every_playbook_has_its_docs_page():
    import glob
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(root, "playbooks", "*.yml")))
    assert "redfix" in names and "fix_pr" in names
    missing = [n for n in names if not os.path.exists(os.path.join(root, "docs", "playbooks", n + ".md"))]
    assert missing == [], "playbooks without docs/playbooks/<name>.md: %s" % missing
