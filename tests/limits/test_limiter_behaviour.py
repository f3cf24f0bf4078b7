"""The limiter's behaviour, one suite for every backend (``limiter_backend``: memory and Redis).

Burst then pace, all-or-nothing across demands, peek, refund, debt, observe, state, and the GCRA bound over any
interval. Backend-specific matters (pruning, threads, Redis keys and outages) live in their own files.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsegate.core.clock import ManualClock
from pulsegate.core.limits import Demand, LimitSpec, LimitState, MemoryRateLimiter, RateLimiter
from tests.limits.conftest import delete_prefix

RPM = LimitSpec(limit=10, period_s=1.0)  # 10 per second, burst 10
TPM = LimitSpec(limit=100, period_s=60.0)  # one unit per 0.6 s, burst 100


def rpm(cost: float = 1) -> Demand:
    return Demand("anthropic:rpm", RPM, cost)


def tpm(cost: float) -> Demand:
    return Demand("anthropic:tpm", TPM, cost)


def test_it_implements_the_protocol(limiter_backend: RateLimiter) -> None:
    assert isinstance(limiter_backend, RateLimiter)


async def test_burst_of_capacity_then_paced_at_limit_per_period(
    limiter_backend: RateLimiter, clock: ManualClock
) -> None:
    assert [await limiter_backend.try_acquire([rpm()]) for _ in range(10)] == [0.0] * 10
    assert await limiter_backend.try_acquire([rpm()]) == pytest.approx(0.1)
    clock.advance(0.05)
    assert await limiter_backend.try_acquire([rpm()]) == pytest.approx(0.05)
    for _ in range(20):  # from here on exactly one every 0.1 s
        clock.advance(0.05)
        assert await limiter_backend.try_acquire([rpm()]) == 0.0
        assert await limiter_backend.try_acquire([rpm()]) == pytest.approx(0.1)
        clock.advance(0.05)
        assert await limiter_backend.try_acquire([rpm()]) == pytest.approx(0.05)


async def test_capacity_smaller_than_limit_caps_the_burst(limiter_backend: RateLimiter, clock: ManualClock) -> None:
    spec = LimitSpec(limit=60, period_s=60, capacity=5)
    demand = Demand("openai:rpm", spec)
    assert [await limiter_backend.try_acquire([demand]) for _ in range(6)] == [0.0] * 5 + [pytest.approx(1.0)]
    clock.advance(100)
    assert [await limiter_backend.try_acquire([demand]) for _ in range(6)] == [0.0] * 5 + [pytest.approx(1.0)]


async def test_all_or_nothing_across_demands(limiter_backend: RateLimiter) -> None:
    await limiter_backend.consume([tpm(80)])
    assert await limiter_backend.try_acquire([rpm(), tpm(50)]) == pytest.approx(30 * 0.6)  # the tokens are short
    assert (await limiter_backend.state("anthropic:rpm", RPM)).remaining == pytest.approx(10)  # rpm was not charged
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(20)
    assert await limiter_backend.try_acquire([rpm(), tpm(20)]) == 0.0
    assert (await limiter_backend.state("anthropic:rpm", RPM)).remaining == pytest.approx(9)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(0)


async def test_the_wait_is_the_longest_of_the_demands(limiter_backend: RateLimiter) -> None:
    await limiter_backend.consume([rpm(10), tpm(100)])
    assert await limiter_backend.try_acquire([rpm(1), tpm(1)]) == pytest.approx(0.6)
    assert await limiter_backend.try_acquire([rpm(5), tpm(1)]) == pytest.approx(0.6)
    assert await limiter_backend.try_acquire([rpm(10), tpm(1)]) == pytest.approx(1.0)


async def test_two_demands_on_one_key_add_up(limiter_backend: RateLimiter) -> None:
    assert await limiter_backend.try_acquire([tpm(60), tpm(60)]) == pytest.approx(20 * 0.6)
    assert await limiter_backend.try_acquire([tpm(50), tpm(50)]) == 0.0
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(0)


async def test_peek_consumes_nothing(limiter_backend: RateLimiter) -> None:
    await limiter_backend.consume([tpm(90)])
    assert await limiter_backend.wait_time([tpm(10)]) == 0.0
    assert await limiter_backend.wait_time([tpm(30)]) == pytest.approx(20 * 0.6)
    assert await limiter_backend.wait_time([tpm(30)]) == pytest.approx(20 * 0.6)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(10)
    assert await limiter_backend.try_acquire([tpm(10)]) == 0.0


async def test_refund_gives_back_but_never_beyond_full(limiter_backend: RateLimiter) -> None:
    await limiter_backend.consume([tpm(80)])
    await limiter_backend.refund("anthropic:tpm", TPM, 50)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(70)
    await limiter_backend.refund("anthropic:tpm", TPM, 1_000)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(100)
    await limiter_backend.refund("anthropic:tpm", TPM, 1_000)  # a full bucket stays at capacity: no extra burst
    await limiter_backend.refund("never-seen", TPM, 10)
    assert await limiter_backend.try_acquire([tpm(100)]) == 0.0
    assert await limiter_backend.try_acquire([tpm(1)]) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="negative"):
        await limiter_backend.refund("anthropic:tpm", TPM, -1)


async def test_consume_goes_into_debt_and_delays_later_acquires(
    limiter_backend: RateLimiter, clock: ManualClock
) -> None:
    await limiter_backend.consume([tpm(250)])  # 150 units beyond the capacity
    state = await limiter_backend.state("anthropic:tpm", TPM)
    assert (state.remaining, state.used, state.reset_s) == (0, 100, pytest.approx(150))
    assert await limiter_backend.try_acquire([tpm(1)]) == pytest.approx(150 * 0.6 + 0.6)
    clock.advance(90.0)  # the debt is paid off; the bucket is empty
    assert await limiter_backend.try_acquire([tpm(1)]) == pytest.approx(0.6)
    clock.advance(0.6)
    assert await limiter_backend.try_acquire([tpm(1)]) == 0.0


async def test_observe_tightens_and_never_loosens(limiter_backend: RateLimiter, clock: ManualClock) -> None:
    await limiter_backend.observe("anthropic:tpm", TPM, remaining=30, reset_s=0)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(30)
    await limiter_backend.observe("anthropic:tpm", TPM, remaining=80, reset_s=0)  # looser: ignored
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(30)
    assert await limiter_backend.try_acquire([tpm(31)]) == pytest.approx(0.6)
    await limiter_backend.observe("anthropic:tpm", TPM, remaining=10, reset_s=0)
    assert (await limiter_backend.state("anthropic:tpm", TPM)).remaining == pytest.approx(10)
    clock.advance(60)
    await limiter_backend.observe(
        "anthropic:tpm", TPM, remaining=90, reset_s=30
    )  # "full in 30 s": stricter than 90 left
    state = await limiter_backend.state("anthropic:tpm", TPM)
    assert (state.remaining, state.reset_s) == (pytest.approx(50), pytest.approx(30))


async def test_cost_above_capacity_is_admitted_when_full_and_charged_in_full(
    limiter_backend: RateLimiter, clock: ManualClock
) -> None:
    await limiter_backend.consume([tpm(10)])
    assert await limiter_backend.try_acquire([tpm(250)]) == pytest.approx(6.0)  # waits for a full bucket, not forever
    clock.advance(6.0)
    assert await limiter_backend.try_acquire([tpm(250)]) == 0.0
    state = await limiter_backend.state("anthropic:tpm", TPM)
    assert (state.remaining, state.reset_s) == (0, pytest.approx(250 * 0.6))


async def test_state_reports_the_bucket(limiter_backend: RateLimiter, clock: ManualClock) -> None:
    fresh = await limiter_backend.state("anthropic:tpm", TPM)
    assert fresh == LimitState(limit=100, period_s=60, capacity=100, remaining=100, used=0, reset_s=0)
    await limiter_backend.try_acquire([tpm(30)])
    state = await limiter_backend.state("anthropic:tpm", TPM)
    assert (state.remaining, state.used, state.reset_s) == (pytest.approx(70), pytest.approx(30), pytest.approx(18))
    clock.advance(6)
    state = await limiter_backend.state("anthropic:tpm", TPM)
    assert (state.remaining, state.used, state.reset_s) == (pytest.approx(80), pytest.approx(20), pytest.approx(12))
    assert json.loads(json.dumps(state.as_dict()))["capacity"] == 100
    burst = await limiter_backend.state("k", LimitSpec(limit=60, period_s=60, capacity=5))
    assert (burst.limit, burst.capacity, burst.remaining) == (60, 5, 5)


specs = st.builds(
    LimitSpec,
    limit=st.integers(1, 50).map(float),
    period_s=st.sampled_from([1.0, 2.5, 60.0]),
    capacity=st.one_of(st.none(), st.integers(1, 50).map(float)),
)
arrivals = st.lists(
    st.tuples(
        st.floats(0.0, 1.5),  # gap before the arrival, in periods
        st.floats(0.0, 1.0),  # cost, as a fraction of the capacity
        st.booleans(),  # when refused: come back exactly when told to
    ),
    min_size=1,
    max_size=60,
)


@pytest.mark.parametrize(
    "backend",
    [
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
    ],
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(spec=specs, pattern=arrivals)
def test_admitted_never_exceeds_capacity_plus_refill_over_any_interval(
    backend: str, request: pytest.FixtureRequest, spec: LimitSpec, pattern: list[tuple[float, float, bool]]
) -> None:
    clock = ManualClock()
    admitted: list[tuple[float, float]] = []
    url = (
        ""
        if backend == "memory"
        else request.getfixturevalue("redis_url" if backend == "redis" else "redis_cluster_url")
    )
    prefix = f"pulsegate:limit:test-{uuid.uuid4().hex[:12]}:"

    async def drive() -> None:
        limiter: RateLimiter
        if backend != "memory":
            from pulsegate.core.limits import RedisRateLimiter

            limiter = RedisRateLimiter(url, prefix=prefix, clock=clock)
        else:
            limiter = MemoryRateLimiter(clock)
        for gap, fraction, retry in pattern:
            clock.advance(gap * spec.period_s)
            demand = Demand("k", spec, fraction * spec.burst)
            wait = await limiter.try_acquire([demand])
            if wait > 0 and retry:
                clock.advance(wait)
                wait = await limiter.try_acquire([demand])
                assert wait == 0.0, "the wait it returned was not enough"
            if wait == 0.0:
                admitted.append((clock.monotonic(), demand.cost))
        if backend != "memory":
            assert not limiter.degraded  # type: ignore[attr-defined]
            await limiter.aclose()  # type: ignore[attr-defined]

    try:
        asyncio.run(drive())
    finally:
        if backend != "memory":
            delete_prefix(url, prefix)
    for i, (start, _) in enumerate(admitted):
        total = 0.0
        for end, cost in admitted[i:]:
            total += cost
            bound = spec.burst + spec.limit * (end - start) / spec.period_s
            assert total <= bound + 1e-6 * max(1.0, bound), (start, end, total, bound)
