"""Stream accumulators: recorded SSE bodies fed event by event, plus cut-off and error streams."""

from __future__ import annotations

from typing import Any

import pytest

from pulsegate.core.translate import (
    RAW_ARGUMENTS_KEY,
    AnthropicStreamAccumulator,
    IncompleteResponseError,
    OpenAIStreamAccumulator,
    StreamErrorEvent,
    Usage,
)
from tests.unit.translate.wire import sse_data


def feed_all(
    accumulator: OpenAIStreamAccumulator | AnthropicStreamAccumulator, events: list[dict[str, Any]]
) -> list[str]:
    return [accumulator.feed(event) for event in events]


def chunk(delta: dict[str, Any] | None = None, finish_reason: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    return {"id": "chatcmpl-X", "object": "chat.completion.chunk", "model": "gpt-4.1", "choices": choices, **extra}


# --- OpenAI -------------------------------------------------------------------------------------------------------


def test_openai_text_stream_with_usage() -> None:
    accumulator = OpenAIStreamAccumulator(request_id="req_9")
    deltas = feed_all(accumulator, sse_data("openai/stream_text_include_usage.sse"))
    assert deltas == ["", "Hello", "!", "", ""]
    assert accumulator.finished and accumulator.usage_received
    result = accumulator.result()
    assert result.text == "Hello!"
    assert result.content == [{"type": "text", "text": "Hello!"}]
    assert result.stop_reason == "end_turn"
    assert result.model == "gpt-4.1-2025-04-14"
    assert result.usage == Usage(input_tokens=9, output_tokens=2)
    assert (result.request_id, result.response_id) == ("req_9", "chatcmpl-StreamExample")


def test_openai_tool_call_stream() -> None:
    accumulator = OpenAIStreamAccumulator()
    assert feed_all(accumulator, sse_data("openai/stream_tool_calls.sse")) == ["", "", "", ""]
    result = accumulator.result()
    assert result.text == ""
    assert result.content == [
        {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris, France"}}
    ]
    assert result.stop_reason == "tool_use"
    assert not accumulator.usage_received
    assert result.usage == Usage()


def test_openai_stream_without_finish_reason_is_incomplete() -> None:
    events = [event for event in sse_data("openai/stream_text_include_usage.sse") if not _has_finish(event)]
    accumulator = OpenAIStreamAccumulator()
    feed_all(accumulator, events[:3])
    assert not accumulator.finished
    with pytest.raises(IncompleteResponseError) as caught:
        accumulator.result()
    assert caught.value.partial_text == "Hello!"


def _has_finish(event: dict[str, Any]) -> bool:
    return any(choice.get("finish_reason") for choice in event.get("choices") or [])


def test_openai_error_chunk_raises_with_partial_text() -> None:
    accumulator = OpenAIStreamAccumulator()
    events = sse_data("openai/stream_midstream_error.sse")
    accumulator.feed(events[0])
    accumulator.feed(chunk({"content": "Hel"}))
    with pytest.raises(StreamErrorEvent) as caught:
        accumulator.feed(events[1])
    assert caught.value.error_type == "server_error"
    assert caught.value.partial_text == "Hel"
    assert "server had an error" in str(caught.value)


def test_openai_interleaved_parallel_tool_calls_are_assembled_per_index() -> None:
    def tool_delta(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    events = [
        chunk({"role": "assistant", "content": None}),
        chunk(tool_delta(0, id="call_a", type="function", function={"name": "f", "arguments": ""})),
        chunk(tool_delta(1, id="call_b", type="function", function={"name": "g", "arguments": '{"y"'})),
        chunk(tool_delta(0, id=None, function={"name": None, "arguments": '{"x":'})),
        chunk(tool_delta(1, function={"arguments": ":2}"})),
        chunk(tool_delta(0, function={"arguments": "1}"})),
        chunk({}, finish_reason="tool_calls"),
        chunk(
            None, usage={"prompt_tokens": 40, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 32}}
        ),
    ]
    accumulator = OpenAIStreamAccumulator()
    feed_all(accumulator, events)
    result = accumulator.result()
    assert result.content == [
        {"type": "tool_use", "id": "call_a", "name": "f", "input": {"x": 1}},
        {"type": "tool_use", "id": "call_b", "name": "g", "input": {"y": 2}},
    ]
    assert result.usage == Usage(input_tokens=8, output_tokens=9, cache_read_tokens=32)


def test_openai_stream_truncated_tool_arguments_are_kept_raw() -> None:
    events = [
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "f", "arguments": '{"x": "unfini'}}]}),
        chunk({}, finish_reason="length"),
    ]
    accumulator = OpenAIStreamAccumulator()
    feed_all(accumulator, events)
    result = accumulator.result()
    assert result.content == [
        {"type": "tool_use", "id": "call_a", "name": "f", "input": {RAW_ARGUMENTS_KEY: '{"x": "unfini'}}
    ]
    assert result.stop_reason == "max_tokens"


def test_openai_refusal_stream() -> None:
    accumulator = OpenAIStreamAccumulator()
    deltas = feed_all(
        accumulator,
        [chunk({"role": "assistant", "refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")],
    )
    assert deltas == ["I can't", " help.", ""]
    result = accumulator.result()
    assert (result.text, result.stop_reason) == ("I can't help.", "refusal")


def test_openai_other_choices_are_ignored() -> None:
    accumulator = OpenAIStreamAccumulator()
    other = {"index": 1, "delta": {"content": "nope"}, "finish_reason": None}
    assert (
        accumulator.feed({**chunk({"content": "yes"}), "choices": [chunk({"content": "yes"})["choices"][0], other]})
        == "yes"
    )
    accumulator.feed(chunk({}, "content_filter"))
    assert accumulator.result().text == "yes"
    assert accumulator.result().stop_reason == "refusal"


# --- Anthropic ------------------------------------------------------------------------------------------------------


def test_anthropic_text_stream() -> None:
    accumulator = AnthropicStreamAccumulator(request_id="req_7")
    deltas = feed_all(accumulator, sse_data("anthropic/stream_text.sse"))
    assert "".join(deltas) == "Hello!"
    assert [d for d in deltas if d] == ["Hello", "!"]
    assert accumulator.finished
    result = accumulator.result()
    assert result.text == "Hello!"
    assert result.content == [{"type": "text", "text": "Hello!"}]
    assert result.stop_reason == "end_turn"
    assert result.model == "claude-sonnet-4-6"
    assert result.usage == Usage(input_tokens=25, output_tokens=15)
    assert (result.request_id, result.response_id) == ("req_7", "msg_01StreamExample")


def test_anthropic_tool_use_stream() -> None:
    accumulator = AnthropicStreamAccumulator()
    deltas = feed_all(accumulator, sse_data("anthropic/stream_tool_use.sse"))
    assert "".join(deltas) == "Checking."
    result = accumulator.result()
    assert result.text == "Checking."
    assert result.content == [
        {"type": "text", "text": "Checking."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "Paris, France"},
        },
    ]
    assert result.tool_uses[0]["input"] == {"location": "Paris, France"}
    assert result.stop_reason == "tool_use"
    assert result.usage == Usage(input_tokens=25, output_tokens=89)


def test_anthropic_stream_without_message_delta_is_incomplete() -> None:
    events = [e for e in sse_data("anthropic/stream_text.sse") if e["type"] not in {"message_delta", "message_stop"}]
    accumulator = AnthropicStreamAccumulator()
    feed_all(accumulator, events)
    with pytest.raises(IncompleteResponseError) as caught:
        accumulator.result()
    assert caught.value.partial_text == "Hello!"


def test_anthropic_error_event_raises_with_partial_text() -> None:
    events = sse_data("anthropic/stream_midstream_error.sse")
    accumulator = AnthropicStreamAccumulator()
    feed_all(accumulator, events[:-1])
    with pytest.raises(StreamErrorEvent) as caught:
        accumulator.feed(events[-1])
    assert caught.value.error_type == "overloaded_error"
    assert caught.value.partial_text == "Hel"
    with pytest.raises(IncompleteResponseError):
        accumulator.result()


def test_anthropic_model_dump_shaped_events_with_cumulative_usage_thinking_and_empty_tool_input() -> None:
    """``event.model_dump()`` carries null usage fields; output usage is cumulative (replace, never add)."""
    events: list[dict[str, Any]] = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_2",
                "model": "claude-opus-4-8",
                "content": [],
                "stop_reason": None,
                "usage": {
                    "input_tokens": 10,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 300,
                    "cache_creation_input_tokens": None,
                    "cache_creation": None,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Plan: "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "call noop."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig=="}},
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"id": "toolu_9", "caller": None, "input": {}, "name": "noop", "type": "tool_use"},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": None, "stop_sequence": None},
            "usage": {"output_tokens": 20, "input_tokens": None, "cache_read_input_tokens": None},
        },
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None, "container": None},
            "usage": {"output_tokens": 42, "input_tokens": None, "cache_creation_input_tokens": None},
        },
        {"type": "some_future_event", "payload": 1},
        {"type": "message_stop"},
    ]
    accumulator = AnthropicStreamAccumulator()
    assert feed_all(accumulator, events) == [""] * len(events)
    result = accumulator.result()
    assert result.text == ""
    assert result.content == [
        {"type": "thinking", "thinking": "Plan: call noop.", "signature": "sig=="},
        {"type": "tool_use", "id": "toolu_9", "name": "noop", "input": {}},
    ]
    assert result.stop_reason == "tool_use"
    assert result.usage == Usage(input_tokens=10, output_tokens=42, cache_read_tokens=300, cache_write_tokens=0)


def test_anthropic_stream_invalid_tool_json_is_kept_raw_and_stop_sequence_reported() -> None:
    events = [
        {"type": "message_start", "message": {"id": "m", "model": "claude-haiku-4-5", "usage": {"input_tokens": 3}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t", "name": "n", "input": {}},
        },
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a": tru'}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 5}},
    ]
    accumulator = AnthropicStreamAccumulator()
    feed_all(accumulator, events)
    assert not accumulator.finished
    result = accumulator.result()
    assert result.content == [{"type": "tool_use", "id": "t", "name": "n", "input": {RAW_ARGUMENTS_KEY: '{"a": tru'}}]
    assert result.stop_reason == "max_tokens"
    assert result.usage == Usage(input_tokens=3, output_tokens=5)


def test_anthropic_text_in_content_block_start_counts_as_a_delta() -> None:
    accumulator = AnthropicStreamAccumulator()
    assert (
        accumulator.feed({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "Hi"}})
        == "Hi"
    )
    assert (
        accumulator.feed({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}})
        == "!"
    )
    accumulator.feed(
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence", "stop_sequence": "\n\nHuman:"}}
    )
    result = accumulator.result()
    assert (result.text, result.stop_reason, result.stop_sequence) == ("Hi!", "stop_sequence", "\n\nHuman:")


def test_an_error_that_is_not_an_object_still_raises_cleanly() -> None:
    with pytest.raises(StreamErrorEvent, match="upstream broke") as caught:
        OpenAIStreamAccumulator().feed({"error": "upstream broke"})
    assert caught.value.error == {"message": "upstream broke"}
    assert caught.value.error_type is None
