"""The retry policy's axes, alone and together."""

from __future__ import annotations

import random

import pytest

from pulsegate.core.errors import ErrorClass, ProviderError
from pulsegate.core.retry import (
    RetryPolicy,
    RetryState,
    stop_after_attempt,
    stop_before_deadline,
    wait_exponential_full_jitter,
    wait_retry_after,
)


def state(
    error_class: ErrorClass,
    attempts: int = 1,
    *,
    retry_after: float | None = None,
    remaining: float | None = 60,
    streak: int = 1,
) -> RetryState:
    error = ProviderError("x", error_class=error_class, retry_after=retry_after)
    return RetryState(attempts, error, 0.0, remaining, streak)


@pytest.mark.parametrize(
    "error_class",
    [
        ErrorClass.RATE_LIMITED,
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
    ],
)
def test_transient_classes_are_retried(error_class: ErrorClass) -> None:
    assert RetryPolicy().decide(state(error_class)).retry


@pytest.mark.parametrize(
    "error_class",
    [
        ErrorClass.BAD_REQUEST,
        ErrorClass.AUTH,
        ErrorClass.NOT_FOUND,
        ErrorClass.TOO_LARGE,
        ErrorClass.QUOTA,
        ErrorClass.VALIDATION,
    ],
)
def test_request_and_key_problems_are_never_retried(error_class: ErrorClass) -> None:
    assert not RetryPolicy().decide(state(error_class)).retry


def test_an_overload_is_retried_once_then_left_to_fallback() -> None:
    policy = RetryPolicy()
    assert policy.decide(state(ErrorClass.OVERLOADED, 1, streak=1)).retry
    assert not policy.decide(state(ErrorClass.OVERLOADED, 2, streak=2)).retry
    assert policy.decide(state(ErrorClass.SERVER_ERROR, 2, streak=2)).retry


def test_full_jitter_stays_within_the_growing_capped_ceiling() -> None:
    wait = wait_exponential_full_jitter(base_s=0.5, cap_s=8, rng=random.Random(7))
    for attempts, ceiling in [(1, 0.5), (2, 1), (3, 2), (4, 4), (5, 8), (9, 8)]:
        samples = [wait(state(ErrorClass.SERVER_ERROR, attempts)) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling * 0.8  # the whole range is used


def test_retry_after_wins_over_backoff_and_is_bounded() -> None:
    wait = wait_retry_after(wait_exponential_full_jitter(rng=random.Random(1)), max_s=120)
    assert wait(state(ErrorClass.RATE_LIMITED, retry_after=7)) == 7
    assert wait(state(ErrorClass.RATE_LIMITED, retry_after=900)) == 120
    assert 0 <= wait(state(ErrorClass.RATE_LIMITED, retry_after=None)) <= 0.5


def test_stop_after_attempts_and_before_the_deadline() -> None:
    policy = RetryPolicy(stop=stop_after_attempt(3) | stop_before_deadline(min_attempt_s=0.05))
    assert policy.decide(state(ErrorClass.SERVER_ERROR, 2)).retry
    assert not policy.decide(state(ErrorClass.SERVER_ERROR, 3)).retry
    assert not policy.decide(state(ErrorClass.RATE_LIMITED, 1, retry_after=10, remaining=9)).retry
    assert policy.decide(state(ErrorClass.RATE_LIMITED, 1, retry_after=10, remaining=11)).retry
    with pytest.raises(ValueError, match="at least 1 attempt"):
        stop_after_attempt(0)
