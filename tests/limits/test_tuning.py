"""The AIMD controller of self-tuning limits, step by step on a manual clock: exact effective limits and reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.api_keys import ApiKey, Provider
from core.clock import ManualClock
from core.errors import CallError, ErrorClass
from core.limit_signals import observe_attempt
from core.limits.base import Demand, LimitSpec
from core.limits.tuning import LimitScope, LimitTuner, TuningPolicy
from core.provider_runtime import KeyLimits, ProviderRuntime
from core.providers.rate_limit_headers import RateLimitHeaders, Window

RPM = LimitSpec(100.0)
NAME = "anthropic:rpm"
SCOPE = LimitScope("anthropic", "rpm")
FAST = TuningPolicy(recover_after=3, recover_every_s=10.0, recover_step_fraction=0.1)


def effective(tuner: LimitTuner, name: str = NAME, ceiling: LimitSpec = RPM) -> float:
    return tuner.spec(name, ceiling).limit


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


def test_recovery_needs_successes_and_a_quiet_interval_and_stops_at_the_ceiling(clock: ManualClock) -> None:
    tuner = LimitTuner(clock, FAST)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429 on key 'Primary' (retry-after 2 s)")
    assert tuner.recovering
    trace = []
    for _ in range(8):  # 3 successes per second for 8 s: enough successes, but not yet quiet for 10 s
        clock.advance(1.0)
        for _ in range(3):
            tuner.success(NAME, SCOPE, RPM)
        trace.append(effective(tuner))
    assert trace == [50.0] * 8
    clock.advance(2.0)
    tuner.success(NAME, SCOPE, RPM)  # 10 s since the decrease and 25 successes: +10 % of the ceiling
    assert effective(tuner) == 60.0
    steps = []
    for _ in range(6):
        clock.advance(10.0)
        for _ in range(3):
            tuner.success(NAME, SCOPE, RPM)
        steps.append(effective(tuner))
    assert steps == [70.0, 80.0, 90.0, 100.0, 100.0, 100.0]
    reasons = [c["reason"] for c in tuner.changes()]
    assert reasons == [
        "429 on key 'Primary' (retry-after 2 s)",
        "recovering: 3 successes without a 429",
        "recovering: 3 successes without a 429",
        "recovering: 3 successes without a 429",
        "recovering: 3 successes without a 429",
        "back at the configured ceiling: 3 successes without a 429",
    ]
    assert tuner.spec(NAME, RPM) is RPM  # at the ceiling the configured spec itself is charged
    assert not tuner.recovering  # so a plain success skips the controller altogether


def test_a_429_resets_the_success_count(clock: ManualClock) -> None:
    tuner = LimitTuner(clock, FAST)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    clock.advance(20.0)
    tuner.success(NAME, SCOPE, RPM)
    tuner.success(NAME, SCOPE, RPM)
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")  # 25
    clock.advance(10.0)
    tuner.success(NAME, SCOPE, RPM)
    tuner.success(NAME, SCOPE, RPM)
    assert effective(tuner) == 25.0
    tuner.success(NAME, SCOPE, RPM)
    assert effective(tuner) == 35.0


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
    assert effective(tuner, name, LimitSpec(60.0)) == 40.0  # a higher ceiling is earned back additively
    assert effective(tuner, name, LimitSpec(30.0)) == 30.0  # clamped under a lower one
    change = tuner.changes()[-1]
    assert change["reason"] == "the provider states 30 requests per 60 s"
    assert (change["key_label"], change["configured"], change["before"], change["after"]) == (
        "Primary",
        None,
        40.0,
        30.0,
    )


def test_waiting_demands_are_respecced(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    waiting = [Demand(NAME, RPM, 1.0), Demand("user:u:rpm", LimitSpec(5.0), 1.0)]
    tuner.decrease(NAME, SCOPE, RPM, 0.5, "429")
    respecced = tuner.respec(waiting)
    assert [d.spec.limit for d in respecced] == [50.0, 5.0]


def test_bad_policies_are_refused() -> None:
    with pytest.raises(ValueError, match=r"TuningPolicy.floor_fraction must be between 0 and 1"):
        TuningPolicy(floor_fraction=0)


# --- signals: what one attempt says --------------------------------------------------------------------------


def _runtime(tuner: LimitTuner, key_limits: dict[str, KeyLimits] | None = None) -> ProviderRuntime:
    class _Queue:
        respec = None

    return ProviderRuntime(
        provider=Provider.ANTHROPIC,
        pool=None,  # type: ignore[arg-type]
        adapter=None,  # type: ignore[arg-type]
        queue=_Queue(),  # type: ignore[arg-type]
        breaker=None,  # type: ignore[arg-type]
        rpm=LimitSpec(100.0),
        tpm=LimitSpec(10_000.0),
        period_s=60.0,
        key_limits=key_limits or {},
        tuner=tuner,
    )


KEY = ApiKey(Provider.ANTHROPIC, "Primary", "ANTHROPIC_API_KEY", "sk-ant-test-primary-xxxxxxxxxxxxxxxxxxxxxxxx")


def _limits(runtime: ProviderRuntime) -> dict[str, float]:
    names = [runtime.rpm_key, runtime.tpm_key]
    ceilings = [runtime.rpm, runtime.tpm]
    own = runtime.key_limits.get(KEY.fingerprint)
    if own is not None and own.rpm is not None:
        names.append(runtime.key_limit_name(KEY, "rpm"))
        ceilings.append(own.rpm)
    return {
        n.replace(KEY.fingerprint, "K"): runtime.effective(n, c).limit for n, c in zip(names, ceilings, strict=True)
    }


def test_a_429_halves_the_limits_its_headers_name_or_all_of_them(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    runtime = _runtime(tuner, {KEY.fingerprint: KeyLimits(rpm=LimitSpec(20.0))})
    error = CallError("slow down", error_class=ErrorClass.RATE_LIMITED, retry_after=2.0)
    spent_tokens = RateLimitHeaders(Window(50, 30, 1.0), Window(8000, 100, 5.0))
    observe_attempt(tuner, runtime, KEY, spent_tokens, error)
    assert _limits(runtime) == {"anthropic:rpm": 100.0, "anthropic:tpm": 5000.0, "anthropic:key:K:rpm": 20.0}
    clock.advance(3.0)
    observe_attempt(tuner, runtime, KEY, None, error)  # no headers: every limit the call was charged to
    assert _limits(runtime) == {"anthropic:rpm": 50.0, "anthropic:tpm": 2500.0, "anthropic:key:K:rpm": 10.0}
    assert tuner.changes()[0]["reason"] == "429 on key 'Primary' (retry-after 2 s)"
    assert tuner.changes()[-1]["key_label"] == "Primary"


def test_low_remaining_headers_take_that_kind_down_by_a_fifth(clock: ManualClock) -> None:
    tuner = LimitTuner(clock)
    runtime = _runtime(tuner)
    observe_attempt(tuner, runtime, KEY, RateLimitHeaders(Window(50, 2, 1.0), Window(8000, 4000, 1.0)), None)
    assert _limits(runtime) == {"anthropic:rpm": 80.0, "anthropic:tpm": 10_000.0}
    assert tuner.changes()[0]["reason"] == "provider reports 4 % of requests left on key 'Primary'"
    other = CallError("overloaded", error_class=ErrorClass.OVERLOADED)
    clock.advance(60.0)
    observe_attempt(tuner, runtime, KEY, None, other)  # not a limit signal
    assert _limits(runtime)["anthropic:rpm"] == 80.0
    assert tuner.changes()[0]["ts"] == datetime(2026, 1, 1, tzinfo=UTC).isoformat()
