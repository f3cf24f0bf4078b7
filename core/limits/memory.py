"""The in-process rate limiter: one ``tat`` float per key in a dict, guarded by a ``threading.Lock``.

The lock (not an asyncio lock) is deliberate: the sync twin of the client may drive the same limiter from another
thread's event loop, and no method awaits while holding it, so it is held for microseconds.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.limits import gcra
from pulsegate.core.limits.base import Demand, LimitSpec, LimitState

_PRUNE_EVERY = 4096
"""Writes between sweeps that forget full buckets, so per-user keys do not pile up forever."""


class MemoryRateLimiter:
    """:class:`~pulsegate.core.limits.base.RateLimiter` for one process. Exact GCRA; O(number of demands) per call."""

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._tats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._writes = 0

    async def try_acquire(self, demands: Sequence[Demand]) -> float:
        return self.try_acquire_nowait(demands)

    async def wait_time(self, demands: Sequence[Demand]) -> float:
        with self._lock:
            _, wait = self._plan(demands, self._clock.monotonic())
        return wait

    async def consume(self, demands: Sequence[Demand]) -> None:
        with self._lock:
            now = self._clock.monotonic()
            tats = self._tats
            for demand in demands:
                tats[demand.key] = gcra.charge(tats.get(demand.key, now), now, demand.cost, demand.spec.interval_s)
            self._wrote(now)

    async def refund(self, key: str, spec: LimitSpec, amount: float) -> None:
        if amount < 0:
            raise ValueError(f"refund amount must not be negative (got {amount!r}); use consume() to charge more")
        with self._lock:
            tat = self._tats.get(key)
            if tat is not None:
                self._tats[key] = gcra.refund(tat, self._clock.monotonic(), amount, spec.interval_s)

    async def observe(self, key: str, spec: LimitSpec, remaining: float, reset_s: float) -> None:
        with self._lock:
            now = self._clock.monotonic()
            tat = self._tats.get(key, now)
            self._tats[key] = gcra.observe(tat, now, remaining, reset_s, spec.interval_s, spec.tolerance_s)
            self._wrote(now)

    async def state(self, key: str, spec: LimitSpec) -> LimitState:
        return self.state_nowait(key, spec)

    def state_nowait(self, key: str, spec: LimitSpec) -> LimitState:
        """:meth:`state` for synchronous callers (``AIClient.snapshot``)."""
        with self._lock:
            now = self._clock.monotonic()
            tat = self._tats.get(key, now)
        capacity = spec.burst
        remaining = max(0.0, gcra.remaining(tat, now, spec.interval_s, spec.tolerance_s))
        return LimitState(
            limit=spec.limit,
            period_s=spec.period_s,
            capacity=capacity,
            remaining=remaining,
            used=max(0.0, capacity - remaining),
            reset_s=gcra.reset_after(tat, now),
        )

    def status(self) -> dict[str, Any]:
        """One process's own buckets: never degraded."""
        return {"backend": "memory"}

    async def aclose(self) -> None:
        """Nothing is held open."""

    def try_acquire_nowait(self, demands: Sequence[Demand]) -> float:
        """:meth:`try_acquire` without the coroutine, for synchronous callers."""
        with self._lock:
            now = self._clock.monotonic()
            planned, wait = self._plan(demands, now)
            if wait == 0.0:
                self._tats.update(planned)
                self._wrote(now)
        return wait

    def _plan(self, demands: Sequence[Demand], now: float) -> tuple[dict[str, float], float]:
        """The ``tat`` of every key after charging all demands, and the longest wait among them.

        Demands are charged one after another on a scratch copy, so two demands on one key add up.
        """
        tats = self._tats
        planned: dict[str, float] = {}
        longest = 0.0
        for demand in demands:
            key = demand.key
            spec = demand.spec
            interval = spec.interval_s
            tat = planned.get(key)
            if tat is None:
                tat = tats.get(key, now)
            wait = gcra.wait_time(tat, now, demand.cost, interval, spec.tolerance_s)
            if wait > longest:
                longest = wait
            planned[key] = gcra.charge(tat, now, demand.cost, interval)
        return planned, longest

    def _wrote(self, now: float) -> None:
        self._writes += 1
        if self._writes >= _PRUNE_EVERY:
            self._writes = 0
            for key in [key for key, tat in self._tats.items() if tat <= now]:
                del self._tats[key]

    @property
    def tracked_keys(self) -> int:
        """How many keys are remembered (full buckets are forgotten by a periodic sweep); for tests and diagnostics."""
        with self._lock:
            return len(self._tats)
