"""custom-html's own test: the page it serves comes back through the proxy on its domain.

Run by the lifecycle's custom tier with CANON_APP_URL, CANON_APP_DOMAIN and
CANON_APP_HOST_HEADER set (see docs/suites.md).
"""
import os
import urllib.request


def get(path):
    req = urllib.request.Request(os.environ["CANON_APP_URL"] + path)
    if os.environ.get("CANON_APP_HOST_HEADER"):
        req.add_header("Host", os.environ["CANON_APP_HOST_HEADER"])
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.status, resp.read().decode()


def test_index_is_the_recipes_page():
    status, body = get("/")
    assert status == 200
    assert "<h1>custom-html</h1>" in body


def test_a_missing_page_is_404_not_another_app():
    try:
        get("/no-such-page-%s.html" % os.environ["CANON_APP_STACK"])
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    else:
        raise AssertionError("a missing page answered 200")
