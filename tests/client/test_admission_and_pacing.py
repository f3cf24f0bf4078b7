"""Limits, the priority queue and adaptive pacing, end to end through the client (time moved by hand)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import (
    AIClient,
    CallOptions,
    ModelConfig,
    NoUsableKeyError,
    QueueClearedError,
    QueueFullError,
    QueueTimeoutError,
)
from pulsegate.core.provider import Provider
from tests.client.conftest import ANTHROPIC_KEYS, drive, requests_by_key, rows, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)
PATIENT = 3600.0


async def _until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let real I/O and the event loop run until ``predicate()`` holds."""
    for _ in range(int(timeout_s / 0.005)):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def _depth(client: AIClient, provider: str = "anthropic") -> int:
    return int(client.snapshot()["providers"][provider]["queue"]["depth"])


async def test_waiting_requests_are_admitted_by_priority_then_arrival(make_client, emu, clock, store) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1"})
    await client.generate_response(SONNET, HELLO)  # takes the bucket's only request
    finished: list[str] = []

    async def call(priority: int, tag: str) -> None:
        options = CallOptions(priority=priority, feature=tag, timeout_s=PATIENT)
        await client.generate_response(SONNET, HELLO, options=options)
        finished.append(tag)

    tasks: list[asyncio.Task[None]] = []
    for priority, tag in [(1, "p1"), (5, "p5-first"), (3, "p3"), (5, "p5-second"), (2, "p2")]:
        tasks.append(asyncio.create_task(call(priority, tag)))
        queued = len(tasks)
        await _until(lambda queued=queued: _depth(client) == queued)
    steps = await drive(clock, asyncio.gather(*tasks))
    assert finished == ["p5-first", "p5-second", "p3", "p2", "p1"]
    assert steps == [60.0] * 5  # one request per minute, exactly
    client.recorder.flush()
    waits = {r["feature"]: r["queue_wait_ms"] for r in rows(store) if r["feature"]}
    assert waits == {"p5-first": 60_000.0, "p5-second": 120_000.0, "p3": 180_000.0, "p2": 240_000.0, "p1": 300_000.0}


async def test_rpm_bounds_what_is_sent_over_any_interval(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, clock=clock, env={"ANTHROPIC_RPM": "10"})
    tasks = [
        asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT)))
        for _ in range(25)
    ]
    await _until(lambda: total_requests(emu) == 10 and _depth(client) == 15)
    sent = [10]
    for _ in range(15):  # the bucket refills one request every 6 s: capacity + limit × T / period, never more
        clock.advance(6)
        await _until(lambda n=sent[-1] + 1: total_requests(emu) == n)
        sent.append(total_requests(emu))
    assert sent == list(range(10, 26))
    await asyncio.gather(*tasks)


async def test_skip_rate_limit_bypasses_the_queue_but_counts(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, clock=clock, env={"ANTHROPIC_RPM": "2"})
    await client.generate_response(SONNET, HELLO)
    await client.generate_response(SONNET, HELLO)
    waiting = asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT)))
    await _until(lambda: _depth(client) == 1)
    urgent = await client.generate_response(SONNET, HELLO, options=CallOptions(skip_rate_limit=True))
    assert urgent.queue_wait_ms == 0.0 and _depth(client) == 1
    rpm = client.snapshot()["providers"]["anthropic"]["limits"]["rpm"]
    assert (rpm["remaining"], rpm["reset_s"]) == (0.0, 90.0)  # the skipped request is owed: 3 used of 2
    steps = await drive(clock, waiting)
    assert sum(steps) == 60.0  # the waiter pays for the bypass: one interval (30 s) later than otherwise


async def test_clear_queue_cancels_every_waiter_with_a_clear_error(make_client, emu, clock, store) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1"})
    await client.generate_response(SONNET, HELLO)
    tasks = [
        asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT)))
        for _ in range(3)
    ]
    await _until(lambda: _depth(client) == 3)
    assert client.clear_queue("anthropic") == 3
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, QueueClearedError) for r in results)
    assert str(results[0]) == "anthropic: the queue was cleared by an operator"
    assert _depth(client) == 0 and total_requests(emu) == 1
    client.recorder.flush()
    assert sorted(r["error_class"] or "ok" for r in rows(store)) == ["cancelled", "cancelled", "cancelled", "ok"]


async def test_queue_timeout_and_queue_full(make_client, emu, clock, store) -> None:
    client = make_client(anthropic=1, clock=clock, store=store, env={"ANTHROPIC_RPM": "1"}, max_queue=2)
    await client.generate_response(SONNET, HELLO)
    slow = asyncio.create_task(
        client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT, queue_timeout_s=5))
    )
    other = asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT)))
    await _until(lambda: _depth(client) == 2)
    with pytest.raises(QueueFullError, match="anthropic admission queue is full \\(2 requests waiting\\)"):
        await client.generate_response(SONNET, HELLO)
    clock.advance(5)
    with pytest.raises(QueueTimeoutError):
        await slow
    await drive(clock, other)
    client.recorder.flush()
    timed_out = [r for r in rows(store) if r["error_class"] == "queue_timeout"]
    assert len(timed_out) == 1 and timed_out[0]["queue_wait_ms"] == 5000.0


async def test_token_reservations_settle_to_actual_usage(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, clock=clock, env={"ANTHROPIC_TPM": "5000"})
    response = await client.generate_response(ModelConfig(model="claude-sonnet-4-6", max_tokens=2000), HELLO)
    used = response.usage.input_tokens + response.usage.output_tokens
    tpm = client.snapshot()["providers"]["anthropic"]["limits"]["tpm"]
    assert tpm["remaining"] == pytest.approx(5000 - used)


async def test_adaptive_pacing_keeps_unequal_key_budgets_free_of_429s(make_client, emu, store: sa.Engine) -> None:
    # Rotation alone would send 10 of 30 calls to the key whose budget is 5.
    budgets = {ANTHROPIC_KEYS[0]: 5, ANTHROPIC_KEYS[1]: 10, ANTHROPIC_KEYS[2]: 20}
    emu.set_scenario({"keys": {key: {"requests": n, "period": 60} for key, n in budgets.items()}})
    client = make_client(anthropic=3, store=store)
    responses = [await client.generate_response(SONNET, HELLO) for _ in range(30)]
    assert all(r.attempts == 1 for r in responses)
    served = requests_by_key(emu)
    assert all(set(statuses) == {200} for statuses in served.values()), served
    assert all(served[key][200] <= budget for key, budget in budgets.items())
    assert sum(statuses[200] for statuses in served.values()) == 30
    pool = client.pools[Provider.ANTHROPIC]
    assert all(k["status"] == "healthy" for k in pool.snapshot())


async def test_configured_per_key_limits_spread_and_pace_calls(make_client, emu, clock) -> None:
    client = make_client(anthropic=2, clock=clock, env={"ANTHROPIC_KEY_RPM": "2"})
    labels = [(await client.generate_response(SONNET, HELLO)).key_label for _ in range(4)]
    assert sorted(labels) == ["Backup 1", "Backup 1", "Primary", "Primary"]
    task = asyncio.create_task(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=PATIENT)))
    assert await drive(clock, task) == [30.0]  # each key refills one request every 30 s
    assert total_requests(emu) == 5


async def test_a_request_admitted_but_never_sent_gives_its_share_back(make_client, emu, clock) -> None:
    client = make_client(anthropic=1, openai=0, clock=clock, env={"ANTHROPIC_RPM": "1", "ANTHROPIC_TPM": "1000"})
    pool = client.pools[Provider.ANTHROPIC]
    pool.state(pool.keys[0]).disable("operator")
    with pytest.raises(NoUsableKeyError):
        await client.generate_response(SONNET, HELLO)
    limits = client.snapshot()["providers"]["anthropic"]["limits"]
    assert (limits["rpm"]["remaining"], limits["tpm"]["remaining"]) == (1.0, 1000.0)
