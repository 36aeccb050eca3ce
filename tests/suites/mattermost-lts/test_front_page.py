"""mattermost-lts's own test: its front page comes back through the proxy on its domain.

Run by the lifecycle's custom tier with CANON_APP_URL and CANON_APP_HOST_HEADER set.
"""


def test_front_page(get):
    status, body = get("/")
    assert status == 200
    assert "<h1>mattermost-lts</h1>" in body
