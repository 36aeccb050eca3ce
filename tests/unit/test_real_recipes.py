"""The static checks against real Co-op Cloud recipes, written by their maintainers.

Every bundle in ``<repo>/../shared/real-recipes/`` (git bundles with their tags), at every tag
(HEAD when untagged), with the default COMPOSE_FILE and each commented-out overlay on its own:
the release is read as abra reads it (``.env.sample``, ``abra.sh`` exports) and loaded by
docker's own loader, and the preflight must raise no traceback and no false error; the known
true findings (checked by hand, see the corpus README) must be found. Env drift runs from each
release to the next (from the first commit with a ``.env.sample`` to HEAD when there is one
release or none). Lint runs on each recipe's head release (newest tag, HEAD when untagged) by
the calls ``abra_recipe`` makes (``inspect_release``, ``gather_facts``, ``lint_recipe``): no
traceback, and the error findings are exactly the true ones of docs/real-recipes.md's Lint;
every older release is linted too, with no traceback.

Skips with a message when the corpus folder is absent (a clone without ``shared/``) or when no
docker CLI 23+ is installed. ``python3 tests/unit/test_real_recipes.py`` prints the measured
tables of docs/real-recipes.md (the corpus table and the lint table).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

import pytest

if __name__ == "__main__":  # run as a script: make the collection importable as conftest does
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                    ".collections"))

from ansible_collections.coopcloud.canon.plugins.module_utils import _drift, _lint, _recipe  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._docker import DockerClient  # noqa: E402
from ansible_collections.coopcloud.canon.plugins.module_utils._names import cold_domain  # noqa: E402
from loader import needs_loader, stack_config_docker  # noqa: E402

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORPUS = os.path.join(os.path.dirname(REPO), "shared", "real-recipes")
BUNDLES = sorted(glob.glob(os.path.join(CORPUS, "*.bundle")))
BASE_DOMAIN = "bench.canon.test"

# Findings that are true, checked by hand (corpus README): {(bundle, overlay file): [messages]}.
# Anything else the preflight reports on a real recipe is a false error.
KNOWN_TRUE = {
    ("bonfire-coop-cloud", "compose.auth.github.yml"): [
        "service app uses the secret github_client_secret, which no file in COMPOSE_FILE defines"],
}

# The name each recipe has in $ABRA_DIR/recipes (the catalogue's where it has one; also what
# each .env.sample's TYPE says, which L003 checks): what abra_recipe's ``recipe`` would be.
RECIPE_NAMES = {
    "agora-abra": "agora", "bonfire-coop-cloud": "bonfire", "bore-coopcloud-recipe": "bore",
    "coop-cloud-go-ssb-room": "go-ssb-room", "coop-cloud-traefik": "traefik", "foodsharing-cms": "foodsharing-cms",
    "gaseous-recipe": "gaseous", "llamenos-template": "llamenos",
}

# Lint errors that are true, checked by hand (docs/real-recipes.md, ## Lint):
# {bundle: {rule: [messages]}} at the head release. Any other error-level finding is false.
KNOWN_LINT_ERRORS = {
    "agora-abra": {"L001": [
        "service app image moonlion/agora-server:testing: 'testing' is not a stable release tag",
        "service bridge image moonlion/agora-bridge:testing: 'testing' is not a stable release tag"]},
    "coop-cloud-traefik": {
        "R014": ["lightweight tag(s): v2.4.8"],
        "L002": ["no service carries coop-cloud.traefik_example_com.version (only the old per-service form "
                 "coop-cloud.traefik_example_com.app.version=v2.4.8-d7d63b0d, which abra no longer reads)"]},
    "foodsharing-cms": {"L002": ["service app says version 1.0.3+1.0.3, the release is v1.0.3"]},
    "gaseous-recipe": {"L001": [
        "service app image gaseousgames/gaseousserver:latest: 'latest' is not a stable release tag",
        "service db image mariadb has no tag"]},
    "llamenos-template": {"L001": [
        "service app image ghcr.io/rhonda-rodododo/llamenos:latest: 'latest' is not a stable release tag",
        "service relay image dockurr/strfry:latest: 'latest' is not a stable release tag"]},
}


def _git(*args) -> str:
    return subprocess.run(["git"] + list(args), capture_output=True, text=True, check=True).stdout


def _first_sample_commit(repo: str) -> str | None:
    out = _git("-C", repo, "log", "--reverse", "--format=%H", "--", ".env.sample").split()
    return out[0] if out else None


def lint_head(repo: str, name: str, client: DockerClient, versions: list, workdir: str) -> dict:
    """The lint of ``abra_recipe`` on the head release (the newest of ``versions``, HEAD when
    there is none), with the module's calls and defaults (recipe name, ``<recipe>.example.com``,
    no env overrides). An untagged recipe is linted at HEAD with ``version=None`` (the
    checkout's working tree, which the clone leaves at HEAD); the module itself refuses it."""
    recipe = RECIPE_NAMES.get(name, name)
    head = versions[-1] if versions else "HEAD"
    out = {"recipe": recipe, "linted": head if versions else "HEAD (untagged)", "compose_files": [],
           "results": [], "error": None, "traceback": None, "seconds": 0.0, "load_seconds": 0.0, "rules_seconds": 0.0}
    start = time.monotonic()
    try:
        release = _recipe.inspect_release(client, repo, head, "%s.example.com" % recipe, {}, workdir=workdir)
        out["load_seconds"] = time.monotonic() - start
        if not release["sample_found"]:
            raise _recipe.RecipeError("release %s of %s has no .env.sample" % (head, recipe))
        files, stack, env = release["files"], release["stack"], release["env"]
        out["compose_files"] = files
        sample = _recipe.parse_env_sample(_recipe.read_text(release["tree"], ".env.sample") or "",
                                          name="%s:.env.sample" % head)
        facts = _lint.gather_facts(repo, recipe, stack,
                                   {k: v["value"] for k, v in sample.items() if not v["commented"]},
                                   _recipe.compose_file_versions(release["tree"], files),
                                   version=head if versions else None, stack_name=env["STACK_NAME"])
        t0 = time.monotonic()
        out["results"] = _lint.lint_recipe(facts)
        out["rules_seconds"] = time.monotonic() - t0
    except _recipe.RecipeError as exc:
        out["error"] = str(exc)
    except Exception:  # noqa: BLE001 - the test reports it instead of losing the other recipes
        out["traceback"] = traceback.format_exc()
    out["seconds"] = time.monotonic() - start
    return out


def survey(bundle: str, docker: str, workdir: str) -> dict:
    """Everything measured on one bundle: per release and COMPOSE_FILE the findings (or the
    error), the drift between releases, and the seconds each took."""
    name = os.path.basename(bundle)[:-len(".bundle")]
    repo = os.path.join(workdir, name)
    _git("clone", "-q", bundle, repo)
    client = DockerClient(binary=docker)
    domain = cold_domain(name, "corpus", BASE_DOMAIN)
    tags = _recipe.all_tags(repo)
    versions = _recipe.sort_versions(tags) or tags          # v-tags: still read each one
    out = {"recipe": name, "repo": repo, "tags": tags, "domain": domain, "no_release": _recipe.no_release_message(name, tags),
           "checks": [], "drift": [], "preflight_seconds": 0.0, "drift_seconds": 0.0}
    start = time.monotonic()
    n = 0
    for version in versions or ["HEAD"]:
        base = None
        combos = [None]
        i = 0
        while i < len(combos):
            cf = combos[i]
            n += 1
            entry = {"version": version, "compose_file": cf, "findings": [], "error": None}
            try:
                rel = _recipe.inspect_release(client, repo, version, domain, {},
                                              workdir=os.path.join(workdir, "%s-%d" % (name, n)), compose_file=cf)
                if base is None:
                    base = rel
                    combos += rel["overlays"]
                entry["compose_file"] = ":".join(rel["files"])
                entry["findings"] = _recipe.compose_findings(rel["stack"], domain, rel["env"],
                                                             files=entry["compose_file"], templates=rel["templates"])
            except _recipe.RecipeError as exc:
                entry["error"] = str(exc)
            out["checks"].append(entry)
            i += 1
    out["preflight_seconds"] = round(time.monotonic() - start, 2)
    start = time.monotonic()
    if len(versions) >= 2:
        pairs = list(zip(versions, versions[1:]))
    else:
        first = _first_sample_commit(repo)
        head = versions[0] if versions else "HEAD"
        pairs = [(first, head)] if first else []
    for old, new in pairs:
        old_sample = _recipe.parse_env_sample(_recipe.git_show(repo, old, ".env.sample") or "")
        new_sample = _recipe.parse_env_sample(_recipe.git_show(repo, new, ".env.sample") or "")
        # the app as `abra app new` at the old release left it: the sample's active lines
        env = {k: v["value"] for k, v in old_sample.items() if not v["commented"]}
        env["TYPE"] = "%s:%s" % (name, old)
        names = _drift.compose_secret_names({f: _recipe.git_show(repo, new, f) or ""
                                             for f in _recipe.git_files(repo, new) if _drift.is_compose_path(f)})
        drift = _drift.env_drift(new_sample, env, old_sample=old_sample, compose_names=names,
                                 release_files=_recipe.git_files(repo, new))
        note = _recipe.git_show(repo, new, "release/%s" % new)
        out["drift"].append({"from": old, "to": new, "drift": drift, "release_note": note,
                             "lines": _drift.drift_lines(drift["missing"])})
    out["drift_seconds"] = round(time.monotonic() - start, 2)
    out["lint"] = lint_head(repo, name, client, versions, os.path.join(workdir, "%s-lint" % name))
    # every older release too, as a promote or an upgrade base would be linted
    out["lint_releases"] = [lint_head(repo, name, client, versions[:i + 1], os.path.join(workdir, "%s-lint-%d" % (name, i)))
                            for i in range(len(versions) - 1)]
    return out


@pytest.fixture(scope="module")
def corpus():
    if not BUNDLES:
        pytest.skip("no real-recipe corpus at %s (a clone without the shared/ folder beside it)" % CORPUS)
    docker = stack_config_docker()
    if docker is None:
        pytest.skip("no docker CLI 23+ (docker stack config) on this machine")
    work = tempfile.mkdtemp(prefix="canon-corpus-")
    try:
        yield {os.path.basename(b)[:-len(".bundle")]: survey(b, docker, work) for b in BUNDLES}
        # (the clones stay until every test of the module ran: the drift test reads bonfire's)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _overlay_file(entry: dict) -> str | None:
    files = (entry["compose_file"] or "").split(":")
    return files[-1] if entry["compose_file"] and len(files) > 1 else None


def test_no_traceback_no_error_no_false_finding(corpus):
    problems = []
    for name, s in corpus.items():
        for entry in s["checks"]:
            where = "%s %s %s" % (name, entry["version"], entry["compose_file"])
            if entry["error"]:
                problems.append("%s: %s" % (where, entry["error"]))
            expected = KNOWN_TRUE.get((name, _overlay_file(entry)), [])
            got = [f["message"] for f in entry["findings"]]
            if sorted(got) != sorted(expected):
                problems.append("%s: findings %s, expected %s" % (where, got, expected))
    assert problems == []


def test_every_release_and_overlay_was_read(corpus):
    bonfire = corpus.get("bonfire-coop-cloud")
    if bonfire is None:
        pytest.skip("bonfire-coop-cloud is not in the corpus")
    versions = {e["version"] for e in bonfire["checks"]}
    assert versions == set(bonfire["tags"]) and len(versions) == 3
    defaults = [e for e in bonfire["checks"] if _overlay_file(e) == "compose.postgres.yml"]
    # the default: the chained COMPOSE_FILE, not the last (commented) line
    assert {e["compose_file"] for e in defaults} == {"compose.yml:compose.postgres.yml"}
    assert any(e["compose_file"].endswith(":postgres/compose.postgres.tune.yml") for e in bonfire["checks"])
    for name, s in corpus.items():
        assert s["checks"], name


def test_known_true_findings_are_found(corpus):
    for (name, overlay), messages in KNOWN_TRUE.items():
        if name not in corpus:
            continue
        hits = [e for e in corpus[name]["checks"] if _overlay_file(e) == overlay]
        assert hits, "%s: overlay %s never tried" % (name, overlay)
        for e in hits:
            assert [f["message"] for f in e["findings"]] == messages


def test_unversionable_recipes_get_a_message_naming_their_tags(corpus):
    for name, s in corpus.items():
        if _recipe.sort_versions(s["tags"]):
            assert s["no_release"] is None
        else:
            assert s["no_release"] and name in s["no_release"]
            for tag in s["tags"][:10]:
                assert tag in s["no_release"]


def test_drift_between_releases(corpus):
    bonfire = corpus.get("bonfire-coop-cloud")
    if bonfire is None:
        pytest.skip("bonfire-coop-cloud is not in the corpus")
    assert [(d["from"], d["to"]) for d in bonfire["drift"]] == [
        ("1.0.0+1.0.5-social-amd64", "2.0.0+1.0.5-social-amd64"), ("2.0.0+1.0.5-social-amd64", "2.0.1+1.0.6-social-amd64")]
    # bonfire keeps release notes under release/<version>: 2.0.0 has one (meilisearch removed),
    # 2.0.1 none
    notes = {d["to"]: d["release_note"] for d in bonfire["drift"]}
    assert "Mailisearch search backend was removed" in notes["2.0.0+1.0.5-social-amd64"]
    assert notes["2.0.1+1.0.6-social-amd64"] is None
    # an app at 1.0.0 that enabled the meilisearch overlay (uncommented its lines): 2.0.0 drops it
    repo = bonfire["repo"]
    old, new = "1.0.0+1.0.5-social-amd64", "2.0.0+1.0.5-social-amd64"
    old_sample = _recipe.parse_env_sample(_recipe.git_show(repo, old, ".env.sample"))
    env = {k: v["value"] for k, v in old_sample.items() if not v["commented"]}
    env.update(COMPOSE_FILE=env["COMPOSE_FILE"] + ":compose.meilisearch.yml", SECRET_MEILI_MASTER_KEY_VERSION="v1")
    drift = _drift.env_drift(_recipe.parse_env_sample(_recipe.git_show(repo, new, ".env.sample")), env,
                             old_sample=old_sample, release_files=_recipe.git_files(repo, new))
    assert drift["compose_file"] == {"app": "compose.yml:compose.postgres.yml:compose.meilisearch.yml",
                                     "sample": "compose.yml:compose.postgres.yml", "files_added": [],
                                     "files_removed": ["compose.meilisearch.yml"],
                                     "files_absent": ["compose.meilisearch.yml"]}
    assert drift["obsolete"] == ["SECRET_MEILI_MASTER_KEY_VERSION"]
    for name, s in corpus.items():
        for d in s["drift"]:
            for m in d["drift"]["missing"]:
                if m["secret"]:
                    assert m["key"].startswith("SECRET_") and m["key"].endswith("_VERSION")


def test_lint_head_release_finds_exactly_the_true_errors(corpus):
    problems = []
    for name, s in corpus.items():
        lint = s["lint"]
        where = "%s (%s)" % (name, lint["linted"])
        if lint["traceback"] or lint["error"]:
            problems.append("%s: %s" % (where, lint["traceback"] or lint["error"]))
            continue
        assert [r["rule"] for r in lint["results"]] == [r.ref for r in _lint.RULES], where
        got = {r["rule"]: r["messages"] for r in lint["results"]
               if r["outcome"] == _lint.FAIL and r["level"] == _lint.ERROR}
        if got != KNOWN_LINT_ERRORS.get(name, {}):
            problems.append("%s: lint errors %s, expected %s" % (where, got, KNOWN_LINT_ERRORS.get(name, {})))
    assert problems == []


def test_lint_reads_the_head_release(corpus):
    expected = {"bonfire-coop-cloud": "2.0.1+1.0.6-social-amd64", "coop-cloud-traefik": "v2.4.8",
                "foodsharing-cms": "v1.0.3", "agora-abra": "HEAD (untagged)"}
    for name, linted in expected.items():
        if name in corpus:
            assert corpus[name]["lint"]["linted"] == linted
    bonfire = corpus.get("bonfire-coop-cloud")
    if bonfire is not None:  # the chained default COMPOSE_FILE, and L002 checked against the tag
        assert bonfire["lint"]["compose_files"] == ["compose.yml", "compose.postgres.yml"]
        assert {r["rule"]: r["outcome"] for r in bonfire["lint"]["results"]}["L002"] == _lint.PASS


def _lint_cell(result: dict) -> str:
    if result["outcome"] == _lint.PASS:
        return "ok"
    if result["outcome"] == _lint.SKIP:
        return "skip"
    return "**ERROR**" if result["level"] == _lint.ERROR else "warn"


def _lint_table(corpus) -> str:
    refs = [r.ref for r in _lint.RULES]
    rows = ["| recipe (linted at) | " + " | ".join(refs) + " |", "|---|" + "---|" * len(refs)]
    lints = [corpus[name]["lint"] for name in sorted(corpus)]
    for lint in lints:
        by = {r["rule"]: r for r in lint["results"]}
        rows.append("| %s (%s) | %s |" % (lint["recipe"], lint["linted"],
                                          " | ".join(_lint_cell(by[ref]) if ref in by else "—" for ref in refs)))
    rows.append("")
    for lint in lints:
        notes = ["%s %s" % (r["rule"], "; ".join(r["messages"])) for r in lint["results"] if r["outcome"] == _lint.FAIL]
        if lint["error"] or lint["traceback"]:
            notes.insert(0, "not linted: %s" % (lint["error"] or lint["traceback"].strip().splitlines()[-1]))
        rows.append("- **%s** (`%s`, %s; %.2f s, of which inspect_release %.2f s, rules %.4f s): %s" % (
            lint["recipe"], ":".join(lint["compose_files"]), lint["linted"], lint["seconds"], lint["load_seconds"],
            lint["rules_seconds"], " · ".join(notes) or "no finding"))
    return "\n".join(rows)


def _table(corpus) -> str:
    rows = ["| recipe | releases read | COMPOSE_FILEs tried | preflight errors | findings "
            "| drift (added / removed / changed; COMPOSE_FILE) | release note | preflight s | drift s |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, s in sorted(corpus.items()):
        errors = sum(1 for e in s["checks"] if e["error"])
        findings = sorted({f["message"] for e in s["checks"] for f in e["findings"]})
        drifts = []
        for d in s["drift"]:
            dd = d["drift"]
            cf = dd["compose_file"]
            drifts.append("%s→%s: %d / %d / %d%s" % (
                d["from"][:12] if d["from"] != "HEAD" else "HEAD", d["to"][:12], len(dd["missing"]), len(dd["obsolete"]),
                len(dd["changed"]), "; COMPOSE_FILE %s → %s" % (cf["app"], cf["sample"]) if cf else ""))
        rows.append("| %s | %s | %d | %d | %s | %s | %s | %.2f | %.2f |" % (
            name, ", ".join(s["tags"]) or "HEAD (untagged)", len(s["checks"]), errors,
            "; ".join(findings) or "none", "<br>".join(drifts) or "—",
            "yes" if any(d["release_note"] for d in s["drift"]) else "no",
            s["preflight_seconds"], s["drift_seconds"]))
    return "\n".join(rows)


if __name__ == "__main__":
    docker = stack_config_docker()
    if not BUNDLES or docker is None:
        sys.exit("no corpus at %s or no docker CLI 23+" % CORPUS)
    work = tempfile.mkdtemp(prefix="canon-corpus-")
    try:
        t0 = time.monotonic()
        data = {os.path.basename(b)[:-len(".bundle")]: survey(b, docker, work) for b in BUNDLES}
        print(_table(data))
        print("\n%d bundles, %d release x COMPOSE_FILE loads, %.1f s in all (docker %s)" % (
            len(data), sum(len(s["checks"]) for s in data.values()), time.monotonic() - t0,
            subprocess.run([docker, "--version"], capture_output=True, text=True).stdout.strip()))
        print("\n" + _lint_table(data))
        print("\nlint: %d recipes at their head release, %.2f s in all" % (
            len(data), sum(s["lint"]["seconds"] for s in data.values())))
        for name, s in sorted(data.items()):
            for d in s["drift"]:
                print("\n%s %s -> %s: %s" % (name, d["from"], d["to"], {k: v for k, v in d["drift"].items()}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_lint_reads_every_release_without_a_traceback(corpus):
    """Every tagged release, not only the head, is linted by abra_recipe's calls: no traceback and
    every rule answered; a release that cannot be read says why (RecipeError), as the module would."""
    problems, linted = [], 0
    for name, s in sorted(corpus.items()):
        for lint in s["lint_releases"] + [s["lint"]]:
            linted += 1
            where = "%s (%s)" % (name, lint["linted"])
            if lint["traceback"]:
                problems.append("%s: %s" % (where, lint["traceback"]))
            elif not lint["error"]:
                assert [r["rule"] for r in lint["results"]] == [r.ref for r in _lint.RULES], where
    assert not problems, "\n".join(problems)
    assert linted > len(corpus)     # older releases were linted, not only the heads
