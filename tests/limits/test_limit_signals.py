"""What one attempt tells the limit tuner (pulsegate.core.limit_signals), on a manual clock with a real key pool.

A 429 on one key lowers that key's limits only; the provider's only when at least half of its usable keys got a 429
in the last 30 s. Low remaining quota is pushback only beyond what this client itself sent on the key.
"""

from __future__ import annotations

import pytest

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import CallError, ErrorClass
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limit_signals import observe_attempt
from pulsegate.core.limits.base import LimitSpec
from pulsegate.core.limits.own_use import OwnUse
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import KeyLimits, ProviderRuntime
from pulsegate.core.providers.rate_limit_headers import RateLimitHeaders, Window

KEYS = [
    ApiKey(Provider.ANTHROPIC, label, f"ANTHROPIC_API_KEY{suffix}", f"sk-ant-test-{label[0]}{suffix}-{'x' * 24}")
    for label, suffix in (("Primary", ""), ("Backup 1", "_2"), ("Backup 2", "_3"))
]
PRIMARY, BACKUP1, BACKUP2 = KEYS
TOO_MANY = CallError("slow down", error_class=ErrorClass.RATE_LIMITED, retry_after=2.0)


class _Queue:
    respec = None
    retune_at = None


def runtime_for(
    clock: ManualClock, keys: list[ApiKey] = KEYS, key_rpm: float | None = 20.0, rpm: float = 300.0
) -> ProviderRuntime:
    tuner = LimitTuner(clock)
    key_limits = {k.fingerprint: KeyLimits(rpm=LimitSpec(key_rpm)) for k in keys} if key_rpm else {}
    return ProviderRuntime(
        provider=Provider.ANTHROPIC,
        pool=KeyPool(Provider.ANTHROPIC, keys, clock),
        adapter=None,  # type: ignore[arg-type]
        queue=_Queue(),  # type: ignore[arg-type]
        breaker=None,  # type: ignore[arg-type]
        rpm=LimitSpec(rpm),
        tpm=LimitSpec(10_000.0),
        period_s=60.0,
        key_limits=key_limits,
        tuner=tuner,
        own_use=OwnUse(60.0),
    )


def limits(runtime: ProviderRuntime) -> dict[str, float]:
    """Effective limits: the provider's rpm / tpm and each key's own rpm, by label."""
    shown = {
        "rpm": runtime.effective(runtime.rpm_key, runtime.rpm).limit,
        "tpm": runtime.effective(runtime.tpm_key, runtime.tpm).limit,  # type: ignore[arg-type]
    }
    for key in runtime.pool.keys:
        own = runtime.key_limits.get(key.fingerprint)
        if own is not None and own.rpm is not None:
            shown[key.label] = runtime.effective(runtime.key_limit_name(key, "rpm"), own.rpm).limit
    return shown


def refused(runtime: ProviderRuntime, key: ApiKey, headers: RateLimitHeaders | None = None) -> None:
    runtime.pool.state(key).record_failure(runtime.pool.clock.monotonic(), ErrorClass.RATE_LIMITED, 2.0)
    observe_attempt(runtime.tuner, runtime, key, headers, TOO_MANY)  # type: ignore[arg-type]


def test_a_429_on_one_of_three_keys_lowers_that_key_only(clock: ManualClock) -> None:
    runtime = runtime_for(clock)
    refused(runtime, BACKUP1)
    assert limits(runtime) == {"rpm": 300.0, "tpm": 10_000.0, "Primary": 20.0, "Backup 1": 10.0, "Backup 2": 20.0}
    assert [(c["key_label"], c["after"], c["reason"]) for c in runtime.tuner.changes()] == [  # type: ignore[union-attr]
        ("Backup 1", 10.0, "429 on key 'Backup 1' (retry-after 2 s)")
    ]


def test_the_demo_s_pressure_on_one_key_never_moves_the_provider_limit(clock: ManualClock) -> None:
    runtime = runtime_for(clock, key_rpm=None)  # keys without limits of their own, as with the emulator's defaults
    for _ in range(120):  # a 429 on Backup 1 every half second for a minute
        refused(runtime, BACKUP1)
        clock.advance(0.5)
    assert limits(runtime) == {"rpm": 300.0, "tpm": 10_000.0}
    assert runtime.tuner.changes() == []  # type: ignore[union-attr]


def test_429s_on_two_of_three_keys_within_30_s_halve_the_provider_limit(clock: ManualClock) -> None:
    runtime = runtime_for(clock)
    refused(runtime, PRIMARY)
    clock.advance(30.0)  # still "in the last 30 s": the window includes its edge
    refused(runtime, BACKUP2)
    # Primary's own limit, halved 30 s ago, is half-way back already
    assert limits(runtime) == {"rpm": 150.0, "tpm": 5_000.0, "Primary": 15.0, "Backup 1": 20.0, "Backup 2": 10.0}
    provider = [c for c in runtime.tuner.changes() if c["key_label"] is None]  # type: ignore[union-attr]
    assert [(c["kind"], c["after"], c["reason"]) for c in provider] == [
        ("rpm", 150.0, "429s on 2 of 3 usable keys within 30 s, the last on key 'Backup 2' (retry-after 2 s)"),
        ("tpm", 5_000.0, "429s on 2 of 3 usable keys within 30 s, the last on key 'Backup 2' (retry-after 2 s)"),
    ]


def test_429s_on_two_keys_further_apart_than_30_s_leave_the_provider_alone(clock: ManualClock) -> None:
    runtime = runtime_for(clock)
    refused(runtime, PRIMARY)
    clock.advance(30.001)
    refused(runtime, BACKUP2)
    assert limits(runtime)["rpm"] == 300.0
    clock.advance(29.0)
    refused(runtime, PRIMARY)  # Backup 2 (29 s ago) and Primary now: 2 of 3
    assert limits(runtime)["rpm"] == 150.0


def test_disabled_keys_are_not_counted_as_usable(clock: ManualClock) -> None:
    runtime = runtime_for(clock)
    runtime.pool.state(BACKUP2).record_failure(clock.monotonic(), ErrorClass.AUTH)  # revoked: disabled
    refused(runtime, PRIMARY)  # 1 of the 2 usable keys is half of them
    assert limits(runtime)["rpm"] == 150.0
    assert runtime.tuner.changes()[-1]["reason"] == (  # type: ignore[union-attr]
        "429s on 1 of 2 usable keys within 30 s, the last on key 'Primary' (retry-after 2 s)"
    )


def test_with_one_key_its_429_is_the_provider_s(clock: ManualClock) -> None:
    runtime = runtime_for(clock, keys=[PRIMARY])
    spent_tokens = RateLimitHeaders(Window(50, 30, 1.0), Window(8000, 100, 5.0))
    refused(runtime, PRIMARY, spent_tokens)  # the headers name tokens: only token limits move (the key has none)
    assert limits(runtime) == {"rpm": 300.0, "tpm": 5_000.0, "Primary": 20.0}
    clock.advance(3.0)
    refused(runtime, PRIMARY)  # no headers: every kind
    assert limits(runtime) == {"rpm": 150.0, "tpm": 2_500.0, "Primary": 10.0}


def test_the_provider_limit_is_back_60_s_after_its_last_decrease(clock: ManualClock) -> None:
    runtime = runtime_for(clock, key_rpm=None)
    refused(runtime, PRIMARY)
    refused(runtime, BACKUP1)  # 150 now
    clock.advance(40.0)
    refused(runtime, BACKUP2)  # one key alone: the provider limit goes on recovering
    assert limits(runtime)["rpm"] == 150.0 + 150.0 * 40 / 60
    clock.advance(19.999)
    assert limits(runtime)["rpm"] == 150.0 + 150.0 * 50 / 60
    clock.advance(0.001)
    assert limits(runtime)["rpm"] == 300.0


def _sent(runtime: ProviderRuntime, key: ApiKey, count: int, tokens: float = 100.0) -> None:
    for _ in range(count):
        runtime.own_use.sent(key.fingerprint, runtime.pool.clock.monotonic(), tokens)  # type: ignore[union-attr]


def low(remaining: int, limit: int = 60) -> RateLimitHeaders:
    return RateLimitHeaders(Window(limit, remaining, 30.0), None)


def test_low_remaining_explained_by_this_client_s_own_burst_is_not_pushback(clock: ManualClock) -> None:
    runtime = runtime_for(clock, key_rpm=60.0)
    _sent(runtime, PRIMARY, 58)  # our own limiter admitted a burst of 58 on the key
    observe_attempt(runtime.tuner, runtime, PRIMARY, low(2), None)  # type: ignore[arg-type]
    observe_attempt(runtime.tuner, runtime, PRIMARY, low(0), None)  # type: ignore[arg-type]  # 60 used, 2 elsewhere
    assert limits(runtime)["Primary"] == 60.0 and runtime.tuner.changes() == []  # type: ignore[union-attr]


@pytest.mark.parametrize(("own", "expected"), [(52, 60.0), (51, 48.0)])
def test_low_remaining_is_pushback_when_over_10_percent_was_used_elsewhere(
    clock: ManualClock, own: int, expected: float
) -> None:
    runtime = runtime_for(clock, key_rpm=60.0)
    _sent(runtime, PRIMARY, own)
    observe_attempt(runtime.tuner, runtime, PRIMARY, low(2), None)  # type: ignore[arg-type]
    # 58 used: 52 of ours leave 6 elsewhere, not over 10 % of 60; 51 leave 7: × 0.8 on that key only
    assert limits(runtime) == {"rpm": 300.0, "tpm": 10_000.0, "Primary": expected, "Backup 1": 60.0, "Backup 2": 60.0}


def test_own_use_older_than_the_period_no_longer_explains_anything(clock: ManualClock) -> None:
    runtime = runtime_for(clock, key_rpm=60.0)
    _sent(runtime, PRIMARY, 58)
    clock.advance(60.0)  # those 58 left the window: the provider's 58 used are someone else's now
    observe_attempt(runtime.tuner, runtime, PRIMARY, low(2), None)  # type: ignore[arg-type]
    assert limits(runtime)["Primary"] == 48.0
    assert runtime.tuner.changes()[-1]["reason"] == (  # type: ignore[union-attr]
        "provider reports 3 % of requests left on key 'Primary', 58 of the 58 used not sent by this client"
    )
    assert limits(runtime)["rpm"] == 300.0  # one key's headers are that key's business


def test_no_tuning_off_and_other_errors_move_nothing(clock: ManualClock) -> None:
    runtime = runtime_for(clock)
    overloaded = CallError("overloaded", error_class=ErrorClass.OVERLOADED)
    for key in KEYS:
        observe_attempt(runtime.tuner, runtime, key, None, overloaded)  # type: ignore[arg-type]
    runtime.tuner.enabled = False  # type: ignore[union-attr]
    for key in KEYS:
        refused(runtime, key)
    assert limits(runtime) == {"rpm": 300.0, "tpm": 10_000.0, "Primary": 20.0, "Backup 1": 20.0, "Backup 2": 20.0}
    assert runtime.tuner.changes() == []  # type: ignore[union-attr]
