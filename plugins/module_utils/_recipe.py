# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A recipe checkout: its releases, its ``.env.sample`` and its compose chain.

Reads the git checkout abra keeps in ``$ABRA_DIR/recipes/<recipe>``; never writes to it.
"""

from __future__ import annotations

import re

try:
    import yaml
except ImportError:   # PyYAML comes with Ansible on the controller, not necessarily on the server
    yaml = None

from ansible_collections.coopcloud.canon.plugins.module_utils._names import name_budget_problems
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import run

_TAG_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)\+(.+)$")
_ENV_LINE_RE = re.compile(r"^\s*(#\s*)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_LENGTH_RE = re.compile(r"#\s*length=(\d+)")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class RecipeError(ValueError):
    pass


def version_key(tag: str) -> tuple:
    m = _TAG_RE.match(tag)
    if not m:
        return (-1, -1, -1, tag)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), m.group(4))


def sort_versions(tags) -> list:
    return sorted([t for t in tags if _TAG_RE.match(t)], key=version_key)


def previous_version(versions: list, head: str) -> str | None:
    older = [v for v in sort_versions(versions) if version_key(v) < version_key(head)]
    return older[-1] if older else None


def git_tags(checkout: str) -> list:
    res = run(["git", "-C", checkout, "tag", "--list"], timeout=60)
    if not res.ok:
        raise RecipeError("cannot list releases of %s: %s" % (checkout, res.stderr.strip()))
    return sort_versions(res.stdout.split())


def git_show(checkout: str, version: str, path: str) -> str | None:
    res = run(["git", "-C", checkout, "show", "%s:%s" % (version, path)], timeout=60)
    return res.stdout if res.ok else None


def parse_env_sample(text: str) -> dict:
    """``.env.sample`` as ``{KEY: {"value", "commented", "length"}}``; malformed lines are errors."""
    out = {}
    for lineno, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or (line.startswith("#") and "=" not in line):
            continue
        m = _ENV_LINE_RE.match(line)
        if not m:
            if line.startswith("#"):
                continue  # prose comment that happens to hold '='
            raise RecipeError(".env.sample line %d is not KEY=VALUE: %r" % (lineno, raw))
        commented, key, rest = bool(m.group(1)), m.group(2), m.group(3)
        value, _mark, comment = rest.partition(" #")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif value[:1] in "\"'" and value[-1:] != value[:1]:
            raise RecipeError(".env.sample line %d has an unterminated quote: %r" % (lineno, raw))
        length = _LENGTH_RE.search("#" + comment) if comment else None
        out[key] = {"value": value, "commented": commented, "length": int(length.group(1)) if length else None}
    return out


def substitute(text: str, env: dict) -> str:
    def repl(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        val = env.get(name)
        if val in (None, "") and default is not None:
            return default
        return "" if val is None else str(val)
    return _VAR_RE.sub(repl, text.replace("$$", "\0")).replace("\0", "$")


def load_compose_chain(checkout: str, version: str, env: dict) -> tuple:
    """The merged service/network/secret/config view of ``COMPOSE_FILE`` at ``version``.

    Returns ``(files, docs)`` where ``docs`` maps each file to its parsed (substituted) YAML.
    """
    files = [f for f in str(env.get("COMPOSE_FILE", "compose.yml")).split(":") if f]
    docs = {}
    for f in files:
        if "/" in f or f.startswith("."):
            raise RecipeError("COMPOSE_FILE entry %r is not a file in the recipe" % f)
        text = git_show(checkout, version, f)
        if text is None:
            raise RecipeError("COMPOSE_FILE names %s, which release %s does not have" % (f, version))
        if yaml is None:
            raise RecipeError("reading %s needs PyYAML (python3-yaml) on the host the module runs on" % f)
        try:
            docs[f] = yaml.safe_load(substitute(text, env)) or {}
        except yaml.YAMLError as exc:
            raise RecipeError("%s at %s is not valid YAML: %s" % (f, version, exc))
    return files, docs


def compose_findings(docs: dict, domain: str, env: dict, shared_aliases: dict | None = None) -> list:
    """Defects found in a compose chain before deploying it.

    Each finding is ``{"check", "file", "message"}``: services referenced but not defined,
    services without an image, swarm name budgets, and (``shared_aliases``: ``{network:
    {alias: [stacks]}}`` from the swarm) short names that are ambiguous on a shared network.
    """
    services, networks, secrets, configs = {}, {}, {}, {}
    for f, doc in docs.items():
        for name, svc in (doc.get("services") or {}).items():
            merged = dict(services.get(name, {}).get("spec", {}))
            merged.update(svc or {})
            services[name] = {"spec": merged, "files": services.get(name, {}).get("files", []) + [f]}
        networks.update({k: (v or {}) for k, v in (doc.get("networks") or {}).items()})
        secrets.update({k: (v or {}) for k, v in (doc.get("secrets") or {}).items()})
        configs.update({k: (v or {}) for k, v in (doc.get("configs") or {}).items()})
    findings = []
    for name, entry in sorted(services.items()):
        spec, files = entry["spec"], entry["files"]
        if not spec.get("image"):
            findings.append({"check": "image", "file": files[0],
                             "message": "service %s has no image" % name})
        deps = spec.get("depends_on") or []
        for dep in (deps if isinstance(deps, list) else list(deps)):
            if dep not in services:
                findings.append({"check": "undefined-service", "file": files[-1],
                                 "message": "service %s depends_on %s, which no file in COMPOSE_FILE defines"
                                 % (name, dep)})
    findings += ambiguous_short_names(services, networks, stack_of(domain, env), shared_aliases or {})
    internal_nets = [n for n, v in networks.items() if not v.get("external")]
    budget = name_budget_problems(domain, services=list(services), networks=internal_nets)
    # Secrets and configs carry their full swarm name (``${STACK_NAME}_<name>_${..._VERSION}``).
    for kind, items in (("secret", secrets), ("config", configs)):
        for key, spec in sorted(items.items()):
            full = spec.get("name") or "%s_%s_v1" % (domain.replace(".", "_"), key)
            if len(full) > 64:
                budget.append("%s name %s is %d characters, over swarm's 64" % (kind, full, len(full)))
    findings += [{"check": "name-budget", "file": ",".join(docs), "message": p} for p in budget]
    return findings


def stack_of(domain: str, env: dict) -> str:
    return env.get("STACK_NAME") or domain.replace(".", "_")[:45]


def _service_networks(spec: dict) -> list:
    nets = spec.get("networks") or []
    return list(nets) if isinstance(nets, (list, dict)) else []


def _env_values(spec: dict) -> list:
    env = spec.get("environment") or []
    if isinstance(env, dict):
        return ["%s=%s" % (k, v) for k, v in env.items()]
    return [str(e) for e in env]


def short_name_references(services: dict) -> list:
    """``(service, sibling)`` pairs: a service that reaches a sibling by its short name in its
    environment (``app:3000``, ``http://app/...``)."""
    refs = []
    for name, entry in services.items():
        text = "\n".join(_env_values(entry["spec"]))
        for sibling in services:
            if sibling != name and re.search(r"(?<![\w.-])%s(?=[:/]|$)" % re.escape(sibling), text, re.MULTILINE):
                refs.append((name, sibling))
    return refs


def ambiguous_short_names(services: dict, networks: dict, stack: str, shared_aliases: dict) -> list:
    """A short name is ambiguous when both services meet on a shared external network where
    another stack's service answers to the same name."""
    findings = []
    external = {n: (v.get("name") or n) for n, v in networks.items() if v.get("external")}
    for name, sibling in short_name_references(services):
        common = set(_service_networks(services[name]["spec"])) & set(_service_networks(services[sibling]["spec"]))
        for key in sorted(common & set(external)):
            others = [s for s in shared_aliases.get(external[key], {}).get(sibling, []) if s != stack]
            if others:
                findings.append({
                    "check": "ambiguous-alias", "file": services[name]["files"][-1],
                    "message": "service %s reaches %s by its short name on the shared network %s, where %s "
                               "also answer(s) to %r: requests can land on another stack"
                               % (name, sibling, external[key], ", ".join("stack " + o for o in sorted(others)),
                                  sibling)})
    return findings


LINT_RULES = {
    "L001": "every image names an explicit tag other than latest",
    "L002": "the services carry the coop-cloud.<stack>.version label of the release",
    "L003": ".env.sample sets TYPE to the recipe",
}


def _labels(spec: dict) -> dict:
    labels = (spec.get("deploy") or {}).get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    return labels


def lint_findings(docs: dict, sample: dict, recipe: str, version: str, stack: str) -> list:
    """The recipe hygiene rules of :data:`LINT_RULES` on the head release's files."""
    found = []
    version_label = "coop-cloud.%s.version" % stack
    labelled = []
    for f, doc in docs.items():
        for name, spec in (doc.get("services") or {}).items():
            spec = spec or {}
            image = str(spec.get("image") or "")
            tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
            if image and tag in ("", "latest"):
                found.append({"rule": "L001", "file": f, "message": "service %s image %s has no pinned tag" % (name, image)})
            value = _labels(spec).get(version_label)
            if value is not None:
                labelled.append(value)
                if value != version:
                    found.append({"rule": "L002", "file": f, "message": "service %s says version %s, the release is %s"
                                  % (name, value, version)})
    if docs and not labelled:
        found.append({"rule": "L002", "file": ",".join(docs), "message": "no service carries %s" % version_label})
    if sample.get("TYPE", {}).get("value") not in (recipe,):
        found.append({"rule": "L003", "file": ".env.sample",
                      "message": "TYPE is %r, not %r" % (sample.get("TYPE", {}).get("value"), recipe)})
    return found
