"""Completed answers → NormalizedResponse: OpenAI ChatCompletion and Anthropic Message, as dicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pulsegate.core.translate import (
    RAW_ARGUMENTS_KEY,
    IncompleteResponseError,
    NormalizedResponse,
    Usage,
    anthropic_message_to_normalized,
    openai_finish_to_stop_reason,
    openai_response_to_normalized,
    parse_tool_arguments,
    usage_from_anthropic,
    usage_from_openai,
)
from tests.unit.translate.wire import load_json


def completion(
    *,
    content: str | None = "ok",
    finish_reason: str | None = "stop",
    tool_calls: list[dict[str, Any]] | None = None,
    refusal: str | None = None,
    usage: dict[str, Any] | None = None,
    **message_extra: Any,
) -> dict[str, Any]:
    message = {"role": "assistant", "content": content, "refusal": refusal, "tool_calls": tool_calls, **message_extra}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4.1-2025-04-14",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }


def call(arguments: str, call_id: str = "call_1", name: str = "f") -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


# --- OpenAI fixtures ----------------------------------------------------------------------------------------------


def test_chat_success_fixture() -> None:
    result = openai_response_to_normalized(load_json("openai/chat_success.json"), request_id="req_abc")
    assert result == NormalizedResponse(
        text="It is 15 degrees and cloudy in Paris.",
        content=[{"type": "text", "text": "It is 15 degrees and cloudy in Paris."}],
        stop_reason="end_turn",
        model="gpt-4.1-2025-04-14",
        usage=Usage(input_tokens=470, output_tokens=11, cache_read_tokens=0, cache_write_tokens=0),
        request_id="req_abc",
        response_id="chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        stop_sequence=None,
    )
    assert result.usage.total == 481
    assert result.tool_uses == []


def test_chat_tool_calls_fixture() -> None:
    result = openai_response_to_normalized(load_json("openai/chat_tool_calls.json"))
    assert result == NormalizedResponse(
        text="",
        content=[
            {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris, France"}}
        ],
        stop_reason="tool_use",
        model="gpt-4.1-2025-04-14",
        usage=Usage(input_tokens=82, output_tokens=17, cache_read_tokens=0, cache_write_tokens=0),
        request_id=None,
        response_id="chatcmpl-ToolCallExample",
    )
    assert result.tool_uses == result.content


def test_model_dump_shaped_completion_with_null_extras() -> None:
    """What ``ChatCompletion.model_dump()`` gives: every optional key present, mostly ``None``."""
    dumped = {
        "id": "chatcmpl-ToolCallExample",
        "choices": [
            {
                "finish_reason": "tool_calls",
                "index": 0,
                "logprobs": None,
                "message": {
                    "content": "Let me look.",
                    "refusal": None,
                    "role": "assistant",
                    "annotations": [],
                    "audio": None,
                    "function_call": None,
                    "tool_calls": [
                        {
                            "id": "call_abc123",
                            "function": {"arguments": '{"location":"Paris, France"}', "name": "get_weather"},
                            "type": "function",
                        }
                    ],
                },
            }
        ],
        "created": 1764326881,
        "model": "gpt-4.1-2025-04-14",
        "object": "chat.completion",
        "metadata": None,
        "service_tier": "default",
        "system_fingerprint": "fp_c1fb89028d",
        "usage": {
            "completion_tokens": 17,
            "prompt_tokens": 82,
            "total_tokens": 99,
            "completion_tokens_details": None,
            "prompt_tokens_details": {"audio_tokens": 0, "cache_write_tokens": None, "cached_tokens": None},
        },
    }
    result = openai_response_to_normalized(dumped)
    assert result.text == "Let me look."
    assert result.content == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris, France"}},
    ]
    assert result.usage == Usage(input_tokens=82, output_tokens=17)


# --- finish_reason → stop_reason --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        ("some_future_reason", "some_future_reason"),
    ],
)
def test_every_finish_reason_maps(finish_reason: str, stop_reason: str) -> None:
    assert openai_finish_to_stop_reason(finish_reason) == stop_reason
    assert openai_response_to_normalized(completion(finish_reason=finish_reason)).stop_reason == stop_reason


@pytest.mark.parametrize("body", [completion(finish_reason=None), {**completion(), "choices": []}, {"model": "m"}])
def test_missing_finish_reason_or_choice_is_incomplete(body: dict[str, Any]) -> None:
    with pytest.raises(IncompleteResponseError) as caught:
        openai_response_to_normalized(body)
    assert isinstance(caught.value, ValueError)


def test_incomplete_error_keeps_the_partial_text() -> None:
    with pytest.raises(IncompleteResponseError) as caught:
        openai_response_to_normalized(completion(content="half an ans", finish_reason=None))
    assert caught.value.partial_text == "half an ans"


def test_refusal_becomes_text_and_stop_reason_refusal() -> None:
    result = openai_response_to_normalized(completion(content=None, refusal="I can't help with that."))
    assert result.text == "I can't help with that."
    assert result.content == [{"type": "text", "text": "I can't help with that."}]
    assert result.stop_reason == "refusal"


def test_multiple_tool_calls_with_text_keep_their_order() -> None:
    body = completion(
        content="Two lookups.",
        finish_reason="tool_calls",
        tool_calls=[call('{"a":1}', "call_1", "f"), call('{"b":2}', "call_2", "g")],
    )
    result = openai_response_to_normalized(body)
    assert result.content == [
        {"type": "text", "text": "Two lookups."},
        {"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "call_2", "name": "g", "input": {"b": 2}},
    ]


@pytest.mark.parametrize(
    ("arguments", "expected_input"),
    [
        ('{"location": "Par', {RAW_ARGUMENTS_KEY: '{"location": "Par'}),
        ("[1, 2]", {RAW_ARGUMENTS_KEY: "[1, 2]"}),
        ('"just a string"', {RAW_ARGUMENTS_KEY: '"just a string"'}),
        ("", {}),
        ("  ", {}),
        ('{"nested": {"x": [1, null]}}', {"nested": {"x": [1, None]}}),
    ],
)
def test_tool_arguments_that_are_not_a_json_object_are_kept_raw(arguments: str, expected_input: Any) -> None:
    assert RAW_ARGUMENTS_KEY == "_raw_arguments"
    assert parse_tool_arguments(arguments) == expected_input
    result = openai_response_to_normalized(
        completion(content=None, finish_reason="length", tool_calls=[call(arguments)])
    )
    assert result.content == [{"type": "tool_use", "id": "call_1", "name": "f", "input": expected_input}]
    assert result.stop_reason == "max_tokens"


def test_legacy_function_call_becomes_a_tool_use() -> None:
    body = completion(
        content=None, finish_reason="function_call", function_call={"name": "lookup", "arguments": '{"q":"x"}'}
    )
    result = openai_response_to_normalized(body)
    assert result.content == [{"type": "tool_use", "id": "function_call", "name": "lookup", "input": {"q": "x"}}]
    assert result.stop_reason == "tool_use"


# --- usage ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (
            {"prompt_tokens": 2006, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1920}},
            Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920, cache_write_tokens=0),
        ),
        (
            {
                "prompt_tokens": 5000,
                "completion_tokens": 10,
                "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 3000},
            },
            Usage(input_tokens=1000, output_tokens=10, cache_read_tokens=1000, cache_write_tokens=3000),
        ),
        (
            {"prompt_tokens": 50, "completion_tokens": 5, "prompt_tokens_details": None},
            Usage(input_tokens=50, output_tokens=5),
        ),
        ({"prompt_tokens": 10, "completion_tokens": None}, Usage(input_tokens=10)),
        (None, Usage()),
        ({}, Usage()),
    ],
)
def test_openai_usage_mapping(usage: dict[str, Any] | None, expected: Usage) -> None:
    assert usage_from_openai(usage) == expected
    assert openai_response_to_normalized(completion(usage=usage)).usage == expected


def test_openai_usage_total_counts_every_prompt_token_once() -> None:
    usage = {"prompt_tokens": 2006, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1920}}
    assert usage_from_openai(usage).total == 2306


def test_usage_is_frozen_and_totals_all_four_counters() -> None:
    usage = Usage(input_tokens=1, output_tokens=2, cache_read_tokens=3, cache_write_tokens=4)
    assert usage.total == 10
    assert Usage().total == 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        usage.input_tokens = 5  # type: ignore[misc]


def test_normalized_response_is_frozen() -> None:
    result = openai_response_to_normalized(completion())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.text = "other"  # type: ignore[misc]


# --- Anthropic messages ---------------------------------------------------------------------------------------------


def test_anthropic_success_fixture() -> None:
    result = anthropic_message_to_normalized(load_json("anthropic/messages_success.json"), request_id="req_1")
    assert result == NormalizedResponse(
        text="It is 15 degrees and cloudy in Paris.",
        content=[{"type": "text", "text": "It is 15 degrees and cloudy in Paris."}],
        stop_reason="end_turn",
        model="claude-sonnet-4-6",
        usage=Usage(input_tokens=472, output_tokens=14),
        request_id="req_1",
        response_id="msg_01XFDUDYJgAACzvnptvVoYEL",
        stop_sequence=None,
    )


def test_anthropic_tool_use_fixture() -> None:
    result = anthropic_message_to_normalized(load_json("anthropic/messages_tool_use.json"))
    assert result.text == "I'll check the current weather in Paris."
    assert result.content == [
        {"type": "text", "text": "I'll check the current weather in Paris."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "Paris, France"},
        },
    ]
    assert result.stop_reason == "tool_use"
    assert result.usage == Usage(input_tokens=384, output_tokens=58)


def test_anthropic_max_tokens_probe_fixture() -> None:
    result = anthropic_message_to_normalized(load_json("anthropic/messages_probe_max_tokens_1.json"))
    assert (result.text, result.stop_reason, result.usage.total) == ("It", "max_tokens", 13)


def test_anthropic_model_dump_shape_with_cache_usage_and_other_blocks() -> None:
    """``Message.model_dump()`` adds ``citations``/``caller``… keys and may carry null cache counters."""
    dumped = {
        "id": "msg_1",
        "container": None,
        "content": [
            {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
            {"citations": None, "text": "Hello ", "type": "text"},
            {"citations": None, "text": "world", "type": "text"},
            {"id": "toolu_1", "caller": None, "input": {}, "name": "noop", "type": "tool_use", "toolset_name": None},
        ],
        "model": "claude-opus-4-8",
        "role": "assistant",
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "type": "message",
        "usage": {
            "cache_creation": None,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": None,
            "input_tokens": 12,
            "output_tokens": 30,
            "server_tool_use": None,
        },
    }
    result = anthropic_message_to_normalized(dumped)
    assert result.text == "Hello world"
    assert result.content == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig=="},
        {"type": "text", "text": "Hello "},
        {"type": "text", "text": "world"},
        {"type": "tool_use", "id": "toolu_1", "name": "noop", "input": {}},
    ]
    assert result.stop_reason == "stop_sequence"
    assert result.stop_sequence == "END"
    assert result.usage == Usage(input_tokens=12, output_tokens=30, cache_read_tokens=0, cache_write_tokens=200)


@pytest.mark.parametrize("stop_reason", ["end_turn", "pause_turn", "refusal", "model_context_window_exceeded"])
def test_anthropic_stop_reason_is_kept_as_is(stop_reason: str) -> None:
    message = {**load_json("anthropic/messages_success.json"), "stop_reason": stop_reason}
    assert anthropic_message_to_normalized(message).stop_reason == stop_reason


def test_anthropic_message_without_stop_reason_is_incomplete() -> None:
    message = {**load_json("anthropic/messages_success.json"), "stop_reason": None}
    with pytest.raises(IncompleteResponseError) as caught:
        anthropic_message_to_normalized(message)
    assert caught.value.partial_text == "It is 15 degrees and cloudy in Paris."


def test_anthropic_usage_mapping() -> None:
    assert usage_from_anthropic(
        {"input_tokens": 5, "output_tokens": 6, "cache_read_input_tokens": 7, "cache_creation_input_tokens": 8}
    ) == Usage(5, 6, 7, 8)
    assert usage_from_anthropic({"input_tokens": 5, "output_tokens": 6}) == Usage(5, 6, 0, 0)
    assert usage_from_anthropic(None) == Usage()


def test_text_parts_content_from_compatible_servers_is_joined() -> None:
    body = completion(content=None)
    body["choices"][0]["message"]["content"] = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    assert openai_response_to_normalized(body).text == "ab"
