"""The controller of self-tuning limits, step by step on a manual clock: exact effective limits, times and reasons."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulsegate.core.clock import ManualClock
from pulsegate.core.limits.base import Demand, LimitSpec
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.limits.tuning import LimitScope, TuningPolicy

RPM = LimitSpec(100.0)
NAME = "anthropic:rpm"
SCOPE = LimitScope("anthropic", "rpm")
START = datetime(2026, 1, 1, tzinfo=UTC)


def effective(tuner: LimitTuner, name: str = NAME, ceiling: LimitSpec = RPM) -> float:
    return tuner.spec(name, ceiling).limit


def at(seconds: float) -> str:
    return (START + timedelta(seconds=seconds)).isoformat()


def test_a_burst_of_429s_halves_once_then_each_guard_interval_halves_again(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    seen = []
    for _ in range(40):  # forty concurrent 429s land within the guard interval
        tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    seen.append(effective(tuner))
    clock.advance(1.9)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    seen.append(effective(tuner))
    clock.advance(0.1)  # the guard (2 s) is over: a new burst
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    seen.append(effective(tuner))
    for _ in range(10):
        clock.advance(2.0)
        tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
        seen.append(effective(tuner))
    assert seen == [50.0, 50.0, 25.0, 12.5, 6.25, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]  # floor: 5 % of 100
    assert [c["after"] for c in tuner.changes()] == [50.0, 25.0, 12.5, 6.25, 5.0]
    assert [c["seq"] for c in tuner.changes()] == [1, 2, 3, 4, 5]


def test_the_strongest_signal_of_a_burst_wins_against_the_limit_before_it(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    assert tuner.decrease(NAME, SCOPE, RPM, 0.8, "low")
    assert effective(tuner) == 80.0
    assert not tuner.decrease(NAME, SCOPE, RPM, 0.8, "low again")  # same burst, not stronger
    clock.advance(1.0)
    assert tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")  # stronger, same burst: half of 100, not of 80
    assert effective(tuner) == 50.0
    assert [(c["before"], c["after"], c["reason"]) for c in tuner.changes()] == [
        (100.0, 80.0, "low"),
        (80.0, 50.0, "429"),
    ]


def test_back_at_the_ceiling_60_s_after_the_last_429_on_a_straight_line_in_10_s_steps(clock: ManualClock) -> None:
    ceiling = LimitSpec(300.0)
    tuner = LimitTuner(clock)
    for burst in range(5):  # 300 → 150 → 75 → 37.5 → 18.75 → 15 (the floor), one burst every 2 s
        clock.advance(2.0 if burst else 0.0)
        tuner.decrease(NAME, SCOPE, ceiling, 0.5, "429 on key 'Primary'")
    assert effective(tuner, ceiling=ceiling) == 15.0
    last = clock.monotonic()
    trace = {}
    for offset in (9.999, 10.0, 19.999, 20.0, 30.0, 40.0, 50.0, 59.999, 60.0, 61.0):
        clock.advance(last + offset - clock.monotonic())
        trace[offset] = effective(tuner, ceiling=ceiling)
    assert trace == {
        9.999: 15.0,
        10.0: 62.5,  # 15 + (300 - 15) × 10/60
        19.999: 62.5,
        20.0: 110.0,
        30.0: 157.5,
        40.0: 205.0,
        50.0: 252.5,
        59.999: 252.5,
        60.0: 300.0,  # exactly 60 s after the last 429
        61.0: 300.0,
    }
    assert tuner.spec(NAME, ceiling) is ceiling  # at the ceiling the configured spec itself is charged
    assert not tuner.recovering


def test_steps_are_recorded_at_the_time_they_fell_due_even_when_read_late(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429 on key 'Primary' (retry-after 2 s)")
    assert tuner.next_step_at() == 1010.0
    clock.advance(300.0)  # nobody looked for five minutes
    assert effective(tuner) == 100.0
    assert [(c["ts"], c["before"], c["after"], c["reason"]) for c in tuner.changes()] == [
        (at(0), 100.0, 50.0, "429 on key 'Primary' (retry-after 2 s)"),
        (at(10), 50.0, pytest.approx(58.333333), "recovering: 10 s since the last pushback"),
        (at(20), pytest.approx(58.333333), pytest.approx(66.666667), "recovering: 20 s since the last pushback"),
        (at(30), pytest.approx(66.666667), 75.0, "recovering: 30 s since the last pushback"),
        (at(40), 75.0, pytest.approx(83.333333), "recovering: 40 s since the last pushback"),
        (at(50), pytest.approx(83.333333), pytest.approx(91.666667), "recovering: 50 s since the last pushback"),
        (at(60), pytest.approx(91.666667), 100.0, "back at the configured ceiling: 60 s since the last pushback"),
    ]
    assert tuner.next_step_at() is None


def test_a_429_during_recovery_restarts_the_line_from_the_new_value(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")  # 50 at +0
    clock.advance(30.0)
    assert effective(tuner) == 75.0
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")  # 37.5 at +30: the next 60 s start now
    clock.advance(59.999)
    assert effective(tuner) == 37.5 + 62.5 * 50 / 60
    clock.advance(0.001)
    assert effective(tuner) == 100.0


def test_a_429_at_the_floor_changes_nothing_but_restarts_the_schedule(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    for burst in range(6):
        clock.advance(2.0 if burst else 0.0)
        tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    assert effective(tuner) == 5.0  # at the floor since +8 s
    clock.advance(9.0)  # +19 s, before the first step (+20 s)
    assert not tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")  # still pushed back: nothing lower, the clock restarts
    clock.advance(9.999)
    assert effective(tuner) == 5.0  # no step at +20 s any more: the next is due at +29 s
    clock.advance(0.001)
    assert effective(tuner) == 5.0 + 95.0 * 10 / 60
    clock.advance(49.999)
    assert effective(tuner) == 5.0 + 95.0 * 50 / 60
    clock.advance(0.001)
    assert effective(tuner) == 100.0  # 60 s after the last 429


def test_off_means_always_at_the_ceiling(clock: ManualClock) -> None:
    tuner = LimitTuner(clock, enabled=False)
    assert not tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    assert effective(tuner) == 100.0 and tuner.changes() == []


def test_a_new_stated_ceiling_is_followed_from_the_top_and_clamps_a_tuned_limit(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    learned = LimitScope("anthropic", "rpm", "Primary", configured=False)
    name = "anthropic:key:abc:rpm"
    tuner.decrease(name, learned, LimitSpec(50.0), 0.8, "low")
    assert effective(tuner, name, LimitSpec(50.0)) == 40.0
    assert effective(tuner, name, LimitSpec(60.0)) == 40.0  # a higher ceiling is earned back on the schedule
    assert effective(tuner, name, LimitSpec(30.0)) == 30.0  # clamped under a lower one
    change = tuner.changes()[-1]
    assert change["reason"] == "the provider states 30 requests per 60 s"
    assert (change["key_label"], change["configured"], change["before"], change["after"]) == (
        "Primary",
        None,
        40.0,
        30.0,
    )
    clock.advance(60.0)
    assert effective(tuner, name, LimitSpec(30.0)) == 30.0
    assert len(tuner.changes()) == 2  # clamped to the new ceiling means at the top: nothing left to recover


def test_a_learned_limit_recovers_to_the_provider_s_stated_limit(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    learned = LimitScope("anthropic", "rpm", "Primary", configured=False)
    tuner.decrease("anthropic:key:abc:rpm", learned, LimitSpec(50.0), 0.5, "429 on key 'Primary'")
    clock.advance(60.0)
    assert effective(tuner, "anthropic:key:abc:rpm", LimitSpec(50.0)) == 50.0
    change = tuner.changes()[-1]
    assert (change["reason"], change["configured"]) == ("back at the provider's stated limit: 60 s since the last "
                                                        "pushback", None)  # fmt: skip


def test_waiting_demands_are_respecced_and_follow_the_recovery(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    waiting = [Demand(NAME, RPM, 1.0), Demand("user:u:rpm", LimitSpec(5.0), 1.0)]
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    assert [d.spec.limit for d in tuner.respec(waiting)] == [50.0, 5.0]
    clock.advance(60.0)
    assert [d.spec.limit for d in tuner.respec(waiting)] == [100.0, 5.0]


def test_the_recovery_schedule_can_be_changed() -> None:
    policy = TuningPolicy(recover_hold_s=5.0, recover_every_s=20.0, recover_within_s=45.0)
    assert policy.recovery_offsets() == (5.0, 25.0, 45.0)
    assert TuningPolicy().recovery_offsets() == (10.0, 20.0, 30.0, 40.0, 50.0, 60.0)


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match=r"TuningPolicy.floor_fraction must be between 0 and 1"):
        TuningPolicy(floor_fraction=0)
    with pytest.raises(ValueError, match=r"TuningPolicy.provider_key_share must be in \(0, 1\], got 0"):
        TuningPolicy(provider_key_share=0)
    with pytest.raises(ValueError, match=r"recover_hold_s <= recover_within_s .* got hold 70.0, every 10.0, within"):
        TuningPolicy(recover_hold_s=70.0)
    with pytest.raises(ValueError, match=r"TuningPolicy.provider_window_s must be a number of seconds >= 0"):
        TuningPolicy(provider_window_s=float("nan"))
