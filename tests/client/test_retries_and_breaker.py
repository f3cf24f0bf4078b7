"""Retries (which, how long, how many), one deadline per call, and the per-provider circuit breaker."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa

from pulsegate import (
    CallOptions,
    CircuitOpenError,
    DeadlineExceededError,
    ModelConfig,
    NoUsableKeyError,
    ProviderError,
)
from pulsegate.core.errors import CallError, ErrorClass, KeysCoolingDownError
from pulsegate.core.keys import HealthPolicy
from pulsegate.core.provider import Provider
from pulsegate.core.retry import RetryPolicy, stop_after_attempt, stop_before_deadline
from tests.client.conftest import ANTHROPIC_KEYS, drive, requests_by_key, rows, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)


async def test_transient_failures_are_retried_with_capped_exponential_jitter(make_client, emu, clock, store) -> None:
    emu.add_fault({"kind": "server_error", "count": 2})
    client = make_client(anthropic=1, clock=clock, store=store)
    task = asyncio.create_task(client.generate_response(SONNET, HELLO))
    steps = await drive(clock, task)
    response = task.result()
    assert response.attempts == 3
    assert len(steps) == 2 and all(0 <= s <= cap for s, cap in zip(steps, (0.5, 1.0), strict=True))
    assert requests_by_key(emu)[ANTHROPIC_KEYS[0]] == {500: 2, 200: 1}  # SDK retries are off: one request each
    client.recorder.flush()
    assert [(r["attempt"], r["error_class"], r["http_status"], r["is_final"]) for r in rows(store)] == [
        (1, "server_error", 500, False),
        (2, "server_error", 500, False),
        (3, None, 200, True),
    ]


async def test_consecutive_failures_cool_a_key_and_the_retry_waits_for_it(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "server_error", "count": 3})
    client = make_client(anthropic=1, clock=clock)
    task = asyncio.create_task(client.generate_response(SONNET, HELLO))
    steps = await drive(clock, task)
    assert task.result().attempts == 4
    # three backoffs, then the rest of the 10 s cooldown the third failure in a row put on the only key
    assert len(steps) == 4 and sum(steps[:3]) + steps[3] == pytest.approx(steps[0] + steps[1] + 10.0)


async def test_retries_stop_after_the_attempt_limit(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "server_error"})
    client = make_client(anthropic=2, openai=0, clock=clock)
    task = asyncio.create_task(client.generate_response(SONNET, HELLO))
    await drive(clock, task)
    with pytest.raises(ProviderError) as caught:
        task.result()
    assert (caught.value.error_class, caught.value.http_status, caught.value.attempts) == (
        ErrorClass.SERVER_ERROR,
        500,
        4,
    )
    assert total_requests(emu) == 4


async def test_retry_after_is_honoured_to_the_second(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "rate_limit", "count": 1, "retry_after": 7})
    client = make_client(anthropic=1, clock=clock)
    task = asyncio.create_task(client.generate_response(SONNET, HELLO))
    assert await drive(clock, task) == [7.0]
    assert task.result().attempts == 2


async def test_a_429_moves_the_request_to_another_key_without_waiting(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "rate_limit", "key": ANTHROPIC_KEYS[0], "retry_after": 30})
    client = make_client(anthropic=2, clock=clock)
    response = await client.generate_response(SONNET, HELLO)
    assert (response.key_label, response.attempts, clock.monotonic()) == ("Backup 1", 2, 1000.0)
    pool = client.pools[Provider.ANTHROPIC]
    assert pool.state(pool.keys[0]).cooldown_remaining(clock.monotonic()) == 30
    labels = {(await client.generate_response(SONNET, HELLO)).key_label for _ in range(5)}
    assert labels == {"Backup 1"}  # the cooling key gets nothing until its retry-after has passed


@pytest.mark.parametrize(
    ("scenario", "fault", "error_class", "status"),
    [
        ({}, {"kind": "error", "status": 400}, ErrorClass.BAD_REQUEST, 400),
        ({"unknown_models": ["claude-sonnet-4-6"]}, None, ErrorClass.NOT_FOUND, 404),
        ({"max_body_bytes": 64}, None, ErrorClass.TOO_LARGE, 413),
    ],
)
async def test_request_problems_are_never_retried_on_any_key(
    make_client, emu, scenario: dict, fault: dict | None, error_class: ErrorClass, status: int
) -> None:
    emu.set_scenario(scenario)
    if fault:
        emu.add_fault(fault)
    client = make_client(anthropic=3, openai=1)
    with pytest.raises(ProviderError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))
    assert (caught.value.error_class, caught.value.http_status, caught.value.attempts) == (error_class, status, 1)
    assert total_requests(emu) == 1
    assert all(k["score"] == 100.0 for k in client.pools[Provider.ANTHROPIC].snapshot())


async def test_quota_is_never_retried_and_leaves_no_usable_key(make_client, emu, clock) -> None:
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[0]: {"behaviour": "quota"}}})
    client = make_client(anthropic=1, openai=0, clock=clock)
    with pytest.raises(NoUsableKeyError, match=r"Primary: disabled \(quota: the provider refused this key\)"):
        await client.generate_response(SONNET, HELLO)
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {429: 1}}
    assert clock.monotonic() == 1000.0


async def test_no_call_outlives_its_deadline(make_client, emu) -> None:
    emu.add_fault({"kind": "stall", "seconds": 5})
    client = make_client(anthropic=2)
    started = time.monotonic()
    with pytest.raises(CallError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=0.4))
    elapsed = time.monotonic() - started
    assert caught.value.error_class in (ErrorClass.TIMEOUT, ErrorClass.DEADLINE_EXCEEDED)
    assert elapsed < 1.5, elapsed  # 0.4 s plus scheduling; far below the 5 s stall


async def test_the_deadline_covers_retry_waits(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "rate_limit", "retry_after": 20})
    client = make_client(anthropic=1, openai=0, clock=clock)
    with pytest.raises(ProviderError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=10))
    assert caught.value.error_class is ErrorClass.RATE_LIMITED and caught.value.retry_after == 20
    assert clock.monotonic() == 1000.0  # it did not sleep 20 s past a 10 s deadline
    assert total_requests(emu) == 1


async def test_deadline_exceeded_while_waiting_for_a_cooling_key(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, openai=0, clock=clock)
    pool = client.pools[Provider.ANTHROPIC]
    pool.state(pool.keys[0]).cooldown_until = clock.monotonic() + 3
    task = asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=10)))
    assert await drive(clock, task) == [3.0]
    assert task.result().key_label == "Primary"
    pool.state(pool.keys[0]).cooldown_until = clock.monotonic() + 30
    with pytest.raises(
        KeysCoolingDownError, match=r"every key is cooling down for 30\.0 s, past the call.s deadline"
    ) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=10))
    assert (caught.value.error_class, caught.value.retry_after) == (ErrorClass.KEYS_COOLING_DOWN, 30.0)
    assert DeadlineExceededError.error_class is ErrorClass.DEADLINE_EXCEEDED


BREAKER = {"window_s": 60, "min_calls": 4, "failure_rate": 0.5, "open_s": 30, "max_open_s": 300}
ONE_ATTEMPT = RetryPolicy(stop=stop_after_attempt(1) | stop_before_deadline())


async def test_breaker_opens_fails_fast_admits_one_trial_and_closes(make_client, emu, clock, store: sa.Engine) -> None:
    emu.add_fault({"kind": "server_error"})
    client = make_client(anthropic=2, openai=0, clock=clock, breaker=BREAKER, retry_policy=ONE_ATTEMPT, store=store)
    for _ in range(4):
        with pytest.raises(ProviderError):
            await client.generate_response(SONNET, HELLO)
    assert client.breakers[Provider.ANTHROPIC].state == "open"
    with pytest.raises(CircuitOpenError, match=r"anthropic circuit breaker is open \(next trial in 30.0 s\)"):
        await client.generate_response(SONNET, HELLO)
    assert total_requests(emu) == 4  # failing fast: nothing sent

    clock.advance(30)
    emu.set_scenario({"latency": {"kind": "fixed", "ms": 150}})  # healthy again, and slow enough to overlap
    results = await asyncio.gather(*(client.generate_response(SONNET, HELLO) for _ in range(4)), return_exceptions=True)
    succeeded = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, CircuitOpenError)]
    assert (len(succeeded), len(refused)) == (1, 3)  # half-open admits exactly one trial
    assert total_requests(emu) == 5
    assert client.breakers[Provider.ANTHROPIC].state == "closed"
    await client.generate_response(SONNET, HELLO)
    client.recorder.flush()
    assert sorted(r["error_class"] or "ok" for r in rows(store)).count("circuit_open") == 4


async def test_a_failed_trial_reopens_for_longer(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "server_error"})
    no_cooldowns = HealthPolicy(failures_before_cooldown=1000)  # keep the keys out of this story
    client = make_client(
        anthropic=1, openai=0, clock=clock, breaker=BREAKER, retry_policy=ONE_ATTEMPT, health_policy=no_cooldowns
    )
    breaker = client.breakers[Provider.ANTHROPIC]
    for _ in range(4):
        with pytest.raises(ProviderError):
            await client.generate_response(SONNET, HELLO)
    clock.advance(30)
    with pytest.raises(ProviderError):
        await client.generate_response(SONNET, HELLO)  # the trial fails
    assert breaker.state == "open" and breaker.retry_in() == 60.0
    clock.advance(60)
    with pytest.raises(ProviderError):
        await client.generate_response(SONNET, HELLO)
    assert breaker.retry_in() == 120.0


async def test_only_provider_health_failures_move_the_breaker(make_client, emu, clock) -> None:
    emu.add_fault({"kind": "error", "status": 400})
    client = make_client(anthropic=1, clock=clock, breaker=BREAKER)
    for _ in range(8):
        with pytest.raises(ProviderError):
            await client.generate_response(SONNET, HELLO)
    assert client.breakers[Provider.ANTHROPIC].state == "closed"
