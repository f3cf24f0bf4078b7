"""A gateway request read once: what policy and recording need from its body, and the bytes to forward.

The body is parsed once (orjson) for the model, ``stream``, ``max_tokens``, a token estimate and the user fields; no
SDK objects. The original bytes are forwarded untouched unless the gateway must change them: an OpenAI stream gets
``stream_options.include_usage`` (so its row has exact tokens and a price; the usage chunk is kept from a caller that
did not ask for it), and with ``HASH_USER_IDS`` the user fields are hashed before they leave.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pulsegate.core.errors import PulsegateError
from pulsegate.core.provider import Provider
from pulsegate.core.token_estimate import estimate_input_tokens
from pulsegate.core.user_ids import hash_user_id
from pulsegate.gateway.wire import Wire

#: What an OpenAI request without a token cap reserves against the token limits until its real use is known.
DEFAULT_OPENAI_RESERVATION = 4096
#: The Anthropic fields the translation to OpenAI carries over (the rest of a request stays with Anthropic).
_FALLBACK_FIELDS = ("temperature", "stop_sequences", "tools", "tool_choice")
_CLEAN_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class GatewayRequestError(PulsegateError, ValueError):
    """A request the gateway cannot forward as sent (answered as a 400): ``field`` names what is wrong."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


@dataclass(slots=True)
class Inbound:
    wire: Wire
    provider: Provider
    path: str
    body: bytes  # what is forwarded
    model: str
    stream: bool
    max_tokens: int
    estimated_input_tokens: int
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None
    user_id: str | None
    usage_asked: bool  # an OpenAI stream whose caller asked for the usage chunk itself
    #: an Anthropic request's sampling and tool fields, for the translation a fallback to OpenAI needs
    extras: dict[str, Any]


def _object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise GatewayRequestError("body", f"is not valid JSON ({str(exc).split(':')[0]})") from None
    if not isinstance(body, dict):
        raise GatewayRequestError("body", f"must be a JSON object, got {type(body).__name__}")
    return body


def _positive_int(body: Mapping[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise GatewayRequestError(field, f"must be a whole number above 0, got {value!r}")
    return value


def read_chat(path: str, raw: bytes, *, hash_key: bytes | None, user_header: str | None) -> Inbound:
    """A ``/v1/messages`` (Anthropic) or ``/v1/chat/completions`` (OpenAI) request."""
    wire = Wire.ANTHROPIC if path == "/v1/messages" else Wire.OPENAI
    body = _object(raw)
    model = body.get("model")
    if not isinstance(model, str) or not _CLEAN_NAME.fullmatch(model):
        raise GatewayRequestError("model", "must be a model name (1-128 characters, no control characters)")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise GatewayRequestError("stream", f"must be true or false, got {stream!r}")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise GatewayRequestError("messages", "must be a non-empty list of message objects")
    changed = False
    usage_asked = True
    if wire is Wire.ANTHROPIC:
        max_tokens = _positive_int(body, "max_tokens")
        if max_tokens is None:
            raise GatewayRequestError("max_tokens", "is required")
        system = body.get("system")
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        user_id = metadata.get("user_id") if metadata else None
    else:
        max_tokens = (
            _positive_int(body, "max_completion_tokens")
            or _positive_int(body, "max_tokens")
            or DEFAULT_OPENAI_RESERVATION
        )
        system = None
        metadata = None
        user_id = body.get("user")
        if stream:
            options = body.get("stream_options")
            usage_asked = isinstance(options, dict) and options.get("include_usage") is True
            if not usage_asked:
                body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
                changed = True
    if user_header:
        user_id = user_header
    if user_id is not None and not (isinstance(user_id, str) and _CLEAN_NAME.fullmatch(user_id)):
        raise GatewayRequestError("user", "must be a string of 1-128 characters without control characters")
    if hash_key is not None and user_id is not None:
        hashed = hash_user_id(user_id, hash_key)
        if wire is Wire.ANTHROPIC:
            if metadata is not None and "user_id" in metadata:
                body["metadata"] = {**metadata, "user_id": hashed}
                changed = True
        elif "user" in body:
            body["user"] = hashed
            changed = True
    tools = body.get("tools") if isinstance(body.get("tools"), list) else None
    try:
        estimate = estimate_input_tokens(system if isinstance(system, str | list) else None, messages, tools)
    except (TypeError, AttributeError, ValueError):
        estimate = len(raw) // 4
    return Inbound(
        wire=wire,
        provider=Provider.ANTHROPIC if wire is Wire.ANTHROPIC else Provider.OPENAI,
        path=path,
        body=orjson.dumps(body) if changed else raw,
        model=model,
        stream=stream,
        max_tokens=max_tokens,
        estimated_input_tokens=estimate,
        messages=messages,
        system=system if isinstance(system, str | list) else None,
        user_id=user_id,
        usage_asked=usage_asked,
        extras={name: body[name] for name in _FALLBACK_FIELDS if body.get(name) is not None}
        if wire is Wire.ANTHROPIC
        else {},
    )
