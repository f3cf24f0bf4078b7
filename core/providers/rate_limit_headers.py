"""The providers' rate-limit response headers, read into one shape so the limiter can pace before a 429.

Anthropic sends ``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`` with RFC 3339 resets (when the
bucket is full again); OpenAI sends ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with Go-style
durations (``12ms``, ``1.4s``, ``6m0s``). ``retry-after-ms`` / ``retry-after`` (seconds or an HTTP date) say how
long to wait after a 429.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import NamedTuple

from pulsegate.core.provider import Provider

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


class Window(NamedTuple):
    """One limit as the provider sees it now: ``remaining`` of ``limit``, full again in ``reset_s``. (Named tuples:
    every response builds these, and a frozen dataclass costs several times more to build.)"""

    limit: int
    remaining: int
    reset_s: float


class RateLimitHeaders(NamedTuple):
    requests: Window | None = None
    tokens: Window | None = None


def parse_duration(text: str) -> float | None:
    """``1h2m3.5s`` → 3723.5; ``12ms`` → 0.012; anything else → None."""
    text = text.strip()
    if not text:
        return None
    position = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def _seconds_until(timestamp: str, now: datetime) -> float | None:
    when = _rfc3339(timestamp)
    return None if when is None else max(0.0, (when - now).total_seconds())


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return int(float(value))
    except ValueError:
        return None


def _window(limit: str | None, remaining: str | None, reset_s: float | None) -> Window | None:
    limit_n, remaining_n = _int(limit), _int(remaining)
    if limit_n is None or remaining_n is None or limit_n <= 0:
        return None
    return Window(limit_n, max(0, min(remaining_n, limit_n)), reset_s if reset_s is not None else 0.0)


_RELEVANT = (b"anthropic-ratelimit-", b"x-ratelimit-", b"retry-after", b"date")


def relevant_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The rate-limit, retry-after and date headers, lower-cased, in one pass (an httpx ``Headers.get`` scans every
    header each time; this runs on every response)."""
    raw = getattr(headers, "raw", None)
    if raw is None:
        return {k.lower(): v for k, v in headers.items()}
    found: dict[str, str] = {}
    for key, value in raw:
        lowered = key.lower()
        if lowered.startswith(_RELEVANT):
            found[lowered.decode("latin-1")] = value.decode("latin-1")
    return found


@functools.lru_cache(maxsize=64)
def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@functools.lru_cache(maxsize=256)
def _rfc3339(value: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def server_now(headers: Mapping[str, str], fallback: datetime) -> datetime:
    """The server's clock from its ``date`` header: absolute resets are read against it, so a skewed local clock
    cannot turn "full again in 2 s" into hours."""
    value = headers.get("date")
    return (_http_date(value) if value else None) or fallback


#: The header names of each window, spelled once (building them per response showed in profiles).
_ANTHROPIC_NAMES = {
    kind: tuple(f"anthropic-ratelimit-{kind}-{part}" for part in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}
_OPENAI_NAMES = {
    kind: tuple(f"x-ratelimit-{part}-{kind}" for part in ("limit", "remaining", "reset"))
    for kind in ("requests", "tokens")
}


def parse_rate_limit_headers(provider: Provider, headers: Mapping[str, str], now: datetime) -> RateLimitHeaders:
    """Whatever of the two windows the response carried; missing or malformed values give ``None``."""
    headers = relevant_headers(headers)
    if not headers:
        return RateLimitHeaders()
    if provider is Provider.ANTHROPIC:
        now = server_now(headers, now)
        windows = []
        for limit, remaining, reset in _ANTHROPIC_NAMES.values():
            at = headers.get(reset)
            windows.append(_window(headers.get(limit), headers.get(remaining), _seconds_until(at, now) if at else None))
        return RateLimitHeaders(*windows)
    windows = []
    for limit, remaining, reset in _OPENAI_NAMES.values():
        after = headers.get(reset)
        windows.append(_window(headers.get(limit), headers.get(remaining), parse_duration(after) if after else None))
    return RateLimitHeaders(*windows)


def parse_retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds or HTTP date); None if absent/bad."""
    headers = relevant_headers(headers)
    value = headers.get("retry-after-ms")
    if value:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    now = server_now(headers, now)
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
