"""What ansible-test's validate-modules does not check about the module docs, and the roles.

validate-modules (``make sanity``: docs vs argument_spec, attribute ``support``, check mode vs
``supports_check_mode``, credentials without ``no_log``, EXAMPLES/RETURN schemas) and the
ansible-doc sanity test (every module renders) cover the rest; this file keeps only:

- every module states its attributes through the ``coopcloud.canon.attributes`` fragment;
- an option that falls back to an environment variable says so in its description;
- EXAMPLES call the module by its fully qualified name;
- the copies of ``docker_context`` in the abra fragment are the same;
- roles: meta/argument_specs.yml documents every option and covers defaults/main.yml, and
  ansible-doc (the project's ansible-core, ANSIBLE_CONFIG=ansible.cfg) renders every role;
- every playbook has its docs page.
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
from ansible.module_utils.basic import env_fallback
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = "ansible_collections.coopcloud.canon.plugins"
MODULES = sorted(f[:-3] for f in os.listdir(os.path.join(ROOT, "plugins", "modules"))
                 if f.endswith(".py") and not f.startswith("_"))
ROLES = sorted(r for r in os.listdir(os.path.join(ROOT, "roles"))
               if os.path.isfile(os.path.join(ROOT, "roles", r, "meta", "argument_specs.yml")))


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
    return load_yaml(getattr(frag, var)).get("options") or {}


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


def fallback_problems(doc_options: dict, spec: dict, where: str = "") -> list[str]:
    """Options that fall back to an environment variable their description does not name
    (validate-modules compares types and defaults, not this)."""
    found = []
    for key, s in spec.items():
        fallback = s.get("fallback")
        if fallback and fallback[0] is env_fallback:
            text = json.dumps((doc_options.get(key) or {}).get("description"))
            found += [f"{where}{key}: falls back to ${var}, the docs do not say so"
                      for var in fallback[1] if var not in text]
        if s.get("options"):
            found += fallback_problems((doc_options.get(key) or {}).get("suboptions") or {}, s["options"],
                                       f"{where}{key}.")
    return found


# -- the module files themselves -------------------------------------------------------------
def test_every_module_is_found():
    assert len(MODULES) >= 16 and "canon_run" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_attributes_come_from_the_fragment(name):
    doc = documented(name)
    assert "coopcloud.canon.attributes" in doc.get("extends_documentation_fragment", []), name
    assert sorted(doc.get("attributes", {})) == ["check_mode", "diff_mode", "idempotent"], name


@pytest.mark.parametrize("name", MODULES)
def test_env_fallbacks_are_documented(name, monkeypatch):
    spec = module_kwargs(name, monkeypatch)["argument_spec"]
    assert fallback_problems(documented(name)["options"], spec, f"{name}: ") == []


@pytest.mark.parametrize("name", MODULES)
def test_examples_use_the_fully_qualified_name(name):
    mod = importlib.import_module(f"{PACKAGE}.modules.{name}")
    examples = load_yaml(mod.EXAMPLES)
    assert isinstance(examples, list) and examples, f"{name}: EXAMPLES has no task"
    assert any(f"coopcloud.canon.{name}" in task for task in examples), \
        f"{name}: no example calls coopcloud.canon.{name}"


def test_the_docker_context_copies_agree():
    frag = importlib.import_module(f"{PACKAGE}.doc_fragments.abra").ModuleDocFragment
    assert load_yaml(frag.DOCKER_CONTEXT)["options"]["docker_context"] == \
        load_yaml(frag.DOCUMENTATION)["options"]["docker_context"]


# The check itself must see a problem when there is one.
def test_an_undocumented_fallback_is_reported():
    spec = {"dir": {"type": "path", "fallback": (env_fallback, ["CANON_DIR"])},
            "named": {"type": "path", "fallback": (env_fallback, ["CANON_NAMED"])},
            "verify": {"type": "dict", "options": {"f": {"type": "str", "fallback": (env_fallback, ["CANON_F"])}}},
            "plain": {"type": "str"}}
    docs = {"dir": {"description": "a directory"}, "named": {"description": ["or C(CANON_NAMED)"]},
            "verify": {"description": "y", "suboptions": {"f": {"description": "z"}}}}
    assert fallback_problems(docs, spec) == ["dir: falls back to $CANON_DIR, the docs do not say so",
                                             "verify.f: falls back to $CANON_F, the docs do not say so"]


def test_garbled_yaml_is_reported():
    with pytest.raises(yaml.YAMLError):
        load_yaml("options:\n  a: {description: x}\n  a: {description: y}\n")


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
# role named on stderr) when one cannot be rendered: one call per kind keeps this file at a few
# seconds. Modules are rendered by ansible-test's ansible-doc sanity test.
ROLE_NAMES = tuple("coopcloud.canon." + r for r in ROLES)
CALLS = {
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
