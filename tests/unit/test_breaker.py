"""The circuit breaker: threshold over a sliding window, fail fast, ONE trial at a time, backoff, release."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from pulsegate.core.breaker import CircuitBreaker, Permit
from pulsegate.core.clock import ManualClock


@pytest.fixture
def transitions() -> list[tuple[str, str, str]]:
    return []


@pytest.fixture
def breaker(clock: ManualClock, transitions: list[tuple[str, str, str]]) -> CircuitBreaker:
    return CircuitBreaker(
        "anthropic",
        clock,
        window_s=60,
        min_calls=10,
        failure_rate=0.5,
        open_s=30,
        max_open_s=100,
        backoff=2,
        on_transition=lambda *t: transitions.append(t),
    )


def verdicts(breaker: CircuitBreaker, *healthy: bool) -> None:
    for verdict in healthy:
        permit = breaker.acquire()
        assert permit is not None, "the breaker refused a call it should have allowed"
        breaker.record(permit, healthy=verdict)


def trip(breaker: CircuitBreaker) -> None:
    verdicts(breaker, *[False] * 10)
    assert breaker.state == "open"


def test_opens_exactly_at_the_failure_rate_threshold(breaker: CircuitBreaker) -> None:
    verdicts(breaker, *[True] * 6, *[False] * 3)  # 9 calls, 33 %
    verdicts(breaker, False)  # 10 calls, 40 %
    assert breaker.state == "closed"
    verdicts(breaker, False)  # 11 calls, 5 failures: 45 %
    assert breaker.state == "closed"
    verdicts(breaker, True, False)  # 13 calls, 6 failures: 46 %
    assert breaker.state == "closed"
    verdicts(breaker, False)  # 14 calls, 7 failures: exactly 50 %
    assert breaker.state == "open"


def test_never_opens_below_min_calls(breaker: CircuitBreaker) -> None:
    verdicts(breaker, *[False] * 9)
    assert breaker.state == "closed"
    verdicts(breaker, False)
    assert breaker.state == "open"


def test_fails_fast_while_open(breaker: CircuitBreaker, clock: ManualClock) -> None:
    trip(breaker)
    assert breaker.acquire() is None
    assert breaker.retry_in() == 30
    clock.advance(29.5)
    assert (breaker.acquire(), breaker.state, breaker.retry_in()) == (None, "open", 0.5)


async def test_after_open_s_exactly_one_concurrent_trial(breaker: CircuitBreaker, clock: ManualClock) -> None:
    trip(breaker)
    clock.advance(30)
    assert breaker.state == "half_open"
    executed: list[int] = []

    async def call(i: int) -> str:
        permit = breaker.acquire()
        if permit is None:
            return "circuit_open"
        with permit:
            await clock.sleep(1)  # the trial is in flight while the others arrive
            executed.append(i)
            permit.record(healthy=True)
        return "ok"

    tasks = [asyncio.create_task(call(i)) for i in range(4)]
    for _ in range(3):
        await asyncio.sleep(0)
    clock.advance(1)
    assert sorted(await asyncio.gather(*tasks)) == ["circuit_open"] * 3 + ["ok"]
    assert len(executed) == 1
    assert breaker.state == "closed"


def test_only_one_trial_among_threads(breaker: CircuitBreaker, clock: ManualClock) -> None:
    trip(breaker)
    clock.advance(30)
    barrier = threading.Barrier(8)
    permits: list[Permit | None] = []

    def worker() -> None:
        barrier.wait()
        permits.append(breaker.acquire())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    granted = [p for p in permits if p is not None]
    assert len(granted) == 1 and granted[0].trial


def test_a_healthy_trial_closes_with_an_empty_window(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[tuple[str, str, str]]
) -> None:
    trip(breaker)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None and trial.trial
    trial.record(healthy=True)
    assert breaker.state == "closed"
    assert breaker.snapshot()["calls_in_window"] == 0
    verdicts(breaker, *[False] * 9)  # the failures before the open are forgotten
    assert breaker.state == "closed"
    assert transitions == [
        ("anthropic", "closed", "open"),
        ("anthropic", "open", "half_open"),
        ("anthropic", "half_open", "closed"),
    ]


def test_a_failed_trial_reopens_for_longer_and_longer_up_to_the_cap(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    trip(breaker)
    for open_for in (30, 60, 100, 100):  # 30 × 2^n, capped at 100
        clock.advance(open_for - 0.5)
        assert breaker.acquire() is None
        clock.advance(0.5)
        trial = breaker.acquire()
        assert trial is not None and trial.trial
        breaker.record(trial, healthy=False)
        assert breaker.state == "open"
    assert breaker.snapshot()["consecutive_opens"] == 5
    clock.advance(100)
    verdicts(breaker, True)  # the trial closes it ...
    trip(breaker)  # ... and the next open starts from open_s again
    clock.advance(30)
    assert breaker.state == "half_open"


def test_release_frees_the_trial_slot(breaker: CircuitBreaker, clock: ManualClock) -> None:
    trip(breaker)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None and breaker.acquire() is None
    breaker.release(trial)
    assert breaker.state == "half_open"
    again = breaker.acquire()
    assert again is not None and again.trial
    with pytest.raises(asyncio.CancelledError), again:  # leaving without a verdict releases too
        raise asyncio.CancelledError
    assert breaker.acquire() is not None


def test_old_failures_fall_out_of_the_window(breaker: CircuitBreaker, clock: ManualClock) -> None:
    verdicts(breaker, *[False] * 9)
    clock.advance(60)
    verdicts(breaker, False)
    assert breaker.state == "closed"
    assert breaker.snapshot()["failures_in_window"] == 1
    verdicts(breaker, *[False] * 8)
    clock.advance(59.5)
    verdicts(breaker, False)  # 10 failures within the last 60 s
    assert breaker.state == "open"


def test_verdicts_of_calls_begun_before_a_transition_are_ignored(breaker: CircuitBreaker, clock: ManualClock) -> None:
    early = [breaker.acquire() for _ in range(3)]
    trip(breaker)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None
    for permit in early:
        assert permit is not None
        permit.record(healthy=True)  # a late success from before the open does not close it
    assert breaker.state == "half_open" and breaker.acquire() is None
    trial.record(healthy=True)
    trial.record(healthy=False)  # a second verdict on one permit is ignored
    assert breaker.state == "closed"


def test_snapshot_is_json(breaker: CircuitBreaker, clock: ManualClock) -> None:
    verdicts(breaker, True, True, False)
    snapshot = breaker.snapshot()
    assert {k: snapshot[k] for k in ("state", "calls_in_window", "failures_in_window", "opened_at")} == {
        "state": "closed",
        "calls_in_window": 3,
        "failures_in_window": 1,
        "opened_at": None,
    }
    assert snapshot["failure_rate"] == pytest.approx(1 / 3)
    verdicts(breaker, *[False] * 7)
    snapshot = json.loads(json.dumps(breaker.snapshot()))
    assert snapshot["state"] == "open"
    assert snapshot["opened_at"] == "2026-01-01T00:00:00+00:00"
    assert snapshot["open_until"] == "2026-01-01T00:00:30+00:00"
    assert (snapshot["consecutive_opens"], snapshot["trial_in_flight"]) == (1, False)


@pytest.mark.parametrize(
    "bad",
    [
        {"window_s": 0},
        {"min_calls": 0},
        {"failure_rate": 0},
        {"failure_rate": 1.5},
        {"max_open_s": 1},
        {"backoff": 0.5},
    ],
)
def test_nonsense_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("x", **bad)  # type: ignore[arg-type]


def test_alone_transitions_are_not_kept_for_sharing(breaker: CircuitBreaker) -> None:
    verdicts(breaker, *[False] * 10)
    assert breaker.state == "open" and breaker.pending is None


def test_transitions_decided_here_are_kept_for_sharing_with_their_ends(
    breaker: CircuitBreaker, clock: ManualClock
) -> None:
    breaker.pending = []
    start = clock.monotonic()
    verdicts(breaker, *[False] * 10)
    clock.advance(30)
    trial = breaker.acquire()
    assert trial is not None and trial.trial
    trial.release()
    trial = breaker.acquire()
    assert trial is not None
    trial.record(healthy=True)
    assert breaker.pending == [
        {"op": "open", "until": start + 30, "opens": 1},
        {"op": "release"},
        {"op": "close"},
    ]


def test_adopting_the_shared_state_moves_the_breaker_without_telling_it_back(
    breaker: CircuitBreaker, clock: ManualClock, transitions: list[tuple[str, str, str]]
) -> None:
    breaker.pending = []
    closed_permit = breaker.acquire()
    assert closed_permit is not None
    breaker.adopt("open", 12.5, 2, trial_busy=False)  # another process tripped it
    assert (breaker.state, breaker.retry_in(), breaker.acquire()) == ("open", 12.5, None)
    closed_permit.record(healthy=False)  # begun before the transition: ignored
    breaker.adopt("half_open", 0.0, 2, trial_busy=True)  # another process holds the trial
    assert (breaker.state, breaker.acquire()) == ("half_open", None)
    breaker.adopt("half_open", 0.0, 2, trial_busy=False)
    mine = breaker.acquire()
    assert mine is not None and mine.trial
    breaker.adopt("half_open", 0.0, 2, trial_busy=True)  # that is this process's own claim: still ours
    assert breaker.acquire() is None
    breaker.adopt("closed", 0.0, 0, trial_busy=False)  # the trial was settled elsewhere
    assert breaker.state == "closed" and breaker.snapshot()["consecutive_opens"] == 0
    mine.record(healthy=False)  # a verdict from before the close: ignored
    assert breaker.state == "closed"
    assert breaker.pending == []
    assert transitions == [
        ("anthropic", "closed", "open"),
        ("anthropic", "open", "half_open"),
        ("anthropic", "half_open", "closed"),
    ]
