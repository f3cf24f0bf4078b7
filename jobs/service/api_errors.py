"""How the worker's API answers when it does not succeed: always JSON ``{"error", "status", "field"}``, never a
traceback, and never a configured secret echoed back.

Handlers raise :class:`ApiError`; :func:`exception_handlers` maps it, Starlette's own HTTP errors, store failures
and anything unexpected to their answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from pulsegate.core.errors import PulsegateError
from pulsegate.core.provider import Provider
from pulsegate.core.settings import Settings

log = logging.getLogger("pulsegate.jobs.service.api")  # the API's one logger, whichever module of it logs

#: Secrets shorter than this (test keys) are only matched whole: replacing "k1" in every message would garble them.
SCRUB_MIN_LENGTH = 12


class ApiError(PulsegateError):
    """An answer other than success: status, message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, default=_jsonable, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, headers=dict(headers or {}), media_type="application/json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    return str(value)  # e.g. an enum in status(): shown, never a failed answer


def shown(value: object) -> str:
    """A bad input as it may be echoed: whole when short, else only its length (never part of a pasted secret)."""
    text = repr(value)
    if len(text) <= 40:
        return text
    return f"a {len(value)}-character {type(value).__name__}" if isinstance(value, str | list | dict) else "a value"


def configured_secrets(settings: Settings) -> list[tuple[str, str]]:
    """Each provider key and the admin token, with what to show in its place."""
    secrets = [(key.reveal(), key.masked) for p in Provider for key in settings.keys(p)]
    if settings.admin_token is not None:
        secrets.append((settings.admin_token.get_secret_value(), "…"))
    return secrets


def contains_secret(value: str, secret: str) -> bool:
    """Whether ``value`` holds ``secret`` (a short test key only when it is the whole value)."""
    return secret in value if len(secret) >= SCRUB_MIN_LENGTH else secret == value


def exception_handlers(settings: Settings) -> dict[Any, Any]:
    """Starlette's ``exception_handlers`` for the worker's app."""
    secrets = configured_secrets(settings)

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        message, field = exc.message, exc.field
        for secret, masked in secrets:  # an operator who pasted a key where its label goes gets it back masked
            if len(secret) >= SCRUB_MIN_LENGTH:
                message = message.replace(secret, masked)
                field = field.replace(secret, masked) if field is not None else None
        data: dict[str, Any] = {"error": message, "status": exc.status}
        if field is not None:
            data["field"] = field
        return json_response(data, exc.status)

    return {
        ApiError: api_error,
        HTTPException: _http_error,
        sa.exc.SQLAlchemyError: _store_error,
        Exception: _crash,
    }


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = "no such route; the routes are listed at /openapi.json"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed here; allowed: {headers.get('Allow', '?')}"
    else:
        message = str(exc.detail)
    return json_response({"error": message, "status": exc.status_code}, exc.status_code, headers)


async def _store_error(request: Request, exc: Exception) -> Response:
    log.warning("API %s %s: the store failed (%s)", request.method, request.url.path, type(exc).__name__)
    return json_response({"error": "the store is unreachable or failed; see the worker's log", "status": 503}, 503)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("API %s %s failed", request.method, request.url.path, exc_info=exc)
    return json_response({"error": "internal error; see the worker's log", "status": 500}, 500)
