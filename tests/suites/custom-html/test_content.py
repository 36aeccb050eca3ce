"""custom-html's own test: the page it serves comes back through the proxy on its domain.

Run by the lifecycle's custom tier with CANON_APP_URL, CANON_APP_DOMAIN and
CANON_APP_HOST_HEADER set (see docs/suites.md); `get` comes from tests/suites/conftest.py.
"""
import os


def test_index_is_the_recipes_page(get):
    status, body = get("/")
    assert status == 200
    assert "<h1>custom-html</h1>" in body


def test_a_missing_page_is_404_not_another_app(get):
    status, _body = get("/no-such-page-%s.html" % os.environ["CANON_APP_STACK"])
    assert status == 404
