#!/usr/bin/env python3
"""Cut the subset of Gitea's published API description that coopcloud.canon uses.

Input: Gitea's templates/swagger/v1_json.tmpl (Swagger 2.0 with two Go template placeholders,
{{.SwaggerAppVer}} and {{.SwaggerAppSubUrl}}, filled in by a running Gitea). Output on stdout:
the operations listed in OPERATIONS, the responses they reference, every definition reachable
from them, and the AuthorizationHeaderToken security scheme, all copied unchanged, plus an
``x-canon-subset`` key that says where they came from.

    git show <commit>:templates/swagger/v1_json.tmpl > v1_json.tmpl
    python3 extract_subset.py v1_json.tmpl --repo go-gitea/gitea --commit <commit> > gitea-swagger-subset.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys

# (path, method): every call the module makes (get repo, list/create/get/edit pulls, list/create
# comments, combined status, list/create statuses) and nothing else. There is no merge operation.
OPERATIONS = [
    ("/repos/{owner}/{repo}", "get"),
    ("/repos/{owner}/{repo}/pulls", "get"),
    ("/repos/{owner}/{repo}/pulls", "post"),
    ("/repos/{owner}/{repo}/pulls/{index}", "get"),
    ("/repos/{owner}/{repo}/pulls/{index}", "patch"),
    ("/repos/{owner}/{repo}/issues/{index}/comments", "get"),
    ("/repos/{owner}/{repo}/issues/{index}/comments", "post"),
    ("/repos/{owner}/{repo}/commits/{ref}/status", "get"),
    ("/repos/{owner}/{repo}/commits/{ref}/statuses", "get"),
    ("/repos/{owner}/{repo}/statuses/{sha}", "get"),
    ("/repos/{owner}/{repo}/statuses/{sha}", "post"),
]

PLACEHOLDER = re.compile(r"\{\{\s*\.?(\w+)[^}]*\}\}")


def load_template(text: str) -> dict:
    """The template with its Go placeholders replaced by marker strings, parsed."""
    return json.loads(PLACEHOLDER.sub(lambda m: "{{%s}}" % m.group(1), text))


def refs(node, kind: str) -> set[str]:
    """Names referenced as #/<kind>/<name> anywhere under node."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/%s/" % kind):
                found.add(value.rsplit("/", 1)[1])
            else:
                found |= refs(value, kind)
    elif isinstance(node, list):
        for value in node:
            found |= refs(value, kind)
    return found


def subset(doc: dict) -> dict:
    paths: dict = {}
    for path, method in OPERATIONS:
        paths.setdefault(path, {})[method] = doc["paths"][path][method]
    responses = {name: doc["responses"][name] for name in sorted(refs(paths, "responses"))}
    wanted = refs(paths, "definitions") | refs(responses, "definitions")
    while True:
        more = refs({name: doc["definitions"][name] for name in wanted}, "definitions") - wanted
        if not more:
            break
        wanted |= more
    return {
        "swagger": doc["swagger"],
        "info": doc["info"],
        "basePath": doc["basePath"],
        "consumes": doc.get("consumes"),
        "produces": doc.get("produces"),
        "securityDefinitions": {"AuthorizationHeaderToken": doc["securityDefinitions"]["AuthorizationHeaderToken"]},
        "paths": paths,
        "responses": responses,
        "definitions": {name: doc["definitions"][name] for name in sorted(wanted)},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("template", help="templates/swagger/v1_json.tmpl from a Gitea checkout")
    ap.add_argument("--repo", required=True, help="where the template came from (owner/name)")
    ap.add_argument("--commit", required=True, help="the commit it was taken at")
    ap.add_argument("--note", default="", help="anything else a reader should know about the source")
    args = ap.parse_args(argv)
    with open(args.template, "rb") as fh:
        raw = fh.read()
    out = {"x-canon-subset": {
        "source": {"repo": args.repo, "commit": args.commit, "path": "templates/swagger/v1_json.tmpl",
                   "git_blob": hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest(),
                   "sha256": hashlib.sha256(raw).hexdigest(), "note": args.note},
        "operations": ["%s %s" % (m.upper(), p) for p, m in OPERATIONS],
        "extracted_by": "docs/forge-api/extract_subset.py",
    }}
    out.update(subset(load_template(raw.decode("utf-8"))))
    json.dump(out, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
