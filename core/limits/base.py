"""The rate-limiter interface and its value types.

One model everywhere (DESIGN.md, "The call path", step 2): a continuously refilled bucket per limit (GCRA) —
``capacity`` units when full, refilled at ``limit / period_s`` — so over any interval ``T`` at most
``capacity + limit × T / period_s`` units are admitted. A backend stores only one float per key (the theoretical
arrival time); the :class:`LimitSpec` travels with every call, so effective limits may change from call to call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class LimitSpec:
    """One limit: ``limit`` units per ``period_s`` seconds, with a burst of ``capacity`` (default: ``limit``)."""

    limit: float
    period_s: float = 60.0
    capacity: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.limit) and self.limit > 0):
            raise ValueError(f"LimitSpec.limit must be a positive number, got {self.limit!r}")
        if not (math.isfinite(self.period_s) and self.period_s > 0):
            raise ValueError(f"LimitSpec.period_s must be a positive number, got {self.period_s!r}")
        if self.capacity is not None and not (math.isfinite(self.capacity) and self.capacity > 0):
            raise ValueError(f"LimitSpec.capacity must be a positive number or None, got {self.capacity!r}")

    @property
    def burst(self) -> float:
        """The bucket size: ``capacity`` when given, else ``limit``."""
        return self.limit if self.capacity is None else self.capacity

    @property
    def interval_s(self) -> float:
        """Seconds it takes to refill one unit (GCRA's emission interval)."""
        return self.period_s / self.limit

    @property
    def tolerance_s(self) -> float:
        """Seconds it takes to refill the whole bucket (GCRA's burst tolerance)."""
        return self.burst * self.period_s / self.limit


@dataclass(frozen=True, slots=True)
class Demand:
    """A charge of ``cost`` units against the limit named ``key`` (e.g. ``"anthropic:tpm"``, ``"user:u-42:rpm"``).

    A cost above the spec's capacity could never fit; for admission it counts as the full capacity (admitted once
    the bucket is full) but the whole cost is charged, so the excess is paid back as debt by later demands.
    """

    key: str
    spec: LimitSpec
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not (self.cost >= 0 and math.isfinite(self.cost)):
            raise ValueError(f"Demand.cost must be a non-negative number, got {self.cost!r}")


@dataclass(frozen=True, slots=True)
class LimitState:
    """One limit as the health JSON and snapshots show it.

    ``remaining`` is what may be admitted now (floored at 0 when in debt), ``used`` is ``capacity - remaining``,
    ``reset_s`` the seconds until the bucket is full again (debt included).
    """

    limit: float
    period_s: float
    capacity: float
    remaining: float
    used: float
    reset_s: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@runtime_checkable
class RateLimiter(Protocol):
    """Several limits checked and charged atomically. Async so a Redis backend fits the same shape."""

    async def try_acquire(self, demands: Sequence[Demand]) -> float:
        """All or nothing: charge every demand and return ``0.0``, or charge nothing and return the seconds
        until all of them would fit (assuming nobody else takes capacity meanwhile)."""
        ...

    async def wait_time(self, demands: Sequence[Demand]) -> float:
        """What :meth:`try_acquire` would return, without charging anything."""
        ...

    async def consume(self, demands: Sequence[Demand]) -> None:
        """Charge unconditionally (``skip_rate_limit`` calls still count); may put a limit into debt."""
        ...

    async def refund(self, key: str, spec: LimitSpec, amount: float) -> None:
        """Give back ``amount`` units (a reservation settled to actual usage); never above a full bucket."""
        ...

    async def observe(self, key: str, spec: LimitSpec, remaining: float, reset_s: float) -> None:
        """The provider reported ``remaining`` units now, full again in ``reset_s``: tighten, never loosen."""
        ...

    async def state(self, key: str, spec: LimitSpec) -> LimitState:
        """The limit's current numbers; charges nothing."""
        ...

    def state_nowait(self, key: str, spec: LimitSpec) -> LimitState:
        """:meth:`state` for synchronous callers (``AIClient.snapshot``)."""
        ...

    def status(self) -> dict[str, Any]:
        """Which backend, and whether it is degraded: for snapshots and the dashboard's "Redis degraded" banner."""
        ...

    async def aclose(self) -> None:
        """Close what the limiter holds open (connections); the limiter is not used afterwards."""
        ...
