"""A queued call that may fall back does so instead of failing with ``queue_timeout`` — keeping FALLBACK_RESERVE_S of
its deadline for the other provider — through the real SDKs against the emulator, time moved by hand.

What the store shows for such a call: a non-final ``queue_timeout`` row on the provider it left (its
``queue_wait_ms`` is how long it really waited: 0 when the estimate sent it on at once), then the fallback's rows,
the last one final — the same shape as a call that fell back on an open breaker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig, Priority, QueueTimeoutError
from pulsegate.core.clock import ManualClock
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import drive, requests_by_key, rows

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)
PATIENT = 3600.0


def _count(emu: EmulatorServer, route: str) -> int:
    return sum(n for statuses in requests_by_key(emu, route).values() for n in statuses.values())


def _call_rows(client: AIClient, store: sa.Engine, call_id: str) -> list[tuple[Any, ...]]:
    client.recorder.flush()
    found = sorted((r for r in rows(store) if str(r["call_id"]) == call_id), key=lambda r: r["attempt"])
    return [
        (r["attempt"], r["provider"], r["outcome"], r["error_class"], r["queue_wait_ms"], r["fell_back_from"],
         r["is_final"])
        for r in found
    ]  # fmt: skip


async def _until_queued(client: AIClient, depth: int) -> None:
    for _ in range(1000):
        if client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == depth:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the queue never reached {depth}")


async def test_a_call_estimated_to_queue_past_its_queue_timeout_falls_back_at_once(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1"})
    await client.generate_response(SONNET, HELLO)  # takes the bucket's only request: the next one is 60 s away
    options = CallOptions(fallback_to_openai=True, queue_timeout_s=5, timeout_s=60)
    task = asyncio.ensure_future(client.generate_response(SONNET, HELLO, options=options))
    assert await drive(clock, task) == []  # no waiting at all
    response = task.result()
    assert (response.provider, response.model, response.fell_back, response.fallback_from) == (
        "openai",
        "gpt-4.1",
        True,
        "anthropic",
    )
    assert (response.attempts, response.queue_wait_ms) == (1, 0.0)
    assert (_count(emu, "anthropic.messages"), _count(emu, "openai.chat_completions")) == (1, 1)
    assert _call_rows(client, store, response.call_id) == [
        (1, "anthropic", "error", "queue_timeout", 0.0, None, False),
        (2, "openai", "success", None, 0.0, "anthropic", True),
    ]


async def test_a_call_that_waited_as_long_as_it_may_falls_back_with_the_reserve_left(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "2"})
    await client.generate_response(SONNET, HELLO)
    await client.generate_response(SONNET, HELLO)  # the bucket is empty: one request every 30 s
    may_fall_back = asyncio.ensure_future(  # admitted in 30 s by the estimate: within the 60 - 10 s it may wait
        client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True, timeout_s=60))
    )
    await _until_queued(client, 1)
    urgent = asyncio.ensure_future(  # a higher priority arrives and takes the request due at 30 s
        client.generate_response(
            SONNET, HELLO, options=CallOptions(priority=Priority.USER_FACING_HIGH, timeout_s=PATIENT)
        )
    )
    await _until_queued(client, 2)
    assert await drive(clock, asyncio.gather(may_fall_back, urgent)) == [30.0, 20.0]
    response = may_fall_back.result()
    assert (response.provider, response.fell_back, response.queue_wait_ms) == ("openai", True, 50_000.0)
    assert (urgent.result().provider, urgent.result().queue_wait_ms) == ("anthropic", 30_000.0)
    assert (_count(emu, "anthropic.messages"), _count(emu, "openai.chat_completions")) == (3, 1)
    assert _call_rows(client, store, response.call_id) == [
        (1, "anthropic", "error", "queue_timeout", 50_000.0, None, False),
        (2, "openai", "success", None, 0.0, "anthropic", True),  # each row: its own attempt's wait
    ]


async def test_without_fallback_a_queued_call_still_fails_with_queue_timeout(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1"})
    await client.generate_response(SONNET, HELLO)
    options = CallOptions(fallback_to_openai=False, queue_timeout_s=5, timeout_s=60)
    task = asyncio.ensure_future(client.generate_response(SONNET, HELLO, options=options))
    assert await drive(clock, task) == [5.0]
    error = task.exception()
    assert type(error) is QueueTimeoutError
    assert str(error) == "anthropic admission timed out after 5.000s in the queue (priority 5)"
    assert _count(emu, "openai.chat_completions") == 0
    client.recorder.flush()
    assert [(r["error_class"], r["queue_wait_ms"], r["is_final"]) for r in rows(store) if r["outcome"] == "error"] == [
        ("queue_timeout", 5000.0, True)
    ]


@pytest.mark.parametrize(
    ("reserve", "steps", "answered_by"),
    [
        ("10", [5.0], None),  # 8 s of deadline leave less than the 10 s reserve: it waits and fails as before
        ("2", [], "openai"),  # 8 - 2 s leave room to keep the reserve: it falls back at once
    ],
)
async def test_a_deadline_shorter_than_the_reserve_fails_as_before(
    make_client: Callable[..., AIClient],
    emu: EmulatorServer,
    clock: ManualClock,
    store: sa.Engine,
    reserve: str,
    steps: list[float],
    answered_by: str | None,
) -> None:
    client = make_client(
        anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1", "FALLBACK_RESERVE_S": reserve}
    )
    await client.generate_response(SONNET, HELLO)
    options = CallOptions(fallback_to_openai=True, queue_timeout_s=5, timeout_s=8)
    task = asyncio.ensure_future(client.generate_response(SONNET, HELLO, options=options))
    assert await drive(clock, task) == steps
    if answered_by is None:
        assert type(task.exception()) is QueueTimeoutError
        assert _count(emu, "openai.chat_completions") == 0
    else:
        assert task.result().provider == answered_by
        assert _count(emu, "openai.chat_completions") == 1
    client.recorder.flush()
    errors = [(r["provider"], r["error_class"], r["is_final"]) for r in rows(store) if r["outcome"] == "error"]
    assert errors == [("anthropic", "queue_timeout", answered_by is None)]
