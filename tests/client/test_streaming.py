"""Streaming through ``AIClient.stream_response`` (issue 3, item 11), real SDK streams from the emulator.

Deltas in order, time to first token measured and recorded; a failure before the first delta is retried (or falls
back) like any call; after the first delta it raises ``StreamInterruptedError`` with the partial text; a stream
that ends without a stop reason is never a success; a caller that stops reading is recorded as ``cancelled``
without blaming the key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ErrorClass, ModelConfig, StreamInterruptedError
from pulsegate.core.provider import Provider
from pulsegate.core.retry import RetryPolicy, wait_exponential_full_jitter
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import requests_by_key, rows

PROMPT = "Tell me a short story about a lighthouse keeper"
MESSAGES = [{"role": "user", "content": PROMPT}]
NO_WAIT = RetryPolicy(wait=wait_exponential_full_jitter(base_s=0.0, cap_s=0.0))
ROUTE = {"anthropic": "anthropic.messages", "openai": "openai.chat_completions"}
MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}
#: Stream events the emulator sends before the first text delta: Anthropic message_start, content_block_start, ping;
#: OpenAI the role chunk.
EVENTS_BEFORE_TEXT = {"anthropic": 3, "openai": 1}
EXPECTED_TEXT = "This is an emulated reply to: Tell me a short story about a lighthouse"


def pieces(text: str) -> list[str]:
    """The emulator's output tokens: one streamed delta each."""
    return re.findall(r"\s*\S{1,4}", text)


def config(provider: str, max_tokens: int = 256) -> ModelConfig:
    return ModelConfig(provider=provider, model=MODEL[provider], max_tokens=max_tokens)


def count(emu: EmulatorServer, route: str, status: int | None = None) -> int:
    return sum(
        n for statuses in requests_by_key(emu, route).values() for s, n in statuses.items() if status in (None, s)
    )


def sorted_rows(store: sa.Engine, client: AIClient) -> list[dict[str, Any]]:
    client.recorder.flush()
    return sorted(rows(store), key=lambda row: row["attempt"])


both_providers = pytest.mark.parametrize("provider", ["anthropic", "openai"])


@both_providers
async def test_deltas_arrive_in_order_and_make_the_response(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.set_scenario({"latency": {"kind": "none", "ttft_ms": 40, "per_token_ms": 1}})
    client = make_client(store=store, retry_policy=NO_WAIT)
    deltas: list[str] = []
    async with client.stream_response(config(provider), MESSAGES, options=CallOptions(user_id="u-7")) as stream:
        async for delta in stream:
            deltas.append(delta)

    assert deltas == pieces(EXPECTED_TEXT)
    response = stream.response
    assert response is not None
    assert response.text == "".join(deltas) == EXPECTED_TEXT
    assert response.provider == provider
    assert response.stop_reason == "end_turn"
    assert response.fell_back is False
    assert response.attempts == 1
    assert response.usage.output_tokens == len(deltas)
    assert response.usage.input_tokens > 0
    assert response.ttft_ms is not None
    assert 40.0 <= response.ttft_ms < 5000.0  # the emulator holds the first delta back 40 ms
    assert response.request_id is not None and response.request_id.startswith("req_")

    assert count(emu, ROUTE[provider], 200) == 1
    (row,) = sorted_rows(store, client)
    assert row["streamed"] is True
    assert row["outcome"] == "success"
    assert row["is_final"] is True
    assert row["provider"] == provider
    assert row["ttft_ms"] == pytest.approx(response.ttft_ms)
    assert row["output_tokens"] == len(deltas)
    assert row["request_id"] == response.request_id
    assert row["user_id"] == "u-7"
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


@both_providers
async def test_failure_before_the_first_delta_is_retried(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.add_fault(
        {"kind": "stream_error", "provider": provider, "after_events": EVENTS_BEFORE_TEXT[provider] - 1, "count": 1}
    )
    client = make_client(store=store, retry_policy=NO_WAIT)
    async with client.stream_response(config(provider), MESSAGES) as stream:
        deltas = [delta async for delta in stream]

    assert "".join(deltas) == EXPECTED_TEXT  # nothing of the failed attempt leaked into the caller's stream
    assert stream.response is not None
    assert stream.response.attempts == 2
    assert stream.response.text == EXPECTED_TEXT
    assert count(emu, ROUTE[provider]) == 2  # a mid-stream error counts as 200
    assert emu.stats()["faults"] == {"stream_error": 1}
    first, second = sorted_rows(store, client)
    expected_class = "overloaded" if provider == "anthropic" else "server_error"
    assert (first["outcome"], first["error_class"], first["is_final"]) == ("error", expected_class, False)
    assert (second["outcome"], second["error_class"], second["is_final"]) == ("success", None, True)
    assert first["call_id"] == second["call_id"]
    assert first["streamed"] is True and second["streamed"] is True
    assert first["ttft_ms"] is None
    assert second["ttft_ms"] is not None


@both_providers
async def test_failure_after_the_first_delta_raises_with_the_partial_text(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.add_fault({"kind": "stream_error", "provider": provider, "after_events": EVENTS_BEFORE_TEXT[provider] + 3})
    client = make_client(store=store, retry_policy=NO_WAIT)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with client.stream_response(config(provider), MESSAGES) as stream:
            async for delta in stream:
                received.append(delta)

    assert received == pieces(EXPECTED_TEXT)[:3]
    error = caught.value
    assert error.partial_text == "".join(received) == "This is an"
    assert error.error_class == ErrorClass.STREAM_INTERRUPTED
    assert error.provider == provider
    assert error.attempts == 1
    assert stream.response is None
    assert count(emu, ROUTE[provider]) == 1  # text already reached the caller: no retry
    (row,) = sorted_rows(store, client)
    assert (row["outcome"], row["error_class"], row["is_final"], row["streamed"]) == (
        "error",
        "stream_interrupted",
        True,
        True,
    )
    assert row["ttft_ms"] is not None


@both_providers
async def test_truncated_stream_is_an_error_never_a_success(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.add_fault({"kind": "truncate_stream", "provider": provider, "after_events": EVENTS_BEFORE_TEXT[provider] + 4})
    client = make_client(store=store, retry_policy=NO_WAIT)
    received: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async with client.stream_response(config(provider), MESSAGES) as stream:
            async for delta in stream:
                received.append(delta)

    assert received == pieces(EXPECTED_TEXT)[:4]
    assert caught.value.partial_text == "".join(received)
    assert stream.response is None
    (row,) = sorted_rows(store, client)
    assert (row["outcome"], row["error_class"]) == ("error", "stream_interrupted")


@both_providers
async def test_truncation_before_the_first_delta_is_retried(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    """A stream cut before any text reached the caller is a failure before the first delta: retried like any call."""
    emu.add_fault({"kind": "truncate_stream", "provider": provider, "after_events": 1, "count": 1})
    client = make_client(store=store, retry_policy=NO_WAIT)
    async with client.stream_response(config(provider), MESSAGES) as stream:
        deltas = [delta async for delta in stream]

    assert "".join(deltas) == EXPECTED_TEXT
    assert stream.response is not None
    assert stream.response.attempts == 2
    assert count(emu, ROUTE[provider]) == 2
    first, second = sorted_rows(store, client)
    assert (first["outcome"], second["outcome"]) == ("error", "success")


@both_providers
async def test_breaking_out_early_records_cancelled_and_spares_the_key(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.set_scenario({"reply": {"extra_words": 40}})
    client = make_client(anthropic=1, openai=1, store=store, retry_policy=NO_WAIT)
    received: list[str] = []
    async with client.stream_response(config(provider), MESSAGES) as stream:
        async for delta in stream:
            received.append(delta)
            if len(received) == 2:
                break

    assert received == pieces(EXPECTED_TEXT)[:2]
    assert stream.response is None
    (row,) = sorted_rows(store, client)
    assert (row["outcome"], row["error_class"], row["is_final"], row["streamed"]) == (
        "cancelled",
        "cancelled",
        True,
        True,
    )
    assert row["key_label"] == "Primary"
    # billed, so never a silent $0: what the provider reported (or the request's estimate) plus the text seen so far
    assert row["usage_estimated"] is True
    assert row["input_tokens"] > 0 and row["output_tokens"] == -(-len("".join(received)) // 4)
    assert row["cost_usd"] > 0 and row["unpriced"] is False
    (key,) = client.snapshot()["providers"][provider]["keys"]
    assert key["score"] == 100.0
    assert key["status"] == "healthy"
    assert key["consecutive_failures"] == 0
    assert key["in_flight"] == 0

    # the key keeps serving: the next stream on it completes
    async with client.stream_response(config(provider), MESSAGES) as again:
        text = "".join([delta async for delta in again])
    assert again.response is not None and again.response.key_label == "Primary"
    assert text == again.response.text


async def test_a_cancelled_stream_gives_the_breaker_no_verdict(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    """core/breaker.py: "a call that ends without a verdict (cancelled, a 429, a 400) is released"."""
    emu.set_scenario({"reply": {"extra_words": 40}})
    client = make_client(anthropic=1, retry_policy=NO_WAIT)
    async with client.stream_response(config("anthropic"), MESSAGES) as stream:
        async for _ in stream:
            break
    breaker = client.breakers[Provider.ANTHROPIC].snapshot()
    assert breaker["calls_in_window"] == 0
    assert breaker["state"] == "closed"


async def test_stream_falls_back_to_openai_on_an_overload_storm(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault({"kind": "overloaded", "provider": "anthropic"})
    client = make_client(store=store, retry_policy=NO_WAIT)
    async with client.stream_response(
        config("anthropic"), MESSAGES, options=CallOptions(fallback_to_openai=True)
    ) as stream:
        deltas = [delta async for delta in stream]

    assert deltas == pieces(EXPECTED_TEXT)
    response = stream.response
    assert response is not None
    assert (response.provider, response.model, response.fell_back, response.fallback_from) == (
        "openai",
        "gpt-4.1",
        True,
        "anthropic",
    )
    assert response.attempts == 3
    assert response.ttft_ms is not None
    assert count(emu, "anthropic.messages", 529) == 2
    assert count(emu, "openai.chat_completions", 200) == 1
    attempt_rows = sorted_rows(store, client)
    assert [(r["provider"], r["outcome"], r["error_class"]) for r in attempt_rows] == [
        ("anthropic", "error", "overloaded"),
        ("anthropic", "error", "overloaded"),
        ("openai", "success", None),
    ]
    assert all(r["streamed"] is True for r in attempt_rows)
    assert attempt_rows[-1]["fell_back_from"] == "anthropic"
    assert attempt_rows[-1]["ttft_ms"] == pytest.approx(response.ttft_ms)


async def test_stream_with_a_tool_call_after_fallback(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    """OpenAI's streamed tool-call argument fragments come back as one ``tool_use`` block with a parsed input."""
    emu.add_fault({"kind": "overloaded", "provider": "anthropic"})
    client = make_client(retry_policy=NO_WAIT)
    tool = {
        "name": "lookup",
        "input_schema": {"type": "object", "properties": {"q": {"type": "string", "default": "lighthouse"}}},
    }
    cfg = ModelConfig(model="claude-sonnet-4-6", max_tokens=256, tools=[tool], tool_choice={"type": "any"})
    async with client.stream_response(cfg, MESSAGES, options=CallOptions(fallback_to_openai=True)) as stream:
        [_ async for _ in stream]
    response = stream.response
    assert response is not None
    assert response.provider == "openai"
    assert response.stop_reason == "tool_use"
    assert [(b["name"], b["input"]) for b in response.content if b["type"] == "tool_use"] == [
        ("lookup", {"q": "lighthouse"})
    ]
