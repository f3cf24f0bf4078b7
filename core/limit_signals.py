"""What one settled attempt tells the limit tuner: a 429, a low remaining quota that is not our own doing, or nothing.

* A **429** on a key halves that key's own limits (configured, or learned from its headers): the kinds the
  response's headers show as nearly spent, or every kind when they do not say. The provider's limits
  (``ANTHROPIC_RPM`` …) are halved only when at least half of the provider's usable keys got a 429 within the
  policy's window (30 s): one key refused is that key's business, and the key cools down and is paced on its own.
* **Headers showing less than 10 % left** take that kind of the key's limit ×0.8 — but only when more than 10 % of
  the limit was used by someone else: ``limit - remaining`` beyond what this client itself sent on the key in the
  last period (:mod:`pulsegate.core.limits.own_use`). A burst this client's own limiter admitted is not pushback.
* Anything else moves nothing; recovery runs on time alone (:mod:`pulsegate.core.limits.tuning`).
"""

from __future__ import annotations

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.errors import CallError, ErrorClass
from pulsegate.core.keys.health import KeyStatus
from pulsegate.core.limits.base import LimitSpec
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.limits.tuning import LimitScope
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.rate_limit_headers import RateLimitHeaders, Window

_UNITS = {"rpm": "requests", "tpm": "tokens"}

Limit = tuple[str, LimitScope, LimitSpec]


def _key_limits(runtime: ProviderRuntime, key: ApiKey) -> list[Limit]:
    """(limiter name, scope, ceiling) of the key's own limits, when it has any."""
    own = runtime.key_limits.get(key.fingerprint)
    if own is None:
        return []
    provider = runtime.provider.value
    found = []
    for kind, spec in (("rpm", own.rpm), ("tpm", own.tpm)):
        if spec is not None:
            scope = LimitScope(provider, kind, key.label, configured=not own.learned)
            found.append((runtime.key_limit_name(key, kind), scope, spec))
    return found


def _provider_limits(runtime: ProviderRuntime) -> list[Limit]:
    provider = runtime.provider.value
    found = [(runtime.rpm_key, LimitScope(provider, "rpm"), runtime.rpm)]
    if runtime.tpm is not None:
        found.append((runtime.tpm_key, LimitScope(provider, "tpm"), runtime.tpm))
    return found


def _usable(runtime: ProviderRuntime) -> list[str]:
    """Fingerprints of the provider's keys that are not disabled (a key cooling down after a 429 is usable)."""
    pool = runtime.pool
    now = pool.clock.monotonic()
    return [key.fingerprint for key in pool.keys if pool.state(key).status(now) is not KeyStatus.DISABLED]


def _nearly_spent(headers: RateLimitHeaders | None, fraction: float) -> dict[str, Window]:
    if headers is None:
        return {}
    windows = {"rpm": headers.requests, "tpm": headers.tokens}
    return {kind: w for kind, w in windows.items() if w is not None and w.remaining < fraction * w.limit}


def observe_attempt(
    tuner: LimitTuner, runtime: ProviderRuntime, key: ApiKey, headers: RateLimitHeaders | None, error: CallError | None
) -> None:
    """Feed one settled attempt to ``tuner`` (errors other than a 429 say nothing about limits)."""
    if not tuner.enabled:
        return
    low = _nearly_spent(headers, tuner.policy.low_remaining_fraction)
    if error is not None and error.error_class is ErrorClass.RATE_LIMITED:
        _rate_limited(tuner, runtime, key, low, error)
    elif low:
        _low_remaining(tuner, runtime, key, low)


def _halve(tuner: LimitTuner, limits: list[Limit], low: dict[str, Window], reason: str) -> None:
    """Halve the kinds the headers name as nearly spent, or every kind when they name none."""
    for name, scope, ceiling in limits:
        if not low or scope.kind in low:
            tuner.decrease(name, scope, ceiling, tuner.policy.rate_limited_factor, reason)


def _rate_limited(
    tuner: LimitTuner, runtime: ProviderRuntime, key: ApiKey, low: dict[str, Window], error: CallError
) -> None:
    after = f" (retry-after {error.retry_after:.3g} s)" if error.retry_after is not None else ""
    _halve(tuner, _key_limits(runtime, key), low, f"429 on key {key.label!r}{after}")
    refused, usable = tuner.key_rate_limited(runtime.provider.value, key.fingerprint, _usable(runtime))
    if tuner.provider_pushed_back(refused, usable):
        window = tuner.policy.provider_window_s
        reason = f"429s on {refused} of {usable} usable keys within {window:g} s, the last on key {key.label!r}{after}"
        _halve(tuner, _provider_limits(runtime), low, reason)


def _low_remaining(tuner: LimitTuner, runtime: ProviderRuntime, key: ApiKey, low: dict[str, Window]) -> None:
    limits = _key_limits(runtime, key)
    if not limits:
        return
    policy = tuner.policy
    requests, tokens = (
        runtime.own_use.used(key.fingerprint, tuner.clock.monotonic()) if runtime.own_use is not None else (0, 0.0)
    )
    own = {"rpm": float(requests), "tpm": tokens}
    for name, scope, ceiling in limits:
        window = low.get(scope.kind)
        if window is None:
            continue
        used = window.limit - window.remaining
        elsewhere = used - own[scope.kind]
        if elsewhere <= policy.foreign_use_fraction * window.limit:
            continue  # what is gone, this client sent itself: its own limiter admitted it
        left = window.remaining * 100 / window.limit
        unit = _UNITS[scope.kind]
        reason = (
            f"provider reports {left:.0f} % of {unit} left on key {key.label!r}, "
            f"{elsewhere:.0f} of the {used:.0f} used not sent by this client"
        )
        tuner.decrease(name, scope, ceiling, policy.low_remaining_factor, reason)
