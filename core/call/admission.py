"""Admission: what a call must be granted before an attempt may leave — its caller's own limits (user, feature),
a place in the provider's priority queue (its share of the provider's limits), a usable key within that key's own
limits, and the breaker's permit. What was granted for an attempt that is never sent is given back."""

from __future__ import annotations

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import Permit
from pulsegate.core.call.context import CallContext
from pulsegate.core.call.rows import Rows
from pulsegate.core.clock import Clock
from pulsegate.core.errors import (
    AdmissionError,
    CircuitOpenError,
    DeadlineExceededError,
    KeysCoolingDownError,
    NoUsableKeyError,
    UserRateLimitedError,
)
from pulsegate.core.limits.base import Demand, RateLimiter
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.queue_wait import wait_in_queue
from pulsegate.core.shared_state import SharedState
from pulsegate.core.user_limits import UserLimits


def circuit_open(ctx: CallContext, runtime: ProviderRuntime) -> CircuitOpenError:
    return CircuitOpenError(
        f"{runtime.provider.value} circuit breaker is open (next trial in {runtime.breaker.retry_in():.1f} s)",
        provider=runtime.provider.value,
        attempts=ctx.attempts,
    )


def deadline_error(ctx: CallContext, runtime: ProviderRuntime) -> DeadlineExceededError:
    return DeadlineExceededError(
        f"the call's deadline of {ctx.options.timeout_s:g} s passed after {ctx.attempts} attempt(s)",
        provider=runtime.provider.value,
        attempts=ctx.attempts,
    )


async def refund_admission(
    limiter: RateLimiter, runtime: ProviderRuntime, tokens: int, key_demands: list[Demand]
) -> None:
    """The request was admitted but never sent (no key, breaker, cancelled): give its share of the limits back."""
    for demand in [*runtime.provider_demands(tokens), *key_demands]:
        await limiter.refund(demand.key, demand.spec, demand.cost)


class Admission:
    def __init__(
        self,
        limiter: RateLimiter,
        clock: Clock,
        shared_state: SharedState,
        rows: Rows,
        user_limits: UserLimits,
        feature_limits: UserLimits,
        fallback_reserve_s: float,
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.shared_state = shared_state
        self.rows = rows
        self.user_limits = user_limits
        self.feature_limits = feature_limits
        self.fallback_reserve_s = fallback_reserve_s

    async def charge_caller(self, ctx: CallContext, prepared: PreparedRequest) -> None:
        """Charge the call to its user's and its feature's own limits (all or nothing), or refuse it at once (no
        queue wait) when one of them is spent. One limiter call per owner — a Redis Cluster script touches one
        owner's keys only — so a refusal by the feature gives the user's charge back."""
        tokens = prepared.estimated_input_tokens + prepared.max_tokens
        owners = [
            (limits, who, limits.demands(who, tokens))
            for limits, who in ((self.user_limits, ctx.options.user_id), (self.feature_limits, ctx.options.feature))
            if who and limits.enabled
        ]
        if not owners:
            return
        charged: list[Demand] = []
        for limits, who, charges in owners:
            limits.checked += 1
            if ctx.options.skip_rate_limit:
                await self.limiter.consume(charges)  # like the provider limits: bypassed, still counted
            elif (wait := await self.limiter.try_acquire(charges)) > 0:
                for demand in charged:
                    await self.limiter.refund(demand.key, demand.spec, demand.cost)
                limits.refused += 1
                error = UserRateLimitedError(
                    await limits.refusal_message(self.limiter, who, charges, wait, tokens),
                    provider=prepared.provider.value,
                    retry_after=wait,
                )
                raise self.rows.refusal(ctx, prepared, ctx.options.priority, None, error)
            charged += charges
        ctx.user_demands = charged
        ctx.user_reserved_tokens = tokens

    async def admit(
        self, ctx: CallContext, runtime: ProviderRuntime, tokens: int, priority: int, can_fall_back: bool = False
    ) -> float:
        """Wait in the provider's queue until the call's share of the limits is charged; return the seconds waited
        (how long, and when a call that may fall back leaves instead: :mod:`pulsegate.core.queue_wait`)."""
        demands = runtime.provider_demands(tokens)
        if ctx.options.skip_rate_limit:
            await self.limiter.consume(demands)  # bypasses the queue, still counts toward usage
            return 0.0
        entered = self.clock.monotonic()
        try:
            waited = await wait_in_queue(
                runtime.queue,
                demands,
                self.clock,
                priority=priority,
                call_deadline=ctx.deadline,
                queue_timeout_s=ctx.options.queue_timeout_s,
                fallback_reserve_s=self.fallback_reserve_s if can_fall_back else None,
            )
        except AdmissionError:
            ctx.queue_wait_s += self.clock.monotonic() - entered  # the row of a timed-out wait says how long
            raise
        ctx.queue_wait_s += waited
        return waited

    async def take_key(
        self, ctx: CallContext, runtime: ProviderRuntime, tokens: int, excluded: set[str]
    ) -> tuple[ApiKey, list[Demand], Permit]:
        """After the queue: a usable key within its own limits, and the breaker's permit (taken after the wait, so
        a half-open trial slot is not held in a queue). Refused, the admission's share of the limits goes back."""
        key_demands: list[Demand] = []
        try:
            key, key_demands = await self.choose_key(ctx, runtime, tokens, excluded)
            permit = runtime.breaker.acquire()
            if permit is None:
                raise circuit_open(ctx, runtime)
            if permit.trial and not await self.shared_state.claim_trial(
                runtime.provider.value, max(1.0, ctx.deadline - self.clock.monotonic())
            ):
                permit.release()  # another process sends the trial
                raise circuit_open(ctx, runtime)
        except BaseException:
            await refund_admission(self.limiter, runtime, tokens, key_demands)
            raise
        return key, key_demands, permit

    async def choose_key(
        self, ctx: CallContext, runtime: ProviderRuntime, tokens: int, excluded: set[str]
    ) -> tuple[ApiKey, list[Demand]]:
        paced: dict[str, float] = {}
        provider = runtime.provider.value
        await self.shared_state.sync(provider)  # cooldowns, disabled keys, the breaker: as every process sees them
        while True:
            choice = runtime.pool.choose(exclude=excluded | paced.keys())
            if choice is None:
                if paced:
                    await self.wait_within_deadline(ctx, runtime, min(paced.values()), "every key is at its own limit")
                    paced.clear()
                    await self.shared_state.sync(provider)
                    continue
                reasons = runtime.pool.why_unusable()
                detail = "; ".join(f"{label}: {why}" for label, why in reasons.items()) or "no keys configured"
                raise NoUsableKeyError(
                    f"no usable {runtime.provider.value} key ({detail})",
                    provider=runtime.provider.value,
                    attempts=ctx.attempts,
                )
            if choice.wait_s > 0:
                await self.wait_within_deadline(ctx, runtime, choice.wait_s, "every key is cooling down")
                await self.shared_state.sync(provider)
                continue
            demands = runtime.key_demands(choice.key, tokens)
            if demands:
                if ctx.options.skip_rate_limit:
                    await self.limiter.consume(demands)
                else:
                    wait = await self.limiter.try_acquire(demands)
                    if wait > 0:
                        paced[choice.key.fingerprint] = wait
                        continue
            return choice.key, demands
        raise AssertionError("unreachable")  # pragma: no cover

    async def wait_within_deadline(self, ctx: CallContext, runtime: ProviderRuntime, wait_s: float, why: str) -> None:
        if self.clock.monotonic() + wait_s >= ctx.deadline:
            raise KeysCoolingDownError(
                f"{runtime.provider.value}: {why} for {wait_s:.1f} s, past the call's deadline (nothing was sent)",
                provider=runtime.provider.value,
                attempts=ctx.attempts,
                retry_after=wait_s,
            )
        await self.clock.sleep(wait_s)
