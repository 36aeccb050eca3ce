"""bluesky-pds's own test: requests on this app's domain reach THIS stack's PDS.

Run by the lifecycle's custom tier with CANON_APP_URL, CANON_APP_HOST_HEADER and
CANON_APP_DOMAIN set. `web` forwards to its upstream by a short service name; on the shared
proxy network that name can belong to another stack, so one good answer proves little: every
one of several requests must come back with the identity of this domain.
"""
import json
import os

ATTEMPTS = 10


def test_health_names_this_domain_every_time(get):
    want = "did:web:%s" % os.environ["CANON_APP_DOMAIN"]
    answers = [get("/xrpc/_health") for _ in range(ATTEMPTS)]
    wrong = [(status, body.strip()) for status, body in answers
             if status != 200 or json.loads(body).get("did") != want]
    assert not wrong, "%d/%d answers were not %s: %r" % (len(wrong), ATTEMPTS, want, wrong[:3])
