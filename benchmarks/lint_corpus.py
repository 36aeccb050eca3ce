#!/usr/bin/env python3
"""Run the lint rules (abra's R001-R015 and the harness's L001-L003) over the real recipes in
``../shared/real-recipes/*.bundle`` and print the recipe x rule table as Markdown (the
``## Lint`` section of docs/real-recipes.md).

Each bundle is cloned into a temporary directory. A tagged recipe is linted at its newest tag
(what the lint tier does: the head release); an untagged one at its HEAD commit. The merged
stack is docker's own: ``docker stack config -c <each COMPOSE_FILE entry>`` (docker CLI 23+),
with DOMAIN=<recipe>.example.com, STACK_NAME from it and the active ``.env.sample`` values in
the environment. Read-only: docker only prints a config, nothing reaches the daemon.

    python3 benchmarks/lint_corpus.py [--corpus DIR] [--json OUT]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.coopcloud.canon.plugins.module_utils import _lint as lint  # noqa: E402

# The name each recipe has in $ABRA_DIR/recipes (the catalogue's where it has one; it is also
# what each .env.sample's TYPE says, which L003 then checks).
RECIPE_NAMES = {
    "agora-abra": "agora", "bonfire-coop-cloud": "bonfire", "bore-coopcloud-recipe": "bore",
    "coop-cloud-go-ssb-room": "go-ssb-room", "coop-cloud-traefik": "traefik", "foodsharing-cms": "foodsharing-cms",
    "gaseous-recipe": "gaseous", "llamenos-template": "llamenos",
}
_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$")
_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def active_env(text: str) -> dict:
    """Active (uncommented) assignments of an .env file in order, quotes and inline comments
    removed, $VAR / ${VAR} / ${VAR:-d} expanded from earlier lines (COMPOSE_FILE chaining).
    A stand-in for the collection's env reader (issue 13 part 1) that never runs the file."""
    env: dict = {}
    for line in text.splitlines():
        m = _ASSIGN.match(line)
        if not m:
            continue
        key, raw = m.group(1), m.group(2).strip()
        if raw[:1] in ("'", '"') and raw[0] in raw[1:]:
            quote = raw[0]
            value = raw[1:raw.index(quote, 1)]
            if quote == "'":
                env[key] = value
                continue
        else:
            value = re.split(r"\s+#", raw, 1)[0].strip()
        env[key] = _REF.sub(lambda r: env.get(r.group(1) or r.group(3)) or (r.group(2) or ""), value)
    return env


def lint_bundle(bundle: str, workdir: str) -> dict:
    repo = os.path.basename(bundle)[:-len(".bundle")]
    name = RECIPE_NAMES.get(repo, repo)
    checkout = os.path.join(workdir, repo)
    subprocess.run(["git", "clone", "-q", bundle, checkout], check=True, capture_output=True)
    tags = subprocess.run(["git", "-C", checkout, "tag", "--sort=-creatordate"], check=True,
                          capture_output=True, text=True).stdout.split()
    version = tags[0] if tags else None
    if version:
        subprocess.run(["git", "-C", checkout, "checkout", "-q", version], check=True, capture_output=True)
    started = time.monotonic()
    sample_path = os.path.join(checkout, ".env.sample")
    sample_env = active_env(open(sample_path, encoding="utf-8").read()) if os.path.exists(sample_path) else None
    domain = "%s.example.com" % name
    stack_name = domain.replace(".", "_")
    env = dict(os.environ)
    env.update(sample_env or {})
    env.update(DOMAIN=domain, STACK_NAME=stack_name)
    files = [f for f in (env.get("COMPOSE_FILE") or "compose.yml").split(":") if f]
    versions, stack, stack_error = {}, {"services": {}}, None
    for f in files:
        try:
            with open(os.path.join(checkout, f), encoding="utf-8") as fh:
                versions[f] = (yaml.safe_load(fh) or {}).get("version")
        except (OSError, yaml.YAMLError) as exc:
            stack_error = "%s: %s" % (f, exc)
    argv = ["docker", "stack", "config"] + [a for f in files for a in ("-c", f)]
    t0 = time.monotonic()
    res = subprocess.run(argv, cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    config_s = time.monotonic() - t0
    if res.returncode == 0:
        stack = yaml.safe_load(res.stdout) or {}
    else:
        stack_error = (res.stderr or res.stdout).strip().splitlines()[-1]
    facts = lint.gather_facts(checkout, name, stack, sample_env, versions, version=version, stack_name=stack_name)
    t1 = time.monotonic()
    results = lint.lint_recipe(facts)
    rules_s = time.monotonic() - t1
    return {"repo": repo, "recipe": name, "linted": version or "HEAD (untagged)", "compose_files": files,
            "stack_error": stack_error, "results": results, "seconds_total": round(time.monotonic() - started, 3),
            "seconds_stack_config": round(config_s, 3), "seconds_rules": round(rules_s, 4)}


def cell(result: dict) -> str:
    if result["outcome"] == lint.PASS:
        return "ok"
    if result["outcome"] == lint.SKIP:
        return "skip"
    return "**ERROR**" if result["level"] == lint.ERROR else "warn"


def markdown(rows: list) -> str:
    refs = [r.ref for r in lint.RULES]
    out = ["| recipe (linted at) | " + " | ".join(refs) + " |", "|---|" + "---|" * len(refs)]
    for row in rows:
        by = {r["rule"]: r for r in row["results"]}
        out.append("| %s (%s) | %s |" % (row["recipe"], row["linted"], " | ".join(cell(by[ref]) for ref in refs)))
    out.append("")
    for row in rows:
        notes = ["%s %s" % (r["rule"], "; ".join(r["messages"])) for r in row["results"]
                 if r["outcome"] == lint.FAIL]
        if row["stack_error"]:
            notes.insert(0, "docker stack config: %s" % row["stack_error"])
        out.append("- **%s** (`%s`, %s; %.2f s, of which docker stack config %.2f s, rules %.4f s): %s"
                   % (row["recipe"], ":".join(row["compose_files"]), row["linted"], row["seconds_total"],
                      row["seconds_stack_config"], row["seconds_rules"], " · ".join(notes) or "no finding"))
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "real-recipes"))
    ap.add_argument("--json", help="also write the raw results here")
    args = ap.parse_args(argv)
    bundles = sorted(glob.glob(os.path.join(args.corpus, "*.bundle")))
    if not bundles:
        print("no bundles in %s" % args.corpus, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="lint-corpus-") as tmp:
        rows = [lint_bundle(b, tmp) for b in bundles]
    print(markdown(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
