"""Validation before any I/O, and how keys share the load, fall out of it and come back."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig, NoUsableKeyError, RequestValidationError
from pulsegate.core.errors import ErrorClass
from pulsegate.core.keys import KeyStatus
from pulsegate.core.provider import Provider
from tests.client.conftest import ANTHROPIC_KEYS, requests_by_key, rows, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)


@pytest.mark.parametrize(
    ("config", "messages", "field"),
    [
        ({"model": "claude-sonnet-4-6", "max_tokens": 0}, HELLO, "config.max_tokens"),
        ({"model": "", "max_tokens": 10}, HELLO, "config.model"),
        ({"model": "m", "provider": "gemini"}, HELLO, "config.provider"),
        ({"model": "m", "temprature": 0.2}, HELLO, "config: unknown field(s) ['temprature']"),
        (SONNET, [], "messages"),
        (SONNET, [{"role": "system", "content": "x"}], "messages[0].role"),
        (SONNET, [{"role": "user", "content": ""}], "messages[0].content"),
        (SONNET, [{"role": "user", "content": [{"type": "text", "text": ""}]}], "messages[0].content[0].text"),
        (SONNET, [{"role": "user", "content": [{"type": "video"}]}], "messages[0].content[0].type"),
    ],
)
async def test_malformed_calls_fail_before_any_io_and_record_one_validation_row(
    make_client, emu, store: sa.Engine, config: object, messages: object, field: str
) -> None:
    client: AIClient = make_client(store=store)
    with pytest.raises(RequestValidationError, match="^invalid request: " + re.escape(field)) as caught:
        await client.generate_response(config, messages)  # type: ignore[arg-type]
    assert caught.value.error_class is ErrorClass.VALIDATION
    assert total_requests(emu) == 0
    assert all(k["requests"] == 0 and k["score"] == 100.0 for k in client.pools[Provider.ANTHROPIC].snapshot())
    assert client.recorder.flush()
    (row,) = rows(store)
    assert (row["error_class"], row["outcome"], row["is_final"], row["attempt"]) == ("validation", "error", True, 1)
    assert row["key_label"] is None and row["latency_ms"] == 0.0


async def test_bad_options_are_validation_errors_too(make_client) -> None:
    client = make_client()
    with pytest.raises(RequestValidationError, match=r"options.priority: expected an integer from 0 to 10, got 11"):
        await client.generate_response(SONNET, HELLO, options=CallOptions(priority=11))
    with pytest.raises(RequestValidationError, match=r"options.timeout_s"):
        await client.generate_response(SONNET, HELLO, options={"timeoutS": -1})


async def test_original_spec_camel_case_names_are_accepted(make_client, emu) -> None:
    client = make_client(anthropic=1)
    response = await client.generate_response(
        {"provider": "anthropic", "model": "claude-sonnet-4-6", "maxTokens": 16},
        HELLO,
        "Be terse.",
        {"fallbackToOpenAI": True, "priority": 6, "skipRateLimit": False},
    )
    assert response.provider == "anthropic" and response.stop_reason in ("end_turn", "max_tokens")


async def test_three_healthy_keys_share_300_sequential_calls(make_client, emu) -> None:
    client = make_client(anthropic=3)
    for _ in range(300):
        await client.generate_response(SONNET, HELLO)
    counts = {key: statuses.get(200, 0) for key, statuses in requests_by_key(emu).items()}
    assert sorted(counts) == sorted(ANTHROPIC_KEYS[:3])
    assert all(90 <= n <= 110 for n in counts.values()), counts
    assert sum(counts.values()) == 300


async def test_keys_in_cooldown_or_disabled_get_no_traffic(make_client, emu, clock) -> None:
    client = make_client(anthropic=3, clock=clock)
    pool = client.pools[Provider.ANTHROPIC]
    _, backup1, backup2 = pool.keys
    pool.state(backup1).disable("operator: rotated")
    pool.state(backup2).cooldown_until = clock.monotonic() + 30
    for _ in range(12):
        response = await client.generate_response(SONNET, HELLO)
        assert response.key_label == "Primary"
    assert set(requests_by_key(emu)) == {ANTHROPIC_KEYS[0]}
    assert {k["label"]: k["status"] for k in pool.snapshot()} == {
        "Primary": "healthy",
        "Backup 1": "disabled",
        "Backup 2": "cooldown",
    }
    clock.advance(30)
    labels = {(await client.generate_response(SONNET, HELLO)).key_label for _ in range(4)}
    assert labels == {"Primary", "Backup 2"}


async def test_when_every_key_is_unhealthy_the_least_used_is_tried(make_client, emu, clock) -> None:
    client = make_client(anthropic=3, clock=clock)
    pool = client.pools[Provider.ANTHROPIC]
    for key, used in zip(pool.keys, (5, 2, 9), strict=True):
        health = pool.state(key)
        health.requests = used
        for _ in range(3):
            health.record_failure(clock.monotonic(), ErrorClass.SERVER_ERROR)
        health.reset_cooldown()  # unhealthy by score, not cooling down
        assert health.status(clock.monotonic()) is KeyStatus.UNHEALTHY
    response = await client.generate_response(SONNET, HELLO)
    assert response.key_label == "Backup 1"


async def test_every_key_disabled_is_no_usable_key_naming_each_reason(make_client, emu) -> None:
    client = make_client(anthropic=2, openai=0)
    pool = client.pools[Provider.ANTHROPIC]
    pool.state(pool.keys[0]).disable("auth: the provider refused this key")
    pool.state(pool.keys[1]).disable("quota: the provider refused this key")
    with pytest.raises(NoUsableKeyError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))
    assert str(caught.value) == (
        "no usable anthropic key (Primary: disabled (auth: the provider refused this key); "
        "Backup 1: disabled (quota: the provider refused this key))"
    )
    assert caught.value.provider == "anthropic" and caught.value.error_class is ErrorClass.NO_USABLE_KEY
    assert total_requests(emu) == 0


async def test_no_usable_key_falls_back_when_allowed(make_client, emu) -> None:
    client = make_client(anthropic=1, openai=1)
    pool = client.pools[Provider.ANTHROPIC]
    pool.state(pool.keys[0]).disable("operator")
    response = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))
    assert (response.provider, response.fell_back, response.fallback_from) == ("openai", True, "anthropic")


@pytest.mark.parametrize(
    ("behaviour", "error_class"), [("invalid", "auth"), ("quota", "quota"), ("permission", "auth")]
)
async def test_a_key_scoped_failure_moves_the_request_to_the_next_key_at_once(
    make_client, emu, store: sa.Engine, clock, behaviour: str, error_class: str
) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[0]: {"behaviour": behaviour}}})
    client = make_client(anthropic=3, store=store, clock=clock)
    response = await client.generate_response(SONNET, HELLO)
    assert (response.key_label, response.attempts) == ("Backup 1", 2)
    assert clock.monotonic() == 1000.0  # no backoff: it was not a retry
    pool = client.pools[Provider.ANTHROPIC]
    assert pool.state(pool.keys[0]).status(clock.monotonic()) is KeyStatus.DISABLED
    client.recorder.flush()
    recorded = [(r["attempt"], r["key_label"], r["outcome"], r["error_class"], r["is_final"]) for r in rows(store)]
    assert recorded == [(1, "Primary", "error", error_class, False), (2, "Backup 1", "success", None, True)]
    # the disabled key gets nothing more; the other two share the rest
    for _ in range(4):
        await client.generate_response(SONNET, HELLO)
    assert sum(requests_by_key(emu)[ANTHROPIC_KEYS[0]].values()) == 1


async def test_an_operator_or_a_probe_brings_a_disabled_key_back(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, openai=0, clock=clock)
    pool = client.pools[Provider.ANTHROPIC]
    pool.state(pool.keys[0]).disable("auth: refused")
    with pytest.raises(NoUsableKeyError):
        await client.generate_response(SONNET, HELLO)
    pool.state(pool.keys[0]).enable()
    assert (await client.generate_response(SONNET, HELLO)).key_label == "Primary"
