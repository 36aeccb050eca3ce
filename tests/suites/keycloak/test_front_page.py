"""keycloak's own test: its front page comes back through the proxy on its domain.

Run by the lifecycle's custom tier with CANON_APP_URL and CANON_APP_HOST_HEADER set.
"""
import os


def test_front_page(get):
    status, body = get("/")
    assert status == 200
    assert "<h1>keycloak</h1>" in body


def test_master_realm_issuer_is_this_domain(get):
    import json
    status, body = get("/realms/master")
    assert status == 200
    assert json.loads(body)["issuer"] == "https://%s/realms/master" % os.environ["CANON_APP_DOMAIN"]
