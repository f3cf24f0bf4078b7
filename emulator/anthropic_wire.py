"""Anthropic Messages API on the wire: the exact response, SSE, error and rate-limit header shapes.

Shapes: docs/provider-wire.md §1 (Anthropic Messages) and the tests/fixtures/wire-examples fixtures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from pulsegate.emulator.budget import Window
from pulsegate.emulator.formats import rfc3339
from pulsegate.emulator.textgen import Answer, Ask, json_fragments

NAME = "anthropic"
REQUEST_ID_HEADER = "request-id"
ORGANIZATION_ID = "00000000-0000-0000-0000-000000000000"
STATIC_HEADERS: tuple[tuple[str, str], ...] = (("anthropic-organization-id", ORGANIZATION_ID),)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    400: "Invalid request",
    401: "invalid x-api-key",
    402: "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
    "or purchase credits.",
    403: "Your API key does not have permission to use the specified resource.",
    404: "Not found",
    408: "Request timed out",
    409: "Conflict",
    413: "Request exceeds the maximum allowed number of bytes.",
    422: "Unprocessable entity",
    429: "Number of requests has exceeded your rate limit. Please try again later.",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Request timed out",
    529: "Overloaded",
}
SPEND_LIMIT_MESSAGE = "You have reached your organization's monthly usage limit."
STOP_REASONS = {"end": "end_turn", "max_tokens": "max_tokens", "stop_sequence": "stop_sequence", "tool_use": "tool_use"}
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def request_id() -> str:
    return "req_011C" + os.urandom(10).hex()


def credential(headers: Mapping[str, str]) -> str | None:
    """`x-api-key` (SDK <= 1.17) or `Authorization: Bearer` (SDK >= 2.0); None when absent or empty."""
    key = headers.get("x-api-key")
    if key:
        return key.strip() or None
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def error_body(status: int, message: str | None, rid: str, error_code: str | None = None) -> bytes:
    error: dict[str, Any] = {"type": ERROR_TYPES.get(status, "api_error"), "message": message or ""}
    if not message:
        error["message"] = DEFAULT_MESSAGES.get(status, "Error")
    if error_code:
        error["details"] = {"error_code": error_code}
    return _DUMPS({"type": "error", "error": error, "request_id": rid}).encode()


def ratelimit_headers(windows: Mapping[str, Window], wall: float) -> list[tuple[str, str]]:
    """`anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`."""
    out: list[tuple[str, str]] = []
    for name, label in (
        ("requests", "requests"),
        ("tokens", "tokens"),
        ("input_tokens", "input-tokens"),
        ("output_tokens", "output-tokens"),
    ):
        w = windows[name]
        out.append((f"anthropic-ratelimit-{label}-limit", str(w.limit)))
        out.append((f"anthropic-ratelimit-{label}-remaining", str(w.remaining)))
        out.append((f"anthropic-ratelimit-{label}-reset", rfc3339(wall + w.reset)))
    return out


def rate_limit_message(bucket: str, limit: int) -> str:
    what = {
        "requests": "requests",
        "tokens": "tokens",
        "input_tokens": "input tokens",
        "output_tokens": "output tokens",
    }[bucket]
    return (
        f"This request would exceed the rate limit for your organization of {limit:,} {what} per minute. "
        "For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for "
        "current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."
    )


def count_tokens_body(tokens: int) -> bytes:
    return _DUMPS({"input_tokens": tokens}).encode()


# -- responses ---------------------------------------------------------------------------------------------
def _usage(usage: Mapping[str, int], output_tokens: int) -> dict[str, int]:
    return {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": output_tokens,
    }


def _tool_block(ask: Ask, tool_id: str, input_value: Any) -> dict[str, Any]:
    assert ask.tool is not None
    return {"type": "tool_use", "id": tool_id, "name": ask.tool[0], "input": input_value}


def message_body(ask: Ask, ans: Answer, usage: Mapping[str, int]) -> bytes:
    content: list[dict[str, Any]] = []
    if ans.text:
        content.append({"type": "text", "text": ans.text})
    if ans.stop == "tool_use" and ask.tool is not None:
        content.append(_tool_block(ask, "toolu_01" + os.urandom(11).hex(), ask.tool[1]))
    msg = {
        "id": "msg_01" + os.urandom(11).hex(),
        "type": "message",
        "role": "assistant",
        "model": ask.model,
        "content": content,
        "stop_reason": STOP_REASONS[ans.stop],
        "stop_sequence": ans.stop_sequence,
        "usage": _usage(usage, ans.output_tokens),
    }
    return _DUMPS(msg).encode()


_TEXT_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":',
    b"}}\n\n",
)


def sse(event: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + _DUMPS(data).encode() + b"\n\n"


def stream_events(ask: Ask, ans: Answer, usage: Mapping[str, int]) -> list[tuple[bool, bytes]]:
    """The full event list; the bool marks content deltas (the ones time-to-first-token / per-token delays hit)."""
    start = {
        "id": "msg_01" + os.urandom(11).hex(),
        "type": "message",
        "role": "assistant",
        "model": ask.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(usage, 1),
    }
    events: list[tuple[bool, bytes]] = [
        (False, sse("message_start", {"type": "message_start", "message": start})),
        (
            False,
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            ),
        ),
        (False, b'event: ping\ndata: {"type":"ping"}\n\n'),
    ]
    # Text deltas are the bulk of a stream: splice the JSON-encoded text into a fixed frame.
    head, tail = _TEXT_DELTA
    events.extend((True, head + _DUMPS(part).encode() + tail) for part in ans.parts)
    events.append((False, sse("content_block_stop", {"type": "content_block_stop", "index": 0})))
    if ans.stop == "tool_use" and ask.tool is not None:
        block = _tool_block(ask, "toolu_01" + os.urandom(11).hex(), {})
        events.append(
            (False, sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": block}))
        )
        _, fragments = json_fragments(ask.tool[1])
        for frag in ["", *fragments]:
            delta = {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": frag},
            }
            events.append((True, sse("content_block_delta", delta)))
        events.append((False, sse("content_block_stop", {"type": "content_block_stop", "index": 1})))
    final = {
        "type": "message_delta",
        "delta": {"stop_reason": STOP_REASONS[ans.stop], "stop_sequence": ans.stop_sequence},
        "usage": {"output_tokens": ans.output_tokens},
    }
    events.append((False, sse("message_delta", final)))
    events.append((False, b'event: message_stop\ndata: {"type":"message_stop"}\n\n'))
    return events


def error_event(rid: str, message: str | None = None) -> bytes:
    """The mid-stream error (the SDK raises APIStatusError with status 200 and .type overloaded_error)."""
    err = {
        "type": "error",
        "error": {"type": "overloaded_error", "message": message or "Overloaded"},
        "request_id": rid,
    }
    return sse("error", err)


# -- models ------------------------------------------------------------------------------------------------
def models_page(models: tuple[dict[str, Any], ...], query: str) -> bytes:
    """`GET /v1/models` with `limit`, `after_id`, `before_id` paging."""
    params = parse_qs(query)
    items = list(models)
    ids = [m["id"] for m in items]
    after = params.get("after_id", [None])[0]
    before = params.get("before_id", [None])[0]
    if after in ids:
        items = items[ids.index(after) + 1 :]
    elif before in ids:
        items = items[: ids.index(before)]
    try:
        limit = max(1, min(1000, int(params.get("limit", ["20"])[0])))
    except ValueError:
        limit = 20
    page = items[:limit]
    return _DUMPS(
        {
            "data": page,
            "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    ).encode()


def model_body(model: Mapping[str, Any]) -> bytes:
    return _DUMPS(model).encode()
