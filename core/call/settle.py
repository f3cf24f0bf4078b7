"""Settling: when an attempt ends — answered, failed, cancelled after its request left, cancelled before, or
abandoned — its key's health, the breaker, the limits (reservations settled to what was used) and its row; when
the call ends, its caller's own limits. A row is written before the first ``await``, so a cancellation landing
mid-settlement cannot lose it; a cancelled attempt is settled synchronously and its refunds finished off the call
(:meth:`Settler.later`, awaited on close by :meth:`Settler.drain`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from dataclasses import replace

from pulsegate.core.call.admission import refund_admission
from pulsegate.core.call.context import CallContext, Lease
from pulsegate.core.call.pacing import observe_headers, tune
from pulsegate.core.call.policy import PROVIDER_HEALTH
from pulsegate.core.call.rows import Rows
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError, ErrorClass
from pulsegate.core.limits.base import Demand, RateLimiter
from pulsegate.core.pricing import PriceTable
from pulsegate.core.providers.sent_mark import SentMark
from pulsegate.core.shared_state import SharedState
from pulsegate.core.token_estimate import estimate_output_tokens
from pulsegate.core.translate.result import NormalizedResponse
from pulsegate.core.translate.usage import Usage

log = logging.getLogger(__name__)


class Settler:
    def __init__(
        self, limiter: RateLimiter, clock: Clock, shared_state: SharedState, prices: PriceTable, rows: Rows
    ) -> None:
        self.limiter = limiter
        self.clock = clock
        self.shared_state = shared_state
        self.prices = prices
        self.rows = rows
        self._settling: set[asyncio.Task[None]] = set()  # settlements of cancelled calls, finished off the call

    async def settle_user(self, ctx: CallContext) -> None:
        """The call is over: settle its user's tokens to what its attempts spent (``ctx.used_tokens``, estimates of
        broken and cancelled attempts included) and give the request back if nothing was ever sent. Idempotent."""
        demands = ctx.user_demands
        if not demands:
            return
        ctx.user_demands = []
        difference = ctx.user_reserved_tokens - ctx.used_tokens
        for demand in demands:
            if demand.key.endswith(":rpm"):
                if ctx.attempts == 0:
                    await self.limiter.refund(demand.key, demand.spec, demand.cost)
            elif difference > 0:
                await self.limiter.refund(demand.key, demand.spec, float(difference))
            elif difference < 0:
                await self.limiter.consume([Demand(demand.key, demand.spec, float(-difference))])

    def later(self, settling: Awaitable[None]) -> None:
        """Finish a cancelled call's settlement (limiter refunds) off the call, so the cancellation is not held up;
        failures are logged, never raised."""

        async def run() -> None:
            try:
                await settling
            except Exception:
                log.exception("settling a cancelled call failed")

        task = asyncio.get_running_loop().create_task(run())
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def drain(self) -> None:
        """Wait for the settlements :meth:`later` started (the client is closing: the limiter must see them)."""
        while self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)

    async def settle_tokens(self, lease: Lease, used: int) -> None:
        """Give back the part of the token reservation the attempt did not use (or charge what it overran)."""
        runtime = lease.runtime
        difference = lease.reserved_tokens - used
        targets = (
            [(runtime.tpm_key, runtime.effective(runtime.tpm_key, runtime.tpm))] if runtime.tpm is not None else []
        )
        targets += [(d.key, d.spec) for d in lease.key_demands if d.key.endswith(":tpm")]
        for name, spec in targets:
            if difference > 0:
                await self.limiter.refund(name, spec, float(difference))
            elif difference < 0:
                await self.limiter.consume([Demand(name, spec, float(-difference))])

    async def settle_success(
        self,
        ctx: CallContext,
        lease: Lease,
        response: NormalizedResponse,
        headers: Mapping[str, str] | None,
        ttft_ms: float | None = None,
    ) -> float | None:
        """Credit key and breaker, record the row, settle limits; returns the attempt's cost (None = unpriced). The
        row is written before the first ``await``, so a cancellation landing mid-settlement cannot lose it."""
        if lease.settled:
            return None
        lease.settled = True
        now = self.clock.monotonic()
        health = lease.runtime.pool.state(lease.key)
        health.in_flight -= 1
        health.record_success(now)
        lease.permit.record(True)
        usage = response.usage
        cost = self.price(lease, usage, response.model)
        self.rows.attempt(
            ctx,
            lease,
            outcome="success",
            latency_ms=(now - lease.sent_at) * 1000.0,
            request_id=response.request_id,
            http_status=200,
            ttft_ms=ttft_ms,
            usage=usage,
            cost=cost,
        )
        used = usage.limited_tokens
        ctx.used_tokens += used
        await self.shared_state.flush(lease.runtime.provider.value)
        tune(lease, await observe_headers(self.limiter, self.clock, lease, headers), None, used)
        await self.settle_tokens(lease, used)
        await self.settle_user(ctx)
        return cost

    def price(self, lease: Lease, usage: Usage, answered_model: str | None = None) -> float | None:
        """The attempt's cost: at the answer's model id's price, else the requested model's; None when unpriced."""
        asked = lease.prepared.model
        models = (answered_model, asked) if answered_model and answered_model != asked else (asked,)
        return self.prices.cost_of(lease.runtime.provider.value, models, usage)

    def estimated_usage(self, lease: Lease, reported: Usage | None = None, partial_text: str = "") -> Usage:
        """The tokens of an attempt that ended before the provider reported them all: what it did report (an
        Anthropic stream's ``message_start`` gives the exact input and cache counts), the input estimated from the
        request otherwise, and the output estimated from the text seen so far."""
        seen_output = estimate_output_tokens(partial_text)
        if reported is not None and reported.input_tokens + reported.cache_read_tokens + reported.cache_write_tokens:
            return replace(reported, output_tokens=max(reported.output_tokens, seen_output))
        return Usage(input_tokens=lease.prepared.estimated_input_tokens, output_tokens=seen_output)

    def settle_cancelled(
        self,
        ctx: CallContext,
        lease: Lease,
        usage: Usage | None = None,
        ttft_ms: float | None = None,
    ) -> None:
        """The caller went away while the request was at the provider — billed, so it is a row: outcome
        ``cancelled``, its latency up to now, its usage estimated (:meth:`estimated_usage`) and priced. Neither a
        success nor an error: key health and the breaker learn nothing. Synchronous, so the cancellation is not
        held up; the limits are settled off the call (:meth:`later`)."""
        if lease.settled:
            return
        lease.settled = True
        now = self.clock.monotonic()
        lease.runtime.pool.state(lease.key).in_flight -= 1
        lease.permit.release()
        spent = usage if usage is not None else self.estimated_usage(lease)
        self.rows.attempt(
            ctx,
            lease,
            outcome="cancelled",
            latency_ms=(now - lease.sent_at) * 1000.0,
            request_id=None,
            http_status=None,
            error_class=ErrorClass.CANCELLED,
            ttft_ms=ttft_ms,
            usage=spent,
            cost=self.price(lease, spent),
            usage_estimated=True,
        )
        used = spent.limited_tokens
        ctx.used_tokens += used
        tune(lease, None, None, used)
        self.later(self.settle_tokens(lease, used))
        self.later(self.settle_user(ctx))

    async def settle_failure(
        self,
        ctx: CallContext,
        lease: Lease,
        error: CallError,
        headers: Mapping[str, str] | None = None,
        ttft_ms: float | None = None,
        usage: Usage | None = None,
    ) -> None:
        """Blame key and breaker as the error class says, record the row (before the first ``await``), settle
        limits. ``usage``: the estimated tokens of an attempt that failed after the provider began to bill it (a
        stream that broke mid-way); the row is then priced and flagged ``usage_estimated``."""
        if lease.settled:
            return
        lease.settled = True
        now = self.clock.monotonic()
        health = lease.runtime.pool.state(lease.key)
        health.in_flight -= 1
        health.record_failure(now, error.error_class, error.retry_after)
        if error.error_class in PROVIDER_HEALTH:
            lease.permit.record(False)
        else:
            lease.permit.release()  # the provider answered; this says nothing about its health
        error.attempts = ctx.attempts
        if error.key_label is None:
            error.key_label = lease.key.label
        self.rows.attempt(
            ctx,
            lease,
            outcome="error",
            latency_ms=(now - lease.sent_at) * 1000.0,
            request_id=error.request_id,
            http_status=error.http_status,
            error_class=error.error_class,
            ttft_ms=ttft_ms,
            usage=usage,
            cost=self.price(lease, usage) if usage is not None else 0.0,
            usage_estimated=usage is not None,
        )
        used = usage.limited_tokens if usage is not None else 0
        ctx.used_tokens += used
        await self.shared_state.flush(lease.runtime.provider.value)  # a cooldown or an open breaker, for all at once
        tune(lease, await observe_headers(self.limiter, self.clock, lease, headers), error)
        await self.settle_tokens(lease, used)

    def unsent(self, lease: Lease) -> None:
        """An attempt cancelled before its request left: free the key and the breaker slot now, give its share of
        the limits back off the call."""
        if lease.settled:
            return
        lease.settled = True
        lease.runtime.pool.state(lease.key).in_flight -= 1
        lease.permit.release()
        tune(lease, None, None, 0)
        self.later(refund_admission(self.limiter, lease.runtime, lease.reserved_tokens, lease.key_demands))

    async def abandon(self, lease: Lease) -> None:
        """The caller went away mid-attempt: free the breaker trial and the reservation, record nothing."""
        if lease.settled:
            return
        lease.settled = True
        lease.runtime.pool.state(lease.key).in_flight -= 1
        lease.permit.release()
        await self.shared_state.flush(lease.runtime.provider.value)
        await self.settle_tokens(lease, 0)

    def unanswered_usage(self, lease: Lease, mark: SentMark | None, error: CallError) -> Usage | None:
        """The estimated usage of a failed attempt whose request left but got no answer (no HTTP status): the
        provider may have billed it. An error the provider answered (429, 529, 5xx, …) is not billed: None."""
        if mark is None or not mark.left or error.http_status is not None:
            return None
        return self.estimated_usage(lease)
