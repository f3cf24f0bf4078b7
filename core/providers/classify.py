"""Every SDK failure becomes exactly one :class:`~pulsegate.core.errors.ErrorClass` — nothing is ever "unknown".

Classification reads status codes and error bodies, not exception classes: errors inside a stream arrive as a bare
``APIStatusError`` (status 200) or ``APIError`` (no status) whose body says what happened, and OpenAI's
``insufficient_quota`` is a 429 that must never be retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import anthropic
import httpx2
import openai

from pulsegate.core.errors import ErrorClass, ProviderError
from pulsegate.core.masking import scrub
from pulsegate.core.provider import Provider
from pulsegate.core.providers.rate_limit_headers import parse_retry_after
from pulsegate.core.translate.result import IncompleteResponseError, StreamErrorEvent

#: Anthropic ``error.details.error_code`` values that mean the money ran out, not the rate.
SPEND_LIMIT_CODES = frozenset({"enforced_spend_limit_reached", "contract_spend_limit_reached"})

_BY_STATUS: dict[int, ErrorClass] = {
    400: ErrorClass.BAD_REQUEST,
    401: ErrorClass.AUTH,
    402: ErrorClass.QUOTA,
    403: ErrorClass.AUTH,
    404: ErrorClass.NOT_FOUND,
    408: ErrorClass.TIMEOUT,
    409: ErrorClass.SERVER_ERROR,
    413: ErrorClass.TOO_LARGE,
    422: ErrorClass.BAD_REQUEST,
    429: ErrorClass.RATE_LIMITED,
    503: ErrorClass.OVERLOADED,
    504: ErrorClass.TIMEOUT,
    529: ErrorClass.OVERLOADED,
}

#: Error ``type`` values seen in bodies (and mid-stream events) of both providers.
_BY_TYPE: dict[str, ErrorClass] = {
    "overloaded_error": ErrorClass.OVERLOADED,
    "rate_limit_error": ErrorClass.RATE_LIMITED,
    "api_error": ErrorClass.SERVER_ERROR,
    "server_error": ErrorClass.SERVER_ERROR,
    "timeout_error": ErrorClass.TIMEOUT,
    "authentication_error": ErrorClass.AUTH,
    "permission_error": ErrorClass.AUTH,
    "billing_error": ErrorClass.QUOTA,
    "insufficient_quota": ErrorClass.QUOTA,
    "not_found_error": ErrorClass.NOT_FOUND,
    "invalid_request_error": ErrorClass.BAD_REQUEST,
    "request_too_large": ErrorClass.TOO_LARGE,
    "requests": ErrorClass.RATE_LIMITED,
    "tokens": ErrorClass.RATE_LIMITED,
}


def _body_fields(provider: Provider, body: object) -> tuple[str | None, str | None, str | None]:
    """(type, code, message) from an SDK error body (Anthropic: the whole body; OpenAI: the inner ``error``)."""
    if not isinstance(body, dict):
        return None, None, None
    inner = body.get("error", body) if provider is Provider.ANTHROPIC else body
    if not isinstance(inner, dict):
        return None, None, None
    code = inner.get("code")
    details = inner.get("details")
    if isinstance(details, dict) and isinstance(details.get("error_code"), str):
        code = details["error_code"]
    kind = inner.get("type")
    message = inner.get("message")
    return (
        kind if isinstance(kind, str) else None,
        code if isinstance(code, str) else None,
        message if isinstance(message, str) else None,
    )


def classify_status(status: int | None, kind: str | None, code: str | None) -> ErrorClass:
    if code == "insufficient_quota" or code in SPEND_LIMIT_CODES or kind == "insufficient_quota":
        return ErrorClass.QUOTA
    if status is not None and status in _BY_STATUS and status != 200:
        return _BY_STATUS[status]
    if kind is not None and kind in _BY_TYPE:
        return _BY_TYPE[kind]
    if status is not None and status >= 500:
        return ErrorClass.SERVER_ERROR
    if status is not None and 400 <= status < 500:
        return ErrorClass.BAD_REQUEST
    return ErrorClass.SERVER_ERROR


def classify_exception(
    exc: BaseException, provider: Provider, now: datetime, key_label: str | None = None
) -> ProviderError:
    """The :class:`ProviderError` for an SDK exception (or a malformed answer), with status and retry-after."""
    status: int | None = None
    retry_after: float | None = None
    request_id: str | None = None
    kind = code = message = None
    if isinstance(exc, anthropic.APITimeoutError | openai.APITimeoutError | httpx2.TimeoutException):
        error_class = ErrorClass.TIMEOUT
        message = "the provider did not answer in time"
    elif isinstance(exc, anthropic.APIConnectionError | openai.APIConnectionError | httpx2.TransportError):
        error_class = ErrorClass.CONNECTION
        message = f"connection to the provider failed ({type(exc.__cause__ or exc).__name__})"
    elif isinstance(exc, anthropic.APIStatusError | openai.APIStatusError):
        return classify_answer(
            provider, exc.status_code, exc.body, exc.response.headers, now, key_label, exc.request_id
        )
    elif isinstance(exc, anthropic.APIResponseValidationError | openai.APIResponseValidationError):
        error_class = ErrorClass.SERVER_ERROR
        message = "the provider's answer did not match its documented shape"
    elif isinstance(exc, anthropic.APIError | openai.APIError):
        # e.g. an OpenAI error chunk inside a stream: no status code, the body says what it was
        kind, code, message = _body_fields(Provider.OPENAI, getattr(exc, "body", None))
        kind = kind or getattr(exc, "type", None)
        code = code or getattr(exc, "code", None)
        error_class = classify_status(None, kind, code)
    elif isinstance(exc, StreamErrorEvent):
        kind, code, message = exc.error_type, exc.code, str(exc)
        error_class = classify_status(None, kind, code)
    elif isinstance(exc, IncompleteResponseError):
        error_class = ErrorClass.SERVER_ERROR
        message = str(exc)
    elif isinstance(exc, ValueError):
        # malformed JSON in a 200 answer
        error_class = ErrorClass.SERVER_ERROR
        message = f"the provider's answer could not be read ({type(exc).__name__})"
    else:
        raise exc
    return _provider_error(provider, error_class, status, kind, message, key_label, retry_after, request_id)


def classify_answer(
    provider: Provider,
    status: int,
    body: object,
    headers: Mapping[str, str],
    now: datetime,
    key_label: str | None = None,
    request_id: str | None = None,
) -> ProviderError:
    """The :class:`ProviderError` for a provider's error answer: its status, its parsed JSON body (anything else
    counts as no body) and its headers (``retry-after``) — the SDK path and the gateway's byte path alike."""
    kind, code, message = _body_fields(provider, body)
    error_class = classify_status(status, kind, code)
    retry_after = parse_retry_after(headers, now)
    return _provider_error(provider, error_class, status, kind, message, key_label, retry_after, request_id)


def _provider_error(
    provider: Provider,
    error_class: ErrorClass,
    status: int | None,
    kind: str | None,
    message: str | None,
    key_label: str | None,
    retry_after: float | None,
    request_id: str | None,
) -> ProviderError:
    detail = scrub(message or kind or "no detail")
    where = f"{provider.value}" + (f" key {key_label!r}" if key_label else "")
    status_text = f" {status}" if status else ""
    return ProviderError(
        f"{where}:{status_text} {error_class.value}: {detail}",
        provider=provider.value,
        error_class=error_class,
        http_status=status,
        key_label=key_label,
        retry_after=retry_after,
        request_id=request_id,
    )
