"""The bench forge and the module against Gitea's published API description (the subset kept in
docs/forge-api/gitea-swagger-subset.json, cut from Gitea's templates/swagger/v1_json.tmpl).

- every answer of the bench forge has the schema of the response Gitea documents for it: every
  property present (except those Gitea's Go structs mark omitempty), every `required` one, each
  of the right type (null only where Gitea's Go type is a pointer or a slice: objects, arrays,
  date-times), enum values from the enum, date-times that parse;
- every status code it answers is one Gitea documents for that operation (plus 401, which
  Gitea's auth layer answers for any of them, and the 5xx of fault injection);
- error bodies are Gitea's APIError: {"message": str, "url": str};
- the module only calls operations in the subset, with request bodies of the documented schema;
- and the subset has no merge operation.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import urllib.parse

import pytest

from forge_bench import OWNER, REPO, ROOT, TOKEN, BenchForge, run_module

from ansible_collections.coopcloud.canon.plugins.module_utils._forge import VERDICT_MARK, ForgeClient, ForgeError

# Real processes (a forge server, git, hundreds of module runs): `make test` runs these;
# `make unit` keeps to the fast ones.
pytestmark = pytest.mark.slow

SUBSET = os.path.join(ROOT, "docs", "forge-api", "gitea-swagger-subset.json")

# Go struct fields tagged `json:",omitempty"` in Gitea's modules/structs (pull.go, repo.go):
# absent from Gitea's own answers when empty, so not required from the bench either.
OMITEMPTY = {
    "PullRequest": {"review_comments", "additions", "deletions", "changed_files"},
    "Repository": {"parent", "default_target_branch", "internal_tracker", "external_tracker", "external_wiki",
                   "repo_transfer", "permissions"},
}
# Go pointers to scalars (null when unset) that the schema cannot tell from plain strings:
# PullRequest.MergedCommitID is *string in modules/structs/pull.go.
NULLABLE = {"PullRequest": {"merge_commit_sha"}}


@pytest.fixture(scope="module")
def spec():
    with open(SUBSET) as fh:
        return json.load(fh)


@pytest.fixture
def forge(tmp_path):
    f = BenchForge(str(tmp_path))
    yield f
    f.stop()


# -- a small Swagger 2.0 checker, for the constructs the subset uses ----------------------------------
def resolve(spec, schema):
    while "$ref" in schema:
        _, kind, name = schema["$ref"].split("/")
        schema = spec[kind][name]
    return schema


def check(spec, schema, value, where="$", nullable=False) -> list:
    """Problems with value against schema, as 'where: what' strings."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if value is None:
            return []   # a Go pointer to a struct
        return check_object(spec, name, resolve(spec, schema), value, where)
    kind = schema.get("type")
    if value is None:
        ok = kind == "array" or schema.get("format") == "date-time" or nullable
        return [] if ok else ["%s: null for %s" % (where, kind)]
    if kind == "string":
        if not isinstance(value, str):
            return ["%s: %r is not a string" % (where, value)]
        if "enum" in schema and value not in schema["enum"]:
            return ["%s: %r not in %s" % (where, value, schema["enum"])]
        if schema.get("format") == "date-time":
            try:
                datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return ["%s: %r is not a date-time" % (where, value)]
        return []
    if kind == "integer":
        return [] if isinstance(value, int) and not isinstance(value, bool) else ["%s: %r is not an integer" % (where, value)]
    if kind == "boolean":
        return [] if isinstance(value, bool) else ["%s: %r is not a boolean" % (where, value)]
    if kind == "array":
        if not isinstance(value, list):
            return ["%s: %r is not an array" % (where, value)]
        return [p for i, v in enumerate(value) for p in check(spec, schema["items"], v, "%s[%d]" % (where, i))]
    if kind == "object":
        return [] if isinstance(value, dict) else ["%s: %r is not an object" % (where, value)]
    return ["%s: schema type %r not handled" % (where, kind)]


def check_object(spec, name, schema, value, where) -> list:
    if not isinstance(value, dict):
        return ["%s: %r is not a %s" % (where, value, name)]
    props = schema.get("properties", {})
    problems = ["%s: required %s.%s missing" % (where, name, k) for k in schema.get("required", []) if k not in value]
    problems += ["%s: %s.%s missing" % (where, name, k) for k in props
                 if k not in value and k not in OMITEMPTY.get(name, set())]
    problems += ["%s: %s has no property %s" % (where, name, k) for k in value if k not in props and k != "username"]
    for k, v in value.items():
        if k in props:
            problems += check(spec, props[k], v, "%s.%s" % (where, k), nullable=k in NULLABLE.get(name, set()))
    return problems


def check_body(spec, name, body) -> list:
    """A request body: an object of definition name, its required properties, no others, right types."""
    schema = spec["definitions"][name]
    props = schema.get("properties", {})
    if not isinstance(body, dict):
        return ["%r is not a %s" % (body, name)]
    problems = ["required %s.%s missing" % (name, k) for k in schema.get("required", []) if k not in body]
    problems += ["%s has no property %s" % (name, k) for k in body if k not in props]
    return problems + [p for k, v in body.items() if k in props for p in check(spec, props[k], v, name + "." + k)]


def check_response(spec, method, template, status, body) -> list:
    op = spec["paths"][template][method.lower()]
    response = op["responses"].get(str(status))
    if response is None and framework_status(op, status):
        return check_error(body, "%s %s %s" % (method, template, status))
    if response is None:
        return ["%s %s answered %s, not among %s" % (method, template, status, sorted(op["responses"]))]
    response = resolve(spec, response)
    if "schema" in response:
        return check(spec, response["schema"], body, "%s %s %s" % (method, template, status))
    return check_error(body, "%s %s %s" % (method, template, status))


def framework_status(op, status) -> bool:
    """Answers Gitea's router gives before the handler runs, for any operation, undocumented per
    operation: 401 from the auth layer (routers/api/v1/api.go apiAuth, reqToken) and 422 from
    bind() for an operation with a body ("[Body]: Required")."""
    has_body = any(p.get("in") == "body" for p in op.get("parameters", []))
    return status == 401 or (status == 422 and has_body)


def check_error(body, where) -> list:
    """Gitea's APIError body (the error/forbidden/notFound/validationError responses)."""
    if not isinstance(body, dict) or set(body) != {"message", "url"}:
        return ["%s: error body %r is not {message, url}" % (where, body)]
    return [] if all(isinstance(v, str) for v in body.values()) else ["%s: error body fields not strings" % where]


def template_of(spec, method, path):
    """The subset's path template a concrete API path matches, or None."""
    path = path[len("/api/v1"):] if path.startswith("/api/v1") else path
    for template, ops in spec["paths"].items():
        pattern = "^" + re.sub(r"\\\{[a-z]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path) and method.lower() in ops:
            return template
    return None


class Recorder(ForgeClient):
    """A client that also keeps each answer's body, for checking against the schemas."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.answers = []

    def request(self, method, path, body=None, query=None, retry_timeouts=None):
        try:
            status, data, headers = super().request(method, path, body, query, retry_timeouts)
        except ForgeError as exc:
            self.answers.append((method, path, exc.status, None))
            raise
        self.answers.append((method, path, status, data))
        return status, data, headers


def raw(forge, method, path, body=None, token=TOKEN):
    """(status, decoded body) of one request, errors included."""
    import urllib.request
    req = urllib.request.Request(forge.api_url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": "token " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


# -- the subset itself ------------------------------------------------------------------------------------
def test_subset_is_gitea_swagger_and_has_no_merge(spec):
    assert spec["swagger"] == "2.0" and spec["info"]["title"] == "Gitea API"
    src = spec["x-canon-subset"]["source"]
    assert src["path"] == "templates/swagger/v1_json.tmpl" and re.fullmatch(r"[0-9a-f]{40}", src["commit"])
    ops = {(m.upper(), p) for p, o in spec["paths"].items() for m in o if m != "parameters"}
    assert ops == {tuple(s.split(" ", 1)) for s in spec["x-canon-subset"]["operations"]} and len(ops) == 11
    assert not [p for p in spec["paths"] if "merge" in p]
    assert spec["securityDefinitions"]["AuthorizationHeaderToken"] == {
        "description": "API tokens must be prepended with \"token\" followed by a space.",
        "type": "apiKey", "name": "Authorization", "in": "header"}
    # every reference resolves inside the subset
    text = json.dumps(spec)
    for kind, name in re.findall(r'"#/(definitions|responses)/([A-Za-z]+)"', text):
        assert name in spec[kind], (kind, name)


# -- the bench forge's answers against the schemas -------------------------------------------------------
def test_every_answer_has_giteas_schema(spec, forge):
    sha = forge.push_branch("fix/healthcheck")
    c = Recorder(forge.api_url, TOKEN, sleep=lambda s: None)
    c.get_repo(OWNER, REPO)
    pr = c.create_pull(OWNER, REPO, "fix/healthcheck", "main", "fix", "body")
    c.get_pull(OWNER, REPO, pr["number"])
    c.list_pulls(OWNER, REPO, "open")
    c.combined_status(OWNER, REPO, sha)            # no statuses yet: Gitea's statuses is null
    c.list_statuses(OWNER, REPO, sha)
    c.create_comment(OWNER, REPO, pr["number"], "!testme")
    c.create_status(OWNER, REPO, sha, "pending", "canon/recipe", "running", "http://ci.bench/1")
    c.create_status(OWNER, REPO, sha, "success", "canon/recipe", "green", "http://ci.bench/1")
    c.create_status(OWNER, REPO, sha, "failure", "lint")
    c.create_comment(OWNER, REPO, pr["number"], "canon: PASS\n\n" + VERDICT_MARK % sha)
    c.list_comments(OWNER, REPO, pr["number"])
    c.combined_status(OWNER, REPO, sha)
    c.combined_status(OWNER, REPO, "fix/healthcheck")   # a branch name as the ref
    c.list_statuses(OWNER, REPO, sha)
    c.request("GET", "/repos/%s/%s/statuses/%s" % (OWNER, REPO, sha))
    c.close_pull(OWNER, REPO, pr["number"])
    c.list_pulls(OWNER, REPO, "closed")
    c.list_pulls(OWNER, REPO, "all")
    problems = []
    for method, path, status, body in c.answers:
        template = template_of(spec, method, path)
        assert template, (method, path)
        problems += check_response(spec, method, template, status, body)
    assert problems == []
    assert len(c.answers) == 19
    # and the values mean what Gitea's would
    combined = [b for m, p, s, b in c.answers if p.endswith("/status")]
    assert combined[0]["statuses"] is None and combined[0]["state"] == "pending" and combined[0]["total_count"] == 0
    assert combined[1]["state"] == "failure" and combined[1]["total_count"] == 2   # newest per context
    assert {s["context"]: s["status"] for s in combined[1]["statuses"]} == {"canon/recipe": "success", "lint": "failure"}
    assert combined[2]["sha"] == sha
    listed = [b for m, p, s, b in c.answers if p.endswith("/statuses/" + sha) and m == "GET"][0]
    assert [s["status"] for s in listed] == ["failure", "success", "pending"]   # all of them, newest first
    closed = [b for m, p, s, b in c.answers if m == "PATCH"][0]
    assert closed["state"] == "closed" and closed["closed_at"] and closed["head"]["sha"] == sha
    assert not closed["merged"] and closed["merged_at"] is None and closed["merge_base"] == \
        [b for m, p, s, b in c.answers if m == "POST" and p.endswith("/pulls")][0]["base"]["sha"]


def test_error_answers_have_giteas_codes_and_bodies(spec, forge):
    forge.push_branch("fix/healthcheck")
    base = "/repos/%s/%s" % (OWNER, REPO)
    cases = [
        ("GET", "/repos/coop-cloud/nope", None, 404),
        ("GET", base + "/pulls/99", None, 404),
        ("PATCH", base + "/pulls/99", {"state": "closed"}, 404),
        ("GET", base + "/commits/no-such-ref/status", None, 404),
        ("POST", base + "/pulls", {"head": "fix/healthcheck", "base": "main"}, 422),             # no title
        ("POST", base + "/pulls", {"head": "main", "base": "main", "title": "t"}, 422),
        ("POST", base + "/pulls", {"head": "gone", "base": "main", "title": "t"}, 404),
        ("POST", base + "/pulls", {"head": "fix/healthcheck", "base": "main", "title": "t"}, 201),
        ("POST", base + "/pulls", {"head": "fix/healthcheck", "base": "main", "title": "t"}, 409),
        ("PATCH", base + "/pulls/1", {"state": "merged"}, 412),
        ("POST", base + "/issues/1/comments", {}, 422),
        ("POST", base + "/issues/99/comments", {"body": "x"}, 404),
    ]
    problems = []
    for method, path, body, want in cases:
        status, answer = raw(forge, method, path, body)
        assert status == want, (method, path, status, answer)
        template = template_of(spec, method, path)
        if status != 201:
            problems += check_response(spec, method, template, status, answer)
    assert problems == []
    # what Gitea's auth layer answers for any operation: 401 and an APIError body
    for token in (None, "wrong-token"):
        status, answer = raw(forge, "GET", base, token=token)
        assert status == 401 and check_error(answer, "401") == []
    # and routes it does not have: 404, or 405 for another method on one it has
    assert raw(forge, "DELETE", base + "/pulls/1")[0] == 405
    assert raw(forge, "POST", base + "/pulls/1/merge")[0] == 404


def test_the_module_calls_only_operations_of_the_subset_with_documented_bodies(spec, forge, tmp_path):
    forge.push_branch("fix/healthcheck")
    for state, check_mode in (("present", True), ("present", False), ("testme", True), ("testme", False),
                              ("verdict", False), ("closed", True), ("closed", False)):
        res, _ = run_module(forge.module_args(state=state, context="canon/recipe" if state == "verdict" else None),
                            tmp_path, check=check_mode)
        assert not res.get("failed"), res
    requests = forge.requests()
    used = set()
    for r in requests:
        template = template_of(spec, r["method"], r["path"])
        assert template, "%s %s is not in the subset" % (r["method"], r["path"])
        used.add((r["method"], template))
        op = spec["paths"][template][r["method"].lower()]
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "query"}
        assert set(urllib.parse.parse_qs(r["query"])) <= declared, (r["path"], r["query"], declared)
        bodies = [p for p in op.get("parameters", []) if p["in"] == "body"]
        if r["body"] is not None:
            assert bodies, "%s %s sent a body" % (r["method"], template)
            name = bodies[0]["schema"]["$ref"].rsplit("/", 1)[1]
            assert check_body(spec, name, r["body"]) == [], (name, r["body"])
    assert used == {("GET", "/repos/{owner}/{repo}"), ("GET", "/repos/{owner}/{repo}/pulls"),
                    ("POST", "/repos/{owner}/{repo}/pulls"), ("GET", "/repos/{owner}/{repo}/issues/{index}/comments"),
                    ("POST", "/repos/{owner}/{repo}/issues/{index}/comments"),
                    ("GET", "/repos/{owner}/{repo}/commits/{ref}/status"), ("PATCH", "/repos/{owner}/{repo}/pulls/{index}")}


def test_the_checker_catches_what_it_should(spec, forge):
    """The control for the tests above: a PR answer with a field missing, a wrong type, a value
    out of its enum and a null where Go has a plain string is caught, each once."""
    forge.push_branch("fix/healthcheck")
    status, pr = raw(forge, "POST", "/repos/%s/%s/pulls" % (OWNER, REPO),
                     {"head": "fix/healthcheck", "base": "main", "title": "t"})
    assert status == 201 and check_response(spec, "POST", "/repos/{owner}/{repo}/pulls", 201, pr) == []
    del pr["number"]
    pr["id"] = "1"
    pr["state"] = "merged"
    pr["head"]["sha"] = None
    problems = check_response(spec, "POST", "/repos/{owner}/{repo}/pulls", 201, pr)
    assert sorted(p.split(": ", 1)[1] for p in problems) == sorted([
        "PullRequest.number missing", "'1' is not an integer", "'merged' not in ['open', 'closed']", "null for string"])
    assert check_response(spec, "POST", "/repos/{owner}/{repo}/pulls", 418, {}) != []
    assert check_error({"message": "x"}, "e") != []
