"""``REDIS_URL`` set: two clients (two app servers) hold ONE provider limit between them, through real Redis, with
the real SDKs against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from redis.crc import key_slot

from pulsegate import AIClient
from pulsegate.core.errors import QueueTimeoutError
from pulsegate.core.limits import Demand
from pulsegate.core.limits.redis import RedisRateLimiter
from pulsegate.core.ops.probe import ProbeTarget
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import total_requests

pytestmark = pytest.mark.redis
MESSAGES = [{"role": "user", "content": "hi"}]
CONFIG = {"model": "claude-sonnet-4-6", "max_tokens": 8}


async def test_two_clients_share_one_provider_limit_through_redis(
    make_client: Callable[..., AIClient], emu: EmulatorServer, redis_url: str
) -> None:
    env = {"REDIS_URL": redis_url, "ANTHROPIC_RPM": "2", "RATE_LIMIT_PERIOD_S": "3600"}
    servers = [make_client(anthropic=1, openai=0, env=env) for _ in range(2)]
    prefix = f"pulsegate:test:{uuid.uuid4().hex}:"
    for client in servers:
        assert isinstance(client.limiter, RedisRateLimiter)
        client.limiter.prefix = prefix  # this test's own keys in the shared Redis
    one, two = servers
    config = {"model": "claude-sonnet-4-6", "max_tokens": 8}
    await one.generate_response(config, MESSAGES)
    await two.generate_response(config, MESSAGES)  # the second of the two the hour allows, from the other server
    with pytest.raises(QueueTimeoutError):
        await one.generate_response(config, MESSAGES, options={"queue_timeout_s": 0.3})
    assert total_requests(emu) == 2
    status = one.snapshot()["limiter"]
    assert (status["backend"], status["degraded"]) == ("redis", False)


class SlotCheckingLimiter(RedisRateLimiter):
    """The real Redis limiter, failing the test if one script names keys of two Redis Cluster slots."""

    def _demand_args(self, demands: Sequence[Demand], mode: str) -> tuple[list[str], list[Any]]:
        keys, args = super()._demand_args(demands, mode)
        slots = {key_slot(key.encode()) for key in keys}
        assert len(slots) == 1, f"one limiter call spans Redis Cluster slots: {keys}"
        return keys, args


async def test_every_limiter_call_of_a_call_stays_in_one_redis_cluster_slot(
    make_client: Callable[..., AIClient], emu: EmulatorServer, redis_url: str
) -> None:
    limiter = SlotCheckingLimiter(redis_url, prefix=f"pulsegate:test:{uuid.uuid4().hex}:")
    env = {"USER_RPM": "100", "USER_TPM": "100000", "FEATURE_RPM": "100", "FEATURE_TPM": "100000"}
    env |= {"ANTHROPIC_TPM": "1000000", "ANTHROPIC_KEY_RPM": "100", "ANTHROPIC_KEY_TPM": "100000"}
    client = make_client(anthropic=2, openai=1, env=env, limiter=limiter)
    options = {"user_id": "u-1", "feature": "search", "fallback_to_openai": True}
    await client.generate_response(CONFIG, MESSAGES, options=options)
    await client.generate_response(CONFIG, MESSAGES, options={**options, "skip_rate_limit": True})
    async with client.stream_response(CONFIG, MESSAGES, options=options) as stream:
        async for _ in stream:
            pass
    result = await client.probe(ProbeTarget("anthropic", "Primary", "claude-sonnet-4-6"))
    assert result.ok
    emu.set_scenario({"faults": [{"kind": "overloaded", "provider": "anthropic"}]})  # a fallback, with its refunds
    assert (await client.generate_response(CONFIG, MESSAGES, options=options)).provider == "openai"
    assert not limiter.degraded
