"""What one settled attempt tells the limit tuner: a 429, a low remaining-quota header, or a plain success.

A 429 (``rate_limited`` from the provider) halves the limits it names: the kinds the response's headers show as
nearly spent, or every kind when the headers do not say. Headers showing less than the policy's fraction left take
that kind ×0.8. A success with neither counts toward recovery. Each signal applies to the provider's own limits
(``ANTHROPIC_RPM`` …) and to the key's limits when it has any (configured, or learned from headers): the provider
counts per organisation, so a key's 429 is also evidence about the whole provider.
"""

from __future__ import annotations

from core.api_keys import ApiKey
from core.errors import CallError, ErrorClass
from core.limits.base import LimitSpec
from core.limits.tuning import LimitScope, LimitTuner
from core.provider_runtime import ProviderRuntime
from core.providers.rate_limit_headers import RateLimitHeaders, Window

_UNITS = {"rpm": "requests", "tpm": "tokens"}


def _limits(runtime: ProviderRuntime, key: ApiKey) -> list[tuple[str, LimitScope, LimitSpec]]:
    """(limiter name, scope, ceiling) of every limit the attempt was charged to."""
    provider = runtime.provider.value
    found = [(runtime.rpm_key, LimitScope(provider, "rpm"), runtime.rpm)]
    if runtime.tpm is not None:
        found.append((runtime.tpm_key, LimitScope(provider, "tpm"), runtime.tpm))
    own = runtime.key_limits.get(key.fingerprint)
    if own is not None:
        for kind, spec in (("rpm", own.rpm), ("tpm", own.tpm)):
            if spec is not None:
                scope = LimitScope(provider, kind, key.label, configured=not own.learned)
                found.append((runtime.key_limit_name(key, kind), scope, spec))
    return found


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
    policy = tuner.policy
    low = _nearly_spent(headers, policy.low_remaining_fraction)
    if error is None and not low and not tuner.recovering:
        return  # the common case: a success while every limit is at its ceiling
    limits = _limits(runtime, key)
    if error is not None and error.error_class is ErrorClass.RATE_LIMITED:
        kinds = {scope.kind for _, scope, _ in limits}
        named = kinds & low.keys()
        reason = f"429 on key {key.label!r}"
        if error.retry_after is not None:
            reason += f" (retry-after {error.retry_after:.3g} s)"
        for name, scope, ceiling in limits:
            if scope.kind in (named or kinds):
                tuner.decrease(name, scope, ceiling, policy.rate_limited_factor, reason)
    elif low:
        for name, scope, ceiling in limits:
            window = low.get(scope.kind)
            if window is not None:
                left = window.remaining * 100 / window.limit
                reason = f"provider reports {left:.0f} % of {_UNITS[scope.kind]} left on key {key.label!r}"
                tuner.decrease(name, scope, ceiling, policy.low_remaining_factor, reason)
    elif error is None:
        for name, scope, ceiling in limits:
            tuner.success(name, scope, ceiling)
