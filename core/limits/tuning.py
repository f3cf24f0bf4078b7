"""Self-tuning limits: each effective limit drops on the provider's pushback and climbs back on a fixed schedule.

The configured limit (or, for a key without one, the limit the provider states in its headers) is a ceiling.
Pushback takes the effective limit down by a factor (:meth:`LimitTuner.decrease`); which limits a signal moves is
decided in :mod:`core.limit_signals` (a key's 429 moves that key's limits; the provider's only when at least half
of the usable keys were refused lately — :meth:`LimitTuner.key_rate_limited`). One guard keeps it calm: decreases
within ``guard_s`` of the last one count as one burst (the strongest wins, applied to the limit as it was before
the burst), so forty concurrent 429s halve once instead of collapsing to the floor.

Recovery is a function of time alone: from the last pushback at ``t0`` the limit follows the straight line from
its lowered value to the ceiling at ``t0 + recover_within_s``, taken in steps of ``recover_every_s`` starting
``recover_hold_s`` after ``t0``. Any pushback in between restarts the line from the new value. Steps are applied
lazily, when the limit is next read, and recorded with the time they fell due, so the history is exact whether or
not traffic flowed. Why this shape does not walk back into 429s is argued in docs/self-tuning-limits.md.

The limiter keeps one float per limit and every :class:`~core.limits.base.Demand` carries its spec, so a changed
effective limit applies to the next call with no state to migrate. Each change is kept as a :class:`LimitChange`
(numbered per instance) for snapshots, the store and the dashboard's chart.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from core.clock import SYSTEM_CLOCK, Clock
from core.limits.base import Demand, LimitSpec

RECENT_CHANGES = 500
"""Changes kept in memory for snapshots; the heartbeat stores them long before this many pile up."""


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


@dataclass(frozen=True, slots=True)
class LimitChange:
    seq: int
    ts: datetime
    provider: str
    key_label: str | None
    kind: str
    configured: float | None
    before: float
    after: float
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts.isoformat(),
            "provider": self.provider,
            "key_label": self.key_label,
            "kind": self.kind,
            "configured": self.configured,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
        }


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


class LimitTuner:
    """Every tuned limit of one client, by limiter name (``anthropic:rpm``, ``anthropic:key:<fp>:tpm``).

    A limit is tracked from its first signal; until then it is at its ceiling. ``enabled=False`` (``LIMIT_TUNING``
    off) keeps every limit at its ceiling. Thread-safe: the sync twin may settle calls from another loop.
    """

    def __init__(self, clock: Clock = SYSTEM_CLOCK, policy: TuningPolicy | None = None, *, enabled: bool = True):
        self.clock = clock
        self.policy = policy or TuningPolicy()
        self.enabled = enabled
        self._limits: dict[str, TunedLimit] = {}
        self._below: dict[str, TunedLimit] = {}  # limits whose effective value is under the ceiling
        self._rate_limited: dict[str, dict[str, float]] = {}  # provider -> key fingerprint -> time of its last 429
        self._changes: deque[LimitChange] = deque(maxlen=RECENT_CHANGES)
        self._seq = itertools.count(1)
        self._lock = threading.RLock()

    # --- the call path ---------------------------------------------------------------------------------------

    def spec(self, name: str, ceiling: LimitSpec) -> LimitSpec:
        """The effective spec of ``name`` whose ceiling is ``ceiling`` (hot path: a dict lookup at the ceiling)."""
        limit = self._limits.get(name)
        if limit is None:
            return ceiling
        if limit.ceiling != ceiling:
            with self._lock:
                before = limit.effective
                if limit.set_ceiling(ceiling):
                    self._record(name, limit, before, _stated(limit.scope, ceiling))
        if name in self._below:
            self._catch_up(name, limit)
        return limit.spec

    def respec(self, demands: Sequence[Demand]) -> list[Demand]:
        """The same demands at their limits' current effective specs (queued requests follow a change)."""
        limits = self._limits
        out = []
        for demand in demands:
            limit = limits.get(demand.key)
            if limit is not None and demand.key in self._below:
                self._catch_up(demand.key, limit)
            if limit is not None and limit.spec != demand.spec and limit.ceiling.period_s == demand.spec.period_s:
                demand = Demand(demand.key, limit.spec, demand.cost)
            out.append(demand)
        return out

    def next_step_at(self) -> float | None:
        """Monotonic time of the earliest recovery step due on any limit (``None`` when all are at the ceiling):
        a request waiting for capacity re-reads its limits then, not after a wait computed at the lowered rate."""
        if not self._below:
            return None
        with self._lock:
            due = min((limit.next_step_at(self.policy) for limit in self._below.values()), default=math.inf)
        return None if math.isinf(due) else due

    # --- signals ---------------------------------------------------------------------------------------------

    def decrease(self, name: str, scope: LimitScope, ceiling: LimitSpec, factor: float, reason: str) -> bool:
        """Multiplicative decrease of one limit; ``True`` when its effective value changed."""
        if not self.enabled:
            return False
        with self._lock:
            limit = self._track(name, scope, ceiling)
            now = self.clock.monotonic()
            self._catch_up(name, limit, now)
            before = limit.effective
            changed = limit.decrease(factor, now, self.policy)
            if changed:
                self._record(name, limit, before, reason)
            elif limit.effective < limit.ceiling.limit:
                self._below[name] = limit  # at the floor: the restarted schedule still has to run
            return changed

    def key_rate_limited(self, provider: str, fingerprint: str, usable: Collection[str]) -> tuple[int, int]:
        """Note a 429 on one key; return ``(keys refused, usable keys)``: how many of the provider's ``usable`` key
        fingerprints (this key counts as usable) got a 429 within the last ``provider_window_s``."""
        now = self.clock.monotonic()
        with self._lock:
            seen = self._rate_limited.setdefault(provider, {})
            seen[fingerprint] = now
            cutoff = now - self.policy.provider_window_s
            for stale in [fp for fp, at in seen.items() if at < cutoff]:
                del seen[stale]
            keys = set(usable) | {fingerprint}
            return sum(1 for fp in keys if fp in seen), len(keys)

    def provider_pushed_back(self, refused: int, usable: int) -> bool:
        """Whether ``refused`` of ``usable`` keys is enough to lower the provider's own limits."""
        return refused >= self.policy.provider_key_share * usable

    # --- reading ---------------------------------------------------------------------------------------------

    @property
    def recovering(self) -> bool:
        """Whether any limit is under its ceiling."""
        return bool(self._below)

    def state(self, name: str) -> TunedLimit | None:
        limit = self._limits.get(name)
        if limit is not None and name in self._below:
            self._catch_up(name, limit)
        return limit

    def describe(self, name: str, ceiling: LimitSpec) -> dict[str, Any]:
        """``configured`` (the ceiling), ``reason`` and ``changed_at`` of one limit, for snapshots."""
        limit = self.state(name)
        return {
            "configured": ceiling.limit,
            "reason": limit.reason if limit is not None else None,
            "changed_at": limit.changed_at.isoformat() if limit is not None and limit.changed_at else None,
        }

    def changes(self) -> list[dict[str, Any]]:
        """The recent changes, oldest first (``seq`` increases by one per change in this instance)."""
        with self._lock:
            for name, limit in list(self._below.items()):
                self._catch_up(name, limit)
            return [change.as_dict() for change in self._changes]

    # --- internals -------------------------------------------------------------------------------------------

    def _track(self, name: str, scope: LimitScope, ceiling: LimitSpec) -> TunedLimit:
        limit = self._limits.get(name)
        if limit is None:
            limit = self._limits[name] = TunedLimit(scope, ceiling)
        elif limit.ceiling != ceiling:
            before = limit.effective
            if limit.set_ceiling(ceiling):
                self._record(name, limit, before, _stated(scope, ceiling))
        return limit

    def _catch_up(self, name: str, limit: TunedLimit, now: float | None = None) -> None:
        """Apply the recovery steps of ``limit`` that fell due, each recorded at the time it fell due."""
        now = self.clock.monotonic() if now is None else now
        if limit.next_step_at(self.policy) > now:
            return
        with self._lock:
            wall = self.clock.now()
            for due, offset, before, after in limit.recover(now, self.policy):
                if after >= limit.ceiling.limit:
                    what = "configured ceiling" if limit.scope.configured else "provider's stated limit"
                    reason = f"back at the {what}: {offset:g} s since the last pushback"
                else:
                    reason = f"recovering: {offset:g} s since the last pushback"
                self._record(name, limit, before, reason, after=after, ts=wall - timedelta(seconds=now - due))

    def _record(
        self,
        name: str,
        limit: TunedLimit,
        before: float,
        reason: str,
        *,
        after: float | None = None,
        ts: datetime | None = None,
    ) -> None:
        """Keep one change (``after``: the limit's value now unless given; ``ts``: now unless given)."""
        if limit.effective < limit.ceiling.limit:
            self._below[name] = limit
        else:
            self._below.pop(name, None)
        ts = self.clock.now() if ts is None else ts
        limit.reason, limit.changed_at = reason, ts
        scope = limit.scope
        self._changes.append(
            LimitChange(
                seq=next(self._seq),
                ts=ts,
                provider=scope.provider,
                key_label=scope.key_label,
                kind=scope.kind,
                configured=limit.ceiling.limit if scope.configured else None,
                before=before,
                after=limit.effective if after is None else after,
                reason=reason,
            )
        )


def _stated(scope: LimitScope, ceiling: LimitSpec) -> str:
    unit = "requests" if scope.kind == "rpm" else "tokens"
    source = "the configured limit is" if scope.configured else "the provider states"
    return f"{source} {ceiling.limit:g} {unit} per {ceiling.period_s:g} s"
