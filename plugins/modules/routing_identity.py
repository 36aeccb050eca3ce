#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: coopcloud.canon contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r"""
module: routing_identity
short_description: Prove a domain answers through the proxy from this stack, not just that something answers
description:
  - Requests I(path) on the app's domain I(samples) times and classifies each answer - C(ok)
    (accepted status and the recipe's identity string, e.g. C(did:web:{domain})), C(no-answer)
    (no HTTP answer at all, curl's C(000)), C(no-route) (the proxy answered without reaching a
    backend), C(wrong-backend) (an app answered, but not this one). The verdict is the worst
    sample; an ambiguous route is random per request, so one good answer proves nothing.
  - Fails with the verdict, the counts and an example answer unless every sample is C(ok).
author: coopcloud.canon contributors (@coop-cloud)
version_added: 0.1.0
extends_documentation_fragment:
  - coopcloud.canon.attributes
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
  idempotent:
    support: full
    description: Never changes anything.
options:
  domain:
    description: The app's domain.
    type: str
    required: true
  path:
    description: Path to request.
    type: str
    default: /
  expect:
    description: Text this app's answer must contain; C({domain}) is replaced by I(domain). Empty accepts any answer with an accepted status.
    type: str
    default: ""
  codes:
    description: Accepted status codes.
    type: list
    elements: int
    default: [200]
  samples:
    description: How many requests.
    type: int
    default: 10
  proxy_url:
    description: Send requests to this URL with the domain as Host header; empty for https://<domain>.
    type: str
    default: ""
  timeout:
    description: Seconds per request.
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: The warm bluesky-pds answers as itself
  coopcloud.canon.routing_identity:
    domain: warm-canon-bluesky-pds.bench.canon.test
    path: /xrpc/_health
    expect: "did:web:{domain}"
    proxy_url: http://127.0.0.1:8480
"""

RETURN = r"""
verdict:
  description: ok, no-answer, no-route or wrong-backend.
  type: str
  returned: always
counts:
  description: Samples per outcome.
  type: dict
  returned: always
example:
  description: The status and an excerpt of an answer with the verdict's outcome.
  type: dict
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url
from ansible.module_utils.six.moves.urllib.error import HTTPError, URLError

from ansible_collections.coopcloud.canon.plugins.module_utils._identity import OK, classify, verdict
from ansible_collections.coopcloud.canon.plugins.module_utils._ladder import clip_words
from ansible_collections.coopcloud.canon.plugins.module_utils._module import CanonModule


def sample(url, host, timeout):
    try:
        resp = open_url(url, headers={"Host": host} if host else None, timeout=timeout, follow_redirects="none",
                        validate_certs=False)
        return resp.getcode(), resp.read(4096).decode("utf-8", "replace")
    except HTTPError as exc:
        try:
            body = exc.read(4096).decode("utf-8", "replace")
        except Exception:  # pylint: disable=broad-except
            body = ""
        return exc.code, body
    except (URLError, OSError, ValueError):
        return None, ""


def main():
    m = CanonModule(AnsibleModule, dict(
        domain=dict(type="str", required=True), path=dict(type="str", default="/"),
        expect=dict(type="str", default=""), codes=dict(type="list", elements="int", default=[200]),
        samples=dict(type="int", default=10), proxy_url=dict(type="str", default=""),
        timeout=dict(type="int", default=5),
    ), names=("domain", ("path", "url_path"), ("proxy_url", "http_url")), supports_check_mode=True)
    p = m.params
    if p["samples"] < 1:
        m.fail(msg="samples must be >= 1")
    expect = p["expect"].replace("{domain}", p["domain"])
    url = (p["proxy_url"] or "https://" + p["domain"]) + p["path"]
    host = p["domain"] if p["proxy_url"] else None
    samples = []
    for _sample in range(p["samples"]):
        status, body = sample(url, host, p["timeout"])
        samples.append((classify(status, body, expect, p["codes"]), status, clip_words(body.strip(), 200)))
    result = verdict(samples)
    if result["verdict"] != OK:
        m.fail(msg="%s %s: %s (%s); e.g. HTTP %s %r, expected %r" % (
            p["domain"], p["path"], result["verdict"], ", ".join("%s %d" % kv for kv in sorted(result["counts"].items())),
            result["example"]["status"] if result["example"]["status"] is not None else "000",
            clip_words(result["example"]["excerpt"], 120), expect), **result)
    m.exit(changed=False, **result)


if __name__ == "__main__":
    main()
