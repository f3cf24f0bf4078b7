"""A call cancelled at any point — ``asyncio.wait_for``, a web framework dropping the handler — leaves exactly one row
per request that reached the provider, and none for a request that never left.

Hundreds of cancels at random moments of non-streaming, streaming and fallback calls against the emulator: the
requests the emulator saw equal the rows in the store, key by key; every call with rows has exactly one ``final``
row; a request cut off in flight is a ``cancelled`` row with an estimated, priced usage — and the key, the breaker
and the success rate learn nothing from it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.masking import fingerprint
from pulsegate.core.provider import Provider
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, rows, sqlite_only
from tests.client.test_streaming import NO_WAIT

HELLO = [{"role": "user", "content": "Tell me a short story about a lighthouse"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=64)
#: Answers take 20–150 ms and streams drip a delta every 3 ms: cancels land before, during and after the request.
LATENCY = {"kind": "uniform", "min_ms": 20, "max_ms": 150, "ttft_ms": 10, "per_token_ms": 3}
#: Cancels that land while the call is still running, per mode (3 modes: ≥ 210 in all).
CANCELS_PER_MODE = 70
MAX_BATCHES = 40


def requests_per_key(emu: EmulatorServer) -> Counter[str]:
    """Requests the emulator received per key fingerprint, whatever it answered."""
    names = {fingerprint(k) for k in ANTHROPIC_KEYS + OPENAI_KEYS}
    seen: Counter[str] = Counter()
    for row in emu.stats()["counts"]:
        if row["route"] in ("anthropic.messages", "openai.chat_completions") and row["key"] in names:
            seen[row["key"]] += row["count"]
    return seen


async def _plain(client: AIClient, options: CallOptions) -> None:
    await client.generate_response(SONNET, HELLO, options=options)


async def _streamed(client: AIClient, options: CallOptions) -> None:
    async with client.stream_response(SONNET, HELLO, options=options) as stream:
        async for _ in stream:
            pass


async def _cancel_at_random(call: Callable[[], object], rng: random.Random, within_s: float) -> bool:
    """Run ``call`` and cancel it within ``within_s``; True when the cancel landed (the call had not finished)."""
    task = asyncio.ensure_future(call())  # type: ignore[arg-type]
    await asyncio.sleep(rng.uniform(0.0, within_s))
    landed = not task.done()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    except Exception:
        pass
    return landed


@sqlite_only
async def test_random_cancels_leave_one_row_per_request_that_left(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    # the breaker never opens here: a fallback call must reach Anthropic, get its 529 and go on to OpenAI
    client = make_client(anthropic=2, openai=2, store=store, retry_policy=NO_WAIT, breaker={"min_calls": 10**6})
    rng = random.Random(17)
    overloaded = [{"kind": "overloaded", "provider": "anthropic"}]  # every Anthropic answer a 529: all fall back
    modes = [  # how the call runs, its options, its faults, cancel within (s): a fallback runs two requests
        (_plain, CallOptions(timeout_s=10), [], 0.1),
        (_streamed, CallOptions(timeout_s=10), [], 0.2),
        (_plain, CallOptions(timeout_s=10, fallback_to_openai=True), overloaded, 0.3),
    ]
    landed = Counter[int]()
    for mode, (run, options, faults, within_s) in enumerate(modes):
        emu.set_scenario({"latency": LATENCY, "reply": {"extra_words": 30}, "faults": faults})
        for _ in range(MAX_BATCHES):  # until this mode has had its share of cancels that landed mid-call
            if landed[mode] >= CANCELS_PER_MODE:
                break
            calls = [lambda run=run, options=options: run(client, options) for _ in range(10)]
            landed[mode] += sum(await asyncio.gather(*(_cancel_at_random(call, rng, within_s) for call in calls)))
    assert min(landed.values()) >= CANCELS_PER_MODE and landed.total() >= 200

    await asyncio.sleep(0.3)  # requests written just before a cancel reach the emulator's counters
    client.recorder.flush()
    stored = rows(store)
    per_key = Counter(row["key_fingerprint"] for row in stored if row["key_fingerprint"] is not None)
    assert per_key == requests_per_key(emu)

    finals = Counter(row["call_id"] for row in stored if row["is_final"])
    assert set(finals.values()) == {1}
    assert set(finals) == {row["call_id"] for row in stored}
    cancelled = [row for row in stored if row["outcome"] == "cancelled"]
    assert len(cancelled) >= 50
    assert {row["error_class"] for row in cancelled} == {"cancelled"}
    assert all(row["usage_estimated"] and row["input_tokens"] > 0 and row["cost_usd"] > 0 for row in cancelled)
    assert {row["provider"] for row in cancelled} == {"anthropic", "openai"}
    # a cancelled fallback keeps its OpenAI attempt, and only the last row of the call is final
    fallback_cancels = [row for row in cancelled if row["fell_back_from"] == "anthropic"]
    assert fallback_cancels and all(row["is_final"] for row in fallback_cancels)

    # neither a success nor an error: OpenAI only ever answered or was cancelled, and its keys kept full health
    snapshot = client.snapshot()["providers"]
    assert all(key["in_flight"] == 0 for provider in snapshot.values() for key in provider["keys"])
    assert [key["score"] for key in snapshot["openai"]["keys"]] == [100.0, 100.0]
    assert all(key["consecutive_failures"] == 0 for key in snapshot["openai"]["keys"])


@sqlite_only
async def test_a_cancel_propagates_at_once_and_the_row_says_how_long_it_ran(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.set_scenario({"latency": {"kind": "fixed", "ms": 2000}})
    client = make_client(anthropic=1, openai=0, store=store)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.generate_response(SONNET, HELLO), 0.3)
    assert time.monotonic() - started < 0.4  # nobody waited for the provider's answer to write the row
    client.recorder.flush()
    (row,) = rows(store)
    assert (row["outcome"], row["error_class"], row["is_final"], row["http_status"]) == (
        "cancelled",
        "cancelled",
        True,
        None,
    )
    assert 250 <= row["latency_ms"] <= 400
    assert row["usage_estimated"] is True and row["output_tokens"] == 0 and row["input_tokens"] > 0
    assert row["cost_usd"] == pytest.approx(row["input_tokens"] * 3.0 / 1_000_000)
    (key,) = client.snapshot()["providers"][Provider.ANTHROPIC.value]["keys"]
    assert (key["score"], key["consecutive_failures"], key["in_flight"]) == (100.0, 0, 0)
