# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A recipe checkout: its releases, its ``.env.sample`` and its compose chain.

Reads the git checkout abra keeps in ``$ABRA_DIR/recipes/<recipe>``; never writes to it.
"""

from __future__ import annotations

import os
import re
import tarfile

from ansible_collections.coopcloud.canon.plugins.module_utils._docker import StackConfigError
from ansible_collections.coopcloud.canon.plugins.module_utils._envfile import (
    EnvFile, EnvFileError, compose_files, parse_env, shell_exports)
from ansible_collections.coopcloud.canon.plugins.module_utils._names import (
    SWARM_CONFIG_MAX, SWARM_SECRET_MAX, name_budget_problems, stack_name)
from ansible_collections.coopcloud.canon.plugins.module_utils._proc import run

_TAG_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)\+(.+)$")


class RecipeError(ValueError):
    pass


def _natural(text: str) -> tuple:
    """``1.10.2-rootless`` -> numbers compared as numbers, the rest as text (1.9 < 1.10)."""
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|\D+", text))


def version_key(tag: str) -> tuple:
    """Sort key of a release tag ``X.Y.Z+upstream``: the recipe's semver, then the upstream
    version compared part by part (numbers numerically); a tag of another form sorts first."""
    m = _TAG_RE.match(tag)
    if not m:
        return (-1, -1, -1, _natural(tag))
    return (int(m.group(1)), int(m.group(2)), int(m.group(3)), _natural(m.group(4)))


def sort_versions(tags) -> list:
    return sorted([t for t in tags if _TAG_RE.match(t)], key=version_key)


def previous_version(versions: list, head: str) -> str | None:
    older = [v for v in sort_versions(versions) if version_key(v) < version_key(head)]
    return older[-1] if older else None


def all_tags(checkout: str) -> list:
    res = run(["git", "-C", checkout, "tag", "--list"], timeout=60)
    if not res.ok:
        raise RecipeError("cannot list releases of %s: %s" % (checkout, res.stderr.strip()))
    return sorted(res.stdout.split())


def git_tags(checkout: str) -> list:
    """The release tags (``X.Y.Z+upstream``), oldest first."""
    return sort_versions(all_tags(checkout))


def no_release_message(recipe: str, tags: list) -> str | None:
    """Why ``recipe`` has no release the harness can version, naming the tags it has; None when
    at least one tag is a release."""
    if sort_versions(tags):
        return None
    if not tags:
        return ("recipe %s has no release tags: abra releases are git tags X.Y.Z+upstream "
                "(e.g. 1.0.0+2.4.8), and this recipe has no tag at all" % recipe)
    shown = ", ".join(tags[:10]) + (", ..." if len(tags) > 10 else "")
    return ("recipe %s has no release tags of the form X.Y.Z+upstream (e.g. 1.0.0+2.4.8), which abra "
            "releases take; its %d tag(s): %s" % (recipe, len(tags), shown))


def git_show(checkout: str, version: str, path: str) -> str | None:
    res = run(["git", "-C", checkout, "show", "%s:%s" % (version, path)], timeout=60)
    return res.stdout if res.ok else None


def git_files(checkout: str, version: str) -> list:
    """The paths of every file of ``version``."""
    res = run(["git", "-C", checkout, "ls-tree", "-r", "--name-only", version], timeout=60)
    if not res.ok:
        raise RecipeError("cannot list the files of release %s: %s" % (version, res.stderr.strip()))
    return [line for line in res.stdout.splitlines() if line]


def parse_env_sample(text: str, name: str = ".env.sample") -> dict:
    """``.env.sample`` as ``{KEY: {"value", "commented", "length", "options"}}``, read by
    :func:`_envfile.parse_env` (an active line always speaks for its key, a commented one only
    when no active line sets it); a malformed file is a :class:`RecipeError` naming the line."""
    try:
        env = parse_env(text, name=name)
    except EnvFileError as exc:
        raise RecipeError(str(exc))
    out = {}
    for key in env.keys():
        e = env.entry(key)
        length = e.options.get("length")
        out[key] = {"value": e.value, "commented": e.commented, "options": dict(e.options),
                    "length": int(length) if length and length.isdigit() else None}
    return out


def export_release(checkout: str, version: str, dest: str) -> str:
    """The files of ``version`` (a tag, or ``HEAD``) written under ``dest``, as abra's checkout of
    that release would have them; the checkout itself (its index, its work tree) is left alone."""
    os.makedirs(dest, exist_ok=True)
    archive = os.path.join(dest, ".release.tar")
    res = run(["git", "-C", checkout, "archive", "--format=tar", "-o", archive, version], timeout=120)
    if not res.ok:
        raise RecipeError("cannot read release %s of %s: %s" % (version, checkout, res.stderr.strip()))
    tree = os.path.join(dest, "release")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(tree, filter="data")
        else:  # pragma: no cover - Python before 3.11.4
            tar.extractall(tree)
    os.unlink(archive)
    return tree


def read_text(tree: str, path: str) -> str | None:
    full = os.path.join(tree, path)
    if not os.path.isfile(full):
        return None
    with open(full, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def recipe_env(sample: EnvFile, abra_sh: str | None, overrides: dict, domain: str) -> dict:
    """The environment a deploy of the recipe interpolates its compose files with, lowest first:
    commented-out secret versions (an overlay's secrets, so its names get their real length),
    the sample's active lines, the ``export`` lines of ``abra.sh`` (config versions), the run's
    own settings, then DOMAIN and STACK_NAME."""
    env = {k: v["version"] for k, v in sample.secrets().items() if v["commented"]}
    env.update(sample.active)
    env.update(shell_exports(abra_sh or ""))
    env.update({k: str(v) for k, v in (overrides or {}).items()})
    env.update(DOMAIN=domain, STACK_NAME=stack_name(domain))
    return env


def check_compose_paths(tree: str, files: list, version: str) -> None:
    """Every COMPOSE_FILE entry is a file of the release, inside it (a subfolder is fine)."""
    root = os.path.realpath(tree)
    for f in files:
        full = os.path.realpath(os.path.join(tree, f))
        if os.path.isabs(f) or not full.startswith(root + os.sep):
            raise RecipeError("COMPOSE_FILE entry %r is outside the recipe" % f)
        if not os.path.isfile(full):
            raise RecipeError("COMPOSE_FILE names %s, which release %s does not have" % (f, version))


def yaml_problem(tree: str, files: list) -> str | None:
    """``file:line:column: problem`` of the first of ``files`` that is not YAML, else None.

    docker's loader names neither the file nor (after its own processing) always the right line
    when a compose file of a chain does not parse; PyYAML's marks do. Only the syntax is read:
    what the file means is still docker's to say."""
    try:
        import yaml
    except ImportError:
        return None
    for f in files:
        try:
            with open(os.path.join(tree, f), encoding="utf-8", errors="replace") as fh:
                yaml.safe_load(fh)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = "%s:%d:%d" % (f, mark.line + 1, mark.column + 1) if mark else f
            return "%s: %s" % (where, " ".join(x for x in (exc.context, exc.problem) if x))
        except (yaml.YAMLError, OSError) as exc:
            return "%s: %s" % (f, exc)
    return None


def load_stack(docker, tree: str, files: list, env: dict, version: str) -> dict:
    """The merged, interpolated stack of ``files`` by docker's own loader (``docker stack
    config``), run in the release's tree with ``env``: what ``docker stack deploy`` would deploy.
    A file docker refuses is a :class:`RecipeError` with docker's message, led by the file and
    line when the refusal is a file that is not YAML."""
    check_compose_paths(tree, files, version)
    try:
        return docker.stack_config(files, env, cwd=tree)
    except StackConfigError as exc:
        where = yaml_problem(tree, files)
        raise RecipeError("compose files %s of release %s do not load: %s%s"
                          % (":".join(files), version, where + "; docker: " if where else "", exc))


def _refs(entries) -> list:
    """Names a service refers to in a secrets or configs list (short or long syntax)."""
    out = []
    for item in entries or []:
        if isinstance(item, dict):
            if item.get("source"):
                out.append(str(item["source"]))
        elif isinstance(item, str):
            out.append(item.split(":", 1)[0])
    return out


def _volume_refs(entries) -> list:
    """Named volumes a service mounts: bind mounts and tmpfs need no top-level definition."""
    out = []
    for item in entries or []:
        if isinstance(item, dict):
            if item.get("type", "volume") == "volume" and item.get("source"):
                out.append(str(item["source"]))
        elif isinstance(item, str) and ":" in item:
            src = item.split(":", 1)[0]
            if not src.startswith(("/", ".", "~", "$")):
                out.append(src)
    return out


def service_networks(spec: dict) -> list:
    """The networks a service joins after the merge (``default`` when it names none)."""
    nets = spec.get("networks")
    if spec.get("network_mode"):
        return []
    if not nets:
        return ["default"]
    return [str(n) for n in (nets if isinstance(nets, (list, dict)) else [])]


def compose_findings(stack: dict, domain: str, env: dict, shared_aliases: dict | None = None,
                     files: str = "compose.yml", templates: dict | None = None) -> list:
    """Defects of a merged stack (docker's ``stack config`` output) found before deploying it.

    Each finding is ``{"check", "file", "message"}``; every check but ``ambiguous-alias`` breaks
    (or, for ``depends_on``, silently mis-wires) the deploy: services, secrets, configs, networks
    and volumes referenced but not defined; services without an image; swarm name budgets with
    the real names (versions interpolated from ``env``); and (``shared_aliases``: ``{network:
    {alias: [stacks]}}`` from the swarm) short names ambiguous on a shared network, over
    environment, command, entrypoint and the config templates (``templates``: ``{config: text}``).
    """
    services = {n: (v or {}) for n, v in (stack.get("services") or {}).items()}
    top = {kind: {k: (v or {}) for k, v in (stack.get(kind) or {}).items()}
           for kind in ("networks", "secrets", "configs", "volumes")}
    findings = []

    def add(check, message):
        findings.append({"check": check, "file": files, "message": message})

    for name, spec in sorted(services.items()):
        if not spec.get("image"):
            add("image", "service %s has no image" % name)
        deps = spec.get("depends_on") or []
        for dep in (deps if isinstance(deps, list) else list(deps)):
            if dep not in services:
                add("undefined-service", "service %s depends_on %s, which no file in COMPOSE_FILE defines" % (name, dep))
        for kind, refs in (("secret", _refs(spec.get("secrets"))), ("config", _refs(spec.get("configs"))),
                           ("volume", _volume_refs(spec.get("volumes")))):
            for ref in refs:
                if ref not in top[kind + "s"]:
                    add("undefined-" + kind, "service %s uses the %s %s, which no file in COMPOSE_FILE defines"
                        % (name, kind, ref))
        for net in service_networks(spec):
            if net != "default" and net not in top["networks"]:
                add("undefined-network", "service %s joins the network %s, which no file in COMPOSE_FILE defines"
                    % (name, net))
    entries = {n: {"spec": s, "files": [files]} for n, s in services.items()}
    findings += ambiguous_short_names(entries, top["networks"], stack_of(domain, env), shared_aliases or {},
                                      templates or {})
    internal_nets = [n for n, v in top["networks"].items() if not v.get("external")]
    budget = name_budget_problems(domain, services=list(services), networks=internal_nets)
    stack_ = stack_of(domain, env)
    for kind, limit in (("secret", SWARM_SECRET_MAX), ("config", SWARM_CONFIG_MAX)):
        for key, spec in sorted(top[kind + "s"].items()):
            full = str(spec.get("name") or "%s_%s" % (stack_, key))
            if len(full) > limit:
                budget.append("%s name %s is %d characters, over swarm's %d" % (kind, full, len(full), limit))
    findings += [{"check": "name-budget", "file": files, "message": p} for p in budget]
    return findings


def stack_of(domain: str, env: dict) -> str:
    return env.get("STACK_NAME") or domain.replace(".", "_")[:45]


def _service_networks(spec: dict) -> list:
    return service_networks(spec)


def _host_texts(spec: dict) -> list:
    """Everything of a service that can carry a host name: environment values, command,
    entrypoint (lists or strings)."""
    out = []
    env = spec.get("environment") or []
    if isinstance(env, dict):
        out += ["%s=%s" % (k, "" if v is None else v) for k, v in env.items()]
    else:
        out += [str(e) for e in env]
    for key in ("command", "entrypoint"):
        val = spec.get(key)
        if isinstance(val, list):
            out += [str(v) for v in val]
        elif val:
            out.append(str(val))
    return out


def _config_names(spec: dict) -> list:
    return _refs(spec.get("configs"))


_HOST_BEFORE = ("//", "@", "=", '"', "'")


def mentions_host(text: str, host: str) -> bool:
    """``host`` used as a host name in ``text``: ``app:3000``, ``http://app/x``, ``user@app``,
    ``HOST=app``, ``"app"``, or the whole text (one argv word); not a path segment
    (``/srv/app/data``, ``app/data``), not part of a longer name (``myapp``, ``app.example.org``,
    ``app_data``), not a bare word of prose or a shell line (``echo app is up``)."""
    for m in re.finditer(r"(?<![\w.$-])%s(?![\w.-])" % re.escape(host), text):
        before, after = text[:m.start()], text[m.end():]
        url = before.endswith("//")
        if before.endswith("/") and not url:
            continue
        if after.startswith("/") and not url:
            continue
        if url or re.match(r":\d", after) or before.endswith(_HOST_BEFORE) or not before:
            return True
    return False


def short_name_references(services: dict, templates: dict | None = None) -> list:
    """``(service, sibling)`` pairs: a service that reaches a sibling by its short name in its
    environment, command, entrypoint or a config template it mounts."""
    refs = []
    for name, entry in services.items():
        spec = entry["spec"]
        texts = _host_texts(spec) + [(templates or {}).get(c, "") for c in _config_names(spec)]
        for sibling in services:
            if sibling != name and any(mentions_host(t, sibling) for t in texts if t):
                refs.append((name, sibling))
    return refs


def ambiguous_short_names(services: dict, networks: dict, stack: str, shared_aliases: dict,
                          templates: dict | None = None) -> list:
    """A short name is ambiguous when both services meet on a shared external network where
    another stack's service answers to the same name."""
    findings = []
    external = {n: ((v or {}).get("name") or n) for n, v in networks.items() if (v or {}).get("external")}
    for name, sibling in short_name_references(services, templates):
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


def config_templates(stack: dict, tree: str) -> dict:
    """``{config: text}`` of the config files of the stack that live in the release's tree."""
    out = {}
    root = os.path.realpath(tree)
    for key, spec in (stack.get("configs") or {}).items():
        path = os.path.realpath(str((spec or {}).get("file") or ""))
        if path.startswith(root + os.sep) and os.path.isfile(path) and os.path.getsize(path) < 1_000_000:
            with open(path, encoding="utf-8", errors="replace") as fh:
                out[key] = fh.read()
    return out


_VERSION_LINE = re.compile(r"""^version:[ \t]*["']?([^"'\s#]+)""", re.M)


def compose_file_versions(tree: str, files: list) -> dict:
    """``{file: its top-level version: or None}`` for each file of the chain, as written (the
    merged stack docker prints carries one version for all; abra's R001 reads each file's)."""
    out = {}
    for f in files:
        m = _VERSION_LINE.search(read_text(tree, f) or "")
        out[f] = m.group(1) if m else None
    return out


def inspect_release(docker, checkout: str, version: str, domain: str, overrides: dict | None = None,
                    workdir: str | None = None, compose_file: str | None = None) -> dict:
    """Everything the preflight needs of one release, read as abra and docker read it.

    Exports ``version`` of ``checkout`` into ``workdir``, reads its ``.env.sample`` (a missing one
    reads as empty, as abra's ``app new`` would start from nothing) and ``abra.sh`` exports, builds
    the deploy env (:func:`recipe_env`), takes COMPOSE_FILE from it (``compose_file`` wins: an
    overlay tried on its own) and loads the chain by docker's loader. Returns ``{"tree",
    "sample", "env", "files", "stack", "templates", "overlays"}``.
    """
    tree = export_release(checkout, version, workdir)
    text = read_text(tree, ".env.sample")
    try:
        sample = parse_env(text or "", name="%s:.env.sample" % version)
    except EnvFileError as exc:
        raise RecipeError(str(exc))
    env = recipe_env(sample, read_text(tree, "abra.sh"), overrides or {}, domain)
    if compose_file is not None:
        env["COMPOSE_FILE"] = compose_file
    files = compose_files(env.get("COMPOSE_FILE"))
    stack = load_stack(docker, tree, files, env, version)
    return {"tree": tree, "sample": sample, "sample_found": text is not None, "env": env, "files": files,
            "stack": stack, "templates": config_templates(stack, tree), "overlays": sample.overlays()}
