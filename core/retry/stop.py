"""When to stop retrying (tenacity's ``stop`` axis): after N attempts, or when the deadline cannot fit the wait."""

from __future__ import annotations

from pulsegate.core.retry.state import RetryState


class StopCondition:
    def __call__(self, state: RetryState, next_wait_s: float) -> bool:
        raise NotImplementedError

    def __or__(self, other: StopCondition) -> StopCondition:
        return _Any(self, other)


class _Any(StopCondition):
    def __init__(self, *conditions: StopCondition) -> None:
        self.conditions = conditions

    def __call__(self, state: RetryState, next_wait_s: float) -> bool:
        return any(condition(state, next_wait_s) for condition in self.conditions)


class stop_after_attempt(StopCondition):
    def __init__(self, attempts: int) -> None:
        if attempts < 1:
            raise ValueError(f"stop_after_attempt needs at least 1 attempt, got {attempts}")
        self.attempts = attempts

    def __call__(self, state: RetryState, next_wait_s: float) -> bool:
        return state.attempts >= self.attempts


class stop_before_deadline(StopCondition):
    """Stop when waiting would leave less than ``min_attempt_s`` for the next attempt: no call outlives its deadline."""

    def __init__(self, min_attempt_s: float = 0.05) -> None:
        self.min_attempt_s = min_attempt_s

    def __call__(self, state: RetryState, next_wait_s: float) -> bool:
        return state.remaining_s is not None and state.remaining_s - next_wait_s < self.min_attempt_s
