"""The priority admission queue: order, bounds, deadlines, clearing, cancellation, head of line, utilisation."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence

import pytest

from pulsegate.core.admission import AdmissionQueue
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass, QueueClearedError, QueueFullError, QueueTimeoutError
from pulsegate.core.limits import Demand, LimitSpec, MemoryRateLimiter

RPM = LimitSpec(limit=8, period_s=1.0)  # one request per 0.125 s, burst 8
TPM = LimitSpec(limit=100, period_s=50.0)  # one token per 0.5 s, burst 100
# (binary-exact intervals, so a ManualClock advanced in steps lands exactly on each admission time)


def rpm(cost: float = 1) -> list[Demand]:
    return [Demand("anthropic:rpm", RPM, cost)]


def tokens(cost: float) -> list[Demand]:
    return [Demand("anthropic:tpm", TPM, cost)]


async def settle() -> None:
    """Let woken sleepers, the dispatcher and admitted callers run (a ManualClock wake-up takes a few hops)."""
    for _ in range(12):
        await asyncio.sleep(0)


async def run_clock(clock: ManualClock, seconds: float, step: float) -> None:
    for _ in range(round(seconds / step)):
        clock.advance(step)
        await settle()


@pytest.fixture
def limiter(clock: ManualClock) -> MemoryRateLimiter:
    return MemoryRateLimiter(clock)


@pytest.fixture
def queue(limiter: MemoryRateLimiter, clock: ManualClock) -> AdmissionQueue:
    return AdmissionQueue("anthropic", limiter, clock)


def enqueue(
    queue: AdmissionQueue, order: list[str], label: str, demands: Sequence[Demand], priority: int = 0
) -> asyncio.Task[float]:
    async def call() -> float:
        waited = await queue.admit(demands, priority=priority)
        order.append(label)
        return waited

    return asyncio.create_task(call(), name=label)


async def test_nobody_waiting_and_room_admits_inline(queue: AdmissionQueue) -> None:
    assert [await queue.admit(rpm(), priority=0) for _ in range(8)] == [0.0] * 8
    assert queue.depth == 0
    assert len(asyncio.all_tasks()) == 1  # no dispatcher was started


async def test_higher_priority_first_fifo_within_a_priority(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(rpm(8))  # the limiter is full
    order: list[str] = []
    tasks = [
        enqueue(queue, order, label, rpm(), priority)
        for label, priority in (("p1", 1), ("p5-first", 5), ("p3", 3), ("p5-second", 5), ("p2", 2))
    ]
    await settle()
    assert (queue.depth, order) == (5, [])
    await run_clock(clock, 0.625, 0.125)
    assert order == ["p5-first", "p5-second", "p3", "p2", "p1"]
    assert [t.result() for t in tasks] == [0.625, 0.125, 0.375, 0.25, 0.5]  # seconds waited, by the clock


async def test_fifo_within_one_priority(queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock) -> None:
    await limiter.consume(rpm(8))
    order: list[str] = []
    tasks = [enqueue(queue, order, f"r{i}", rpm(), priority=3) for i in range(8)]
    await settle()
    await run_clock(clock, 1.0, 0.125)
    assert order == [f"r{i}" for i in range(8)]
    await asyncio.gather(*tasks)


async def test_a_higher_priority_arrival_overtakes_a_sleeping_head(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(tokens(100))
    order: list[str] = []
    big = enqueue(queue, order, "big", tokens(90), priority=1)
    await settle()
    assert clock.sleepers == 1  # the dispatcher sleeps 45 s for the big one
    urgent = enqueue(queue, order, "urgent", tokens(1), priority=9)
    await settle()
    await run_clock(clock, 0.5, 0.5)
    assert order == ["urgent"]
    await run_clock(clock, 44.5, 0.5)
    assert order == ["urgent"]
    await run_clock(clock, 0.5, 0.5)
    assert order == ["urgent", "big"]
    await asyncio.gather(big, urgent)


async def test_a_large_request_at_the_head_is_not_starved_by_small_ones(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(tokens(100))
    order: list[str] = []
    times: dict[str, float] = {}
    start = clock.monotonic()

    def stamp(task: asyncio.Task[float]) -> None:
        times[task.get_name()] = clock.monotonic() - start

    tasks = [enqueue(queue, order, "big", tokens(90))]
    tasks += [enqueue(queue, order, f"small{i}", tokens(10)) for i in range(5)]
    for task in tasks:
        task.add_done_callback(stamp)
    await settle()
    await run_clock(clock, 44.5, 0.5)
    assert order == []  # the small ones would have fitted long ago; they wait behind the head
    await run_clock(clock, 0.5, 0.5)
    assert order == ["big"] and times["big"] == 45.0
    await run_clock(clock, 25.0, 0.5)
    assert order == ["big"] + [f"small{i}" for i in range(5)]
    assert [times[f"small{i}"] for i in range(5)] == [45.0 + 5 * (i + 1) for i in range(5)]
    await asyncio.gather(*tasks)


async def test_a_head_overtaken_by_another_process_reserves_and_is_sent_when_its_debt_is_covered(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    """Another process shares the limiter and takes every token the moment it refills: without a reservation the
    90-token head would never fit. Refused for over 1.5 × its first wait (45 s), it is charged into debt at once
    and sent when the debt is covered — and the other process gets nothing meanwhile."""
    await limiter.consume(tokens(100))
    start = clock.monotonic()
    big = asyncio.create_task(queue.admit(tokens(90)))
    await settle()
    taken: list[float] = []
    while not big.done():
        clock.advance(0.5)
        if await limiter.try_acquire(tokens(1)) == 0.0:  # the other process, first at every refill
            taken.append(clock.monotonic() - start)
        await settle()
    sent_at = clock.monotonic() - start
    assert (await big, sent_at) == (135.0, 135.0)
    # refused at 0 and 45 s; at 90 s (refused for 90 s > 1.5 × 45 s) it reserved: 45 s of debt to cover
    assert taken == [0.5 * i for i in range(1, 181)]  # one token per refill until 90 s, then none
    # never over the bound: 100 (the burst) + 2 tokens per second × 135 s = 370 = 100 + 180 + 90
    assert 100 + len(taken) + 90 == 100 + 2 * 135


async def test_a_full_queue_refuses_at_once(limiter: MemoryRateLimiter, clock: ManualClock) -> None:
    queue = AdmissionQueue("openai", limiter, clock, max_size=3)
    await limiter.consume(rpm(8))
    tasks = [asyncio.create_task(queue.admit(rpm(), priority=0)) for _ in range(3)]
    await settle()
    with pytest.raises(QueueFullError) as caught:
        await queue.admit(rpm(), priority=99)
    assert (caught.value.provider, caught.value.error_class) == ("openai", ErrorClass.QUEUE_FULL)
    assert queue.depth == 3
    await run_clock(clock, 0.375, 0.125)
    await asyncio.gather(*tasks)


async def test_a_deadline_passing_on_the_clock_raises_queue_timeout(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(rpm(1_000))  # in debt for 124 s
    now = clock.monotonic()
    patient = asyncio.create_task(queue.admit(rpm(), priority=5, deadline=now + 50))
    hasty = asyncio.create_task(queue.admit(rpm(), priority=1, deadline=now + 5))  # arrives later, due sooner
    await settle()
    clock.advance(4.5)
    await settle()
    assert not hasty.done() and queue.depth == 2
    clock.advance(0.5)
    await settle()
    with pytest.raises(QueueTimeoutError) as caught:
        await hasty
    assert (caught.value.provider, caught.value.error_class) == ("anthropic", ErrorClass.QUEUE_TIMEOUT)
    assert "5.000s" in str(caught.value)
    assert queue.depth == 1
    clock.advance(45)
    await settle()
    with pytest.raises(QueueTimeoutError):
        await patient
    assert queue.depth == 0
    with pytest.raises(QueueTimeoutError):  # already past, and it would have to wait
        await queue.admit(rpm(), priority=1, deadline=clock.monotonic())
    assert (await limiter.state("anthropic:rpm", RPM)).reset_s == 125 - 50  # nothing was charged


async def test_clear_fails_every_waiter_and_counts_them(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(rpm(8))
    tasks = [asyncio.create_task(queue.admit(rpm(), priority=p)) for p in (1, 2, 2, 7)]
    await settle()
    assert queue.clear("cleared from the dashboard") == 4
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, QueueClearedError) for r in results)
    assert all(r.error_class == ErrorClass.CANCELLED and "dashboard" in str(r) for r in results)  # type: ignore[union-attr]
    assert queue.snapshot()["depth"] == 0
    assert queue.clear() == 0
    await settle()
    assert len(asyncio.all_tasks()) == 1  # the dispatcher has gone
    clock.advance(1)
    assert await queue.admit(rpm(), priority=0) == 0.0


async def test_a_cancelled_waiter_leaves_cleanly(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(rpm(8))
    order: list[str] = []
    tasks = [enqueue(queue, order, f"r{i}", rpm()) for i in range(3)]
    await settle()
    tasks[1].cancel()
    await settle()
    assert tasks[1].cancelled() and queue.depth == 2
    await run_clock(clock, 0.25, 0.125)
    assert order == ["r0", "r2"]
    assert (await limiter.state("anthropic:rpm", RPM)).remaining == pytest.approx(0)  # r1 took nothing
    await settle()
    assert len(asyncio.all_tasks()) == 1


async def test_clear_right_after_a_cancel_counts_only_the_waiters_it_failed(
    queue: AdmissionQueue, limiter: MemoryRateLimiter
) -> None:
    await limiter.consume(rpm(8))
    tasks = [asyncio.create_task(queue.admit(rpm(), priority=0)) for _ in range(3)]
    await settle()
    tasks[0].cancel()  # its caller has not run its cleanup yet when clear() comes
    assert queue.clear() == 2
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert [type(r) for r in results] == [asyncio.CancelledError, QueueClearedError, QueueClearedError]
    assert queue.depth == 0


async def test_when_the_head_is_cancelled_the_next_one_goes_as_soon_as_it_fits(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(tokens(100))
    order: list[str] = []
    big = enqueue(queue, order, "big", tokens(90))
    small = enqueue(queue, order, "small", tokens(1))
    await settle()
    big.cancel()
    await run_clock(clock, 0.5, 0.5)
    assert order == ["small"]
    assert big.cancelled()
    await small


async def test_a_caller_cancelled_after_admission_gives_the_capacity_back(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(tokens(100))
    waiter = asyncio.create_task(queue.admit(tokens(30), priority=0))
    await settle()
    clock.advance(15)
    for _ in range(50):  # stop right after the dispatcher admitted it, before the caller resumed
        await asyncio.sleep(0)
        if queue.depth == 0:
            break
    assert queue.depth == 0 and not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await limiter.state("anthropic:tpm", TPM)).remaining == pytest.approx(30)


async def test_snapshot_shows_depth_oldest_wait_and_priorities(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    assert queue.snapshot() == {
        "provider": "anthropic",
        "depth": 0,
        "max_size": 1000,
        "oldest_wait_s": None,
        "by_priority": {},
    }
    await limiter.consume(rpm(1_000))
    tasks = [asyncio.create_task(queue.admit(rpm(), priority=1))]
    await settle()
    clock.advance(2)
    tasks += [asyncio.create_task(queue.admit(rpm(), priority=p)) for p in (5, 5)]
    await settle()
    clock.advance(1)
    snapshot = queue.snapshot()
    assert snapshot == {
        "provider": "anthropic",
        "depth": 3,
        "max_size": 1000,
        "oldest_wait_s": pytest.approx(3.0),
        "by_priority": {"5": 2, "1": 1},
    }
    assert json.loads(json.dumps(snapshot))["by_priority"] == {"5": 2, "1": 1}
    assert (queue.depth, queue.oldest_wait_s) == (3, pytest.approx(3.0))
    tasks[0].cancel()
    await settle()
    assert queue.oldest_wait_s == pytest.approx(1.0)
    assert queue.clear() == 2
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_limiter_error_reaches_the_head_and_the_queue_goes_on(clock: ManualClock) -> None:
    class Flaky(MemoryRateLimiter):
        fail_next = False

        async def try_acquire(self, demands: Sequence[Demand]) -> float:
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("redis is down")
            return await super().try_acquire(demands)

    limiter = Flaky(clock)
    queue = AdmissionQueue("anthropic", limiter, clock)
    await limiter.consume(rpm(8))
    first = asyncio.create_task(queue.admit(rpm(), priority=0))
    second = asyncio.create_task(queue.admit(rpm(), priority=0))
    await settle()
    limiter.fail_next = True
    await run_clock(clock, 0.125, 0.125)
    with pytest.raises(ConnectionError):
        await first
    assert await second == 0.125  # the failed try charged nothing


@pytest.mark.parametrize("workload", ["requests", "tokens"])
async def test_a_saturating_load_uses_at_least_95_percent_and_never_more_than_the_bound(
    workload: str, clock: ManualClock
) -> None:
    limiter = MemoryRateLimiter(clock)
    queue = AdmissionQueue("anthropic", limiter, clock)
    rng = random.Random(7)
    if workload == "requests":
        spec = LimitSpec(limit=8, period_s=1.0)

        def make() -> tuple[list[Demand], float]:
            return [Demand("anthropic:rpm", spec)], 1.0
    else:
        spec = LimitSpec(limit=200, period_s=1.0)
        roomy = LimitSpec(limit=10_000, period_s=1.0)

        def make() -> tuple[list[Demand], float]:
            cost = float(rng.randint(1, 50))
            return [Demand("anthropic:rpm", roomy), Demand("anthropic:tpm", spec, cost)], cost

    start = clock.monotonic()
    admitted: list[tuple[float, float]] = []
    tasks: set[asyncio.Task[None]] = set()

    async def call() -> None:
        demands, cost = make()
        await queue.admit(demands, priority=rng.randint(0, 3))
        admitted.append((clock.monotonic(), cost))

    period_s, steps, step = 20.0, 2_560, 1 / 128
    for _ in range(steps + 1):
        while queue.depth < 25:  # keep the queue saturated
            task = asyncio.create_task(call())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            await settle()
        if clock.monotonic() - start >= period_s - 1e-9:
            break
        clock.advance(step)
        await settle()
    end = clock.monotonic()
    bound = spec.burst + spec.limit * (end - start) / spec.period_s
    total = sum(cost for _, cost in admitted)
    print(f"{workload}: admitted {total:g} of a bound of {bound:g} ({total / bound:.1%})")
    assert 0.95 * bound <= total <= bound + 1e-6
    for i, (first, _) in enumerate(admitted):  # and no sub-interval exceeds its own bound
        units = 0.0
        for when, cost in admitted[i:]:
            units += cost
            assert units <= spec.burst + spec.limit * (when - first) / spec.period_s + 1e-6
    assert queue.clear() == len(tasks)
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_the_estimate_is_the_queue_position_over_the_effective_rate(
    queue: AdmissionQueue, limiter: MemoryRateLimiter, clock: ManualClock
) -> None:
    await limiter.consume(rpm(8))  # the bucket is empty: one request every 0.125 s
    order: list[str] = []
    waiting = [enqueue(queue, order, f"p1-{n}", rpm(), priority=1) for n in range(3)]
    waiting.append(enqueue(queue, order, "p7", rpm(), priority=7))
    await settle()
    assert queue.depth == 4
    assert await queue.estimate(rpm(), priority=1) == 0.125 + 4 * 0.125  # behind all four
    assert await queue.estimate(rpm(), priority=5) == 0.125 + 1 * 0.125  # behind the priority 7 only
    assert await queue.estimate(tokens(10), priority=9) == 0.0  # another limit with room: nobody ahead
    with pytest.raises(QueueTimeoutError) as caught:  # its turn would come at its deadline: too late
        await queue.admit(rpm(), priority=1, deadline=clock.monotonic() + 0.625, leave_early=True)
    assert str(caught.value) == "anthropic admission estimated in 0.6 s; this request may wait 0.6 s"
    assert queue.depth == 4  # it never joined the queue
    early = asyncio.create_task(queue.admit(rpm(), priority=1, deadline=clock.monotonic() + 0.75, leave_early=True))
    await settle()
    assert queue.depth == 5  # estimated before its deadline: it waits
    await run_clock(clock, 0.625, 0.125)
    assert order == ["p7", "p1-0", "p1-1", "p1-2"] and await early == 0.625
    await asyncio.gather(*waiting)
