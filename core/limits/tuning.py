"""Self-tuning limits: an AIMD controller per limit, so effective limits follow what the provider says.

The configured limit (or, for a key without one, the limit the provider states in its headers) is a ceiling. A
429 halves the effective limit, a response saying less than 10 % is left takes it ×0.8, and a run of successes
without either adds a few percent of the ceiling back — additive increase, multiplicative decrease, like TCP. Two
guards keep it calm: decreases within ``guard_s`` of the last one count as one burst (the strongest wins, applied
to the limit as it was before the burst), so forty concurrent 429s halve once instead of collapsing to the floor;
and an increase needs both ``recover_after`` successes and ``recover_every_s`` since the last change.

The limiter keeps one float per limit and every :class:`~core.limits.base.Demand` carries its spec, so a changed
effective limit applies to the next call with no state to migrate. Each change is kept as a :class:`LimitChange`
(numbered per instance) for snapshots, the store and the dashboard's chart.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
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
    floor_fraction: float = 0.05
    guard_s: float = 2.0
    recover_after: int = 20
    recover_every_s: float = 10.0
    recover_step_fraction: float = 0.05

    def __post_init__(self) -> None:
        for name in ("rate_limited_factor", "low_remaining_factor", "low_remaining_fraction", "floor_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise ValueError(f"TuningPolicy.{name} must be between 0 and 1 (exclusive), got {value!r}")
        if not 0 < self.recover_step_fraction <= 1:
            raise ValueError(
                f"TuningPolicy.recover_step_fraction must be in (0, 1], got {self.recover_step_fraction!r}"
            )
        if self.guard_s < 0 or self.recover_every_s < 0 or self.recover_after < 1:
            raise ValueError("TuningPolicy: guard_s and recover_every_s must be >= 0, recover_after >= 1")


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
        "ceiling",
        "changed_at",
        "changed_mono",
        "effective",
        "reason",
        "scope",
        "spec",
        "successes",
    )

    def __init__(self, scope: LimitScope, ceiling: LimitSpec, now: float) -> None:
        self.scope = scope
        self.ceiling = ceiling
        self.effective = ceiling.limit
        self.spec = ceiling
        self.reason: str | None = None
        self.changed_at: datetime | None = None
        self.changed_mono = now
        self.successes = 0
        self._guard_until = float("-inf")
        self._guard_base = ceiling.limit
        self._guard_factor = 1.0

    def floor(self, policy: TuningPolicy) -> float:
        return self.ceiling.limit * policy.floor_fraction

    def _set(self, value: float) -> None:
        self.effective = value
        self.spec = self.ceiling if value == self.ceiling.limit else replace(self.ceiling, limit=value, capacity=None)

    def decrease(self, factor: float, now: float, policy: TuningPolicy) -> bool:
        """Take the limit down by ``factor``; a burst within ``guard_s`` counts once, the strongest factor wins."""
        self.successes = 0
        if now < self._guard_until:
            if factor >= self._guard_factor:
                return False
            self._guard_factor = factor
        else:
            self._guard_base, self._guard_factor = self.effective, factor
            self._guard_until = now + policy.guard_s
        target = max(self.floor(policy), self._guard_base * factor)
        if target >= self.effective:
            return False
        self._set(target)
        self.changed_mono = now
        return True

    def success(self, now: float, policy: TuningPolicy) -> bool:
        """Count a success; step back up when enough of them came in a quiet interval."""
        if self.effective >= self.ceiling.limit:
            return False
        self.successes += 1
        if self.successes < policy.recover_after or now - self.changed_mono < policy.recover_every_s:
            return False
        self._set(min(self.ceiling.limit, self.effective + self.ceiling.limit * policy.recover_step_fraction))
        self.successes = 0
        self.changed_mono = now
        return True

    def set_ceiling(self, ceiling: LimitSpec) -> bool:
        """A new ceiling (a key's stated limit changed): follow it from the top, clamp under it otherwise."""
        was_at_top = self.effective >= self.ceiling.limit
        before = self.effective
        self.ceiling = ceiling
        self._set(ceiling.limit if was_at_top else min(self.effective, ceiling.limit))
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
        self._below: set[str] = set()  # names whose effective limit is under the ceiling
        self._changes: deque[LimitChange] = deque(maxlen=RECENT_CHANGES)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    # --- the call path ---------------------------------------------------------------------------------------

    def spec(self, name: str, ceiling: LimitSpec) -> LimitSpec:
        """The effective spec of ``name`` whose ceiling is ``ceiling`` (hot path: a dict lookup)."""
        limit = self._limits.get(name)
        if limit is None:
            return ceiling
        if limit.ceiling != ceiling:
            with self._lock:
                before = limit.effective
                if limit.set_ceiling(ceiling):
                    self._record(name, limit, before, _stated(limit.scope, ceiling))
        return limit.spec

    def respec(self, demands: Sequence[Demand]) -> list[Demand]:
        """The same demands at their limits' current effective specs (queued requests follow a change)."""
        limits = self._limits
        out = []
        for demand in demands:
            limit = limits.get(demand.key)
            if limit is not None and limit.spec != demand.spec and limit.ceiling.period_s == demand.spec.period_s:
                demand = Demand(demand.key, limit.spec, demand.cost)
            out.append(demand)
        return out

    # --- signals ---------------------------------------------------------------------------------------------

    def decrease(self, name: str, scope: LimitScope, ceiling: LimitSpec, factor: float, reason: str) -> bool:
        """Multiplicative decrease of one limit; ``True`` when its effective value changed."""
        if not self.enabled:
            return False
        with self._lock:
            limit = self._track(name, scope, ceiling)
            before = limit.effective
            if not limit.decrease(factor, self.clock.monotonic(), self.policy):
                return False
            self._record(name, limit, before, reason)
            return True

    def success(self, name: str, scope: LimitScope, ceiling: LimitSpec) -> bool:
        """One success under this limit; ``True`` when it stepped the limit up."""
        limit = self._limits.get(name)
        if not self.enabled or limit is None:
            return False  # never decreased: nothing to recover
        with self._lock:
            before = limit.effective
            if not limit.success(self.clock.monotonic(), self.policy):
                return False
            count = self.policy.recover_after
            if limit.effective >= limit.ceiling.limit:
                what = "configured ceiling" if scope.configured else "provider's stated limit"
                reason = f"back at the {what}: {count} successes without a 429"
            else:
                reason = f"recovering: {count} successes without a 429"
            self._record(name, limit, before, reason)
            return True

    # --- reading ---------------------------------------------------------------------------------------------

    @property
    def recovering(self) -> bool:
        """Whether any limit is under its ceiling (otherwise a plain success has nothing to do)."""
        return bool(self._below)

    def state(self, name: str) -> TunedLimit | None:
        return self._limits.get(name)

    def describe(self, name: str, ceiling: LimitSpec) -> dict[str, Any]:
        """``configured`` (the ceiling), ``reason`` and ``changed_at`` of one limit, for snapshots."""
        limit = self._limits.get(name)
        return {
            "configured": ceiling.limit,
            "reason": limit.reason if limit is not None else None,
            "changed_at": limit.changed_at.isoformat() if limit is not None and limit.changed_at else None,
        }

    def changes(self) -> list[dict[str, Any]]:
        """The recent changes, oldest first (``seq`` increases by one per change in this instance)."""
        with self._lock:
            return [change.as_dict() for change in self._changes]

    # --- internals -------------------------------------------------------------------------------------------

    def _track(self, name: str, scope: LimitScope, ceiling: LimitSpec) -> TunedLimit:
        limit = self._limits.get(name)
        if limit is None:
            limit = self._limits[name] = TunedLimit(scope, ceiling, self.clock.monotonic())
        elif limit.ceiling != ceiling:
            before = limit.effective
            if limit.set_ceiling(ceiling):
                self._record(name, limit, before, _stated(scope, ceiling))
        return limit

    def _record(self, name: str, limit: TunedLimit, before: float, reason: str) -> None:
        if limit.effective < limit.ceiling.limit:
            self._below.add(name)
        else:
            self._below.discard(name)
        now = self.clock.now()
        limit.reason, limit.changed_at = reason, now
        scope = limit.scope
        self._changes.append(
            LimitChange(
                seq=next(self._seq),
                ts=now,
                provider=scope.provider,
                key_label=scope.key_label,
                kind=scope.kind,
                configured=limit.ceiling.limit if scope.configured else None,
                before=before,
                after=limit.effective,
                reason=reason,
            )
        )


def _stated(scope: LimitScope, ceiling: LimitSpec) -> str:
    unit = "requests" if scope.kind == "rpm" else "tokens"
    source = "the configured limit is" if scope.configured else "the provider states"
    return f"{source} {ceiling.limit:g} {unit} per {ceiling.period_s:g} s"
