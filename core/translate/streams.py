"""Streaming: fold provider stream events (as dicts) into text deltas as they come and a final answer at the end.

Feed what ``chunk.model_dump()`` / ``event.model_dump()`` gives (or the parsed SSE ``data:`` JSON). ``feed`` returns the
text delta to show now (possibly ``""``); ``result()`` returns the :class:`NormalizedResponse` and raises
:class:`IncompleteResponseError` if the stream never said why it stopped — the SDKs do not raise on a cut-off stream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulsegate.core.translate.responses import openai_tool_use_block
from pulsegate.core.translate.result import IncompleteResponseError, NormalizedResponse, StreamErrorEvent
from pulsegate.core.translate.stop_reasons import openai_finish_to_stop_reason
from pulsegate.core.translate.tool_input import parse_tool_arguments
from pulsegate.core.translate.usage import Usage, usage_from_anthropic, usage_from_openai


@dataclass
class _PartialToolCall:
    tool_id: str | None = None
    name: str | None = None
    argument_fragments: list[str] = field(default_factory=list)


class OpenAIStreamAccumulator:
    """Chat Completions chunks → text deltas; tool-call argument fragments are concatenated per ``index``.

    Only choice 0 is followed (Pulsegate never asks for ``n > 1``). Usage comes only from the final
    ``include_usage`` chunk; without it the result's usage is all zeros (see ``usage_received``).
    """

    def __init__(self, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        self._text: list[str] = []
        self._refused = False
        self._tool_calls: dict[int, _PartialToolCall] = {}
        self._finish_reason: str | None = None
        self._usage: Mapping[str, Any] | None = None
        self._model = ""
        self._response_id: str | None = None

    @property
    def text(self) -> str:
        """Text so far: what a caller reports as partial output if the stream breaks."""
        return "".join(self._text)

    @property
    def finished(self) -> bool:
        return self._finish_reason is not None

    @property
    def usage_received(self) -> bool:
        return self._usage is not None

    @property
    def reported_usage(self) -> Usage | None:
        """The usage the stream has reported so far (OpenAI: only in its last chunk), or None."""
        return usage_from_openai(self._usage) if self._usage is not None else None

    def feed(self, chunk: Mapping[str, Any]) -> str:
        """Return its text (content or refusal) delta; an ``error`` chunk raises ``StreamErrorEvent``."""
        if chunk.get("error"):
            raise StreamErrorEvent(chunk["error"], partial_text=self.text)
        self._model = chunk.get("model") or self._model
        self._response_id = chunk.get("id") or self._response_id
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        delta_text = ""
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta: Mapping[str, Any] = choice.get("delta") or {}
            delta_text += delta.get("content") or ""
            if delta.get("refusal"):
                self._refused = True
                delta_text += delta["refusal"]
            for call in delta.get("tool_calls") or []:
                self._feed_tool_call(call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        if delta_text:
            self._text.append(delta_text)
        return delta_text

    def _feed_tool_call(self, call: Mapping[str, Any]) -> None:
        partial = self._tool_calls.setdefault(call.get("index") or 0, _PartialToolCall())
        partial.tool_id = partial.tool_id or call.get("id")
        function: Mapping[str, Any] = call.get("function") or {}
        partial.name = partial.name or function.get("name")
        if function.get("arguments"):
            partial.argument_fragments.append(function["arguments"])

    def result(self) -> NormalizedResponse:
        """The finished answer; raises ``IncompleteResponseError`` if no ``finish_reason`` arrived."""
        text = self.text
        if self._finish_reason is None:
            raise IncompleteResponseError("OpenAI stream ended without a finish_reason", partial_text=text)
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for _, partial in sorted(self._tool_calls.items()):
            content.append(openai_tool_use_block(partial.tool_id, partial.name, "".join(partial.argument_fragments)))
        return NormalizedResponse(
            text=text,
            content=content,
            stop_reason="refusal" if self._refused else openai_finish_to_stop_reason(self._finish_reason),
            model=self._model,
            usage=usage_from_openai(self._usage),
            request_id=self.request_id,
            response_id=self._response_id,
        )


class AnthropicStreamAccumulator:
    """Messages stream events → text deltas; blocks rebuilt per ``index``, tool input from ``input_json_delta``.

    Input usage comes from ``message_start``; ``message_delta.usage`` is cumulative, so its counters replace earlier
    ones. ``thinking`` blocks are rebuilt (with their ``signature``) so a tool-use conversation can be continued.
    """

    def __init__(self, *, request_id: str | None = None) -> None:
        self.request_id = request_id
        self._blocks: dict[int, dict[str, Any]] = {}
        self._json_fragments: dict[int, list[str]] = {}
        self._usage: dict[str, Any] = {}
        self._model = ""
        self._response_id: str | None = None
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._stopped = False

    @property
    def text(self) -> str:
        return "".join(block["text"] for _, block in sorted(self._blocks.items()) if block.get("type") == "text")

    @property
    def reported_usage(self) -> Usage | None:
        """The usage reported so far: ``message_start`` gives the exact input and cache counts, ``message_delta``
        the output; None before ``message_start``."""
        return usage_from_anthropic(self._usage) if self._usage else None

    @property
    def finished(self) -> bool:
        """``message_stop`` was seen (the answer is complete only if there is a stop_reason, too)."""
        return self._stopped

    def feed(self, event: Mapping[str, Any]) -> str:
        """Return the event's text delta; an ``error`` event raises ``StreamErrorEvent``; unknown events are ignored."""
        event_type = event.get("type")
        if event_type == "message_start":
            message: Mapping[str, Any] = event.get("message") or {}
            self._response_id = message.get("id")
            self._model = message.get("model") or ""
            self._usage = dict(message.get("usage") or {})
        elif event_type == "content_block_start":
            return self._start_block(event.get("index") or 0, event.get("content_block") or {})
        elif event_type == "content_block_delta":
            return self._apply_delta(event.get("index") or 0, event.get("delta") or {})
        elif event_type == "message_delta":
            delta: Mapping[str, Any] = event.get("delta") or {}
            self._stop_reason = delta.get("stop_reason") or self._stop_reason
            self._stop_sequence = delta.get("stop_sequence") or self._stop_sequence
            for key, value in (event.get("usage") or {}).items():
                if value is not None:
                    self._usage[key] = value
        elif event_type == "message_stop":
            self._stopped = True
        elif event_type == "error":
            raise StreamErrorEvent(event.get("error") or {}, partial_text=self.text)
        return ""

    def _start_block(self, index: int, block: Mapping[str, Any]) -> str:
        block_type = block.get("type")
        if block_type == "text":
            self._blocks[index] = {"type": "text", "text": block.get("text") or ""}
            return self._blocks[index]["text"]
        if block_type == "tool_use":
            self._blocks[index] = {
                "type": "tool_use",
                "id": block.get("id"),
                "name": block.get("name"),
                "input": dict(block.get("input") or {}),
            }
            self._json_fragments[index] = []
        else:
            self._blocks[index] = dict(block)
        return ""

    def _apply_delta(self, index: int, delta: Mapping[str, Any]) -> str:
        delta_type = delta.get("type")
        if delta_type == "text_delta":
            block = self._blocks.setdefault(index, {"type": "text", "text": ""})
            piece = delta.get("text") or ""
            block["text"] = block.get("text", "") + piece
            return piece
        if delta_type == "input_json_delta":
            self._json_fragments.setdefault(index, []).append(delta.get("partial_json") or "")
        elif delta_type == "thinking_delta":
            block = self._blocks.setdefault(index, {"type": "thinking", "thinking": ""})
            block["thinking"] = (block.get("thinking") or "") + (delta.get("thinking") or "")
        elif delta_type == "signature_delta":
            self._blocks.setdefault(index, {"type": "thinking", "thinking": ""})["signature"] = delta.get("signature")
        return ""

    def result(self) -> NormalizedResponse:
        """The finished answer; raises ``IncompleteResponseError`` if no ``stop_reason`` arrived."""
        text = self.text
        if self._stop_reason is None:
            raise IncompleteResponseError("Anthropic stream ended without a stop_reason", partial_text=text)
        content: list[dict[str, Any]] = []
        for index, block in sorted(self._blocks.items()):
            block = dict(block)
            fragments = self._json_fragments.get(index)
            if block.get("type") == "tool_use" and fragments and "".join(fragments).strip():
                block["input"] = parse_tool_arguments("".join(fragments))
            content.append(block)
        return NormalizedResponse(
            text=text,
            content=content,
            stop_reason=self._stop_reason,
            model=self._model,
            usage=usage_from_anthropic(self._usage),
            request_id=self.request_id,
            response_id=self._response_id,
            stop_sequence=self._stop_sequence,
        )
