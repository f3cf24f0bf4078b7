"""Injectable time.

Every time-based part of Pulsegate (limiter, queue, cooldowns, breaker, alert timers, leases, heartbeats) reads and
waits on time through a :class:`Clock`, so tests move time with :class:`ManualClock` instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    """Monotonic seconds (for intervals), wall time (for timestamps) and an awaitable sleep on the same time."""

    def monotonic(self) -> float: ...

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock:
    """A clock that only moves when told to. ``sleep`` returns once :meth:`advance` has passed its wake-up time.

    Thread-safe: a test may advance it from another thread than the event loop that sleeps on it.
    """

    def __init__(self, start: datetime | None = None, monotonic_start: float = 1_000.0) -> None:
        self._wall = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self._wall.tzinfo is None:
            raise ValueError("ManualClock start must be timezone-aware")
        self._mono = monotonic_start
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    async def sleep(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            wake_at = self._mono + max(0.0, seconds)
            if wake_at <= self._mono:
                future.set_result(None)
            else:
                heapq.heappush(self._sleepers, (wake_at, next(self._order), loop, future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock (tests use it to know a waiter has parked)."""
        with self._lock:
            return sum(1 for *_, future in self._sleepers if not future.done())

    def next_wake_in(self) -> float | None:
        """Seconds until the earliest sleeper is due (None when nobody sleeps): tests advance exactly that far."""
        with self._lock:
            due = [wake_at for wake_at, _, _, future in self._sleepers if not future.done()]
            return max(0.0, min(due) - self._mono) if due else None

    def advance(self, seconds: float) -> None:
        """Move both readings forward and wake every sleeper that is due; time never goes back."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (advance({seconds}))")
        due: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        with self._lock:
            self._mono += seconds
            self._wall += timedelta(seconds=seconds)
            while self._sleepers and self._sleepers[0][0] <= self._mono:
                _, _, loop, future = heapq.heappop(self._sleepers)
                due.append((loop, future))
        for loop, future in due:
            loop.call_soon_threadsafe(_wake, future)

    def __repr__(self) -> str:
        return f"ManualClock(now={self._wall.isoformat()})"


def require_aware(value: object, refuse: Callable[[str], Exception]) -> datetime:
    """``value`` when it is a timezone-aware datetime, else ``refuse(reason)`` is raised: each caller's own error,
    naming its own field. A naive datetime is refused, never assumed UTC — the caller's clock may be local."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    raise refuse(f"expected a timezone-aware datetime, got {value!r}")


def as_utc(moment: datetime | str | Any) -> datetime:
    """A moment read back (from the store, a snapshot's JSON, a pandas frame) as an aware UTC ``datetime``.

    SQLite hands datetimes back naive, JSON carries ISO strings and pandas gives ``Timestamp``s; a naive value is
    UTC, as everything Pulsegate stores is. One reading for all of them, so two readers never disagree about what
    a naive value means. Not for arguments: a caller's naive datetime is refused where it comes in, not assumed UTC.
    """
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if hasattr(moment, "to_pydatetime"):  # a pandas Timestamp
        moment = moment.to_pydatetime()
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


SYSTEM_CLOCK: Clock = SystemClock()
