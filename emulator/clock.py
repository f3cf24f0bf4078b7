"""Clocks: budgets and cache entries read time from here, so tests can move time instead of sleeping.

Delays on the wire (latency, stalls, time-to-first-token) always use real time: they exist to be felt by a client.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic seconds for arithmetic plus a wall time for the RFC 3339 reset headers."""

    def now(self) -> float: ...

    def wall(self) -> float: ...


class MonotonicClock:
    """The default clock: `time.monotonic`, with the wall time derived from it at a fixed offset."""

    manual = False

    def __init__(self) -> None:
        self._offset = time.time() - time.monotonic()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.monotonic() + self._offset


class ManualClock:
    """A clock that only moves when told to; `advance` is safe to call from any thread (one float add)."""

    manual = True

    def __init__(self, start: float = 0.0, wall_start: float | None = None) -> None:
        self._now = float(start)
        self._wall0 = time.time() if wall_start is None else float(wall_start)
        self._start = float(start)

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._wall0 + (self._now - self._start)

    def advance(self, seconds: float) -> float:
        """Move time forward by `seconds` (must be >= 0) and return the new reading."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += float(seconds)
        return self._now
