"""One key's health: a decaying score, a cooldown that grows with repetition, and a disabled state.

Only failures that say something about the key count against it: its own 429, auth and quota (key-scoped), and
server errors, timeouts and connection failures seen through it. An overload (529) is provider-wide and a bad
request is the caller's: neither touches the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pulsegate.core.errors import ErrorClass


class KeyStatus(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"
    COOLDOWN = "cooldown"
    DISABLED = "disabled"


#: A key that answers these is out until an operator or a successful probe clears it.
DISABLING: frozenset[ErrorClass] = frozenset({ErrorClass.AUTH, ErrorClass.QUOTA})
#: Failures that count against the key's score and consecutive-failure count.
KEY_FAILURES: frozenset[ErrorClass] = frozenset(
    {
        ErrorClass.RATE_LIMITED,
        ErrorClass.AUTH,
        ErrorClass.QUOTA,
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.STREAM_INTERRUPTED,
    }
)


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    half_life_s: float = 60.0  # how fast old outcomes stop mattering
    degraded_below: float = 80.0
    unhealthy_below: float = 50.0
    failures_before_cooldown: int = 3
    cooldown_base_s: float = 10.0
    cooldown_growth: float = 2.0
    cooldown_cap_s: float = 300.0


#: Changes kept for a shared-state backend at most (while Redis is down they pile up; the newest matter).
MAX_PENDING_OPS = 32


@dataclass(slots=True)
class PendingChanges:
    """What this process learnt about a key since it last told the shared state: outcome weights to add, and the
    cooldown / disable / enable / reset decisions in the order they were taken."""

    good: float = 0.0
    total: float = 0.0
    ops: list[dict[str, Any]] = field(default_factory=list)
    sending: int = 0  # exchanges in flight carrying this key's decisions

    def add(self, op: dict[str, Any]) -> None:
        self.ops.append(op)
        if len(self.ops) > MAX_PENDING_OPS:
            del self.ops[0]


@dataclass(frozen=True, slots=True)
class SharedKeyView:
    """A key as the shared state sees it, all processes together: decayed outcome weights, the cooldown left, its
    growth streak and the disabled state."""

    good: float
    total: float
    cooldown_s: float
    cooldown_streak: int
    disabled_reason: str | None
    disabled_class: str | None


class KeyHealth:
    """Mutable health of one key; every method takes ``now`` (monotonic seconds) so tests control time.

    With a shared-state backend (:mod:`pulsegate.core.shared_state`), ``pending`` collects what must be told to the
    other processes and :meth:`adopt` takes their common view; alone, ``pending`` is ``None`` and nothing is kept.
    The consecutive-failure count stays per process: each process cools a key down on its own streak, and the
    cooldown it decides is then obeyed by all.
    """

    __slots__ = (
        "_good",
        "_total",
        "_updated_at",
        "consecutive_failures",
        "cooldown_streak",
        "cooldown_until",
        "disabled_class",
        "disabled_reason",
        "in_flight",
        "last_error_class",
        "pending",
        "policy",
        "requests",
    )

    def __init__(self, policy: HealthPolicy) -> None:
        self.policy = policy
        self._good = 0.0
        self._total = 0.0
        self._updated_at: float | None = None
        self.consecutive_failures = 0
        self.cooldown_streak = 0
        self.cooldown_until = 0.0
        self.disabled_reason: str | None = None
        self.disabled_class: ErrorClass | None = None
        self.last_error_class: ErrorClass | None = None
        self.requests = 0
        self.in_flight = 0
        self.pending: PendingChanges | None = None

    def _decay(self, now: float) -> None:
        if self._updated_at is not None and now > self._updated_at:
            factor = 0.5 ** ((now - self._updated_at) / self.policy.half_life_s)
            self._good *= factor
            self._total *= factor
        self._updated_at = now

    def score(self, now: float) -> float:
        """0–100. One imagined success acts as a prior, so a new key starts at 100 and one failure is not 0."""
        self._decay(now)
        return round(100.0 * (self._good + 1.0) / (self._total + 1.0), 1)

    def status(self, now: float) -> KeyStatus:
        if self.disabled_reason is not None:
            return KeyStatus.DISABLED
        if now < self.cooldown_until:
            return KeyStatus.COOLDOWN
        if self._good == self._total:
            return KeyStatus.HEALTHY  # no failure carries weight: the score is 100 (the hot path on every call)
        score = self.score(now)
        if score < self.policy.unhealthy_below:
            return KeyStatus.UNHEALTHY
        if score < self.policy.degraded_below:
            return KeyStatus.DEGRADED
        return KeyStatus.HEALTHY

    def record_success(self, now: float) -> None:
        self._decay(now)
        self._good += 1.0
        self._total += 1.0
        self.consecutive_failures = 0
        if self.pending is not None:
            self.pending.good += 1.0
            self.pending.total += 1.0
            if self.cooldown_streak:
                self.pending.add({"op": "calm"})  # the next cooldown starts from the base again, everywhere
        self.cooldown_streak = 0

    def record_failure(self, now: float, error_class: ErrorClass, retry_after: float | None = None) -> None:
        if error_class not in KEY_FAILURES:
            return
        self._decay(now)
        self._total += 1.0
        if self.pending is not None:
            self.pending.total += 1.0
        self.consecutive_failures += 1
        self.last_error_class = error_class
        if error_class in DISABLING:
            self.disable(f"{error_class.value}: the provider refused this key", error_class)
        elif error_class is ErrorClass.RATE_LIMITED:
            self._cool_down(now, retry_after)
        elif self.consecutive_failures >= self.policy.failures_before_cooldown:
            self._cool_down(now, None)

    def _cool_down(self, now: float, retry_after_s: float | None) -> None:
        """The provider's retry-after when it gave one (it knows its bucket); else a base that doubles, capped.

        A failure while the key already cools down is one of the attempts that were in flight when the cooldown
        began (under load, dozens; errors come back faster than answers): it is the same episode, so it neither
        lengthens the cooldown nor counts as a repetition — only a longer retry-after from the provider extends it.
        """
        policy = self.policy
        if now < self.cooldown_until:
            if retry_after_s is not None and now + retry_after_s > self.cooldown_until:
                self.cooldown_until = now + retry_after_s
                if self.pending is not None:
                    self.pending.add({"op": "cool", "until": self.cooldown_until, "streak": self.cooldown_streak})
            return
        if retry_after_s is not None:
            duration = retry_after_s
        else:
            duration = min(policy.cooldown_cap_s, policy.cooldown_base_s * policy.cooldown_growth**self.cooldown_streak)
        self.cooldown_until = max(self.cooldown_until, now + duration)
        self.cooldown_streak += 1
        if self.pending is not None:
            self.pending.add({"op": "cool", "until": self.cooldown_until, "streak": self.cooldown_streak})

    def disable(self, reason: str, error_class: ErrorClass | None = None) -> None:
        self.disabled_reason = reason
        self.disabled_class = error_class
        if self.pending is not None:
            self.pending.add({"op": "disable", "reason": reason, "class": error_class.value if error_class else None})

    def enable(self) -> None:
        """Back in service with a clean slate (operator command or a successful probe)."""
        self.disabled_reason = None
        self.disabled_class = None
        self._clear_cooldown()
        if self.pending is not None:
            self.pending.add({"op": "enable"})

    def reset_cooldown(self) -> None:
        self._clear_cooldown()
        if self.pending is not None:
            self.pending.add({"op": "reset"})

    def _clear_cooldown(self) -> None:
        self.cooldown_until = 0.0
        self.cooldown_streak = 0
        self.consecutive_failures = 0

    def adopt(self, view: SharedKeyView, now: float) -> None:
        """Take the shared view (which already holds what this process told it), plus what it learnt since.
        Decisions not yet told keep the local cooldown and disabled state until they are."""
        pending = self.pending
        self._good = view.good + (pending.good if pending is not None else 0.0)
        self._total = view.total + (pending.total if pending is not None else 0.0)
        self._updated_at = now
        if pending is not None and (pending.ops or pending.sending):
            return
        self.cooldown_until = now + round(view.cooldown_s, 6) if view.cooldown_s > 0 else 0.0  # µs precision
        self.cooldown_streak = view.cooldown_streak
        self.disabled_reason = view.disabled_reason
        try:
            self.disabled_class = ErrorClass(view.disabled_class) if view.disabled_class else None
        except ValueError:
            self.disabled_class = None

    def cooldown_remaining(self, now: float) -> float:
        return max(0.0, self.cooldown_until - now)
