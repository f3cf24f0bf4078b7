"""The link's script path through real Redis: its own connections (one per call in flight, a few kept idle), a reply
never read by the wrong call after a timeout or a cancellation, and a script cache that Redis lost."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import redis

from pulsegate.core.redis_link import FAILURES, RedisLink, Script
from tests.support.redis_proxy import StallingProxy

pytestmark = pytest.mark.redis

#: Echoes its argument, so which reply reached which call is visible.
ECHO = Script(f"-- {uuid.uuid4().hex}\nreturn ARGV[1]")


@pytest.fixture
async def proxied(redis_url: str) -> AsyncIterator[tuple[StallingProxy, RedisLink]]:
    parts = urlsplit(redis_url)
    proxy = StallingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    link = RedisLink(f"redis://127.0.0.1:{port}{parts.path}", timeout_s=0.05)
    yield proxy, link
    await link.aclose()
    await proxy.close()


def idle(link: RedisLink) -> int:
    return len(link._loop_connections().idle)


async def test_calls_in_sequence_reuse_one_connection(proxied: tuple[StallingProxy, RedisLink]) -> None:
    proxy, link = proxied
    assert [await link.run(ECHO, [], [f"call {n}"]) for n in range(5)] == [f"call {n}".encode() for n in range(5)]
    assert (proxy.connections, idle(link)) == (1, 1)


async def test_calls_in_flight_each_get_a_connection_and_sixteen_stay_idle(
    proxied: tuple[StallingProxy, RedisLink],
) -> None:
    proxy, link = proxied
    proxy.reply_delay_s = 0.01  # keep all 40 in flight together
    link.timeout_s = 5.0
    replies = await asyncio.gather(*(link.run(ECHO, [], [f"call {n}"]) for n in range(40)))
    assert replies == [f"call {n}".encode() for n in range(40)]
    assert (proxy.connections, idle(link)) == (40, 16)


async def test_a_reply_that_comes_after_the_timeout_is_never_read_by_the_next_call(
    proxied: tuple[StallingProxy, RedisLink],
) -> None:
    proxy, link = proxied
    assert await link.run(ECHO, [], ["warm"]) == b"warm"
    proxy.reply_delay_s = 0.2  # the answer arrives, but after the 50 ms timeout
    with pytest.raises(FAILURES):
        await link.run(ECHO, [], ["late"])
    assert idle(link) == 0  # dropped: it would hand "late" to whoever used it next
    proxy.reply_delay_s = 0.0
    assert await link.run(ECHO, [], ["next"]) == b"next"
    assert proxy.connections == 2


async def test_a_cancelled_call_drops_its_connection(proxied: tuple[StallingProxy, RedisLink]) -> None:
    proxy, link = proxied
    link.timeout_s = 5.0
    proxy.reply_delay_s = 0.2
    call = asyncio.ensure_future(link.run(ECHO, [], ["abandoned"]))
    await asyncio.sleep(0.05)  # sent, its reply held back
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert idle(link) == 0
    proxy.reply_delay_s = 0.0
    assert await link.run(ECHO, [], ["next"]) == b"next"
    assert proxy.connections == 2


async def test_a_script_cache_lost_by_redis_is_loaded_again_on_the_same_connection(redis_url: str) -> None:
    link = RedisLink(redis_url, timeout_s=1.0)
    raw = redis.Redis.from_url(redis_url)
    script = Script(f"-- {uuid.uuid4().hex}\nreturn ARGV[1]")
    try:
        assert raw.script_exists(script.sha) == [False]
        assert await link.run(script, [], ["first"]) == b"first"  # NOSCRIPT, loaded, repeated
        assert raw.script_exists(script.sha) == [True]
        assert await link.run(script, [], ["second"]) == b"second"
        assert (idle(link), link.degraded) == (1, False)
    finally:
        await link.aclose()
        raw.close()
