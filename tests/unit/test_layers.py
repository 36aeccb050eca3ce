"""The layers of docs/architecture.md, read from the imports (ast), so the picture stays true.

    plugins/modules/*  ──▶  plugins/module_utils/_*  ◀──  canon/* (the driver)

- module_utils imports only the standard library, ``ansible.module_utils`` (never
  ``AnsibleModule``: modules are the Ansible face) and other module_utils; never a module,
  a filter, the driver;
- module_utils import each other without a cycle, counting imports hidden inside functions
  (hiding an import in a function is how a loop used to be kept alive);
- a module imports module_utils, never another module or the driver;
- the driver and the benchmarks use module_utils, never a module as a library;
- docker and abra command lines are built only in their clients, module_utils/_docker.py and
  module_utils/_abra.py: nothing else passes an argv starting with ``docker``/``abra`` (or
  ``docker_bin``/``abra_bin``) to subprocess, ``_proc.run`` or anything else.

Each rule is checked against a small synthetic tree too (red and green), so a rule that could
never fail would show here.
"""
from __future__ import annotations

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PKG = "ansible_collections.coopcloud.canon."


def layer_of(dotted: str) -> str | None:
    """The layer of an imported or importing dotted name (None: outside the project)."""
    if dotted.startswith(PKG):
        dotted = dotted[len(PKG):]
    elif dotted.startswith("ansible_collections."):
        return None
    for prefix, layer in (("plugins.module_utils", "module_utils"), ("plugins.modules", "modules"),
                          ("plugins.filter", "filter"), ("plugins.doc_fragments", "doc_fragments"),
                          ("canon", "canon"), ("benchmarks", "benchmarks")):
        if dotted == prefix or dotted.startswith(prefix + "."):
            return layer
    return None


def imports_of(source: str) -> list:
    """``(dotted name, imported names, line)`` of every import, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [a.name for a in node.names]
            if node.module in (PKG + "plugins.module_utils", PKG + "plugins.modules"):
                found += [(node.module + "." + n, [], node.lineno) for n in names]
            else:
                found.append((node.module, names, node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names]
    return found


# The one client of each CLI: an argv list starting with the tool (or its ``<tool>_bin``) passed
# to any call anywhere else is a command line built outside its client.
CLIENTS = {"docker": "plugins/module_utils/_docker.py", "abra": "plugins/module_utils/_abra.py"}


def cli_argv_lines(source: str) -> list:
    """``(tool, line)`` of every call whose first argument is an argv list that starts with
    ``"docker"``/``"abra"`` or with a name or attribute ``docker_bin``/``abra_bin``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], (ast.List, ast.Tuple))
                and node.args[0].elts):
            continue
        first = node.args[0].elts[0]
        for tool in CLIENTS:
            if ((isinstance(first, ast.Constant) and first.value == tool)
                    or (isinstance(first, ast.Attribute) and first.attr == tool + "_bin")
                    or (isinstance(first, ast.Name) and first.id == tool + "_bin")):
                found.append((tool, node.lineno))
    return found


def violations(files: dict) -> list:
    """Every import or call against the layers in ``files`` (``{relative path: source}``)."""
    found = []
    graph = {}
    for path, source in sorted(files.items()):
        here = layer_of(path[:-3].replace("/", "."))
        if path.startswith("plugins/module_utils/"):
            me = path[:-3].replace("/", ".")
            graph.setdefault(me, set())
        for dotted, names, line in imports_of(source):
            there = layer_of(dotted)
            where = "%s:%d imports %s" % (path, line, dotted)
            if here == "module_utils":
                if there in ("modules", "filter", "canon", "benchmarks", "doc_fragments"):
                    found.append(where + ": module_utils never import " + there)
                if dotted == "ansible.module_utils.basic" and "AnsibleModule" in names:
                    found.append(where + ": AnsibleModule belongs to the modules")
                if there == "module_utils":
                    graph[me].add(dotted[len(PKG):] if dotted.startswith(PKG) else dotted)
            elif here == "modules" and there in ("modules", "canon", "benchmarks"):
                found.append(where + ": a module imports module_utils, never " + there)
            elif here in ("canon", "benchmarks") and there == "modules":
                found.append(where + ": the driver and benchmarks use module_utils, never a module")
        found += ["%s:%d runs %s outside %s" % (path, n, tool, CLIENTS[tool][len("plugins/"):])
                  for tool, n in cli_argv_lines(source) if path != CLIENTS[tool]]
    found += ["import cycle among module_utils: " + " -> ".join(c) for c in cycles(graph)]
    return found


def cycles(graph: dict) -> list:
    """One path per cycle found by depth-first search (each cycle reported once)."""
    out, seen_cycles = [], set()
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycle = path[path.index(nxt):] + [nxt]
                key = frozenset(cycle)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    out.append([c.rsplit(".", 1)[-1] for c in cycle])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return out


def project_files() -> dict:
    files = {}
    for top in ("plugins", "canon", "benchmarks"):
        for dirpath, _dirs, names in os.walk(os.path.join(ROOT, top)):
            for name in names:
                if name.endswith(".py"):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as fh:
                        files[os.path.relpath(path, ROOT)] = fh.read()
    return files


def test_the_project_keeps_its_layers():
    files = project_files()
    assert "plugins/module_utils/_docker.py" in files and any(p.startswith("canon/") for p in files)
    assert violations(files) == []


MU = "from ansible_collections.coopcloud.canon.plugins.module_utils.%s import x\n"


@pytest.mark.parametrize("files,expected", [
    # green: the allowed directions
    ({"plugins/modules/m.py": MU % "_a", "canon/c.py": MU % "_a", "plugins/module_utils/_a.py": MU % "_b",
      "plugins/module_utils/_b.py": "import json\nfrom ansible.module_utils.basic import env_fallback\n",
      "benchmarks/w.py": MU % "_a"}, []),
    # red: upward and sideways imports
    ({"plugins/module_utils/_a.py": "from ansible_collections.coopcloud.canon.plugins.modules.m import watch\n"},
     ["module_utils never import modules"]),
    ({"plugins/module_utils/_a.py": "def f():\n    from canon.sweep import x\n"}, ["module_utils never import canon"]),
    ({"plugins/module_utils/_a.py": "from ansible.module_utils.basic import AnsibleModule\n"},
     ["AnsibleModule belongs to the modules"]),
    ({"plugins/modules/m.py": "from ansible_collections.coopcloud.canon.plugins.modules.n import main\n"},
     ["a module imports module_utils, never modules"]),
    ({"plugins/modules/m.py": "import canon.load\n"}, ["a module imports module_utils, never canon"]),
    ({"benchmarks/w.py": "from ansible_collections.coopcloud.canon.plugins.modules.swarm_converge import watch\n"},
     ["the driver and benchmarks use module_utils, never a module"]),
    ({"canon/c.py": "from ansible_collections.coopcloud.canon.plugins.modules import readiness\n"},
     ["the driver and benchmarks use module_utils, never a module"]),
    # red: a cycle, even when one side hides its import inside a function
    ({"plugins/module_utils/_a.py": MU % "_b",
      "plugins/module_utils/_b.py": "def f():\n    " + MU % "_a"}, ["import cycle among module_utils: _a -> _b -> _a"]),
    ({"plugins/module_utils/_a.py": MU % "_b", "plugins/module_utils/_b.py": MU % "_c",
      "plugins/module_utils/_c.py": "from ansible_collections.coopcloud.canon.plugins.module_utils import _a\n"},
     ["import cycle among module_utils: _a -> _b -> _c -> _a"]),
    # red: a docker or abra command line outside its client; green: inside it, or git
    ({"canon/c.py": "import subprocess\nsubprocess.run([server.docker_bin, 'ps'])\n"},
     ["runs docker outside module_utils/_docker.py"]),
    ({"plugins/module_utils/_x.py": "import subprocess\nsubprocess.Popen(['docker', 'ps'])\n"},
     ["runs docker outside module_utils/_docker.py"]),
    ({"plugins/modules/m.py": "from x import run\nrun([docker_bin, 'stack', 'ls'])\n"},
     ["runs docker outside module_utils/_docker.py"]),
    ({"plugins/modules/m.py": "run([p.abra_bin, 'app', 'deploy', d, '-n'])\n"},
     ["runs abra outside module_utils/_abra.py"]),
    ({"benchmarks/b.py": "subprocess.run(('abra', 'app', 'ls'))\n"}, ["runs abra outside module_utils/_abra.py"]),
    ({"plugins/module_utils/_docker.py": "import subprocess\nsubprocess.run(['docker', 'ps'])\n",
      "plugins/module_utils/_abra.py": "run(['abra', 'app', 'ls'])\n",
      "canon/c.py": "import subprocess\nsubprocess.run(['git', 'status'])\n"}, []),
])
def test_each_rule_fails_on_a_violation(files, expected):
    found = violations(files)
    assert len(found) == len(expected), found
    for got, want in zip(found, expected):
        assert want in got, (got, want)


def undocumented(doc: str, files) -> list:
    """Files of module_utils and canon/ that docs/architecture.md does not name. A file is named
    by ``<stem>.py`` without its leading underscore, so a module that moves between the two
    layers (``module_utils/_x.py`` -> ``canon/x.py``) stays named."""
    out = []
    for path in files:
        if path.startswith(("plugins/module_utils/", "canon/")) and path.endswith(".py"):
            if os.path.basename(path) == "__init__.py":
                continue
            if os.path.basename(path).lstrip("_") not in doc:
                out.append(path)
    return sorted(out)


def test_every_module_utils_and_driver_file_has_its_place_in_the_architecture_page():
    with open(os.path.join(ROOT, "docs", "architecture.md"), encoding="utf-8") as fh:
        doc = fh.read()
    assert undocumented(doc, project_files()) == []


@pytest.mark.parametrize("doc,files,expected", [
    ("`_abra.py` and `canon/sweep.py`", ["plugins/module_utils/_abra.py", "canon/sweep.py", "canon/__init__.py"], []),
    ("`_classify.py`", ["canon/classify.py"], []),   # moved between layers: still named
    ("`_abra.py`", ["plugins/module_utils/_abra.py", "plugins/module_utils/_new.py", "canon/x.py"],
     ["canon/x.py", "plugins/module_utils/_new.py"]),
])
def test_undocumented_files_are_found(doc, files, expected):
    assert undocumented(doc, files) == expected
