"""The memory backend's own behaviour (the protocol behaviour shared with Redis is in tests/limits/)."""

from __future__ import annotations

import threading

import pytest

from pulsegate.core.clock import ManualClock
from pulsegate.core.limits import Demand, LimitSpec, MemoryRateLimiter
from pulsegate.core.limits import memory as memory_module

RPM = LimitSpec(limit=10, period_s=1.0)  # 10 per second, burst 10
TPM = LimitSpec(limit=100, period_s=60.0)  # one unit per 0.6 s, burst 100


def rpm(cost: float = 1) -> Demand:
    return Demand("anthropic:rpm", RPM, cost)


def tpm(cost: float) -> Demand:
    return Demand("anthropic:tpm", TPM, cost)


@pytest.fixture
def limiter(clock: ManualClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock)


def test_specs_and_demands_are_validated() -> None:
    for bad in ({"limit": 0}, {"limit": 1, "period_s": 0}, {"limit": 1, "capacity": -1}, {"limit": float("inf")}):
        with pytest.raises(ValueError, match="LimitSpec"):
            LimitSpec(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cost"):
        Demand("k", RPM, -1)
    assert (TPM.burst, TPM.interval_s, TPM.tolerance_s) == (100, 0.6, 60)


async def test_full_buckets_are_forgotten(
    limiter: MemoryRateLimiter, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "_PRUNE_EVERY", 10)
    for user in range(9):
        await limiter.try_acquire([Demand(f"user:u-{user}:rpm", RPM)])
    assert limiter.tracked_keys == 9
    clock.advance(1.0)  # every one of them is full again
    await limiter.try_acquire([rpm()])
    assert limiter.tracked_keys == 1
    assert (await limiter.state("user:u-0:rpm", RPM)).remaining == 10


def test_threads_never_admit_more_than_the_capacity(clock: ManualClock) -> None:
    limiter = MemoryRateLimiter(clock)
    spec = LimitSpec(limit=1_000, period_s=3600)
    admitted: list[int] = []

    def worker() -> None:
        admitted.append(sum(limiter.try_acquire_nowait([Demand("shared", spec)]) == 0.0 for _ in range(600)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1_000
