"""An app's own limits (RPM, TPM across all its tokens), charged in the instance's limiter so several gateway
processes share them through Redis exactly as the provider limits are shared; and the headers that report them to
the app in its own wire format — never the upstream key's."""

from __future__ import annotations

import math
from datetime import timedelta

from pulsegate.core.apps.model import AppPolicy
from pulsegate.core.clock import Clock
from pulsegate.core.limits.base import Demand, LimitSpec, LimitState, RateLimiter
from pulsegate.gateway.wire import Wire


def app_demands(app: AppPolicy, tokens: int, period_s: float) -> list[Demand]:
    demands = []
    if app.rpm is not None:
        demands.append(Demand(f"app:{app.name}:rpm", LimitSpec(app.rpm, period_s), 1.0))
    if app.tpm is not None:
        demands.append(Demand(f"app:{app.name}:tpm", LimitSpec(app.tpm, period_s), float(tokens)))
    return demands


def _go_duration(seconds: float) -> str:
    """OpenAI's reset form: ``12ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, rest = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{rest}s"


def limit_headers(wire: Wire, limiter: RateLimiter, demands: list[Demand], clock: Clock) -> dict[str, str]:
    """The app's limits as the caller's SDK reads them (empty when the app has none)."""
    headers: dict[str, str] = {}
    for demand in demands:
        state: LimitState = limiter.state_nowait(demand.key, demand.spec)
        kind = "requests" if demand.key.endswith(":rpm") else "tokens"
        limit, remaining = int(state.limit), int(max(0.0, state.remaining))
        if wire is Wire.OPENAI:
            headers[f"x-ratelimit-limit-{kind}"] = str(limit)
            headers[f"x-ratelimit-remaining-{kind}"] = str(remaining)
            headers[f"x-ratelimit-reset-{kind}"] = _go_duration(state.reset_s)
        else:
            reset = (clock.now() + timedelta(seconds=state.reset_s)).replace(microsecond=0)
            headers[f"anthropic-ratelimit-{kind}-limit"] = str(limit)
            headers[f"anthropic-ratelimit-{kind}-remaining"] = str(remaining)
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset.isoformat().replace("+00:00", "Z")
    return headers
