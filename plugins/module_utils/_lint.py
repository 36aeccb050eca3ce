# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Recipe lint with the rules of abra's ``recipe lint`` (R001-R015) and the harness's own (L001-L003).

The rule ids, descriptions and levels are abra's (Go package ``coopcloud.tech/abra/pkg/lint``,
``LintRules``); each rule's meaning is implemented here over what a recipe checkout holds:
the merged compose stack (a dict shaped as ``docker stack config`` prints it), the file
versions of the compose chain, the active keys of ``.env.sample``, the git tags, README.md
and whether ``abra.sh`` exists. Nothing here touches the network: a rule that needs it
(R013) is reported ``skip`` with the reason, never as a pass.

:func:`lint_recipe` is pure; :func:`gather_facts` reads a checkout (git, files) to build its input.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ansible_collections.coopcloud.canon.plugins.module_utils._proc import run

PASS, FAIL, SKIP = "pass", "fail", "skip"
WARN, ERROR = "warn", "error"


@dataclass(frozen=True)
class Rule:
    ref: str
    level: str
    description: str
    how_to_resolve: str
    origin: str = "abra"


RULES = (
    Rule("R001", WARN, "compose config has expected version", "ensure 'version: \"3.8\"' in compose configs"),
    Rule("R002", WARN, "healthcheck enabled for all services", "wire up healthchecks"),
    Rule("R003", WARN, "all images use a tag", "use a tag for all images"),
    Rule("R004", WARN, "no unstable tags", "tag all images with stable tags"),
    Rule("R005", WARN, "tags use semver-like format", "use semver-like tags"),
    Rule("R006", WARN, "has published version", "publish a recipe version to the catalogue"),
    Rule("R007", WARN, "README.md metadata filled in", "fill out all the metadata"),
    Rule("R008", ERROR, ".env.sample provided", "create an example .env.sample"),
    Rule("R009", ERROR, "one service named 'app'", "name a service 'app'"),
    Rule("R010", ERROR, "traefik routing enabled", "include \"traefik.enable=true\" deploy label"),
    Rule("R011", ERROR, "all services have images", "ensure \"image: ...\" set on all services"),
    Rule("R012", ERROR, "config version are vendored", "vendor config versions in an abra.sh"),
    Rule("R013", WARN, "git.coopcloud.tech repo exists", "upload your recipe to git.coopcloud.tech/coop-cloud/..."),
    Rule("R014", ERROR, "only annotated tags used for recipe version", "replace lightweight tags with annotated tags"),
    Rule("R015", WARN, "long secret names", "reduce length of secret names to 12 characters"),
    # The harness's own rules, which abra lacks. They were the whole lint tier before; errors as then.
    Rule("L001", ERROR, "every image is pinned to a stable tag (not latest, testing, dev, nightly, a pre-release, ...)",
         "pin each image to a released version tag", "canon"),
    Rule("L002", ERROR, "the services carry the coop-cloud.<stack>.version label of the release",
         "run abra recipe sync, or set the label to the release tag", "canon"),
    Rule("L003", ERROR, ".env.sample names the recipe in RECIPE or TYPE",
         "set TYPE=<recipe> (or RECIPE=<recipe>) in .env.sample", "canon"),
)
RULES_BY_REF = {r.ref: r for r in RULES}

# abra's recipe template README.md carries these between the metadata markers; abra reads
# Category, Backups, Email, Healthcheck, Image and SSO and wants each of them non-empty.
_METADATA_FIELDS = ("Category", "Backups", "Email", "Healthcheck", "Image", "SSO")
_METADATA_RE = re.compile(r"<!--\s*metadata\s*-->(.*?)<!--\s*endmetadata\s*-->", re.S)
_FIELD_RE = re.compile(r"^\s*[*-]\s*\*\*([A-Za-z]+)\*\*\s*:?\s*(.*?)\s*$")
# coopcloud.tech/tagcmp's notion of a "semver-like" image tag: an optional v, one to three
# numeric parts, optionally a "-suffix" (1.25, v2.4.8, 16-alpine, 1.14.0-rootless).
_SEMVER_LIKE_RE = re.compile(r"^v?\d+(\.\d+){0,2}(-[A-Za-z0-9][A-Za-z0-9._-]*)?$")
# Tags that move, or that name a build nobody released as stable. A tag token (split on
# - . _) that is one of these marks the tag unstable: 2.0.0-rc1, 1.4-beta.2, main, testing.
_OLD_VERSION_LABEL = re.compile(r"^coop-cloud\.[^.]+\.[^.]+\.version$")
_UNSTABLE_TOKEN_RE = re.compile(
    r"^(latest|testing|test|unstable|edge|nightly|dev|devel|develop|development|main|master|trunk|"
    r"canary|next|snapshot|experimental|preview|alpha\d*|beta\d*|rc\d*|pre\d*)$", re.I)


@dataclass
class RecipeFacts:
    """What the rules read. ``stack`` is the merged compose config (``docker stack config``'s
    shape); ``compose_versions`` maps each file of the chain to its ``version:`` (None if absent);
    ``sample_env`` holds the active keys of ``.env.sample`` (None: the file is absent); ``tags``
    maps every git tag to True when it is annotated."""

    name: str
    stack: dict
    compose_versions: dict = field(default_factory=dict)
    sample_env: dict | None = None
    tags: dict = field(default_factory=dict)
    readme: str | None = None
    has_abra_sh: bool = False
    version: str | None = None
    stack_name: str = ""


def split_image(image: str) -> tuple:
    """``(name, tag, digest)`` of an image reference; tag and digest are '' when absent.
    A colon before the last '/' is a registry port, not a tag."""
    name, _at, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    tag = ""
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest


def is_semver_like(tag: str) -> bool:
    return bool(_SEMVER_LIKE_RE.match(tag))


def is_unstable_tag(tag: str) -> bool:
    return any(_UNSTABLE_TOKEN_RE.match(tok) for tok in re.split(r"[-._]", tag) if tok)


def readme_metadata(readme: str) -> dict:
    """The ``* **Field**: value`` lines between abra's ``<!-- metadata -->`` markers."""
    m = _METADATA_RE.search(readme or "")
    out = {}
    for line in (m.group(1) if m else "").splitlines():
        fm = _FIELD_RE.match(line)
        if fm:
            out[fm.group(1)] = fm.group(2)
    return out


def labels_of(spec: dict) -> dict:
    labels = ((spec or {}).get("deploy") or {}).get("labels") or {}
    if isinstance(labels, list):
        labels = dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    return {str(k): ("" if v is None else str(v)) for k, v in labels.items()}


def _services(facts: RecipeFacts) -> dict:
    return {name: (spec or {}) for name, spec in sorted(((facts.stack or {}).get("services") or {}).items())}


def _images(facts: RecipeFacts):
    for name, spec in _services(facts).items():
        image = str(spec.get("image") or "")
        if image:
            yield name, image


# Each check returns (outcome, messages); messages say what failed (or why it was skipped).

def _r001(f: RecipeFacts):
    versions = dict(f.compose_versions) or {"(merged stack)": (f.stack or {}).get("version")}
    bad = ["%s has version %r" % (name, v) for name, v in sorted(versions.items()) if str(v) != "3.8"]
    return (FAIL, bad) if bad else (PASS, [])


def _r002(f: RecipeFacts):
    bad = ["service %s has no healthcheck" % n for n, s in _services(f).items() if s.get("healthcheck") is None]
    return (FAIL, bad) if bad else (PASS, [])


def _r003(f: RecipeFacts):
    bad = ["service %s image %s has no tag" % (n, i) for n, i in _images(f) if split_image(i)[1:] == ("", "")]
    return (FAIL, bad) if bad else (PASS, [])


def _r004(f: RecipeFacts):
    bad = []
    for n, i in _images(f):
        tag = split_image(i)[1]
        if tag in ("", "latest"):
            bad.append("service %s image %s %s" % (n, i, "resolves to latest" if not tag else "is latest"))
    return (FAIL, bad) if bad else (PASS, [])


def _r005(f: RecipeFacts):
    bad = []
    for n, i in _images(f):
        tag = split_image(i)[1]
        if not is_semver_like(tag):
            bad.append("service %s image %s: tag %r is not semver-like" % (n, i, tag))
    return (FAIL, bad) if bad else (PASS, [])


def _r006(f: RecipeFacts):
    # abra asks the recipe catalogue, which lists the versions the recipe's repository tags;
    # offline, the checkout's own tags are the same list.
    if f.tags:
        return PASS, []
    return FAIL, ["the recipe has no tags, so no published version"]


def _r007(f: RecipeFacts):
    if f.readme is None:
        return FAIL, ["no README.md"]
    meta = readme_metadata(f.readme)
    if not meta:
        return FAIL, ["README.md has no <!-- metadata --> ... <!-- endmetadata --> block"]
    missing = [k for k in _METADATA_FIELDS if not meta.get(k)]
    return (FAIL, ["README.md metadata lacks %s" % ", ".join(missing)]) if missing else (PASS, [])


def _r008(f: RecipeFacts):
    return (PASS, []) if f.sample_env is not None else (FAIL, ["no .env.sample"])


def _r009(f: RecipeFacts):
    return (PASS, []) if "app" in _services(f) else (FAIL, ["no service is named app (services: %s)"
                                                            % (", ".join(_services(f)) or "none")])


def _r010(f: RecipeFacts):
    # abra skips the rule for a recipe whose .env.sample has no DOMAIN: it serves no web route.
    if f.sample_env is None or "DOMAIN" not in f.sample_env:
        return SKIP, [".env.sample sets no DOMAIN, so the recipe needs no traefik route (abra skips it too)"]
    for spec in _services(f).values():
        if labels_of(spec).get("traefik.enable", "").strip().lower() == "true":
            return PASS, []
    return FAIL, ["no service has the deploy label traefik.enable=true"]


def _r011(f: RecipeFacts):
    bad = ["service %s has no image" % n for n, s in _services(f).items() if not s.get("image")]
    return (FAIL, bad) if bad else (PASS, [])


def _r012(f: RecipeFacts):
    configs = sorted(((f.stack or {}).get("configs") or {}))
    if configs and not f.has_abra_sh:
        return FAIL, ["configs %s are defined but there is no abra.sh to vendor their versions" % ", ".join(configs)]
    return PASS, []


def _r013(f: RecipeFacts):
    return SKIP, ["needs the network (git.coopcloud.tech/coop-cloud/%s): not checked offline" % f.name]


def _r014(f: RecipeFacts):
    bad = sorted(t for t, annotated in f.tags.items() if not annotated)
    return (FAIL, ["lightweight tag(s): %s" % ", ".join(bad)]) if bad else (PASS, [])


def _r015(f: RecipeFacts):
    bad = ["secret %s is %d characters (more than 12)" % (s, len(s))
           for s in sorted(((f.stack or {}).get("secrets") or {})) if len(s) > 12]
    return (FAIL, bad) if bad else (PASS, [])


def _l001(f: RecipeFacts):
    bad = []
    for n, i in _images(f):
        _name, tag, digest = split_image(i)
        if not tag and not digest:
            bad.append("service %s image %s has no tag" % (n, i))
        elif tag and is_unstable_tag(tag):
            bad.append("service %s image %s: %r is not a stable release tag" % (n, i, tag))
    return (FAIL, bad) if bad else (PASS, [])


def _l002(f: RecipeFacts):
    if not f.version:
        return SKIP, ["no release tag at the linted commit: nothing to compare the label with"]
    key = "coop-cloud.%s.version" % f.stack_name
    seen = {n: labels_of(s)[key] for n, s in _services(f).items() if key in labels_of(s)}
    if not seen:
        # The bash-era abra (2021) labelled each service coop-cloud.<stack>.<service>.version=<tag>-<digest>;
        # today's abra reads only the stack-wide label, so the old form is named, not accepted.
        old = sorted("%s=%s" % (k, v) for s in _services(f).values() for k, v in labels_of(s).items()
                     if _OLD_VERSION_LABEL.match(k) and k.startswith("coop-cloud.%s." % f.stack_name))
        return FAIL, ["no service carries %s%s" % (key, " (only the old per-service form %s, which abra no longer reads)"
                                                   % ", ".join(old) if old else "")]
    bad = ["service %s says version %s, the release is %s" % (n, v, f.version) for n, v in seen.items() if v != f.version]
    return (FAIL, bad) if bad else (PASS, [])


def recipe_of_env(env: dict) -> str | None:
    """The recipe an env names, as abra reads it: RECIPE first, else TYPE; a deployed app's
    ``TYPE=<recipe>:<version>`` names the recipe before the colon."""
    value = env.get("RECIPE") if "RECIPE" in env else env.get("TYPE")
    return None if value is None else str(value).split(":", 1)[0]


def _l003(f: RecipeFacts):
    if f.sample_env is None:
        return FAIL, ["no .env.sample"]
    named = recipe_of_env(f.sample_env)
    if named == f.name:
        return PASS, []
    return FAIL, ["RECIPE/TYPE is %r, not %r" % (named, f.name)]


_CHECKS = {
    "R001": _r001, "R002": _r002, "R003": _r003, "R004": _r004, "R005": _r005, "R006": _r006, "R007": _r007,
    "R008": _r008, "R009": _r009, "R010": _r010, "R011": _r011, "R012": _r012, "R013": _r013, "R014": _r014,
    "R015": _r015, "L001": _l001, "L002": _l002, "L003": _l003,
}


def lint_recipe(facts: RecipeFacts) -> list:
    """One result per rule, in rule order: ``{"rule", "level", "description", "outcome", "messages"}``
    with outcome ``pass``, ``fail`` or ``skip``."""
    out = []
    for rule in RULES:
        outcome, messages = _CHECKS[rule.ref](facts)
        out.append({"rule": rule.ref, "level": rule.level, "description": rule.description,
                    "outcome": outcome, "messages": list(messages)})
    return out


def findings(results: list, level: str) -> list:
    """The failed results of one level as ``{"rule", "level", "message"}`` findings."""
    return [{"rule": r["rule"], "level": r["level"], "message": "%s: %s" % (r["description"], m)}
            for r in results if r["outcome"] == FAIL and r["level"] == level for m in (r["messages"] or [""])]


def skipped(results: list) -> list:
    return [{"rule": r["rule"], "level": r["level"], "message": "; ".join(r["messages"])}
            for r in results if r["outcome"] == SKIP]


def git_tag_kinds(checkout: str) -> dict:
    """Every tag of the checkout -> True when it is an annotated tag object."""
    res = run(["git", "-C", checkout, "for-each-ref", "refs/tags", "--format=%(refname:short) %(objecttype)"], timeout=60)
    if not res.ok:
        raise ValueError("cannot list the tags of %s: %s" % (checkout, res.stderr.strip()))
    out = {}
    for line in res.stdout.splitlines():
        name, _sep, kind = line.strip().rpartition(" ")
        if name:
            out[name] = kind == "tag"
    return out


def _read(checkout: str, version: str | None, path: str) -> str | None:
    if version:
        res = run(["git", "-C", checkout, "show", "%s:%s" % (version, path)], timeout=60)
        return res.stdout if res.ok else None
    full = os.path.join(checkout, path)
    if not os.path.isfile(full):
        return None
    with open(full, encoding="utf-8", errors="replace") as fh:
        return fh.read()


def gather_facts(checkout: str, name: str, stack: dict, sample_env: dict | None, compose_versions: dict,
                 version: str | None = None, stack_name: str = "") -> RecipeFacts:
    """Facts of a checkout at ``version`` (a tag; None: the working tree). The caller supplies
    what needs a loader (the merged stack, the env, the chain's file versions)."""
    return RecipeFacts(name=name, stack=stack, compose_versions=compose_versions, sample_env=sample_env,
                       tags=git_tag_kinds(checkout), readme=_read(checkout, version, "README.md"),
                       has_abra_sh=_read(checkout, version, "abra.sh") is not None, version=version,
                       stack_name=stack_name)
