"""The manual clock: time moves only when told, and sleepers wake exactly when their time has come."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from pulsegate.core.clock import ManualClock, SystemClock


async def test_sleepers_wake_in_time_order_only_when_advanced() -> None:
    clock = ManualClock()
    woke: list[str] = []

    async def sleeper(name: str, seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("late", 5), ("early", 1), ("mid", 3))]
    await asyncio.sleep(0)
    assert clock.sleepers == 3 and woke == []
    clock.advance(2.999)
    for _ in range(3):  # the wake-up is scheduled on the loop, then the task runs
        await asyncio.sleep(0)
    assert woke == ["early"]
    clock.advance(10)
    await asyncio.gather(*tasks)
    assert woke == ["early", "mid", "late"]
    assert clock.sleepers == 0


async def test_zero_sleep_returns_at_once() -> None:
    clock = ManualClock()
    await asyncio.wait_for(clock.sleep(0), timeout=1)
    await asyncio.wait_for(clock.sleep(-3), timeout=1)


def test_advance_moves_both_readings_and_never_backwards() -> None:
    start = datetime(2026, 11, 28, tzinfo=UTC)
    clock = ManualClock(start=start)
    before = clock.monotonic()
    clock.advance(90)
    assert clock.monotonic() - before == 90
    assert clock.now() == start + timedelta(seconds=90)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(start=datetime(2026, 1, 1))


async def test_system_clock_is_aware_and_sleeps() -> None:
    clock = SystemClock()
    assert clock.now().tzinfo is UTC
    before = clock.monotonic()
    await clock.sleep(0.01)
    assert clock.monotonic() > before


def test_as_utc_reads_every_form_a_moment_comes_back_in() -> None:
    import pandas as pd

    from pulsegate.core.clock import as_utc

    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    naive = moment.replace(tzinfo=None)  # SQLite hands datetimes back naive; they are UTC
    for value in (moment, naive, "2026-03-01T12:30:00", "2026-03-01T14:30:00+02:00", pd.Timestamp(naive)):
        read = as_utc(value)
        assert read == moment and read.utcoffset() == timedelta(0) and type(read) is datetime, value
