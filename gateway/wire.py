"""The two wire formats the gateway speaks back: which one a request expects, and its error bodies and headers.

Errors come back exactly as the caller's own SDK expects them, so it raises its usual exception class: OpenAI's
``{"error": {"message", "type", "param", "code"}}`` and Anthropic's ``{"type": "error", "error": {"type",
"message"}}``. ``x-should-retry: false`` tells both SDKs not to retry what the gateway has already retried (or what
no retry can fix) — without it they retry every 429 and 5xx twice by default, tripling the provider's load in an
incident.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

import orjson

from pulsegate.core.errors import CallError, ErrorClass


class Wire(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


ANTHROPIC_PATHS = frozenset({"/v1/messages", "/v1/messages/count_tokens"})
OPENAI_PATHS = frozenset({"/v1/chat/completions", "/v1/responses", "/v1/embeddings"})


def wire_of(path: str, headers: Mapping[str, str]) -> Wire:
    """The format a request expects: its endpoint's; on a shared or unknown path, Anthropic when it carries
    ``anthropic-version`` or ``x-api-key`` (what the Anthropic SDKs always send), else OpenAI."""
    if path in ANTHROPIC_PATHS:
        return Wire.ANTHROPIC
    if path in OPENAI_PATHS:
        return Wire.OPENAI
    return Wire.ANTHROPIC if "anthropic-version" in headers or "x-api-key" in headers else Wire.OPENAI


#: Status and error type per wire for each error class a call can end with.
_STATUS: dict[ErrorClass, tuple[int, int]] = {  # (openai, anthropic)
    ErrorClass.VALIDATION: (400, 400),
    ErrorClass.BAD_REQUEST: (400, 400),
    ErrorClass.NOT_FOUND: (404, 404),
    ErrorClass.TOO_LARGE: (413, 413),
    ErrorClass.RATE_LIMITED: (429, 429),
    ErrorClass.USER_RATE_LIMITED: (429, 429),
    ErrorClass.QUOTA: (429, 429),
    ErrorClass.OVERLOADED: (503, 529),
    ErrorClass.CIRCUIT_OPEN: (503, 529),
    ErrorClass.QUEUE_FULL: (503, 529),
    ErrorClass.QUEUE_TIMEOUT: (503, 529),
    ErrorClass.KEYS_COOLING_DOWN: (503, 529),
    ErrorClass.NO_USABLE_KEY: (503, 529),
    ErrorClass.DEADLINE_EXCEEDED: (504, 504),
    ErrorClass.TIMEOUT: (504, 504),
    ErrorClass.SERVER_ERROR: (502, 502),
    ErrorClass.CONNECTION: (502, 502),
    ErrorClass.AUTH: (502, 502),  # the gateway's provider key was refused: not the caller's credential
    ErrorClass.STREAM_INTERRUPTED: (502, 502),
    ErrorClass.CANCELLED: (503, 529),
}

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "invalid_request_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    429: "requests",
    502: "server_error",
    503: "server_error",
    504: "server_error",
}


def error_body(wire: Wire, status: int, message: str, *, code: str | None = None, kind: str | None = None) -> bytes:
    """An error body in ``wire``'s format (``kind`` overrides the error type the status implies)."""
    if wire is Wire.ANTHROPIC:
        return orjson.dumps(
            {"type": "error", "error": {"type": kind or _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
        )
    return orjson.dumps(
        {
            "error": {
                "message": message,
                "type": kind or _OPENAI_TYPES.get(status, "server_error"),
                "param": None,
                "code": code,
            }
        }
    )


def status_of(wire: Wire, error_class: ErrorClass | None) -> int:
    openai_status, anthropic_status = _STATUS.get(error_class, (502, 502)) if error_class else (502, 502)
    return anthropic_status if wire is Wire.ANTHROPIC else openai_status


def call_error_response(wire: Wire, error: CallError) -> tuple[int, bytes, dict[str, str]]:
    """Status, body and headers for a call that failed after the gateway's own retries and fallback. Every such
    answer says ``x-should-retry: false``, except a wait the caller can sit out (a 429 with ``retry-after``)."""
    status = status_of(wire, error.error_class)
    headers = {"x-should-retry": "false"}
    code: str | None = error.error_class.value if error.error_class else None
    kind: str | None = None
    if error.error_class is ErrorClass.QUOTA:
        kind = "insufficient_quota" if wire is Wire.OPENAI else "rate_limit_error"
        code = "insufficient_quota" if wire is Wire.OPENAI else code
    retry_after = getattr(error, "retry_after", None)
    if status == 429 and error.error_class is not ErrorClass.QUOTA:
        headers = {"retry-after": str(max(1, int(-(-(retry_after or 1) // 1))))}
        if wire is Wire.OPENAI:
            code = "rate_limit_exceeded"
    return status, error_body(wire, status, str(error), code=code, kind=kind), headers
