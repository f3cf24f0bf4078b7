"""One attempt: counted against its key, leased, sent under the call's deadline, and — when it fails or is
cancelled — settled at once (a failure classified; a cancellation after the request left is a ``cancelled`` row,
one before it frees the key and refunds). The caller decides what happens next (:mod:`pulsegate.core.call.runner`)."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import Permit
from pulsegate.core.call.admission import deadline_error
from pulsegate.core.call.context import CallContext, Lease, Send, _NoVerdict
from pulsegate.core.call.pacing import count_sent
from pulsegate.core.call.policy import SDK_TIMEOUT_GRACE_S
from pulsegate.core.call.settle import Settler
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError, ErrorClass, ProviderError
from pulsegate.core.limits.base import Demand
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.providers.classify import classify_exception
from pulsegate.core.providers.sent_mark import SentMark, sending

T = TypeVar("T")


class Attempts:
    def __init__(self, clock: Clock, settler: Settler) -> None:
        self.clock = clock
        self.settler = settler

    async def attempt(
        self,
        ctx: CallContext,
        runtime: ProviderRuntime,
        key: ApiKey,
        permit: Permit | _NoVerdict,
        prepared: PreparedRequest,
        key_demands: list[Demand],
        *,
        queue_wait_s: float,
        priority: int,
        fell_back_from: str | None,
        send: Send[T] | None,
    ) -> tuple[T | None, Lease, CallError | None]:
        """Send one attempt on ``key``: ``(result, lease, None)`` with the lease still open, or ``(None, lease,
        error)`` with the failure already settled (key health, breaker, the row)."""
        clock = self.clock
        ctx.attempts += 1
        health = runtime.pool.state(key)
        health.requests += 1
        health.in_flight += 1
        lease = Lease(
            runtime,
            key,
            permit,
            prepared,
            prepared.estimated_input_tokens + prepared.max_tokens,
            key_demands,
            clock.monotonic(),
            clock.now(),
            queue_wait_s,
            ctx.attempts,
            priority,
            fell_back_from,
        )
        count_sent(clock, lease)
        result, error = await self._send(ctx, lease, send)
        return result, lease, error

    async def _send(self, ctx: CallContext, lease: Lease, send: Send[T] | None) -> tuple[T | None, CallError | None]:
        """Send the leased attempt: ``(result, None)``, or ``(None, error)`` with the failure already settled
        (key health, breaker, the row). The deadline bounds the whole attempt, body included: past it, the attempt is a
        ``timeout`` row and the call a ``deadline_exceeded`` failure. Cancelled → a ``cancelled`` row, and the
        cancellation goes on at once. A request that left and got no answer at all (cut by the deadline, a timeout, a
        reset) may have been billed: its row carries the estimated usage (:meth:`Settler.estimated_usage`)."""
        runtime, key, clock = lease.runtime, lease.key, self.clock
        remaining = max(0.001, ctx.deadline - clock.monotonic())
        sdk_timeout_s = remaining + SDK_TIMEOUT_GRACE_S
        mark = None
        try:
            async with asyncio.timeout(remaining) as bound:
                with sending() as mark:
                    if send is None:
                        return await runtime.adapter.complete(key, lease.prepared, sdk_timeout_s), None
                    return await send(runtime, key, lease.prepared, sdk_timeout_s), None
        except asyncio.CancelledError:
            if mark is not None and mark.left:
                self.settler.settle_cancelled(ctx, lease)
            else:
                self.settler.unsent(lease)  # cancelled before its request left: nothing to record, nothing was used
            raise
        except TimeoutError as exc:
            if not bound.expired():
                return None, await self._failed(ctx, lease, exc, mark)
            # The attempt timed out (the row says so, and the breaker hears it, as for any slow provider); the call
            # is over, because its deadline is.
            slow = ProviderError(
                f"{runtime.provider.value} key {key.label!r}: no complete answer within the call's deadline",
                provider=runtime.provider.value,
                error_class=ErrorClass.TIMEOUT,
                key_label=key.label,
            )
            await self.settler.settle_failure(ctx, lease, slow, usage=self.settler.unanswered_usage(lease, mark, slow))
            error = deadline_error(ctx, runtime)
            error.key_label = key.label
            return None, error
        except Exception as exc:
            return None, await self._failed(ctx, lease, exc, mark)

    async def _failed(self, ctx: CallContext, lease: Lease, exc: Exception, mark: SentMark | None) -> CallError:
        """Classify the exception a send raised and settle the attempt as that failure."""
        runtime, key, clock = lease.runtime, lease.key, self.clock
        try:
            error = (
                exc if isinstance(exc, CallError) else classify_exception(exc, runtime.provider, clock.now(), key.label)
            )
        except BaseException:
            await self.settler.abandon(lease)  # not a provider failure (a bug): free the key, record nothing
            raise
        headers = getattr(getattr(exc, "response", None), "headers", None)
        await self.settler.settle_failure(
            ctx, lease, error, headers, usage=self.settler.unanswered_usage(lease, mark, error)
        )
        return error
