"""The Redis backend beyond the shared suite: namespaced keys that expire, Redis's clock, sharing between limiters,
and outages (closed port; a loopback proxy that stalls, then forwards again) with scaled local limits."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
from redis.crc import key_slot

from pulsegate.core.clock import ManualClock
from pulsegate.core.limits import Demand, LimitSpec, RateLimiter, RedisRateLimiter
from pulsegate.core.redis_link import hash_tagged
from tests.support.processes import free_port
from tests.support.redis_proxy import StallingProxy

pytestmark = pytest.mark.redis

RPM = LimitSpec(limit=8, period_s=1.0)


def rpm(cost: float = 1) -> Demand:
    return Demand("anthropic:rpm", RPM, cost)


@pytest.fixture
def raw(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


async def admitted_in_a_row(limiter: RateLimiter, demand: Demand, most: int = 100) -> int:
    count = 0
    while count < most and await limiter.try_acquire([demand]) == 0.0:
        count += 1
    return count


async def test_keys_are_namespaced_and_expire_once_full(redis_url: str, redis_prefix: str, raw: redis.Redis) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)
    spec = LimitSpec(limit=10, period_s=0.2)
    await limiter.try_acquire([Demand("user:u-1:rpm", spec, 5)])
    assert raw.keys(redis_prefix + "*") == [(redis_prefix + "{user:u-1}:rpm").encode()]
    assert 0 < raw.pttl(redis_prefix + "{user:u-1}:rpm") <= 100 + 1_000  # refill time plus one second of slack
    await asyncio.sleep(1.3)
    assert raw.keys(redis_prefix + "*") == []
    assert (await limiter.state("user:u-1:rpm", spec)).remaining == 10
    await limiter.aclose()


def test_limits_acquired_together_share_one_redis_cluster_slot() -> None:
    """One script may only touch keys of one slot in Redis Cluster: each group's names carry the same hash tag."""
    groups = [
        ("anthropic:rpm", "anthropic:tpm"),
        ("openai:key:0123abcd:rpm", "openai:key:0123abcd:tpm"),
        ("user:u-{1}:rpm", "user:u-{1}:tpm"),
    ]
    for group in groups:
        names = [hash_tagged("pulsegate:limit:", name) for name in group]
        assert len({key_slot(name.encode()) for name in names}) == 1, names
    assert hash_tagged("p:", "anthropic:rpm") == "p:{anthropic}:rpm"
    assert hash_tagged("p:", "solo") == "p:{solo}"


async def test_time_comes_from_redis_not_from_the_app_server(redis_url: str, redis_prefix: str) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=redis_prefix)  # no clock: the script reads Redis TIME
    spec = LimitSpec(limit=10, period_s=1.0)
    assert await admitted_in_a_row(limiter, Demand("k", spec)) == 10
    assert await limiter.wait_time([Demand("k", spec)]) == pytest.approx(0.1, abs=0.02)
    await asyncio.sleep(0.25)
    assert await admitted_in_a_row(limiter, Demand("k", spec)) == 2
    await limiter.aclose()


async def test_two_limiters_share_one_bucket(redis_url: str, redis_prefix: str, clock: ManualClock) -> None:
    first = RedisRateLimiter(redis_url, prefix=redis_prefix, clock=clock)
    second = RedisRateLimiter(redis_url, prefix=redis_prefix, clock=clock)
    assert await admitted_in_a_row(first, rpm(), most=5) == 5
    assert await admitted_in_a_row(second, rpm()) == 3
    assert await first.try_acquire([rpm()]) == pytest.approx(0.125)
    await second.refund("anthropic:rpm", RPM, 2)
    assert (await first.state("anthropic:rpm", RPM)).remaining == pytest.approx(2)
    assert first.state_nowait("anthropic:rpm", RPM).remaining == pytest.approx(2)
    await first.aclose()
    await second.aclose()


def test_local_share_defaults() -> None:
    assert RedisRateLimiter("redis://127.0.0.1:1/0").local_share == 1.0
    assert RedisRateLimiter("redis://127.0.0.1:1/0", processes=4).local_share == 0.25
    assert RedisRateLimiter("redis://127.0.0.1:1/0", processes=4, local_share=0.5).local_share == 0.5
    with pytest.raises(ValueError, match="local_share"):
        RedisRateLimiter("redis://127.0.0.1:1/0", local_share=0)


async def test_a_closed_port_degrades_to_scaled_local_limits(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/15"  # nobody listens
    limiter = RedisRateLimiter(url, clock=clock, processes=4)
    caplog.set_level(logging.WARNING, logger="pulsegate.core.redis_link")
    assert await admitted_in_a_row(limiter, rpm()) == 2  # 8 per second shared by 4 processes: a local burst of 2
    assert limiter.degraded
    assert limiter.degraded_since == clock.now()
    assert await limiter.try_acquire([rpm()]) == pytest.approx(0.5)  # the local refill: 2 per second
    await limiter.consume([rpm()])
    await limiter.refund("anthropic:rpm", RPM, 1)
    await limiter.observe("anthropic:rpm", RPM, remaining=8, reset_s=0)
    assert (await limiter.state("anthropic:rpm", RPM)).capacity == 2
    assert limiter.state_nowait("anthropic:rpm", RPM).remaining == 0
    clock.advance(10)  # probes fail too: still one warning for the whole outage
    assert await limiter.try_acquire([rpm()]) == 0.0
    warnings = [r for r in caplog.records if r.name == "pulsegate.core.redis_link"]
    assert len(warnings) == 1
    assert "RATE LIMITS DEGRADED" in warnings[0].getMessage()
    status = limiter.status()
    assert (status["degraded"], status["outages"], status["local_share"]) == (True, 1, 0.25)
    await limiter.aclose()


async def test_a_stalled_redis_degrades_within_the_timeout_and_shared_state_resumes(
    redis_url: str, redis_prefix: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    parts = urlsplit(redis_url)
    proxy = StallingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    limiter = RedisRateLimiter(
        f"redis://127.0.0.1:{port}{parts.path}", prefix=redis_prefix, clock=clock, local_share=0.5, probe_interval_s=2
    )
    caplog.set_level(logging.WARNING, logger="pulsegate.core.redis_link")
    try:
        assert await admitted_in_a_row(limiter, rpm(), most=6) == 6  # shared bucket: 2 left
        assert not limiter.degraded

        proxy.stalled = True
        started = time.perf_counter()
        assert await limiter.try_acquire([rpm()]) == 0.0  # answered locally: a fresh local bucket of 4
        assert time.perf_counter() - started < 0.5  # the 50 ms timeout, not redis-py's 5 s default
        assert limiter.degraded
        started = time.perf_counter()
        assert await admitted_in_a_row(limiter, rpm()) == 3  # until the next probe, Redis is not even tried
        assert time.perf_counter() - started < 0.05

        clock.advance(2.0)  # a probe is due, Redis still stalls: one call waits for the timeout, then local again
        assert await limiter.try_acquire([rpm()]) == 0.0
        assert limiter.degraded

        proxy.stalled = False
        clock.advance(0.5)  # the probe is not due yet
        await limiter.try_acquire([rpm()])
        assert limiter.degraded
        clock.advance(1.5)
        state = await limiter.state("anthropic:rpm", RPM)  # the probe: Redis answers, shared state resumes
        assert not limiter.degraded
        assert limiter.degraded_since is None
        # the shared bucket held 2 at the outage, and 4 s of refill at 8 per second filled it again
        assert state.remaining == pytest.approx(8)
        assert await admitted_in_a_row(limiter, rpm()) == 8
        messages = [r.getMessage() for r in caplog.records if r.name == "pulsegate.core.redis_link"]
        assert len(messages) == 2
        assert "RATE LIMITS DEGRADED" in messages[0]
        assert "answers again" in messages[1]
        assert limiter.status()["outages"] == 1
    finally:
        await limiter.aclose()
        await proxy.close()
