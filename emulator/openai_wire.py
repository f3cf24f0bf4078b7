"""OpenAI Chat Completions on the wire: the exact response, SSE, error and rate-limit header shapes.

Shapes: docs/provider-wire.md §2 (OpenAI Chat Completions) and the tests/fixtures/wire-examples fixtures.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from typing import Any

from pulsegate.emulator.budget import Window
from pulsegate.emulator.formats import go_duration
from pulsegate.emulator.textgen import Answer, Ask, json_fragments

NAME = "openai"
REQUEST_ID_HEADER = "x-request-id"
STATIC_HEADERS: tuple[tuple[str, str], ...] = (("openai-processing-ms", "1"), ("openai-version", "2020-10-01"))
FINISH_REASONS = {"end": "stop", "max_tokens": "length", "stop_sequence": "stop", "tool_use": "tool_calls"}
FINGERPRINT = "fp_e1a7e0c0de"
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
OVERLOADED = "The engine is currently overloaded, please try again later."
QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more information on this "
    "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors."
)
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

# status -> (type, code, message) for the generic `error` fault and other plain statuses.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    402: ("insufficient_quota", "insufficient_quota", QUOTA_MESSAGE),
    403: ("request_forbidden", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: ("invalid_request_error", "not_found", "Not found."),
    408: ("invalid_request_error", "timeout", "Request timed out."),
    409: ("invalid_request_error", "conflict", "Conflict."),
    413: ("invalid_request_error", "request_too_large", "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, SERVER_ERROR),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, OVERLOADED),
    504: ("server_error", None, "Gateway timeout."),
    529: ("server_error", None, OVERLOADED),
}


def request_id() -> str:
    return "req_" + os.urandom(16).hex()


def credential(headers: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer <key>`; None when absent or empty."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


_UNSET: Any = object()


def error_body(
    status: int, message: str | None, *, type_: str | None = None, code: str | None = _UNSET, param: str | None = None
) -> bytes:
    """`{"error": {message, type, param, code}}`; defaults per status from ERRORS (code only when not given)."""
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None, "Error.")
    d_type, d_code, d_message = ERRORS.get(status, fallback)
    err = {
        "message": message or d_message,
        "type": type_ or d_type,
        "param": param,
        "code": d_code if code is _UNSET else code,
    }
    return _DUMPS({"error": err}).encode()


def missing_key_body() -> bytes:
    message = (
        "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer "
        "auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're "
        "accessing the API from your browser and are prompted for a username and password. You can obtain an API "
        "key from https://platform.openai.com/account/api-keys."
    )
    return error_body(401, message, code=None)


def invalid_key_body(key: str) -> bytes:
    masked = (key[:8] + "****" + key[-4:]) if len(key) > 12 else "****"
    message = (
        f"Incorrect API key provided: {masked}. You can find your API key at "
        "https://platform.openai.com/account/api-keys."
    )
    return error_body(401, message)


def ratelimit_headers(windows: Mapping[str, Window], wall: float) -> list[tuple[str, str]]:
    """`x-ratelimit-{limit,remaining,reset}-{requests,tokens}`; resets as Go durations."""
    req, tok = windows["requests"], windows["tokens"]
    return [
        ("x-ratelimit-limit-requests", str(req.limit)),
        ("x-ratelimit-limit-tokens", str(tok.limit)),
        ("x-ratelimit-remaining-requests", str(req.remaining)),
        ("x-ratelimit-remaining-tokens", str(tok.remaining)),
        ("x-ratelimit-reset-requests", go_duration(req.reset)),
        ("x-ratelimit-reset-tokens", go_duration(tok.reset)),
    ]


def rate_limit_body(bucket: str, model: str, limit: int, used: int, requested: int, wait: float) -> bytes:
    """429 `rate_limit_exceeded` with type `requests` or `tokens` (the input/output buckets count as tokens)."""
    kind = "requests" if bucket == "requests" else "tokens"
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    message = (
        f"Rate limit reached for {model} in organization org-emulator on {unit}: Limit {limit}, Used {used}, "
        f"Requested {requested}. Please try again in {go_duration(wait)}. "
        "Visit https://platform.openai.com/account/rate-limits to learn more."
    )
    return error_body(429, message, type_=kind, code="rate_limit_exceeded")


# -- responses ---------------------------------------------------------------------------------------------
def usage_dict(input_tokens: int, output_tokens: int, cached: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _call_id() -> str:
    return "call_" + os.urandom(12).hex()


def completion_body(ask: Ask, ans: Answer) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": ans.text, "refusal": None, "annotations": []}
    if ans.stop == "tool_use" and ask.tool is not None:
        message["content"] = None
        args, _ = json_fragments(ask.tool[1])
        message["tool_calls"] = [
            {"id": _call_id(), "type": "function", "function": {"name": ask.tool[0], "arguments": args}}
        ]
    body = {
        "id": "chatcmpl-" + os.urandom(15).hex(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": ask.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": FINISH_REASONS[ans.stop]}],
        "usage": usage_dict(ask.input_tokens, ans.output_tokens),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }
    return _DUMPS(body).encode()


def _data(obj: Any) -> bytes:
    return b"data: " + _DUMPS(obj).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"


def stream_events(ask: Ask, ans: Answer) -> list[tuple[bool, bytes]]:
    """`data:`-only chunks ending with `[DONE]`; with include_usage every chunk has `"usage": null` and a final
    `choices: []` chunk carries the usage."""
    head = {
        "id": "chatcmpl-" + os.urandom(15).hex(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": ask.model,
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = {**head, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if ask.include_usage:
            body["usage"] = None
        return _data(body)

    # Content deltas are the bulk of a stream: splice the JSON-encoded text into a fixed frame.
    frame = chunk({"content": "\x00"})
    cut = frame.index(b'"\\u0000"')
    prefix, suffix = frame[:cut], frame[cut + len(b'"\\u0000"') :]

    events: list[tuple[bool, bytes]] = []
    if ans.stop == "tool_use" and ask.tool is not None:
        _, fragments = json_fragments(ask.tool[1])
        first = {"index": 0, "id": _call_id(), "type": "function", "function": {"name": ask.tool[0], "arguments": ""}}
        events.append((False, chunk({"role": "assistant", "content": None, "tool_calls": [first], "refusal": None})))
        for frag in fragments:
            events.append((True, chunk({"tool_calls": [{"index": 0, "function": {"arguments": frag}}]})))
    else:
        events.append((False, chunk({"role": "assistant", "content": "", "refusal": None})))
        events.extend((True, prefix + _DUMPS(part).encode() + suffix) for part in ans.parts)
    events.append((False, chunk({}, FINISH_REASONS[ans.stop])))
    if ask.include_usage:
        events.append((False, _data({**head, "choices": [], "usage": usage_dict(ask.input_tokens, ans.output_tokens)})))
    events.append((False, DONE))
    return events


def error_event(message: str | None = None) -> bytes:
    """A data chunk with an `error` object: the SDK raises a bare APIError (no status_code)."""
    return _data({"error": {"message": message or SERVER_ERROR, "type": "server_error", "param": None, "code": None}})


# -- models ------------------------------------------------------------------------------------------------
def models_page(models: tuple[dict[str, Any], ...]) -> bytes:
    return _DUMPS({"object": "list", "data": list(models)}).encode()


def model_body(model: Mapping[str, Any]) -> bytes:
    return _DUMPS(model).encode()


def model_not_found_body(model: str) -> bytes:
    return error_body(
        404, f"The model `{model}` does not exist or you do not have access to it.", code="model_not_found"
    )
