"""``REDIS_URL`` set: two clients (two app servers) hold ONE provider limit between them, through real Redis, with
the real SDKs against the emulator."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from core import AIClient
from core.errors import QueueTimeoutError
from core.limits.redis import RedisRateLimiter
from emulator import EmulatorServer
from tests.client.conftest import total_requests

pytestmark = pytest.mark.redis
MESSAGES = [{"role": "user", "content": "hi"}]


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
