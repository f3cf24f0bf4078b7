"""Reading what a request to the worker's API sends: query values, path ids, providers and the JSON body.

Each reader returns the value or raises :class:`ApiError` naming the field and what was expected, so the route
handlers never see bad input; a body is read with a size cap even when it declares no length.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

from starlette.requests import Request

from pulsegate.core.ops.health_report import DEFAULT_WINDOW
from pulsegate.core.store.tables import PROVIDERS
from pulsegate.jobs.service.api_errors import ApiError, shown

MAX_BODY_BYTES = 64 * 1024
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=400)
_WINDOW = re.compile(r"\s*([0-9]{1,9})\s*([smhd]?)\s*")
_ID = re.compile(r"[0-9]{1,19}")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(value: str | None) -> timedelta:
    """``?window=``: seconds, or a number with s / m / h / d; from one minute to 400 days."""
    if value is None:
        return DEFAULT_WINDOW
    match = _WINDOW.fullmatch(value)
    if not match:
        raise ApiError(
            422, f"window: expected seconds or a number with s/m/h/d (e.g. 24h), got {shown(value)}", "window"
        )
    window = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ApiError(422, f"window: expected 1m to 400d, got {shown(value)}", "window")
    return window


def parse_id(value: str) -> int:
    if not _ID.fullmatch(value) or not 0 < int(value) < 2**63:
        raise ApiError(422, f"id: expected a positive integer, got {shown(value)}", "id")
    return int(value)


def check_provider(value: object, field: str = "provider", status: int = 422) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in PROVIDERS:
        raise ApiError(
            status, f"{field}: unknown provider {shown(value)}; expected one of {', '.join(PROVIDERS)}", field
        )
    return value


async def read_body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object in the body (empty body: ``{}``); only ``allowed`` fields."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"body: at most {MAX_BODY_BYTES} bytes, got {declared}", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a body sent without a length is cut off as soon as it is too big
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"body: at most {MAX_BODY_BYTES} bytes", "body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "body: not valid JSON (nested too deeply)", "body") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body: not valid JSON ({type(exc).__name__}: {str(exc)[:80]})", "body") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"body: expected a JSON object, got {type(data).__name__}", "body")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        names = ", ".join(shown(name) for name in unknown)
        expected = ", ".join(allowed) or "no fields"
        field = unknown[0] if len(unknown[0]) <= 40 else "body"
        raise ApiError(422, f"body: unknown field {names}; expected {expected}", field)
    return data
