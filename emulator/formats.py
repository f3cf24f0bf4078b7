"""Value formats used by the rate-limit headers: RFC 3339 UTC instants (Anthropic) and Go durations (OpenAI)."""

from __future__ import annotations

import math
import time

_RFC3339_CACHE: dict[int, str] = {}


def rfc3339(wall_seconds: float) -> str:
    """`2026-11-28T10:48:01Z`, rounded up to the next whole second (a reset is never reported early)."""
    key = math.ceil(wall_seconds)
    text = _RFC3339_CACHE.get(key)
    if text is None:
        if len(_RFC3339_CACHE) > 4096:
            _RFC3339_CACHE.clear()
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(key))
        _RFC3339_CACHE[key] = text
    return text


def _seconds_text(seconds: float) -> str:
    text = f"{seconds:.3f}".rstrip("0").rstrip(".")
    return text or "0"


def go_duration(seconds: float) -> str:
    """Format like Go's `time.Duration.String` at millisecond precision: `0s`, `12ms`, `1.4s`, `6m0s`, `1h2m3s`."""
    ms = math.ceil(seconds * 1000 - 1e-9) if seconds > 0 else 0
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    if ms < 60_000:
        return _seconds_text(ms / 1000) + "s"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    prefix = f"{hours}h" if hours else ""
    return f"{prefix}{minutes}m{_seconds_text(rest / 1000)}s"


def retry_after_seconds(wait: float) -> int:
    """`retry-after` is an integer: the ceiling of the wait, at least 1 s."""
    return max(1, math.ceil(wait - 1e-9))
