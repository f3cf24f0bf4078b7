"""The limit tuner: every self-tuned limit of one client, the signals that move them and the history of changes.

How one limit moves (the policy, the burst guard, the recovery line) is :mod:`pulsegate.core.limits.tuning`; this module
keeps those limits by limiter name, applies recovery steps lazily when a limit is read, and numbers each change
as a :class:`LimitChange` (per instance) for snapshots, the store and the dashboard's chart.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.limits.base import Demand, LimitSpec
from pulsegate.core.limits.tuning import LimitScope, TunedLimit, TuningPolicy

RECENT_CHANGES = 500
"""Changes kept in memory for snapshots; the heartbeat stores them long before this many pile up."""


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
