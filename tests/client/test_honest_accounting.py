"""What a call records and does must be what it promises: the deadline bounds a body that arrives slowly and a
stream that trickles; a refusal made here is not a 429; a stream that broke or was abandoned is never a silent $0;
a hashed user id is what the provider is told, too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import (
    AIClient,
    CallOptions,
    DeadlineExceededError,
    ErrorClass,
    KeysCoolingDownError,
    ModelConfig,
    StreamInterruptedError,
)
from pulsegate.core.user_ids import hash_user_id
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import rows, sqlite_only
from tests.client.test_streaming import EVENTS_BEFORE_TEXT, MESSAGES, NO_WAIT, both_providers, config

SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=64)
HELLO = [{"role": "user", "content": "Hello"}]


@sqlite_only
@both_providers
async def test_a_body_that_arrives_slowly_ends_at_the_deadline(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    # the answer starts at once, then its body comes in 10 pieces 0.5 s apart: 4.5 s in all, each read quick
    emu.add_fault({"kind": "drip_body", "provider": provider, "seconds": 0.5})
    client = make_client(store=store, retry_policy=NO_WAIT)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError) as caught:
        await client.generate_response(config(provider), MESSAGES, options=CallOptions(timeout_s=1.5))
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed <= 1.6  # the deadline + 100 ms, not the body's 4.5 s
    assert caught.value.error_class is ErrorClass.DEADLINE_EXCEEDED
    assert str(caught.value) == "the call's deadline of 1.5 s passed after 1 attempt(s)"
    client.recorder.flush()
    (row,) = rows(store)  # the attempt timed out (the breaker hears it); no time was left for another
    assert (row["outcome"], row["error_class"], row["is_final"]) == ("error", "timeout", True)
    # it left and got no answer, so it may have been billed: never a silent $0
    assert row["usage_estimated"] is True and row["input_tokens"] > 0 and row["cost_usd"] > 0


@sqlite_only
async def test_retries_and_a_slow_fallback_all_end_by_the_deadline(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.set_scenario(
        {
            "faults": [
                {"kind": "overloaded", "provider": "anthropic"},  # every Anthropic answer a 529 …
                {"kind": "drip_body", "provider": "openai", "seconds": 0.5},  # … and OpenAI's body drips
            ]
        }
    )
    client = make_client(anthropic=2, openai=1, store=store, retry_policy=NO_WAIT)
    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=2, fallback_to_openai=True))
    assert time.monotonic() - started <= 2.1
    client.recorder.flush()
    stored = rows(store)
    assert [(r["provider"], r["error_class"]) for r in stored][-1] == ("openai", "timeout")
    assert {r["error_class"] for r in stored[:-1]} == {"overloaded"}
    assert [r["is_final"] for r in stored].count(True) == 1 and stored[-1]["is_final"]


@sqlite_only
@both_providers
async def test_a_stream_past_its_total_timeout_is_interrupted_with_its_partial_text_and_priced(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.set_scenario({"latency": {"kind": "none", "per_token_ms": 200}, "reply": {"extra_words": 40}})
    client = make_client(store=store, retry_policy=NO_WAIT)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as caught:
        options = CallOptions(timeout_s=5, stream_total_timeout_s=1.0)
        async with client.stream_response(config(provider), MESSAGES, options=options) as stream:
            async for delta in stream:
                received.append(delta)
    assert 1.0 <= time.monotonic() - started <= 1.1
    error = caught.value
    assert error.partial_text == "".join(received) and 3 <= len(received) <= 6
    assert str(error) == (
        f"{provider} stream broke after {len(error.partial_text)} characters "
        "(timeout: the stream ran past its total timeout of 1 s)"
    )
    client.recorder.flush()
    (row,) = rows(store)
    assert (row["outcome"], row["error_class"], row["usage_estimated"]) == ("error", "stream_interrupted", True)
    assert row["output_tokens"] == -(-len(error.partial_text) // 4)
    assert row["cost_usd"] > 0 and row["unpriced"] is False


@sqlite_only
async def test_an_interrupted_anthropic_stream_keeps_the_exact_input_usage_it_was_told(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    after = EVENTS_BEFORE_TEXT["anthropic"] + 3
    emu.add_fault({"kind": "stream_error", "provider": "anthropic", "after_events": after})
    client = make_client(store=store, retry_policy=NO_WAIT)
    with pytest.raises(StreamInterruptedError) as caught:
        async with client.stream_response(config("anthropic"), MESSAGES) as stream:
            async for _ in stream:
                pass
    client.recorder.flush()
    (row,) = rows(store)
    # message_start reported the input exactly; the same prompt answered whole reports the same count
    whole = await client.generate_response(config("anthropic"), MESSAGES)
    assert row["input_tokens"] == whole.usage.input_tokens
    assert row["output_tokens"] == -(-len(caught.value.partial_text) // 4) > 0
    assert row["usage_estimated"] is True
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 3.0 + row["output_tokens"] * 15.0) / 1e6)


@sqlite_only
async def test_every_key_cooling_down_is_a_local_refusal_not_a_429(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault({"kind": "rate_limit", "provider": "anthropic", "retry_after": 30, "count": 1})
    client = make_client(anthropic=1, openai=1, store=store, retry_policy=NO_WAIT)
    with pytest.raises(KeysCoolingDownError):  # the 429 cools the only key for 30 s, past the 5 s deadline
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=5))
    with pytest.raises(KeysCoolingDownError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=5))
    assert caught.value.error_class is ErrorClass.KEYS_COOLING_DOWN
    assert 29 <= caught.value.retry_after <= 30
    assert str(caught.value).startswith("anthropic: every key is cooling down for ")
    # allowed to fall back, the call goes on to OpenAI instead of failing
    answer = await client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=5, fallback_to_openai=True))
    assert answer.provider == "openai" and answer.fallback_from == "anthropic"

    client.recorder.flush()
    stored = [(r["error_class"], r["http_status"], r["key_label"]) for r in rows(store)]
    assert stored == [
        ("rate_limited", 429, "Primary"),  # the provider's one 429
        ("keys_cooling_down", None, None),  # refused here: nothing sent
        ("keys_cooling_down", None, None),
        ("keys_cooling_down", None, None),  # the fallback call's first stage …
        (None, 200, "Primary"),  # … and its answer, on OpenAI
    ]
    assert emu.stats()["total"] == 2


@both_providers
async def test_a_hashed_user_id_is_what_the_provider_is_told(
    emu: EmulatorServer, make_client: Callable[..., AIClient], provider: str
) -> None:
    key = "k" * 32
    client = make_client(env={"HASH_USER_IDS": key})
    await client.generate_response(config(provider), MESSAGES, options=CallOptions(user_id="alice@example.com"))
    hashed = hash_user_id("alice@example.com", key.encode())
    assert emu.stats()["end_users"] == {hashed: 1}  # the store holds the same hash (tests/recording covers it)
