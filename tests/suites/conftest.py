"""What every recipe's custom suite gets (see docs/suites.md): the app, reached the way the
harness reaches it."""
import os
import urllib.error
import urllib.request

import pytest


def _get(path, timeout=10):
    req = urllib.request.Request(os.environ["CANON_APP_URL"] + path)
    if os.environ.get("CANON_APP_HOST_HEADER"):
        req.add_header("Host", os.environ["CANON_APP_HOST_HEADER"])
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


@pytest.fixture
def get():
    """``get(path) -> (status, body)`` on the app's domain; an HTTP error is a status, not an exception."""
    return _get
