"""Two gateway processes of one deployment, on one store and one Redis: an app's limit holds exactly across both,
and a token revoked through the store is refused by both."""

from __future__ import annotations

import time
import uuid

import openai
import pytest
import redis

MESSAGES = [{"role": "user", "content": "hello from two gateways"}]


@pytest.fixture
def gateway_redis_url(redis_url: str) -> str:
    """A database of its own (the other Redis tests use 15): the provider limits here are huge, theirs tiny."""
    url = redis_url.rsplit("/", 1)[0] + "/14"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


def test_an_apps_limit_holds_exactly_across_two_gateways_and_a_revocation_reaches_both(
    start_gateway, gateway_redis_url
) -> None:
    env = {"REDIS_URL": gateway_redis_url, "RATE_LIMIT_PERIOD_S": "3600"}
    first = start_gateway(**env)
    second = start_gateway(share=first, **env)
    app = f"shared-{uuid.uuid4().hex[:8]}"
    token = first.token(app, "--rpm", "6")  # 6 requests per hour across the app's tokens and both processes
    clients = [openai.OpenAI(base_url=f"{g.url}/v1", api_key=token, max_retries=0) for g in (first, second)]
    deadline = time.monotonic() + 3
    while True:  # the second process reads the tokens table within a second too
        try:
            clients[1].models.list()
            break
        except openai.AuthenticationError:
            assert time.monotonic() < deadline
            time.sleep(0.05)

    outcomes = []
    for index in range(10):
        try:
            clients[index % 2].chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=8)
            outcomes.append(200)
        except openai.RateLimitError:
            outcomes.append(429)
    assert outcomes == [200] * 6 + [429] * 4

    code, _, err = first.cli("gateway-token", "revoke", token[:12])
    assert code == 0, err
    time.sleep(1.5)
    for client in clients:
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(model="gpt-4.1", messages=MESSAGES, max_tokens=8)
