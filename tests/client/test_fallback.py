"""Fallback between providers (issue 3, items 8 and 10), through the real SDKs against the emulator.

Anthropic → OpenAI on an overload storm, an open breaker and no usable key; never on a bad request; the reverse
direction by config; the request translated end to end (system prompt, tool turns, tools, stop sequences,
temperature) and the answer translated back; an untranslatable request reports the original error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ErrorClass, ModelConfig, Priority, ProviderError, RequestValidationError
from pulsegate.core.clock import ManualClock
from pulsegate.core.provider import Provider
from pulsegate.core.retry import RetryPolicy, wait_exponential_full_jitter
from pulsegate.core.translate import ModelMap
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, drive, requests_by_key, rows

HELLO = [{"role": "user", "content": "Hello there, how are you today?"}]
SONNET = ModelConfig(provider="anthropic", model="claude-sonnet-4-6", max_tokens=64)
GPT = ModelConfig(provider="openai", model="gpt-4.1", max_tokens=64)
STORM = {"kind": "overloaded", "provider": "anthropic"}
#: Retries without waiting, for tests that do not look at backoff timing.
NO_WAIT = RetryPolicy(wait=wait_exponential_full_jitter(base_s=0.0, cap_s=0.0))


def count(emu: EmulatorServer, route: str, status: int | None = None) -> int:
    """Requests the emulator saw on ``route`` (optionally with one status), over every test key."""
    return sum(
        n for statuses in requests_by_key(emu, route).values() for s, n in statuses.items() if status in (None, s)
    )


def by_attempt(store: sa.Engine, client: AIClient) -> list[dict[str, Any]]:
    client.recorder.flush()
    return sorted(rows(store), key=lambda row: row["attempt"])


def assert_one_call(attempt_rows: list[dict[str, Any]]) -> None:
    """One call's rows: one call_id, attempts numbered 1..n, exactly one final row and it is the last."""
    assert len({row["call_id"] for row in attempt_rows}) == 1
    assert [row["attempt"] for row in attempt_rows] == list(range(1, len(attempt_rows) + 1))
    assert [row["is_final"] for row in attempt_rows] == [False] * (len(attempt_rows) - 1) + [True]


async def run_driven(clock: ManualClock, call: Any) -> Any:
    task = asyncio.ensure_future(call)
    await drive(clock, task)
    return task.result()


# --- overload storm -----------------------------------------------------------------------------------------------


async def test_overload_storm_falls_back_to_openai(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, clock: ManualClock
) -> None:
    emu.add_fault(STORM)
    client = make_client(store=store, clock=clock)
    resp = await run_driven(
        clock,
        client.generate_response(
            SONNET, HELLO, options=CallOptions(fallback_to_openai=True, priority=Priority.USER_FACING, user_id="u-1")
        ),
    )

    assert resp.provider == "openai"
    assert resp.fell_back is True
    assert resp.fallback_from == "anthropic"
    assert resp.model == "gpt-4.1"  # the default ModelMap: claude-sonnet-4-6 → gpt-4.1
    assert resp.attempts == 3  # two Anthropic attempts (one retry of a 529), then OpenAI
    assert resp.text == "This is an emulated reply to: Hello there, how are you today?"
    assert resp.stop_reason == "end_turn"
    assert resp.key_label == "Primary"

    assert count(emu, "anthropic.messages") == 2
    assert count(emu, "anthropic.messages", 529) == 2
    assert count(emu, "openai.chat_completions") == 1
    assert count(emu, "openai.chat_completions", 200) == 1
    assert emu.stats()["faults"] == {"overloaded": 2}

    attempt_rows = by_attempt(store, client)
    assert len(attempt_rows) == 3
    assert_one_call(attempt_rows)
    assert [r["provider"] for r in attempt_rows] == ["anthropic", "anthropic", "openai"]
    assert [r["model"] for r in attempt_rows] == ["claude-sonnet-4-6", "claude-sonnet-4-6", "gpt-4.1"]
    assert [r["outcome"] for r in attempt_rows] == ["error", "error", "success"]
    assert [r["error_class"] for r in attempt_rows] == ["overloaded", "overloaded", None]
    assert [r["http_status"] for r in attempt_rows] == [529, 529, 200]
    assert [r["priority"] for r in attempt_rows] == [
        Priority.USER_FACING,
        Priority.USER_FACING,
        Priority.USER_FACING + Priority.FALLBACK_BOOST,
    ]
    assert [r["fell_back_from"] for r in attempt_rows] == [None, None, "anthropic"]
    assert all(r["user_id"] == "u-1" for r in attempt_rows)
    assert str(attempt_rows[-1]["call_id"]) == resp.call_id
    # a 529 is provider-wide: it says nothing about the key
    assert all(
        k["score"] == 100.0 and k["status"] == "healthy" for k in client.snapshot()["providers"]["anthropic"]["keys"]
    )


async def test_fallback_uses_a_custom_model_map(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault(STORM)
    client = make_client(
        store=store, retry_policy=NO_WAIT, model_map=ModelMap(to_openai={"claude-sonnet-4-*": "gpt-4.1-nano"})
    )
    resp = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))

    assert (resp.provider, resp.model, resp.fell_back, resp.attempts) == ("openai", "gpt-4.1-nano", True, 3)
    attempt_rows = by_attempt(store, client)
    assert [r["model"] for r in attempt_rows] == ["claude-sonnet-4-6", "claude-sonnet-4-6", "gpt-4.1-nano"]
    assert count(emu, "openai.chat_completions", 200) == 1


@pytest.mark.parametrize(
    ("model", "expected"),
    [("claude-haiku-4-5", "gpt-4.1-mini"), ("claude-opus-4-6", "gpt-4.1"), ("claude-sonnet-4-6-20260217", "gpt-4.1")],
)
async def test_fallback_maps_models_by_the_default_map(
    emu: EmulatorServer, make_client: Callable[..., AIClient], model: str, expected: str
) -> None:
    emu.add_fault(STORM)
    client = make_client(retry_policy=NO_WAIT)
    resp = await client.generate_response(
        ModelConfig(model=model, max_tokens=32), HELLO, options=CallOptions(fallback_to_openai=True)
    )
    assert (resp.provider, resp.model) == ("openai", expected)


async def test_overload_storm_without_fallback_raises_after_one_retry(
    emu: EmulatorServer, make_client: Callable[..., AIClient], clock: ManualClock
) -> None:
    emu.add_fault(STORM)
    client = make_client(clock=clock)
    task = asyncio.ensure_future(client.generate_response(SONNET, HELLO))
    steps = await drive(clock, task)
    error = task.exception()

    assert sum(steps) <= 0.5  # one full-jitter backoff (base 0.5 s) before the single retry, nothing else

    assert type(error) is ProviderError
    assert error.error_class == ErrorClass.OVERLOADED
    assert error.attempts == 2
    assert error.provider == "anthropic"
    assert error.http_status == 529
    assert count(emu, "anthropic.messages", 529) == 2
    assert count(emu, "openai.chat_completions") == 0


async def test_exhausted_retries_on_server_errors_fall_back(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    emu.add_fault({"kind": "server_error", "provider": "anthropic"})
    client = make_client(retry_policy=NO_WAIT)
    resp = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))
    assert (resp.provider, resp.fell_back, resp.fallback_from) == ("openai", True, "anthropic")
    assert resp.attempts == 5  # the default policy's 4 attempts on Anthropic, then OpenAI
    assert count(emu, "anthropic.messages", 500) == 4
    assert count(emu, "openai.chat_completions", 200) == 1


# --- breaker open, no usable key ----------------------------------------------------------------------------------


async def test_open_breaker_falls_back_without_touching_anthropic(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault(STORM)
    client = make_client(store=store, retry_policy=NO_WAIT, breaker={"min_calls": 2, "failure_rate": 0.5})
    with pytest.raises(ProviderError) as first:
        await client.generate_response(SONNET, HELLO)  # two 529s: the breaker opens
    assert first.value.error_class == ErrorClass.OVERLOADED
    assert client.breakers[Provider.ANTHROPIC].state == "open"
    assert count(emu, "anthropic.messages") == 2
    client.recorder.flush()
    first_call_ids = {row["call_id"] for row in rows(store)}

    resp = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))

    assert (resp.provider, resp.fell_back, resp.fallback_from) == ("openai", True, "anthropic")
    assert count(emu, "anthropic.messages") == 2  # the open breaker failed fast: nothing more reached Anthropic
    assert count(emu, "openai.chat_completions", 200) == 1
    client.recorder.flush()
    second = sorted((r for r in rows(store) if r["call_id"] not in first_call_ids), key=lambda r: r["attempt"])
    assert [(r["provider"], r["outcome"], r["error_class"]) for r in second] == [
        ("anthropic", "error", "circuit_open"),
        ("openai", "success", None),
    ]
    assert_one_call(second)
    assert second[-1]["fell_back_from"] == "anthropic"


async def test_no_usable_anthropic_key_falls_back(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.set_scenario({"keys": {key: {"behaviour": "invalid"} for key in ANTHROPIC_KEYS}})
    client = make_client(store=store, retry_policy=NO_WAIT)
    resp = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))

    assert (resp.provider, resp.fell_back, resp.fallback_from, resp.model) == ("openai", True, "anthropic", "gpt-4.1")
    # each Anthropic key was tried exactly once (a 401 moves the request to the next key; it is not retried)
    assert requests_by_key(emu, "anthropic.messages") == {key: {401: 1} for key in ANTHROPIC_KEYS[:3]}
    assert count(emu, "openai.chat_completions", 200) == 1
    keys = client.snapshot()["providers"]["anthropic"]["keys"]
    assert [k["status"] for k in keys] == ["disabled"] * 3

    attempt_rows = by_attempt(store, client)
    assert [(r["provider"], r["error_class"]) for r in attempt_rows] == [
        ("anthropic", "auth"),
        ("anthropic", "auth"),
        ("anthropic", "auth"),
        ("anthropic", "no_usable_key"),
        ("openai", None),
    ]
    assert sorted(r["key_label"] for r in attempt_rows[:3]) == ["Backup 1", "Backup 2", "Primary"]
    assert_one_call(attempt_rows)

    # the keys stay disabled: the next call goes straight to OpenAI
    again = await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))
    assert again.provider == "openai"
    assert count(emu, "anthropic.messages") == 3


# --- no fallback for the caller's own mistakes --------------------------------------------------------------------


async def test_bad_request_does_not_fall_back(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault({"kind": "error", "status": 400, "provider": "anthropic"})
    client = make_client(store=store, retry_policy=NO_WAIT)
    with pytest.raises(ProviderError) as caught:
        await client.generate_response(SONNET, HELLO, options=CallOptions(fallback_to_openai=True))

    assert caught.value.error_class == ErrorClass.BAD_REQUEST
    assert caught.value.http_status == 400
    assert caught.value.attempts == 1
    assert count(emu, "anthropic.messages") == 1
    assert count(emu, "openai.chat_completions") == 0
    attempt_rows = by_attempt(store, client)
    assert [(r["provider"], r["error_class"], r["is_final"]) for r in attempt_rows] == [
        ("anthropic", "bad_request", True)
    ]


# --- the reverse direction ----------------------------------------------------------------------------------------


async def test_openai_falls_back_to_anthropic(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault({"kind": "overloaded", "provider": "openai"})
    client = make_client(store=store, retry_policy=NO_WAIT)
    resp = await client.generate_response(
        GPT, HELLO, options=CallOptions(fallback_to_anthropic=True, priority=Priority.BACKGROUND)
    )

    assert (resp.provider, resp.fell_back, resp.fallback_from) == ("anthropic", True, "openai")
    assert resp.model == "claude-sonnet-4-6"  # default map: gpt-4.1 → claude-sonnet-4-6
    assert resp.attempts == 3
    assert count(emu, "openai.chat_completions", 503) == 2
    assert count(emu, "anthropic.messages", 200) == 1
    attempt_rows = by_attempt(store, client)
    assert [(r["provider"], r["error_class"], r["http_status"]) for r in attempt_rows] == [
        ("openai", "overloaded", 503),
        ("openai", "overloaded", 503),
        ("anthropic", None, 200),
    ]
    assert [r["priority"] for r in attempt_rows] == [1, 1, 1 + Priority.FALLBACK_BOOST]
    assert attempt_rows[-1]["fell_back_from"] == "openai"
    assert_one_call(attempt_rows)


async def test_openai_does_not_fall_back_with_only_the_anthropic_flag(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    emu.add_fault({"kind": "overloaded", "provider": "openai"})
    client = make_client(retry_policy=NO_WAIT)
    with pytest.raises(ProviderError) as caught:
        await client.generate_response(GPT, HELLO, options=CallOptions(fallback_to_openai=True))
    assert caught.value.error_class == ErrorClass.OVERLOADED
    assert count(emu, "anthropic.messages") == 0


# --- translation end to end ---------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "default": "Berlin"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer"},
        },
        "required": ["city", "unit", "days"],
    },
}
TOOL_CONVERSATION = [
    {"role": "user", "content": "What is the weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look that up."},
            {
                "type": "tool_use",
                "id": "toolu_01A",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "celsius"},
            },
        ],
    },
    {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18 degrees and sunny"}],
    },
    {"role": "assistant", "content": "It is 18 degrees and sunny in Paris."},
    {"role": "user", "content": "Now call get_weather for Berlin please."},
]


async def test_tool_conversation_is_translated_both_ways(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    emu.add_fault(STORM)
    client = make_client(retry_policy=NO_WAIT)
    config = ModelConfig(
        model="claude-sonnet-4-6",
        max_tokens=256,
        temperature=0.3,
        stop_sequences=["\n\nHuman:", "STOP"],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "auto"},
    )
    resp = await client.generate_response(
        config, TOOL_CONVERSATION, system_prompt="You are a weather bot.", options=CallOptions(fallback_to_openai=True)
    )

    assert (resp.provider, resp.fell_back, resp.model) == ("openai", True, "gpt-4.1")
    assert count(emu, "openai.chat_completions", 200) == 1
    assert count(emu, "openai.chat_completions", 400) == 0
    assert resp.stop_reason == "tool_use"
    tool_uses = [block for block in resp.content if block["type"] == "tool_use"]
    assert len(tool_uses) == 1
    assert tool_uses[0]["name"] == "get_weather"
    assert isinstance(tool_uses[0]["input"], dict)
    assert tool_uses[0]["input"] == {"city": "Berlin", "unit": "celsius", "days": 1}
    assert tool_uses[0]["id"]
    assert resp.usage.input_tokens > 0
    assert resp.usage.output_tokens > 0


async def test_forced_tool_choice_is_translated(emu: EmulatorServer, make_client: Callable[..., AIClient]) -> None:
    """``tool_choice: tool`` becomes OpenAI's named function: the emulator answers with that tool although the prompt
    does not name it."""
    emu.add_fault(STORM)
    client = make_client(retry_policy=NO_WAIT)
    config = ModelConfig(
        model="claude-sonnet-4-6",
        max_tokens=256,
        tools=[WEATHER_TOOL],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    resp = await client.generate_response(config, HELLO, options=CallOptions(fallback_to_openai=True))
    assert resp.provider == "openai"
    assert resp.stop_reason == "tool_use"
    assert [b["name"] for b in resp.content if b["type"] == "tool_use"] == ["get_weather"]


async def test_stop_sequence_is_honoured_after_fallback(
    emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    emu.add_fault(STORM)
    client = make_client(retry_policy=NO_WAIT)
    config = ModelConfig(model="claude-sonnet-4-6", max_tokens=64, stop_sequences=["emulated"])
    resp = await client.generate_response(config, HELLO, options=CallOptions(fallback_to_openai=True))
    assert resp.provider == "openai"
    assert resp.text == "This is an "  # cut at the stop sequence by the OpenAI side
    assert resp.stop_reason == "end_turn"  # OpenAI reports "stop" without naming the sequence


async def test_system_prompt_survives_fallback(emu: EmulatorServer, make_client: Callable[..., AIClient]) -> None:
    """The emulator counts ceil(characters / 4) input tokens: a 400-character system prompt adds exactly 100 on the
    OpenAI side only if the translation carried it over (as a system message)."""
    emu.add_fault(STORM)
    client = make_client(retry_policy=NO_WAIT)
    options = CallOptions(fallback_to_openai=True)
    bare = await client.generate_response(SONNET, HELLO, options=options)
    with_system = await client.generate_response(SONNET, HELLO, system_prompt="abcd" * 100, options=options)
    assert (bare.provider, with_system.provider) == ("openai", "openai")
    assert with_system.usage.input_tokens - bare.usage.input_tokens == 100
    assert with_system.text == bare.text  # the answer follows the last user turn, not the system prompt


async def test_untranslatable_fallback_raises_the_original_error(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine
) -> None:
    emu.add_fault(STORM)
    client = make_client(store=store, retry_policy=NO_WAIT)
    config = ModelConfig(model="claude-sonnet-4-6", max_tokens=64, stop_sequences=["a1", "b2", "c3", "d4", "e5"])
    with pytest.raises(ProviderError) as caught:
        await client.generate_response(config, HELLO, options=CallOptions(fallback_to_openai=True))

    error = caught.value
    assert not isinstance(error, RequestValidationError)
    assert error.error_class == ErrorClass.OVERLOADED
    assert error.provider == "anthropic"
    assert error.http_status == 529
    assert "stop" not in str(error)
    assert count(emu, "anthropic.messages", 529) == 2
    assert count(emu, "openai.chat_completions") == 0
    attempt_rows = by_attempt(store, client)
    assert [(r["error_class"], r["http_status"]) for r in attempt_rows if r["provider"] == "anthropic"] == [
        ("overloaded", 529),
        ("overloaded", 529),
    ]
    # at most one more row: the OpenAI stage refused before sending (no key, nothing reached OpenAI)
    assert [(r["provider"], r["key_label"]) for r in attempt_rows if r["provider"] == "openai"] in (
        [],
        [("openai", None)],
    )
    assert_one_call(attempt_rows)
