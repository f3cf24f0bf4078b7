"""An OpenAI answer in Anthropic form, for an Anthropic-format request that fell back to OpenAI: the whole message
(non-streaming), or the Anthropic event sequence (streaming) written as the OpenAI chunks arrive.

The stream follows Anthropic's order: ``message_start``; per content block ``content_block_start``, its deltas
(``text_delta``, or ``input_json_delta`` fragments of a tool call's arguments) and ``content_block_stop``; then
``message_delta`` with the stop reason and output tokens, and ``message_stop``. An Anthropic SDK reading it builds
the same message the non-streaming answer gives.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from pulsegate.core.translate.result import NormalizedResponse
from pulsegate.core.translate.stop_reasons import openai_finish_to_stop_reason


def anthropic_message(response: NormalizedResponse, message_id: str) -> bytes:
    usage = response.usage
    return orjson.dumps(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": response.model,
            "content": response.content,
            "stop_reason": response.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cache_read_input_tokens": usage.cache_read_tokens,
                "cache_creation_input_tokens": usage.cache_write_tokens,
            },
        }
    )


def _event(kind: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps({"type": kind, **data}) + b"\n\n"


class AnthropicEventWriter:
    """OpenAI chunks in, Anthropic events out (bytes ready for the client)."""

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self._started = False
        self._index = -1
        self._open: str | None = None  # "text" or the OpenAI tool-call index ("tool:N") of the open block
        self._stop_reason: str | None = None
        self._ended = False

    def _start(self) -> bytes:
        self._started = True
        message = {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 0, "output_tokens": 0},
        }  # fmt: skip
        return _event("message_start", {"message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event("content_block_stop", {"index": self._index})

    def _open_block(self, key: str, block: Mapping[str, Any]) -> bytes:
        out = self._close()
        self._index += 1
        self._open = key
        return out + _event("content_block_start", {"index": self._index, "content_block": block})

    def feed(self, chunk: Mapping[str, Any]) -> bytes:
        out = b"" if self._started else self._start()
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self._open != "text":
                    out += self._open_block("text", {"type": "text", "text": ""})
                out += _event(
                    "content_block_delta", {"index": self._index, "delta": {"type": "text_delta", "text": text}}
                )
            for call in delta.get("tool_calls") or []:
                key = f"tool:{call.get('index', 0)}"
                function = call.get("function") or {}
                if self._open != key:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id") or "",
                        "name": function.get("name") or "",
                        "input": {},
                    }
                    out += self._open_block(key, block)
                if function.get("arguments"):
                    delta_json = {"type": "input_json_delta", "partial_json": function["arguments"]}
                    out += _event("content_block_delta", {"index": self._index, "delta": delta_json})
            if choice.get("finish_reason"):
                self._stop_reason = openai_finish_to_stop_reason(choice["finish_reason"])
        usage = chunk.get("usage")
        if usage and self._stop_reason:
            out += self._end(int(usage.get("completion_tokens") or 0))
        return out

    def _end(self, output_tokens: int) -> bytes:
        if self._ended:
            return b""
        self._ended = True
        delta = {
            "delta": {"stop_reason": self._stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
        return self._close() + _event("message_delta", delta) + _event("message_stop", {})

    def finish(self, output_tokens: int) -> bytes:
        """At the end of the upstream stream: close what is open (a stream that never said why it stopped gets no
        ``message_stop``, so the caller's SDK sees a cut stream, as it would from Anthropic)."""
        if self._stop_reason is None:
            return self._close()
        return self._end(output_tokens)
