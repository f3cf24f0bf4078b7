"""``limiter_backend``: every shared limiter test runs on the memory backend and on the Redis backend.

The Redis limiter gets the test's :class:`~core.clock.ManualClock` (so both backends see the same time) and a key
prefix of its own (``pulsegate:limit:test-<uuid>:``), whose keys are deleted after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from core.clock import ManualClock
from core.limits import MemoryRateLimiter, RateLimiter


def unique_prefix() -> str:
    return f"pulsegate:limit:test-{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter_backend(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock)
        return
    from core.limits import RedisRateLimiter

    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    limiter = RedisRateLimiter(url, prefix=prefix, clock=clock)
    yield limiter
    assert not limiter.degraded, "the Redis limiter fell back to local limits during a shared-suite test"
    await limiter.aclose()
