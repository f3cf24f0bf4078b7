"""The dashboard's sign-in is slowed after failures: each attempt waits its slot (``BASE_DELAY_S × 2^(n − 1)``
after n recent failures), attempts made in parallel queue behind each other, and one whose slot is too far off is
refused at once with how long to wait — told in the gate as "Too many failed sign-ins: wait N s".
"""

from __future__ import annotations

import inspect

import pytest
import sqlalchemy as sa

from pulsegate.dashboard import auth
from tests.dashboard.conftest import app, dash_store  # noqa: F401

PASSWORD = "correct horse battery"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []
        self.during_sleep = None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        hook, self.during_sleep = self.during_sleep, None
        if hook is not None:
            hook()  # another session's attempt arrives while this one waits
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    auth.reset()
    yield FakeTime()
    auth.reset()


def attempt(fake: FakeTime, entered: str) -> auth.Outcome:
    return auth.attempt(entered, PASSWORD, clock=fake.clock, sleep=fake.sleep)


def test_each_failure_doubles_the_wait_before_the_next_comparison_up_to_the_cap(fake: FakeTime) -> None:
    outcomes = [attempt(fake, "wrong") for _ in range(3)]
    assert outcomes == [auth.Outcome(False)] * 3
    assert fake.slept == [0.5, 1.0]
    # the next slot is 2 s off: still waited inline; after that, 4 s is too far — refused without comparing
    assert attempt(fake, "wrong") == auth.Outcome(False)
    assert fake.slept == [0.5, 1.0, 2.0]
    assert attempt(fake, PASSWORD) == auth.Outcome(False, 4.0)
    fake.now += 4.0
    assert attempt(fake, PASSWORD) == auth.Outcome(True)
    assert auth.delay_s(fake.now) == 0.0 and attempt(fake, PASSWORD) == auth.Outcome(True)
    for _ in range(12):  # the delay is capped
        fake.now += auth.MAX_DELAY_S
        attempt(fake, "wrong")
    assert auth.delay_s(fake.now) == auth.MAX_DELAY_S


def test_attempts_in_parallel_queue_behind_each_other(fake: FakeTime) -> None:
    assert attempt(fake, "wrong") == auth.Outcome(False)
    assert attempt(fake, "wrong") == auth.Outcome(False)  # waited 0.5 s; the next slot is 1 s after it
    seen: list[auth.Outcome] = []
    fake.during_sleep = lambda: seen.append(attempt(fake, PASSWORD))
    # a third attempt waits its 1 s; meanwhile a parallel one would get the slot after it (2 s later): refused
    assert attempt(fake, "wrong") == auth.Outcome(False)
    assert seen == [auth.Outcome(False, 1.0 + 2.0)]
    assert len(auth._failures) == 3  # the refused attempt compared nothing and counted nothing


def test_failures_are_forgotten_after_a_quiet_period(fake: FakeTime) -> None:
    for _ in range(3):
        attempt(fake, "wrong")
    fake.now += auth.FORGET_AFTER_S
    assert auth.delay_s(fake.now) == 0.0
    fake.slept.clear()
    assert attempt(fake, PASSWORD) == auth.Outcome(True) and fake.slept == []


def test_the_comparison_is_constant_time(fake: FakeTime, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = auth.hmac.compare_digest
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    attempt(fake, "wrong")
    assert calls == [(b"wrong", PASSWORD.encode())]
    assert "==" not in inspect.getsource(auth.attempt).split("compare_digest")[1].split("\n")[0]


def test_the_gate_says_how_long_to_wait_after_repeated_failures(
    dash_store: sa.Engine,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DASHBOARD_PASSWORD", PASSWORD)
    monkeypatch.setattr(auth, "BASE_DELAY_S", 5.0)
    at = app().run()
    at.text_input(key="auth_password").input("wrong password")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password. Each failed attempt makes the next one wait longer."]
    at.text_input(key="auth_password").input(PASSWORD)  # even the right password waits its turn
    at.button[0].click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Too many failed sign-ins: wait 5 s, then try again."]
    assert [t.value for t in at.title] == ["Pulsegate"]
    monkeypatch.setattr(auth, "_next_slot", [0.0])  # the wait is over
    at.text_input(key="auth_password").input(PASSWORD)
    at.button[0].click().run()
    assert [t.value for t in at.title] == ["Overview"]
