"""``limiter_backend``: every shared limiter test runs on the memory backend, on the Redis backend and on the Redis
backend over a Redis Cluster.

The Redis limiter gets the test's :class:`~pulsegate.core.clock.ManualClock` (so both backends see the same time) and a
key prefix of its own (``pulsegate:limit:test-<uuid>:``), whose keys are deleted after the test.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from pulsegate.core.clock import ManualClock
from pulsegate.core.limits import MemoryRateLimiter, RateLimiter


def unique_prefix() -> str:
    return f"pulsegate:limit:test-{uuid.uuid4().hex[:12]}:"


def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``: on a cluster, on every node (each holds its own slots' keys)."""
    import redis
    from redis.cluster import RedisCluster

    from pulsegate.core.redis_cluster import CLUSTER, detect_blocking

    client: redis.Redis | RedisCluster = (
        RedisCluster.from_url(url) if detect_blocking(url, 2.0) == CLUSTER else redis.Redis.from_url(url)
    )
    try:
        for key in list(client.scan_iter(match=prefix + "*", count=1000)):
            client.delete(key)  # one by one: a cluster refuses a DEL across slots
    finally:
        client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    delete_prefix(redis_url, prefix)


#: The shared Redis, and a Redis Cluster the session starts (``redis_cluster_url``).
REDIS_KINDS = [
    pytest.param("single", marks=pytest.mark.redis),
    pytest.param("cluster", marks=pytest.mark.redis_cluster),
]


@pytest.fixture(params=REDIS_KINDS)
def any_redis_url(request: pytest.FixtureRequest) -> str:
    """The test's Redis URL: the shared single Redis, then the session's Redis Cluster."""
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
    ]
)
async def limiter_backend(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[RateLimiter]:
    if request.param == "memory":
        yield MemoryRateLimiter(clock)
        return
    from pulsegate.core.limits import RedisRateLimiter

    url: str = request.getfixturevalue("redis_url" if request.param == "redis" else "redis_cluster_url")
    prefix = unique_prefix()
    limiter = RedisRateLimiter(url, prefix=prefix, clock=clock)
    try:
        yield limiter
        assert not limiter.degraded, "the Redis limiter fell back to local limits during a shared-suite test"
        assert limiter.link.mode in (None, "single" if request.param == "redis" else "cluster")  # None: never asked
    finally:
        await limiter.aclose()
        delete_prefix(url, prefix)
