#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: gitea_pull_request
short_description: Find-or-create a fix pull request on a Gitea/Forgejo forge, ask its CI to test it, read the verdict, close it
description:
  - Works on the pull request from branch O(head) into O(base) of O(owner)/O(repo), through the
    forge's REST API v1 (the operations in C(docs/forge-api/gitea-swagger-subset.json), no others).
  - C(present) finds the open pull request from O(head) into O(base) or creates it; the same
    branch always gives the same pull request.
  - >-
    C(testme) does C(present), then comments C(!testme) once per head commit. The comment carries
    the head commit (C(<!-- canon head: SHA -->)); when one for the current head exists, nothing is
    posted. A push to the branch makes a new head commit, and the next C(testme) comments again.
    With O(retest), a head whose every C(!testme) the CI has already answered is asked again (a
    fresh verdict, e.g. after the CI itself changed); one still unanswered is not asked twice.
  - >-
    C(verdict) reads the CI's verdict on the pull request's head commit: the combined commit status
    (or the newest status of one O(context)) and the CI's newest comment carrying
    C(<!-- canon verdict: SHA -->). With O(wait), polls until the state is not C(pending).
  - C(closed) closes the open pull request from O(head) into O(base), if there is one.
  - There is no merge. Nothing in this module or its client can merge a pull request.
  - 5xx answers and connection failures are retried (3 tries, 1 s then 2 s apart). 401, 403, 404,
    409 and 422 fail at once with a message that says which it was and the forge's own message.
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
attributes:
  check_mode:
    support: full
    description:
      - Reads the forge and reports what would change (C(changed), C(commented)) without writing.
        A pull request that would be created is returned with O(head) and C(number=null).
  diff_mode:
    support: none
  idempotent:
    support: full
    description:
      - A second C(present) or C(closed) with the same arguments changes nothing; C(testme) comments
        once per head commit.
options:
  api_url:
    description: The forge's API root, e.g. C(https://git.coopcloud.tech/api/v1).
    type: str
    required: true
  owner:
    description: The repository's owner (user or organisation).
    type: str
    required: true
  repo:
    description: The repository's name.
    type: str
    required: true
  head:
    description: The branch with the fix, pushed to O(owner)/O(repo).
    type: str
    required: true
  base:
    description: The branch the pull request goes into.
    type: str
    default: main
  title:
    description: The title of a pull request this creates (needed only when one is created).
    type: str
  body:
    description: The description of a pull request this creates.
    type: str
    default: ""
  token:
    description:
      - >-
        The API token, sent as C(Authorization: token ...). Falls back to C(GITEA_TOKEN).
      - Never appears in the module's output or errors.
    type: str
  token_file:
    description:
      - A file holding the API token (first line). Takes precedence over O(token).
    type: path
  state:
    description: What to make true (see the description).
    type: str
    choices: [present, testme, verdict, closed]
    default: present
  retest:
    description:
      - For C(testme), ask again when the CI has answered every C(!testme) for the current head
        commit (its verdict comment is newer than the newest request).
    type: bool
    default: false
  context:
    description:
      - For C(verdict), the commit status context to read (e.g. C(canon/recipe)). Without it the
        verdict is the forge's combined state over all contexts.
    type: str
  wait:
    description: For C(verdict), seconds to keep polling while the state is C(pending). 0 reads once.
    type: int
    default: 0
  poll_interval:
    description: Seconds between two reads while waiting.
    type: int
    default: 5
  validate_certs:
    description: Whether to check the forge's TLS certificate.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 30
notes:
  - The bench runs a stand-in forge (C(bench-forge), docs/forge.md) that answers a C(!testme)
    comment by queueing a CI job; a real Co-op Cloud forge answers it with its own CI.
"""

EXAMPLES = r"""
- name: Open (or find) the fix pull request and ask the CI to test its head commit
  coopcloud.canon.gitea_pull_request:
    api_url: "{{ canon_forge_url }}"
    token_file: "{{ canon_forge_token_file }}"
    owner: coop-cloud
    repo: bluesky-pds
    head: canon/fix-healthcheck
    title: "fix: give the healthcheck time to pass on first boot"
    body: "Found by canon: {{ canon_run.run_id }}"
    state: testme
  register: fix_pr

- name: Wait up to 30 minutes for the CI's verdict on that head commit
  coopcloud.canon.gitea_pull_request:
    api_url: "{{ canon_forge_url }}"
    token_file: "{{ canon_forge_token_file }}"
    owner: coop-cloud
    repo: bluesky-pds
    head: canon/fix-healthcheck
    state: verdict
    wait: 1800
  register: fix_verdict

- name: Close it (there is no merge)
  coopcloud.canon.gitea_pull_request:
    api_url: "{{ canon_forge_url }}"
    token_file: "{{ canon_forge_token_file }}"
    owner: coop-cloud
    repo: bluesky-pds
    head: canon/fix-healthcheck
    state: closed
"""

RETURN = r"""
pr:
  description: The pull request (null when C(closed) found none, or C(verdict) found none).
  type: dict
  returned: always
  contains:
    number: {description: "Its number (null for one check mode would create).", type: int}
    url: {description: "Its web page (the forge's C(html_url)).", type: str}
    head_sha: {description: "The head commit.", type: str}
    head: {description: "The head branch.", type: str}
    base: {description: "The base branch.", type: str}
    state: {description: "C(open) or C(closed).", type: str}
    title: {description: "Its title.", type: str}
verdict:
  description: For C(verdict), what the CI said about the head commit; null otherwise.
  type: dict
  returned: always
  contains:
    state: {description: "C(success), C(failure), C(error), C(pending) (also when nothing was reported yet) or C(warning)/C(skipped).", type: str}
    sha: {description: "The head commit it is about.", type: str}
    statuses: {description: "The newest status per context (context, state, description, target_url, created_at).", type: list}
    comment: {description: "The CI's newest verdict comment for that commit (id, body, created_at, html_url), or null.", type: dict}
    waited: {description: "Seconds spent polling.", type: float}
commented:
  description: Whether a C(!testme) comment was posted (in check mode, would be).
  type: bool
  returned: always
api_calls:
  description: Every API request made, as C(METHOD path status) (status null when unanswered).
  type: list
  elements: str
  returned: always
"""

import time

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.coopcloud.canon.plugins.module_utils._forge import (
    ForgeClient, ForgeError, testme_answered, testme_body, testme_requested, verdict_comment, verdict_state)
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule


def pr_info(pr: dict | None) -> dict | None:
    if not pr:
        return None
    return {"number": pr.get("number"), "url": pr.get("html_url"), "head_sha": (pr.get("head") or {}).get("sha"),
            "head": (pr.get("head") or {}).get("ref"), "base": (pr.get("base") or {}).get("ref"),
            "state": pr.get("state"), "title": pr.get("title")}


def comment_info(c: dict | None) -> dict | None:
    if not c:
        return None
    return {k: c.get(k) for k in ("id", "body", "created_at", "html_url")}


def read_token(module) -> str:
    p = module.params
    token = p.get("token") or ""
    if p.get("token_file"):
        try:
            with open(p["token_file"]) as fh:
                lines = fh.read().splitlines()
        except OSError as exc:
            module.fail_json(msg="cannot read token_file %s: %s" % (p["token_file"], exc.strerror))
        token = lines[0].strip() if lines else ""
        if not token:
            module.fail_json(msg="token_file %s is empty" % p["token_file"])
    if not token:
        module.fail_json(msg="no forge token: give token or token_file, or set GITEA_TOKEN")
    module.no_log_values.add(token)   # masked in everything the module returns
    return token


class Run:
    """One invocation: the client, the repository, and what has been found or done so far."""

    def __init__(self, module, client: ForgeClient):
        self.module = module
        self.client = client
        p = module.params
        self.owner, self.repo, self.head, self.base = p["owner"], p["repo"], p["head"], p["base"]
        self.result = {"changed": False, "pr": None, "verdict": None, "commented": False, "api_calls": []}

    def find(self, closed_too: bool = False) -> dict | None:
        """The open pull request from head into base; with closed_too, else the newest closed one."""
        pr = self.client.find_pull(self.owner, self.repo, self.head, self.base)
        if pr or not closed_too:
            return pr
        closed = [x for x in self.client.list_pulls(self.owner, self.repo, "closed")
                  if (x.get("head") or {}).get("ref") == self.head and (x.get("base") or {}).get("ref") == self.base]
        return max(closed, key=lambda x: x.get("number") or 0) if closed else None

    def present(self) -> dict | None:
        pr = self.find()
        if pr:
            return pr
        title = self.module.params.get("title")
        if not title:
            self.fail("no open pull request from %s into %s, and no title to create one with" % (self.head, self.base))
        self.result["changed"] = True
        if self.module.check_mode:
            self.client.get_repo(self.owner, self.repo)   # the repository must exist
            return None
        try:
            return self.client.create_pull(self.owner, self.repo, self.head, self.base, title,
                                           self.module.params.get("body") or "")
        except ForgeError as exc:
            if exc.status != 409:
                raise
            pr = self.find()   # created meanwhile by someone else: the same branch, the same pull request
            if not pr:
                raise
            self.result["changed"] = False
            return pr

    def testme(self, pr: dict | None) -> None:
        if pr is None:   # check mode, would be created: would be commented on too
            self.result["commented"] = self.result["changed"] = True
            return
        sha = (pr.get("head") or {}).get("sha")
        if not sha:
            self.fail("the forge reports no head commit for pull request %s" % pr.get("number"))
        comments = self.client.list_comments(self.owner, self.repo, pr["number"])
        if testme_requested(comments, sha) and not (self.module.params["retest"] and testme_answered(comments, sha)):
            return
        if not self.module.check_mode:
            self.client.create_comment(self.owner, self.repo, pr["number"], testme_body(sha))
        self.result["commented"] = self.result["changed"] = True

    def verdict(self) -> None:
        p = self.module.params
        start = time.monotonic()
        while True:
            pr = self.find(closed_too=True)
            if not pr:
                self.fail("no pull request from %s into %s in %s/%s" % (self.head, self.base, self.owner, self.repo))
            self.result["pr"] = pr_info(pr)
            sha = (pr.get("head") or {}).get("sha")
            combined = self.client.combined_status(self.owner, self.repo, sha)
            state, statuses = verdict_state(combined, p.get("context"))
            comment = verdict_comment(self.client.list_comments(self.owner, self.repo, pr["number"]), sha)
            waited = time.monotonic() - start
            self.result["verdict"] = {"state": state, "sha": sha, "statuses": statuses,
                                      "comment": comment_info(comment), "waited": round(waited, 1)}
            if state != "pending" or waited + p["poll_interval"] > p["wait"]:
                return
            time.sleep(max(1, p["poll_interval"]))

    def closed(self) -> None:
        pr = self.find()
        if not pr:
            return
        self.result["changed"] = True
        if self.module.check_mode:
            self.result["pr"] = dict(pr_info(pr), state="closed")
            return
        self.result["pr"] = pr_info(self.client.close_pull(self.owner, self.repo, pr["number"]))

    def fail(self, msg: str, **extra) -> None:
        self.result["api_calls"] = calls(self.client)
        self.module.fail_json(msg=msg, **dict(self.result, **extra))


def calls(client: ForgeClient) -> list:
    return ["%s %s %s" % (m, client.scrub(path), status) for m, path, status in client.calls]


def main():
    m = CanonModule(AnsibleModule, dict(
        api_url=dict(type="str", required=True),
        owner=dict(type="str", required=True),
        repo=dict(type="str", required=True),
        head=dict(type="str", required=True),
        base=dict(type="str", default="main"),
        title=dict(type="str"),
        body=dict(type="str", default=""),
        token=dict(type="str", no_log=True, fallback=(env_fallback, ["GITEA_TOKEN"])),
        token_file=dict(type="path"),
        state=dict(type="str", default="present", choices=["present", "testme", "verdict", "closed"]),
        retest=dict(type="bool", default=False),
        context=dict(type="str"),
        wait=dict(type="int", default=0),
        poll_interval=dict(type="int", default=5),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    ), names=(("api_url", "http_url"), ("owner", "forge_name"), ("repo", "forge_name"), ("head", "branch"),
              ("base", "branch")), supports_check_mode=True)
    p = m.params
    token = read_token(m.module)
    client = ForgeClient(p["api_url"], token, timeout=p["timeout"], validate_certs=p["validate_certs"])
    run = Run(m.module, client)
    try:
        if p["state"] in ("present", "testme"):
            pr = run.present()
            if p["state"] == "testme":
                run.testme(pr)
            run.result["pr"] = pr_info(pr) if pr else {
                "number": None, "url": None, "head_sha": None, "head": run.head, "base": run.base,
                "state": "open", "title": p.get("title")}
        elif p["state"] == "verdict":
            run.verdict()
        else:
            run.closed()
    except ForgeError as exc:
        run.result["api_calls"] = calls(client)
        m.fail(exc, **run.result)
    run.result["api_calls"] = calls(client)
    m.exit(**run.result)


if __name__ == "__main__":
    main()
