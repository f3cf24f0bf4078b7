"""Two app servers (two ``AIClient``\\ s) share key health, cooldowns, disabled keys and the breaker through real
Redis, with the real SDKs against the emulator. Both servers' state scripts take the test's manual clock, so
cooldowns and open periods end when the test says. The sharing tests run on a single Redis and on the session's
Redis Cluster (``servers`` parametrized ``single`` / ``cluster``)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis

from pulsegate import AIClient
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import CircuitOpenError, ErrorClass, ProviderError
from pulsegate.core.ops.control import ControlCommand, apply_command
from pulsegate.core.provider import Provider
from pulsegate.core.redis_link import RedisLink
from pulsegate.core.shared_state.redis import RedisSharedState
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, drive, requests_by_key, total_requests
from tests.limits.conftest import delete_prefix, unique_prefix
from tests.support.redis_proxy import StallingProxy

pytestmark = pytest.mark.redis
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = {"model": "claude-sonnet-4-6", "max_tokens": 8}
BREAKER = {"min_calls": 2, "failure_rate": 0.5, "open_s": 30.0}

Servers = Callable[..., list[AIClient]]


#: ``servers`` on the single Redis, then on the Redis Cluster (indirect parametrization of the sharing tests).
ON_BOTH = pytest.mark.parametrize(
    "servers", ["single", pytest.param("cluster", marks=pytest.mark.redis_cluster)], indirect=True
)


@pytest.fixture
async def servers(
    request: pytest.FixtureRequest, make_client: Callable[..., AIClient], clock: ManualClock
) -> AsyncIterator[Callable[..., list[AIClient]]]:
    """``servers(n, anthropic=2, urls=None)``: n clients sharing state under one fresh prefix (``urls`` gives each its
    own Redis URL, e.g. a proxy), on the single Redis unless parametrized ``cluster``."""
    kind = getattr(request, "param", "single")
    redis_url: str = request.getfixturevalue("redis_url" if kind == "single" else "redis_cluster_url")
    prefix = unique_prefix().replace("limit", "state")

    def build(count: int = 2, anthropic: int = 2, urls: list[str] | None = None) -> list[AIClient]:
        clients = []
        for index in range(count):
            # a loaded CI box must not time out (and degrade) a test about sharing; the outage test sets its urls
            link = RedisLink((urls or [redis_url] * count)[index], clock=clock, timeout_s=1.0 if urls is None else 0.05)
            shared = RedisSharedState(link, prefix=prefix, clock=clock)
            clients.append(
                make_client(anthropic=anthropic, openai=0, clock=clock, shared_state=shared, breaker=BREAKER)
            )
        return clients

    yield build
    delete_prefix(redis_url, prefix)


def key_state(client: AIClient, label: str) -> dict[str, Any]:
    keys = client.snapshot()["providers"]["anthropic"]["keys"]
    return next(key for key in keys if key["label"] == label)


def command(name: str, label: str) -> ControlCommand:
    now = datetime.now(UTC)
    return ControlCommand(1, name, "anthropic", label, None, "test", now, now + timedelta(minutes=5))


@ON_BOTH
async def test_a_cooldown_set_by_one_server_is_obeyed_by_the_other_on_its_next_call(
    servers: Servers, emu: EmulatorServer
) -> None:
    emu.set_scenario({"faults": [{"kind": "rate_limit", "count": 1, "key": ANTHROPIC_KEYS[0], "retry_after": 30}]})
    one, two = servers()
    assert (await one.generate_response(CONFIG, MESSAGES)).key_label == "Backup 1"  # 429 on Primary: moved on
    # two never saw that 429, and its own rotation would start with Primary
    assert (await two.generate_response(CONFIG, MESSAGES)).key_label == "Backup 1"
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {429: 1}, ANTHROPIC_KEYS[1]: {200: 2}}
    primary = key_state(two, "Primary")
    assert (primary["status"], primary["cooldown_remaining_s"], primary["score"]) == ("cooldown", 30.0, 50.0)
    assert two.snapshot()["shared_state"] == {
        "backend": "redis",
        "degraded": False,
        "degraded_since": None,
        "outages": 0,
    }


@ON_BOTH
async def test_a_key_refused_on_one_server_is_disabled_on_both_until_enabled_on_either(
    servers: Servers, emu: EmulatorServer
) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[0]: {"behaviour": "invalid"}}})
    one, two = servers()
    assert (await one.generate_response(CONFIG, MESSAGES)).key_label == "Backup 1"
    assert (await two.generate_response(CONFIG, MESSAGES)).key_label == "Backup 1"
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {401: 1}, ANTHROPIC_KEYS[1]: {200: 2}}
    primary = key_state(two, "Primary")
    assert (primary["status"], primary["disabled_reason"]) == ("disabled", "auth: the provider refused this key")

    emu.set_scenario({})
    emu.reset()
    assert apply_command(two.instance, command("enable_key", "Primary")) == "key 'Primary' enabled"
    await two.generate_response(CONFIG, MESSAGES)  # two tells the shared state on its next call
    await one.generate_response(CONFIG, MESSAGES)
    await one.generate_response(CONFIG, MESSAGES)
    primary = key_state(one, "Primary")
    assert (primary["status"], primary["score"]) == ("degraded", 66.7)  # back in service; its 401 still weighs
    assert requests_by_key(emu)[ANTHROPIC_KEYS[0]] == {200: 2}  # one rotates through Primary again


@ON_BOTH
async def test_a_breaker_tripped_on_one_server_fails_fast_on_the_other(
    servers: Servers, emu: EmulatorServer, clock: ManualClock
) -> None:
    emu.set_scenario({"faults": [{"kind": "overloaded", "provider": "anthropic"}]})
    one, two = servers()
    call = asyncio.ensure_future(one.generate_response(CONFIG, MESSAGES))
    await drive(clock, call)  # a 529, one retry after a backoff the manual clock skips, a 529 again: tripped
    with pytest.raises(ProviderError) as failure:
        call.result()
    assert (failure.value.error_class, failure.value.attempts) == (ErrorClass.OVERLOADED, 2)
    assert one.snapshot()["providers"]["anthropic"]["breaker"]["state"] == "open"
    sent = total_requests(emu)
    with pytest.raises(CircuitOpenError, match=r"next trial in 30\.0 s"):
        await two.generate_response(CONFIG, MESSAGES)
    assert total_requests(emu) == sent  # nothing reached the provider from two
    breaker = two.snapshot()["providers"]["anthropic"]["breaker"]
    assert (breaker["state"], breaker["consecutive_opens"]) == ("open", 1)

    # the open period ends for both at once; exactly ONE of them sends the half-open trial
    clock.advance(30.0)
    emu.set_scenario({"latency": {"kind": "fixed", "ms": 300}})
    emu.reset()
    results = await asyncio.gather(
        one.generate_response(CONFIG, MESSAGES), two.generate_response(CONFIG, MESSAGES), return_exceptions=True
    )
    assert sorted(type(result).__name__ for result in results) == ["AIResponse", "CircuitOpenError"], results
    assert total_requests(emu) == 1
    # the trial closed the breaker for both
    for client in (one, two):
        await client.generate_response(CONFIG, MESSAGES)
        assert client.snapshot()["providers"]["anthropic"]["breaker"]["state"] == "closed"
    assert total_requests(emu) == 3


async def test_redis_down_each_server_goes_on_alone_and_tells_the_others_when_it_returns(
    servers: Servers, emu: EmulatorServer, redis_url: str, clock: ManualClock
) -> None:
    parts = urlsplit(redis_url)
    proxy = StallingProxy(parts.hostname or "127.0.0.1", parts.port or 6379)
    port = await proxy.start()
    try:
        one, two = servers(urls=[f"redis://127.0.0.1:{port}{parts.path}", redis_url])
        await one.generate_response(CONFIG, MESSAGES)  # connected through the proxy
        proxy.stalled = True
        emu.set_scenario({"faults": [{"kind": "rate_limit", "count": 1, "key": ANTHROPIC_KEYS[1], "retry_after": 60}]})
        started = time.perf_counter()
        response = await one.generate_response(CONFIG, MESSAGES)  # Backup 1 answers 429: cooled down locally
        assert time.perf_counter() - started < 1.0
        assert response.key_label == "Primary"
        state = one.snapshot()["shared_state"]
        assert (state["degraded"], state["outages"]) == (True, 1)
        assert key_state(one, "Backup 1")["status"] == "cooldown"
        assert key_state(two, "Backup 1")["status"] == "healthy"  # two could not be told yet

        proxy.stalled = False
        clock.advance(2.0)  # the next probe of Redis is due
        await one.generate_response(CONFIG, MESSAGES)  # tells the shared state what it learnt alone
        assert one.snapshot()["shared_state"]["degraded"] is False
        await two.generate_response(CONFIG, MESSAGES)
        backup = key_state(two, "Backup 1")
        assert (backup["status"], backup["cooldown_remaining_s"]) == ("cooldown", 58.0)
        assert requests_by_key(emu)[ANTHROPIC_KEYS[1]] == {429: 1}
    finally:
        await proxy.close()


async def test_concurrent_calls_tell_every_outcome_exactly_once(
    servers: Servers, emu: EmulatorServer, redis_url: str
) -> None:
    (one,) = servers(count=1)
    emu.set_scenario({"latency": {"kind": "uniform", "min_ms": 5, "max_ms": 40}})

    async def staggered(index: int) -> None:  # calls begin while earlier ones settle: exchanges overlap
        await asyncio.sleep(0.003 * index)
        await one.generate_response(CONFIG, MESSAGES)

    await asyncio.gather(*(staggered(index) for index in range(30)))
    await one.generate_response(CONFIG, MESSAGES)  # its exchange tells what the last of the 30 learnt
    shared = one.shared_state
    assert isinstance(shared, RedisSharedState)
    raw = redis.Redis.from_url(redis_url)
    try:
        records = {
            fp.decode(): json.loads(value) for fp, value in raw.hgetall(f"{shared.prefix}{{anthropic}}:keys").items()
        }
    finally:
        raw.close()
    # 31 successes: the 30 told by the last call's exchange, none twice (the clock never moved), and its own
    pending = [one.pools[Provider.ANTHROPIC].state(key).pending for key in one.pools[Provider.ANTHROPIC].keys]
    assert sum(record["g"] for record in records.values()) == 30
    assert sum(p.good for p in pending if p is not None) == 1
    assert all(record["g"] == record["t"] for record in records.values())
