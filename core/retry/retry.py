"""Which failures are worth another attempt (tenacity's ``retry`` axis)."""

from __future__ import annotations

from collections.abc import Iterable

from pulsegate.core.errors import ErrorClass
from pulsegate.core.retry.state import RetryState

#: Transient provider-side classes. Never retried: bad_request, auth, not_found, too_large, quota (a request or key
#: problem does not heal by waiting) and every Pulsegate-side class.
RETRYABLE: frozenset[ErrorClass] = frozenset(
    {ErrorClass.RATE_LIMITED, ErrorClass.OVERLOADED, ErrorClass.SERVER_ERROR, ErrorClass.TIMEOUT, ErrorClass.CONNECTION}
)


class RetryCondition:
    def __call__(self, state: RetryState) -> bool:
        raise NotImplementedError

    def __and__(self, other: RetryCondition) -> RetryCondition:
        return _All(self, other)


class _All(RetryCondition):
    def __init__(self, *conditions: RetryCondition) -> None:
        self.conditions = conditions

    def __call__(self, state: RetryState) -> bool:
        return all(condition(state) for condition in self.conditions)


class retry_if_error_class(RetryCondition):
    def __init__(self, classes: Iterable[ErrorClass] = RETRYABLE) -> None:
        self.classes = frozenset(classes)

    def __call__(self, state: RetryState) -> bool:
        return state.error.error_class in self.classes


class retry_streak_below(RetryCondition):
    """At most ``limit`` retries in a row for one class — e.g. a 529 is provider-wide: retry once, then fall back."""

    def __init__(self, error_class: ErrorClass, limit: int) -> None:
        self.error_class = error_class
        self.limit = limit

    def __call__(self, state: RetryState) -> bool:
        return state.error.error_class != self.error_class or state.same_class_streak <= self.limit
