"""Per-call control headers (``x-pulsegate-*``): what an app may say about one call, checked, or a 400 naming the
header. The app's defaults fill in what the headers leave out; ``max_priority`` caps what they ask for."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pulsegate.core.apps.model import AppPolicy
from pulsegate.core.request import CallOptions, Priority
from pulsegate.gateway.inbound import GatewayRequestError

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 3600.0
_FEATURE_MAX = 64


def _seconds(headers: Mapping[str, str], name: str) -> float | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and 0 < seconds <= MAX_TIMEOUT_S):
        raise GatewayRequestError(name, f"must be seconds above 0 and at most {MAX_TIMEOUT_S:.0f}, got {value!r}")
    return seconds


def _priority(headers: Mapping[str, str]) -> int | None:
    value = headers.get("x-pulsegate-priority")
    if value is None:
        return None
    if not value.strip().lstrip("-").isdigit() or not Priority.MIN <= int(value) <= Priority.MAX:
        raise GatewayRequestError(
            "x-pulsegate-priority", f"must be a whole number from {Priority.MIN} to {Priority.MAX}, got {value!r}"
        )
    return int(value)


def _flag(headers: Mapping[str, str], name: str) -> bool | None:
    value = headers.get(name)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered not in ("true", "false", "1", "0"):
        raise GatewayRequestError(name, f"must be true or false, got {value!r}")
    return lowered in ("true", "1")


def call_options(headers: Mapping[str, str], app: AppPolicy, user_id: str | None) -> CallOptions:
    """The call's options from its headers over the app's defaults."""
    feature = headers.get("x-pulsegate-feature")
    if feature is not None and not (0 < len(feature) <= _FEATURE_MAX and feature.isprintable()):
        raise GatewayRequestError("x-pulsegate-feature", f"must be 1-{_FEATURE_MAX} printable characters")
    fallback = _flag(headers, "x-pulsegate-fallback")
    timeout = _seconds(headers, "x-pulsegate-timeout") or app.timeout_s or DEFAULT_TIMEOUT_S
    idle = _seconds(headers, "x-pulsegate-stream-idle-timeout")
    return CallOptions(
        fallback_to_openai=fallback if fallback is not None else (app.fallback if app.fallback is not None else True),
        priority=app.effective_priority(_priority(headers)),
        user_id=user_id,
        feature=feature,
        timeout_s=timeout,
        stream_idle_timeout_s=idle if idle is not None else 60.0,
    )
