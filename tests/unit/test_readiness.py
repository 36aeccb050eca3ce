from ansible_collections.coopcloud.canon.plugins.module_utils._readiness import wait_ready


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.t += s


def run(outcomes, stable=3, interval=1, timeout=30):
    clock = FakeClock()
    seq = iter(outcomes) if isinstance(outcomes, list) else None

    def attempt():
        return next(seq, (True, "ok")) if seq is not None else outcomes(clock.t)
    return wait_ready(attempt, stable, interval, timeout, clock=clock, sleep=clock.sleep)


def test_needs_stable_successes_in_a_row():
    res = run([(False, "refused"), (True, "a"), (False, "flap"), (True, "b"), (True, "c"), (True, "d")])
    assert res["ready"] and res["attempts"] == 6 and res["streak"] == 3
    assert res["first_ok_after"] == 1.0


def test_never_ready_is_bounded_in_time_and_says_why():
    res = run(lambda t: (False, "connection refused"), timeout=10)
    assert not res["ready"]
    assert res["elapsed"] <= 10 and res["attempts"] == 11   # t = 0, 1, ..., 10
    assert res["last_detail"] == "connection refused"


def test_port_that_opens_late_is_waited_for():
    res = run(lambda t: (t >= 7, "open" if t >= 7 else "closed"), stable=3, timeout=60)
    assert res["ready"] and res["first_ok_after"] == 7 and res["elapsed"] == 9
