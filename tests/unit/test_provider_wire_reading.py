"""Reading what providers send back: rate-limit headers, retry-after, and the error class of every failure."""

from __future__ import annotations

from datetime import UTC, datetime

import anthropic
import httpx2
import openai
import pytest

from pulsegate.core.errors import ErrorClass
from pulsegate.core.provider import Provider
from pulsegate.core.providers.classify import classify_exception
from pulsegate.core.providers.rate_limit_headers import (
    Window,
    parse_duration,
    parse_rate_limit_headers,
    parse_retry_after,
)

NOW = datetime(2026, 11, 28, 10, 48, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("12ms", 0.012),
        ("1.4s", 1.4),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("", None),
        ("5 s", None),
        ("3x", None),
    ],
)
def test_go_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_anthropic_headers_read_against_the_servers_date() -> None:
    headers = {
        "date": "Sat, 28 Nov 2026 10:48:00 GMT",
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "12",
        "anthropic-ratelimit-requests-reset": "2026-11-28T10:48:45Z",
        "anthropic-ratelimit-tokens-limit": "96000",
        "anthropic-ratelimit-tokens-remaining": "95000",
        "anthropic-ratelimit-tokens-reset": "2026-11-28T10:48:01Z",
    }
    skewed_local_clock = datetime(2026, 1, 1, tzinfo=UTC)
    parsed = parse_rate_limit_headers(Provider.ANTHROPIC, headers, skewed_local_clock)
    assert parsed.requests == Window(50, 12, 45.0)
    assert parsed.tokens == Window(96000, 95000, 1.0)


def test_openai_headers_and_missing_or_bad_values() -> None:
    headers = {
        "x-ratelimit-limit-requests": "5000",
        "x-ratelimit-remaining-requests": "4999",
        "x-ratelimit-reset-requests": "12ms",
        "x-ratelimit-limit-tokens": "800000",
        "x-ratelimit-remaining-tokens": "not-a-number",
        "x-ratelimit-reset-tokens": "35ms",
    }
    parsed = parse_rate_limit_headers(Provider.OPENAI, headers, NOW)
    assert parsed.requests == Window(5000, 4999, 0.012)
    assert parsed.tokens is None
    assert parse_rate_limit_headers(Provider.OPENAI, {}, NOW).requests is None


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after": "18"}, 18.0),
        ({"retry-after": "Sat, 28 Nov 2026 10:48:30 GMT"}, 30.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, NOW) == seconds


def _status_error(sdk: str, status: int, body: dict, headers: dict[str, str] | None = None) -> Exception:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/messages")
    response = httpx2.Response(status, json=body, headers={"request-id": "req_1", **(headers or {})}, request=request)
    if sdk == "anthropic":
        return anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1")._make_status_error_from_response(response)
    return openai.OpenAI(api_key="k", base_url="http://127.0.0.1/v1")._make_status_error_from_response(response)


def _anthropic_body(kind: str, code: str | None = None) -> dict:
    error: dict = {"type": kind, "message": "m"}
    if code:
        error["details"] = {"error_code": code}
    return {"type": "error", "error": error}


def _openai_body(kind: str, code: str | None) -> dict:
    return {"error": {"type": kind, "code": code, "message": "m", "param": None}}


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, _anthropic_body("invalid_request_error"), ErrorClass.BAD_REQUEST),
        (401, _anthropic_body("authentication_error"), ErrorClass.AUTH),
        (402, _anthropic_body("billing_error"), ErrorClass.QUOTA),
        (403, _anthropic_body("permission_error"), ErrorClass.AUTH),
        (404, _anthropic_body("not_found_error"), ErrorClass.NOT_FOUND),
        (413, _anthropic_body("request_too_large"), ErrorClass.TOO_LARGE),
        (429, _anthropic_body("rate_limit_error"), ErrorClass.RATE_LIMITED),
        (429, _anthropic_body("rate_limit_error", "enforced_spend_limit_reached"), ErrorClass.QUOTA),
        (500, _anthropic_body("api_error"), ErrorClass.SERVER_ERROR),
        (504, _anthropic_body("timeout_error"), ErrorClass.TIMEOUT),
        (529, _anthropic_body("overloaded_error"), ErrorClass.OVERLOADED),
    ],
)
def test_anthropic_errors(status: int, body: dict, expected: ErrorClass) -> None:
    error = classify_exception(
        _status_error("anthropic", status, body, {"retry-after": "3"}), Provider.ANTHROPIC, NOW, "Primary"
    )
    assert (error.error_class, error.http_status, error.retry_after, error.request_id) == (
        expected,
        status,
        3.0,
        "req_1",
    )
    assert error.key_label == "Primary" and error.provider == "anthropic"


@pytest.mark.parametrize(
    ("status", "kind", "code", "expected"),
    [
        (429, "requests", "rate_limit_exceeded", ErrorClass.RATE_LIMITED),
        (429, "insufficient_quota", "insufficient_quota", ErrorClass.QUOTA),
        (400, "invalid_request_error", "context_length_exceeded", ErrorClass.BAD_REQUEST),
        (401, "invalid_request_error", "invalid_api_key", ErrorClass.AUTH),
        (404, "invalid_request_error", "model_not_found", ErrorClass.NOT_FOUND),
        (503, "server_error", None, ErrorClass.OVERLOADED),
        (500, "server_error", None, ErrorClass.SERVER_ERROR),
    ],
)
def test_openai_errors(status: int, kind: str, code: str | None, expected: ErrorClass) -> None:
    error = classify_exception(_status_error("openai", status, _openai_body(kind, code)), Provider.OPENAI, NOW)
    assert error.error_class is expected


def test_transport_failures_and_mid_stream_errors() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions")
    assert classify_exception(openai.APITimeoutError(request), Provider.OPENAI, NOW).error_class is ErrorClass.TIMEOUT
    assert (
        classify_exception(anthropic.APIConnectionError(request=request), Provider.ANTHROPIC, NOW).error_class
        is ErrorClass.CONNECTION
    )
    assert classify_exception(httpx2.ReadTimeout("slow"), Provider.OPENAI, NOW).error_class is ErrorClass.TIMEOUT
    midstream = openai.APIError("boom", request, body={"type": "server_error", "code": None, "message": "boom"})
    assert classify_exception(midstream, Provider.OPENAI, NOW).error_class is ErrorClass.SERVER_ERROR
    assert (
        classify_exception(ValueError("Expecting value"), Provider.OPENAI, NOW).error_class is ErrorClass.SERVER_ERROR
    )
    with pytest.raises(KeyError):
        classify_exception(KeyError("a bug of ours is not a provider failure"), Provider.OPENAI, NOW)


def test_a_key_quoted_by_the_provider_is_masked_in_the_message() -> None:
    body = _openai_body("invalid_request_error", "invalid_api_key")
    body["error"]["message"] = "Incorrect API key provided: sk-proj-abcdefghijklmnopqrstuvwx1234."
    error = classify_exception(_status_error("openai", 401, body), Provider.OPENAI, NOW, "Backup 1")
    assert "abcdefghijkl" not in str(error)
    assert str(error) == "openai key 'Backup 1': 401 auth: Incorrect API key provided: sk-proj-…1234."
