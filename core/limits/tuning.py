"""Self-tuning limits: each effective limit drops on the provider's pushback and climbs back on a fixed schedule.

The configured limit (or, for a key without one, the limit the provider states in its headers) is a ceiling.
Pushback takes the effective limit down by a factor (:meth:`TunedLimit.decrease`); which limits a signal moves is
decided in :mod:`pulsegate.core.limit_signals` (a key's 429 moves that key's limits; the provider's only when at least
half of the usable keys were refused lately — :meth:`pulsegate.core.limits.tuner.LimitTuner.key_rate_limited`). One
guard keeps it calm: decreases within ``guard_s`` of the last one count as one burst (the strongest wins, applied to the
limit as it was before the burst), so forty concurrent 429s halve once instead of collapsing to the floor.

Recovery is a function of time alone: from the last pushback at ``t0`` the limit follows the straight line from
its lowered value to the ceiling at ``t0 + recover_within_s``, taken in steps of ``recover_every_s`` starting
``recover_hold_s`` after ``t0``. Any pushback in between restarts the line from the new value. Steps are applied
lazily, when the limit is next read, and recorded with the time they fell due, so the history is exact whether or
not traffic flowed. Why this shape does not walk back into 429s is argued in docs/self-tuning-limits.md.

The limiter keeps one float per limit and every :class:`~pulsegate.core.limits.base.Demand` carries its spec, so a
changed effective limit applies to the next call with no state to migrate. The limits of one client, and the history of
their changes, are kept by :class:`pulsegate.core.limits.tuner.LimitTuner`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, replace
from datetime import datetime

from pulsegate.core.limits.base import LimitSpec


@dataclass(frozen=True, slots=True)
class TuningPolicy:
    """The controller's constants. Intervals are seconds on the client's clock."""

    rate_limited_factor: float = 0.5
    low_remaining_factor: float = 0.8
    low_remaining_fraction: float = 0.10
    #: low remaining is pushback only when more than this share of the limit was used by someone else
    foreign_use_fraction: float = 0.10
    floor_fraction: float = 0.05
    guard_s: float = 2.0
    #: the provider's own limits drop when at least this share of its usable keys got a 429 ...
    provider_key_share: float = 0.5
    #: ... within this many seconds
    provider_window_s: float = 30.0
    recover_hold_s: float = 10.0
    recover_every_s: float = 10.0
    recover_within_s: float = 60.0

    def __post_init__(self) -> None:
        for name in (
            "rate_limited_factor",
            "low_remaining_factor",
            "low_remaining_fraction",
            "foreign_use_fraction",
            "floor_fraction",
        ):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"TuningPolicy.{name} must be between 0 and 1 (exclusive), got {value!r}")
        if not 0 < self.provider_key_share <= 1:
            raise ValueError(f"TuningPolicy.provider_key_share must be in (0, 1], got {self.provider_key_share!r}")
        for name in ("guard_s", "provider_window_s"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"TuningPolicy.{name} must be a number of seconds >= 0, got {getattr(self, name)!r}")
        hold, every, within = self.recover_hold_s, self.recover_every_s, self.recover_within_s
        if not (math.isfinite(within) and 0 < hold <= within and every > 0):
            raise ValueError(
                "TuningPolicy: recovery needs 0 < recover_hold_s <= recover_within_s (finite) and recover_every_s > 0,"
                f" got hold {hold!r}, every {every!r}, within {within!r}"
            )

    def recovery_offsets(self) -> tuple[float, ...]:
        """Seconds after the last pushback at which the limit steps up; the last one is ``recover_within_s``."""
        return _offsets(self.recover_hold_s, self.recover_every_s, self.recover_within_s)


@functools.cache
def _offsets(hold: float, every: float, within: float) -> tuple[float, ...]:
    offsets, step = [], 0
    while hold + step * every < within - 1e-9:
        offsets.append(hold + step * every)
        step += 1
    return (*offsets, within)


@dataclass(frozen=True, slots=True)
class LimitScope:
    """What a limit belongs to, for snapshots and the change history."""

    provider: str
    kind: str  # "rpm" | "tpm"
    key_label: str | None = None
    configured: bool = True  # False: a key limit learned from the provider's headers


class TunedLimit:
    """One limit's effective value between its floor and its ceiling, and why it last changed."""

    __slots__ = (
        "_guard_base",
        "_guard_factor",
        "_guard_until",
        "base",
        "ceiling",
        "changed_at",
        "effective",
        "pushed_at",
        "reason",
        "scope",
        "spec",
        "steps",
    )

    def __init__(self, scope: LimitScope, ceiling: LimitSpec) -> None:
        self.scope = scope
        self.ceiling = ceiling
        self.effective = ceiling.limit
        self.spec = ceiling
        self.reason: str | None = None
        self.changed_at: datetime | None = None
        self.base = ceiling.limit  # the value recovery starts from: the effective limit after the last pushback
        self.pushed_at = float("-inf")  # monotonic time of the last pushback
        self.steps = 0  # recovery steps taken since then
        self._guard_until = float("-inf")
        self._guard_base = ceiling.limit
        self._guard_factor = 1.0

    def floor(self, policy: TuningPolicy) -> float:
        return self.ceiling.limit * policy.floor_fraction

    def _set(self, value: float) -> None:
        self.effective = value
        self.spec = self.ceiling if value == self.ceiling.limit else replace(self.ceiling, limit=value, capacity=None)

    def decrease(self, factor: float, now: float, policy: TuningPolicy) -> bool:
        """Take the limit down by ``factor``; a burst within ``guard_s`` counts once, the strongest factor wins.

        Every pushback restarts the recovery schedule, even one that changes nothing (a weaker signal inside a
        burst, or a limit already at its floor): the provider is still refusing."""
        self.pushed_at, self.steps = now, 0
        changed = False
        if now < self._guard_until:
            if factor < self._guard_factor:
                self._guard_factor = factor
                changed = True
        else:
            self._guard_base, self._guard_factor = self.effective, factor
            self._guard_until = now + policy.guard_s
            changed = True
        if changed:
            target = max(self.floor(policy), self._guard_base * factor)
            changed = target < self.effective
            if changed:
                self._set(target)
        self.base = self.effective
        return changed

    def next_step_at(self, policy: TuningPolicy) -> float:
        """Monotonic time of the next recovery step (``inf`` at the ceiling)."""
        if self.effective >= self.ceiling.limit:
            return math.inf
        offsets = policy.recovery_offsets()
        return self.pushed_at + offsets[min(self.steps, len(offsets) - 1)]

    def recover(self, now: float, policy: TuningPolicy) -> list[tuple[float, float, float, float]]:
        """Take every step that fell due by ``now``: ``(due, offset, before, after)`` for each one that moved."""
        taken = []
        offsets = policy.recovery_offsets()
        while self.effective < self.ceiling.limit and self.steps < len(offsets):
            offset = offsets[self.steps]
            due = self.pushed_at + offset
            if due > now:
                break
            self.steps += 1
            top = self.ceiling.limit
            line = self.base + (top - self.base) * offset / policy.recover_within_s
            target = top if self.steps == len(offsets) else min(top, line)
            if target > self.effective:
                before = self.effective
                self._set(target)
                taken.append((due, offset, before, target))
        return taken

    def set_ceiling(self, ceiling: LimitSpec) -> bool:
        """A new ceiling (a key's stated limit changed): follow it from the top, clamp under it otherwise."""
        was_at_top = self.effective >= self.ceiling.limit
        before = self.effective
        self.ceiling = ceiling
        self._set(ceiling.limit if was_at_top else min(self.effective, ceiling.limit))
        self.base = min(self.base, ceiling.limit)
        return self.effective != before
