"""The retry policy, one axis per module like tenacity: ``retry`` (which failures), ``wait`` (how long), ``stop``.

The call loop in :mod:`pulsegate.core.call.runner` asks a :class:`RetryPolicy`; it never sleeps or calls anything
itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pulsegate.core.errors import ErrorClass
from pulsegate.core.retry.retry import RETRYABLE, RetryCondition, retry_if_error_class, retry_streak_below
from pulsegate.core.retry.state import RetryState
from pulsegate.core.retry.stop import StopCondition, stop_after_attempt, stop_before_deadline
from pulsegate.core.retry.wait import WaitStrategy, wait_exponential_full_jitter, wait_retry_after


@dataclass(frozen=True, slots=True)
class RetryDecision:
    retry: bool
    wait_s: float = 0.0


def _default_retry() -> RetryCondition:
    return retry_if_error_class(RETRYABLE) & retry_streak_below(ErrorClass.OVERLOADED, 1)


@dataclass(slots=True)
class RetryPolicy:
    """Defaults: transient classes only, at most one retry of a 529, 4 attempts, full-jitter backoff from 0.5 s
    capped at 8 s, ``retry-after`` honoured, and never past the call's deadline."""

    retry: RetryCondition = field(default_factory=_default_retry)
    wait: WaitStrategy = field(default_factory=lambda: wait_retry_after(wait_exponential_full_jitter()))
    stop: StopCondition = field(default_factory=lambda: stop_after_attempt(4) | stop_before_deadline())

    def decide(self, state: RetryState) -> RetryDecision:
        if not self.retry(state):
            return RetryDecision(False)
        wait_s = self.wait(state)
        if self.stop(state, wait_s):
            return RetryDecision(False, wait_s)
        return RetryDecision(True, wait_s)


__all__ = [
    "RETRYABLE",
    "RetryDecision",
    "RetryPolicy",
    "RetryState",
    "retry_if_error_class",
    "retry_streak_below",
    "stop_after_attempt",
    "stop_before_deadline",
    "wait_exponential_full_jitter",
    "wait_retry_after",
]
