from ansible_collections.coopcloud.canon.plugins.module_utils import _identity as i


def test_classify():
    me = '{"version":"0.4","did":"did:web:blue-1.bench.canon.test"}'
    other = '{"version":"0.4","did":"did:web:warm-keycloak.bench.canon.test"}'
    assert i.classify(200, me, "did:web:blue-1.bench.canon.test") == i.OK
    assert i.classify(200, other, "did:web:blue-1.bench.canon.test") == i.WRONG_BACKEND
    assert i.classify(None, "", "x") == i.NO_ANSWER
    assert i.classify(404, "canon bench proxy: no route for host x", "x") == i.NO_ROUTE
    assert i.classify(502, "", "x") == i.NO_ROUTE
    assert i.classify(404, "<h1>keycloak</h1> not found", "did:web:x") == i.WRONG_BACKEND


def test_verdict_is_the_worst_sample():
    v = i.verdict([(i.OK, 200, "a"), (i.WRONG_BACKEND, 200, "b"), (i.OK, 200, "a"), (i.NO_ANSWER, None, "")])
    assert v["verdict"] == i.WRONG_BACKEND and v["counts"] == {"ok": 2, "wrong-backend": 1, "no-answer": 1}
    assert v["example"] == {"status": 200, "excerpt": "b"}
    assert i.verdict([(i.OK, 200, "a")])["verdict"] == i.OK


# -- the failure names an excerpt of the answer, cut at a word (issue 17) -----------------------

BODY = "<html><body><h1>keycloak</h1> " + "sign in to your account with the realm login form " * 10 + "</body></html>"


def _cut_at_a_word(whole: str, kept: str, limit: int) -> bool:
    return kept.endswith("…") and len(kept) <= limit and whole.startswith(kept[:-1]) and whole[len(kept) - 1] == " "


def test_a_wrong_backends_excerpt_is_cut_at_a_word(monkeypatch):
    import re
    from ansible_collections.coopcloud.canon.plugins.modules import routing_identity
    from tests.unit.test_module_base import run_module
    monkeypatch.setattr(routing_identity, "sample", lambda url, host, timeout: (200, BODY))
    res = run_module("routing_identity", dict(domain="blue-1.bench.canon.test", expect="did:web:{domain}", samples=2))
    assert res["failed"] and res["verdict"] == i.WRONG_BACKEND
    assert _cut_at_a_word(BODY, res["example"]["excerpt"], 200)
    shown = re.search(r"e\.g\. HTTP 200 '(.*)', expected", res["msg"]).group(1)
    assert _cut_at_a_word(BODY, shown, 120)
