"""Key health: decaying score, statuses, cooldowns that honour retry-after and grow with repetition, disabling."""

from __future__ import annotations

import pytest

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from pulsegate.core.keys import HealthPolicy, KeyHealth, KeyPool, KeyStatus
from pulsegate.core.keys.health import PendingChanges, SharedKeyView
from pulsegate.core.provider import Provider

POLICY = HealthPolicy(
    half_life_s=60, failures_before_cooldown=3, cooldown_base_s=10, cooldown_growth=2, cooldown_cap_s=60
)


def test_a_new_key_is_healthy_at_100_and_one_failure_is_not_the_end() -> None:
    health = KeyHealth(POLICY)
    assert (health.score(0), health.status(0)) == (100.0, KeyStatus.HEALTHY)
    health.record_failure(0, ErrorClass.SERVER_ERROR)
    assert health.score(0) == 50.0
    assert health.status(0) is KeyStatus.DEGRADED


def test_score_decays_back_as_old_failures_age() -> None:
    health = KeyHealth(POLICY)
    for _ in range(4):
        health.record_failure(0, ErrorClass.TIMEOUT)
    health.reset_cooldown()
    assert health.score(0) == 20.0 and health.status(0) is KeyStatus.UNHEALTHY
    for _ in range(4):
        health.record_success(600)  # ten half-lives later the failures weigh ~0.1 %
    assert health.score(600) == pytest.approx(99.9, abs=0.1)
    assert health.status(600) is KeyStatus.HEALTHY


@pytest.mark.parametrize("error_class", [ErrorClass.OVERLOADED, ErrorClass.BAD_REQUEST, ErrorClass.NOT_FOUND])
def test_failures_that_are_not_the_keys_fault_leave_it_alone(error_class: ErrorClass) -> None:
    health = KeyHealth(POLICY)
    for _ in range(5):
        health.record_failure(0, error_class)
    assert (health.score(0), health.consecutive_failures, health.status(0)) == (100.0, 0, KeyStatus.HEALTHY)


def test_a_429_cools_the_key_for_its_retry_after() -> None:
    health = KeyHealth(POLICY)
    health.record_failure(100, ErrorClass.RATE_LIMITED, retry_after=42)
    assert health.status(100) is KeyStatus.COOLDOWN
    assert health.cooldown_remaining(100) == 42
    assert health.status(141.9) is KeyStatus.COOLDOWN
    assert health.status(142) is not KeyStatus.COOLDOWN
    health.record_failure(142, ErrorClass.RATE_LIMITED, retry_after=3)
    assert health.cooldown_remaining(142) == 3  # the provider knows its bucket better than our base


def test_repeated_cooldowns_grow_and_are_capped_and_success_resets_them() -> None:
    health = KeyHealth(POLICY)
    durations = []
    now = 0.0
    for _ in range(5):
        health.record_failure(now, ErrorClass.RATE_LIMITED)
        durations.append(health.cooldown_remaining(now))
        now += durations[-1]
    assert durations == [10, 20, 40, 60, 60]  # no retry-after: base doubling, capped
    health.record_success(now)
    health.record_failure(now, ErrorClass.RATE_LIMITED)
    assert health.cooldown_remaining(now) == 10


def test_consecutive_failures_cool_the_key_at_the_threshold() -> None:
    health = KeyHealth(POLICY)
    health.record_failure(0, ErrorClass.CONNECTION)
    health.record_failure(0, ErrorClass.SERVER_ERROR)
    assert health.status(0) is not KeyStatus.COOLDOWN
    health.record_failure(0, ErrorClass.TIMEOUT)
    assert health.status(0) is KeyStatus.COOLDOWN and health.cooldown_remaining(0) == 10


def test_failures_of_attempts_in_flight_when_the_cooldown_began_do_not_escalate_it() -> None:
    """Found by the load test (tests/hardening/test_load.py): a key back from a cooldown gets a burst of the calls
    that waited for it; errors come back before answers, so each of several failures re-cooled the key at double
    length (10 → 20 → 40 → 80 s) before the first success arrived, and both OpenAI keys sat out 80 s of a provider
    that answered 91 % of requests. One episode is one cooldown; a longer retry-after still extends it."""
    health = KeyHealth(POLICY)
    for _ in range(3):
        health.record_failure(0, ErrorClass.SERVER_ERROR)
    assert health.cooldown_remaining(0) == 10 and health.cooldown_streak == 1
    for _ in range(5):  # the rest of the burst fails while the key cools
        health.record_failure(1, ErrorClass.STREAM_INTERRUPTED)
    assert health.cooldown_remaining(1) == 9 and health.cooldown_streak == 1
    health.record_failure(2, ErrorClass.RATE_LIMITED, retry_after=1)  # shorter than what is left: no change
    assert health.cooldown_remaining(2) == 8 and health.cooldown_streak == 1
    health.record_failure(2, ErrorClass.RATE_LIMITED, retry_after=30)  # the provider asks for longer: honoured
    assert health.cooldown_remaining(2) == 30 and health.cooldown_streak == 1
    health.record_failure(32, ErrorClass.TIMEOUT)  # a failure after the cooldown: the repetition grows it
    assert health.cooldown_remaining(32) == 20 and health.cooldown_streak == 2


@pytest.mark.parametrize("error_class", [ErrorClass.AUTH, ErrorClass.QUOTA])
def test_auth_and_quota_disable_until_cleared(error_class: ErrorClass) -> None:
    health = KeyHealth(POLICY)
    health.record_failure(0, error_class)
    assert health.status(10_000) is KeyStatus.DISABLED
    assert health.disabled_reason == f"{error_class.value}: the provider refused this key"
    health.enable()
    assert health.status(10_000) is KeyStatus.HEALTHY and health.disabled_reason is None


def _keys(n: int) -> list[ApiKey]:
    return [ApiKey(Provider.OPENAI, f"K{i}", f"OPENAI_API_KEY_{i}", f"sk-test-{i}-{'z' * 20}") for i in range(n)]


def test_pool_round_robins_ties_and_prefers_fewer_in_flight() -> None:
    pool = KeyPool(Provider.OPENAI, _keys(3), ManualClock())
    order = []
    for _ in range(6):
        choice = pool.choose()
        assert choice is not None
        order.append(choice.key.label)
    assert order == ["K0", "K1", "K2", "K0", "K1", "K2"]
    pool.state(pool.keys[0]).in_flight = 2
    pool.state(pool.keys[1]).in_flight = 1
    choice = pool.choose()
    assert choice is not None and choice.key.label == "K2"


def test_pool_names_the_first_key_back_when_all_cool_and_none_when_all_disabled() -> None:
    clock = ManualClock()
    pool = KeyPool(Provider.OPENAI, _keys(2), clock)
    pool.state(pool.keys[0]).cooldown_until = clock.monotonic() + 9
    pool.state(pool.keys[1]).cooldown_until = clock.monotonic() + 4
    choice = pool.choose()
    assert choice is not None and (choice.key.label, choice.wait_s) == ("K1", 4)
    assert pool.has_usable() and not pool.has_usable(exclude={k.fingerprint for k in pool.keys})
    for key in pool.keys:
        pool.state(key).disable("operator")
    assert pool.choose() is None
    assert pool.why_unusable() == {"K0": "disabled (operator)", "K1": "disabled (operator)"}


def test_alone_nothing_is_kept_for_sharing() -> None:
    health = KeyHealth(POLICY)
    health.record_failure(0, ErrorClass.RATE_LIMITED, retry_after=5)
    health.disable("operator")
    assert health.pending is None


def test_shared_decisions_are_kept_in_order_with_the_outcome_weights() -> None:
    health = KeyHealth(POLICY)
    health.pending = PendingChanges()
    health.record_failure(100.0, ErrorClass.RATE_LIMITED, retry_after=5)
    health.record_success(101.0)  # after a cooldown: the next one starts from the base again, everywhere
    health.record_failure(102.0, ErrorClass.AUTH)
    health.enable()
    health.reset_cooldown()
    assert (health.pending.good, health.pending.total) == (1.0, 3.0)
    assert health.pending.ops == [
        {"op": "cool", "until": 105.0, "streak": 1},
        {"op": "calm"},
        {"op": "disable", "reason": "auth: the provider refused this key", "class": "auth"},
        {"op": "enable"},
        {"op": "reset"},
    ]


def test_adopting_the_shared_view_keeps_what_is_not_told_yet() -> None:
    health = KeyHealth(POLICY)
    health.pending = PendingChanges()
    view = SharedKeyView(
        good=3.0, total=4.0, cooldown_s=7.5, cooldown_streak=2, disabled_reason=None, disabled_class=None
    )
    health.adopt(view, 50.0)
    assert (health.score(50.0), health.status(50.0), health.cooldown_remaining(50.0)) == (80.0, KeyStatus.COOLDOWN, 7.5)
    assert health.cooldown_streak == 2
    health.record_success(50.0)  # learnt here since: counted on top of the shared weights, until told
    health.disable("operator")  # a decision not told yet: the local state stands
    health.adopt(view, 51.0)
    assert (health.score(51.0), health.status(51.0)) == (pytest.approx(83.3, abs=0.1), KeyStatus.DISABLED)
    health.pending.ops.clear()
    health.pending.good = health.pending.total = 0.0
    gone = SharedKeyView(
        good=0.0, total=0.0, cooldown_s=0.0, cooldown_streak=0, disabled_reason="auth", disabled_class="auth"
    )
    health.adopt(gone, 52.0)
    assert (health.status(52.0), health.disabled_class, health.cooldown_remaining(52.0)) == (
        KeyStatus.DISABLED,
        ErrorClass.AUTH,
        0.0,
    )
