# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small client for the Gitea/Forgejo REST API v1, over Ansible's own ``open_url``.

It knows the few operations the fix flow needs (docs/forge.md, the subset of Gitea's API
description in docs/forge-api/gitea-swagger-subset.json) and nothing else: read a repository,
list/create/read/close pull requests, list/create comments, read the combined and the single
commit statuses of a ref, create a commit status. It cannot merge anything.

Errors are :class:`ForgeError`: the HTTP status (None when the forge could not be reached), a
plain message that says what to do, and the forge's own message. The token goes in the
``Authorization: token <t>`` header only; every text this module produces is scrubbed of it.
5xx answers and connection failures are retried a bounded number of times with a growing pause.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.parse

from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError
from ansible.module_utils.urls import ConnectionError as UrlsConnectionError, SSLValidationError, open_url

TESTME = "!testme"
HEAD_MARK = "<!-- canon head: %s -->"
VERDICT_MARK = "<!-- canon verdict: %s -->"
PAGE_SIZE = 50
REDACTED = "********"

# What a status means to the user, for the errors worth a sentence of their own.
HINTS = {
    401: "the forge rejected the token (bad, expired or missing): check token / token_file / GITEA_TOKEN",
    403: "the token has no permission for this (it needs write access to the repository)",
    404: "not found: the repository or pull request does not exist, or the token cannot see it",
    409: "conflict",
    422: "the forge refused the request as invalid",
}


class ForgeError(Exception):
    """A failed forge call: ``status`` (int, or None if unreachable), a plain message, the forge's."""

    def __init__(self, message: str, status=None, forge_message: str = "", method: str = "", path: str = ""):
        super().__init__(message)
        self.status = status
        self.forge_message = forge_message
        self.method = method
        self.path = path

    def as_dict(self) -> dict:
        return {"msg": str(self), "status": self.status, "forge_message": self.forge_message,
                "request": ("%s %s" % (self.method, self.path)).strip()}


def quote(segment) -> str:
    """One path segment, every reserved character escaped (a branch "fix/x" becomes "fix%2Fx")."""
    return urllib.parse.quote(str(segment), safe="")


class ForgeClient:
    """Calls against one forge. ``opener`` and ``sleep`` are there for tests."""

    def __init__(self, api_url: str, token: str, timeout: float = 30, validate_certs: bool = True,
                 tries: int = 3, backoff: float = 1.0, opener=open_url, sleep=time.sleep):
        if not token:
            raise ForgeError("no forge token: set token, token_file or GITEA_TOKEN")
        self.api_url = api_url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.validate_certs = validate_certs
        self.tries = max(1, int(tries))
        self.backoff = backoff
        self._open = opener
        self._sleep = sleep
        self.calls = []   # (method, path, status) of every attempt, for the module's result and tests

    # -- plumbing ---------------------------------------------------------------------------------
    def scrub(self, text) -> str:
        """text with the token replaced; the only way text leaves this client."""
        text = text if isinstance(text, str) else str(text)
        return text.replace(self._token, REDACTED) if self._token else text

    def _fail(self, message, status=None, forge_message="", method="", path=""):
        raise ForgeError(self.scrub(message), status=status, forge_message=self.scrub(forge_message),
                         method=method, path=self.scrub(path))

    def request(self, method: str, path: str, body=None, query=None, retry_timeouts: bool = None):
        """(status, decoded JSON or None, headers) of a 2xx answer; ForgeError otherwise.

        Retried: 5xx answers and connection failures (nothing reached the forge, or Gitea's
        transaction was rolled back). Timeouts are retried only for GET/PATCH (retry_timeouts),
        since a POST that timed out may have been done.
        """
        if retry_timeouts is None:
            retry_timeouts = method in ("GET", "PATCH")
        url = self.api_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": "token " + self._token, "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        last = None
        for attempt in range(1, self.tries + 1):
            try:
                resp = self._open(url, data=data, headers=headers, method=method, timeout=self.timeout,
                                  validate_certs=self.validate_certs, follow_redirects="none",
                                  use_netrc=False, http_agent="coopcloud.canon")
                raw = resp.read()
                status = resp.getcode()
                self.calls.append((method, path, status))
                return status, (json.loads(raw) if raw else None), dict(resp.headers or {})
            except HTTPError as exc:
                status = exc.code
                self.calls.append((method, path, status))
                forge_message = _forge_message(exc)
                if status >= 500 and attempt < self.tries:
                    last = "HTTP %d %s" % (status, forge_message)
                    self._sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                self._raise_http(method, path, status, forge_message, attempt)
            except (URLError, socket.timeout, ConnectionError, UrlsConnectionError, OSError) as exc:
                self.calls.append((method, path, None))
                if isinstance(exc, SSLValidationError):
                    self._fail("the forge at %s failed the TLS certificate check (%s); for a forge with a "
                               "self-signed certificate set validate_certs=false" % (self.api_url, exc),
                               method=method, path=path)
                timed_out = _is_timeout(exc)
                last = "timed out after %ss" % self.timeout if timed_out else _reason(exc)
                if attempt < self.tries and (retry_timeouts or not timed_out):
                    self._sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                if timed_out and not retry_timeouts:
                    self._fail("the forge at %s did not answer %s %s within %ss; not retried, since it may have "
                               "been done: look before repeating it" % (self.api_url, method, path, self.timeout),
                               method=method, path=path)
                self._fail("the forge at %s is unreachable (%s) after %d tries" % (self.api_url, last, attempt),
                           method=method, path=path)
        self._fail("the forge at %s failed %s %s: %s" % (self.api_url, method, path, last), method=method, path=path)

    def _raise_http(self, method, path, status, forge_message, attempt):
        if status >= 500:
            hint = "the forge failed (HTTP %d) %d times in a row" % (status, attempt)
        elif 300 <= status < 400:
            hint = "the forge answered a redirect (HTTP %d); give api_url as the final API address" % status
        else:
            hint = HINTS.get(status, "the forge refused the request (HTTP %d)" % status)
        message = "%s %s: %s" % (method, path, hint)
        if forge_message:
            message += " (forge: %s)" % forge_message
        self._fail(message, status=status, forge_message=forge_message, method=method, path=path)

    def _paged(self, path: str, query: dict) -> list:
        items, page = [], 1
        while True:
            _status, batch, _headers = self.request("GET", path, query=dict(query, page=page, limit=PAGE_SIZE))
            batch = batch or []
            items.extend(batch)
            if len(batch) < PAGE_SIZE:
                return items
            page += 1

    @staticmethod
    def _repo(owner, repo) -> str:
        return "/repos/%s/%s" % (quote(owner), quote(repo))

    # -- operations (the subset in docs/forge-api/gitea-swagger-subset.json) -----------------------
    def get_repo(self, owner, repo) -> dict:
        return self.request("GET", self._repo(owner, repo))[1]

    def list_pulls(self, owner, repo, state="open") -> list:
        return self._paged(self._repo(owner, repo) + "/pulls", {"state": state})

    def find_pull(self, owner, repo, head, base) -> dict | None:
        """The open pull request from branch head into base (Gitea allows one), or None."""
        for pr in self.list_pulls(owner, repo, "open"):
            if (pr.get("head") or {}).get("ref") == head and (pr.get("base") or {}).get("ref") == base:
                return pr
        return None

    def create_pull(self, owner, repo, head, base, title, body="") -> dict:
        return self.request("POST", self._repo(owner, repo) + "/pulls",
                            {"head": head, "base": base, "title": title, "body": body or ""})[1]

    def get_pull(self, owner, repo, number) -> dict:
        return self.request("GET", "%s/pulls/%d" % (self._repo(owner, repo), int(number)))[1]

    def close_pull(self, owner, repo, number) -> dict:
        return self.request("PATCH", "%s/pulls/%d" % (self._repo(owner, repo), int(number)), {"state": "closed"})[1]

    def list_comments(self, owner, repo, number) -> list:
        return self.request("GET", "%s/issues/%d/comments" % (self._repo(owner, repo), int(number)))[1] or []

    def create_comment(self, owner, repo, number, body) -> dict:
        return self.request("POST", "%s/issues/%d/comments" % (self._repo(owner, repo), int(number)),
                            {"body": body})[1]

    def combined_status(self, owner, repo, ref) -> dict:
        return self.request("GET", "%s/commits/%s/status" % (self._repo(owner, repo), quote(ref)))[1]

    def list_statuses(self, owner, repo, ref) -> list:
        return self._paged("%s/commits/%s/statuses" % (self._repo(owner, repo), quote(ref)), {})

    def create_status(self, owner, repo, sha, state, context, description="", target_url="") -> dict:
        return self.request("POST", "%s/statuses/%s" % (self._repo(owner, repo), quote(sha)),
                            {"state": state, "context": context, "description": description,
                             "target_url": target_url})[1]


# -- what the fix flow reads out of comments and statuses ---------------------------------------------
def testme_body(sha: str) -> str:
    """The !testme comment for head commit sha; the mark makes it findable for that commit only."""
    return "%s\n\n%s" % (TESTME, HEAD_MARK % sha)


def testme_requested(comments: list, sha: str) -> dict | None:
    """The !testme comment already made for head commit sha, if any."""
    mark = HEAD_MARK % sha
    for c in comments:
        body = c.get("body") or ""
        if body.strip().startswith(TESTME) and mark in body:
            return c
    return None


def _order(c: dict) -> tuple:
    return (c.get("created_at") or "", c.get("id") or 0)


def testme_answered(comments: list, sha: str) -> bool:
    """Whether the CI's newest verdict comment for head commit sha is newer than every !testme
    for it (nothing of that head is waiting for the CI)."""
    mark = HEAD_MARK % sha
    asks = [c for c in comments if (c.get("body") or "").strip().startswith(TESTME) and mark in (c.get("body") or "")]
    answer = verdict_comment(comments, sha)
    return bool(asks) and answer is not None and _order(answer) > max(_order(c) for c in asks)


def verdict_comment(comments: list, sha: str) -> dict | None:
    """The CI's newest verdict comment for head commit sha (it carries VERDICT_MARK % sha)."""
    mark = VERDICT_MARK % sha
    found = [c for c in comments if mark in (c.get("body") or "")]
    return max(found, key=_order) if found else None


def verdict_state(combined: dict, context: str | None = None) -> tuple:
    """(state, statuses) from a combined status: Gitea's combined state, or, for one context, its
    newest status (pending while it has none). statuses is a plain list (Gitea sends null for none)."""
    statuses = [{"context": s.get("context"), "state": s.get("status"), "description": s.get("description"),
                 "target_url": s.get("target_url"), "created_at": s.get("created_at")}
                for s in (combined.get("statuses") or [])]
    if context is None:
        return combined.get("state") or "pending", statuses
    mine = [s for s in statuses if s["context"] == context]
    return (mine[0]["state"] if mine else "pending"), mine


# -- small helpers ---------------------------------------------------------------------------------------
def _forge_message(exc: HTTPError) -> str:
    try:
        raw = exc.read()
    except Exception:
        return ""
    try:
        data = json.loads(raw)
    except (TypeError, ValueError):
        return (raw or b"").decode("utf-8", "replace").strip()[:300]
    if isinstance(data, dict):
        return str(data.get("message") or "")
    return ""


def _is_timeout(exc) -> bool:
    reason = getattr(exc, "reason", exc)
    return isinstance(exc, socket.timeout) or isinstance(reason, socket.timeout) or "timed out" in str(reason)


def _reason(exc) -> str:
    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason)
