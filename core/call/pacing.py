"""What an attempt teaches the limits: the provider's rate-limit headers tighten a key's pacing before a 429
(adaptive pacing), its 429s and remaining quota move the self-tuned limits, and what this instance sent per key is
its own-use yardstick for both."""

from __future__ import annotations

from collections.abc import Mapping

from pulsegate.core.call.context import Lease
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError
from pulsegate.core.limit_signals import observe_attempt
from pulsegate.core.limits.base import LimitSpec, RateLimiter
from pulsegate.core.provider_runtime import KeyLimits, learned_spec
from pulsegate.core.providers.rate_limit_headers import RateLimitHeaders, Window, parse_rate_limit_headers


def _same_limits(limits: KeyLimits, requests: Window | None, tokens: Window | None) -> bool:
    def same(spec: LimitSpec | None, window: Window | None) -> bool:
        return (spec is None and window is None) or (
            spec is not None and window is not None and spec.limit == window.limit
        )

    return same(limits.rpm, requests) and same(limits.tpm, tokens)


def _plenty_left(window: Window | None) -> bool:
    return window is None or window.remaining * 2 > window.limit


async def observe_headers(
    limiter: RateLimiter, clock: Clock, lease: Lease, headers: Mapping[str, str] | None
) -> RateLimitHeaders | None:
    """Adaptive pacing: what the provider says is left for this key tightens our view before a 429. Returns
    the parsed windows (None when the response had none) for the limit tuner."""
    if not headers:
        return None
    runtime = lease.runtime
    parsed = parse_rate_limit_headers(runtime.provider, headers, clock.now())
    if parsed.requests is None and parsed.tokens is None:
        return None
    fingerprint = lease.key.fingerprint
    limits = runtime.key_limits.get(fingerprint)
    if limits is not None and not limits.learned:
        return parsed  # configured per-key limits win over what headers suggest
    if limits is not None and _same_limits(limits, parsed.requests, parsed.tokens):
        if _plenty_left(parsed.requests) and _plenty_left(parsed.tokens):
            return parsed  # our own accounting already charged this call; the provider's view adds nothing yet
    else:
        limits = KeyLimits(
            rpm=learned_spec(parsed.requests, runtime.period_s) if parsed.requests else None,
            tpm=learned_spec(parsed.tokens, runtime.period_s) if parsed.tokens else None,
            learned=True,
        )
        runtime.key_limits[fingerprint] = limits
    for kind, window, spec in (("rpm", parsed.requests, limits.rpm), ("tpm", parsed.tokens, limits.tpm)):
        if window is not None and spec is not None:
            reset_s = min(window.reset_s, spec.period_s)  # one odd header holds a key back one period at most
            name = runtime.key_limit_name(lease.key, kind)
            await limiter.observe(name, runtime.effective(name, spec), float(window.remaining), reset_s)
    return parsed


def count_sent(clock: Clock, lease: Lease) -> None:
    """The attempt goes out now: it counts toward this client's own use of its key."""
    own_use = lease.runtime.own_use
    if own_use is not None:
        lease.sent = own_use.sent(lease.key.fingerprint, clock.monotonic(), float(lease.reserved_tokens))


def tune(lease: Lease, parsed: RateLimitHeaders | None, error: CallError | None, used_tokens: int = 0) -> None:
    """Self-tuning limits: the attempt's 429 or remaining-quota headers move the effective limits. Its own-use
    entry is settled to the tokens it used first, so the headers are judged against this client's real use."""
    runtime = lease.runtime
    if runtime.own_use is not None and lease.sent is not None:
        runtime.own_use.settle(lease.key.fingerprint, lease.sent, float(used_tokens))
    if runtime.tuner is not None:
        observe_attempt(runtime.tuner, runtime, lease.key, parsed, error)
