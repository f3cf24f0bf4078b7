"""A call's attempt rows: one builder for every row — an attempt that reached the provider, one refused before it
(queue, breaker, keys, deadline, the caller's own limits) and a call rejected as malformed — and the hand-over of
the call's rows to the recorder when the call ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.call.context import CallContext, Lease
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError, ErrorClass
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.recording import AttemptRecord, Recorder
from pulsegate.core.request import Priority
from pulsegate.core.translate.usage import Usage

NO_USAGE = Usage()


class Rows:
    """Writes a call's rows into its context as they happen; :meth:`finish` hands them to the recorder."""

    def __init__(self, clock: Clock, instance_id: str, recorder: Recorder) -> None:
        self.clock = clock
        self.instance_id = instance_id
        self.recorder = recorder

    def record(
        self,
        ctx: CallContext,
        *,
        ts: datetime,
        attempt: int,
        provider: str,
        model: str,
        priority: int,
        outcome: str = "error",
        latency_ms: float = 0.0,
        error_class: ErrorClass | None = None,
        key: ApiKey | None = None,
        queue_wait_s: float | None = None,
        fell_back_from: str | None = None,
        caller: bool = True,
        http_status: int | None = None,
        request_id: str | None = None,
        ttft_ms: float | None = None,
        usage: Usage | None = None,
        cost: float | None = 0.0,
        usage_estimated: bool = False,
    ) -> None:
        """The one builder of the call's attempt rows. ``caller``: the row names the call's user and feature (a
        call rejected as malformed names neither)."""
        tokens = usage if usage is not None else NO_USAGE
        options = ctx.options
        ctx.rows.append(
            AttemptRecord(
                ts=ts,
                call_id=ctx.call_id,
                attempt=attempt,
                provider=provider,
                model=model,
                outcome=outcome,
                latency_ms=latency_ms,
                instance_id=self.instance_id,
                source=ctx.source,
                key_label=key.label if key is not None else None,
                key_fingerprint=key.fingerprint if key is not None else None,
                error_class=error_class,
                http_status=http_status,
                request_id=request_id,
                ttft_ms=ttft_ms,
                queue_wait_ms=queue_wait_s * 1000.0 if queue_wait_s is not None else None,
                input_tokens=tokens.input_tokens,
                output_tokens=tokens.output_tokens,
                cache_read_tokens=tokens.cache_read_tokens,
                cache_write_tokens=tokens.cache_write_tokens,
                cost_usd=cost,
                unpriced=cost is None,
                usage_estimated=usage_estimated,
                priority=priority,
                streamed=ctx.streamed,
                user_id=options.user_id if caller else None,
                feature=options.feature if caller else None,
                fell_back_from=fell_back_from,
                app=ctx.app,
            )
        )

    def attempt(self, ctx: CallContext, lease: Lease, *, outcome: str, latency_ms: float, **facts: Any) -> None:
        """The row of an attempt that reached the provider (``lease``)."""
        self.record(
            ctx,
            ts=lease.sent_at_wall,
            attempt=lease.attempt,
            provider=lease.runtime.provider.value,
            model=lease.prepared.model,
            priority=lease.priority,
            outcome=outcome,
            latency_ms=latency_ms,
            key=lease.key,
            queue_wait_s=lease.queue_wait_s,
            fell_back_from=lease.fell_back_from,
            **facts,
        )

    def refusal(
        self, ctx: CallContext, prepared: PreparedRequest, priority: int, fell_back_from: str | None, error: CallError
    ) -> CallError:
        """Record an attempt that never reached the provider (queue, breaker, keys, deadline) and return its error."""
        error.attempts = ctx.attempts
        self.record(
            ctx,
            ts=self.clock.now(),
            attempt=ctx.attempts + 1,
            provider=prepared.provider.value,
            model=prepared.model,
            priority=priority,
            error_class=error.error_class,
            queue_wait_s=ctx.queue_wait_s,
            fell_back_from=fell_back_from,
        )
        return error

    def rejection(self, ctx: CallContext, provider: str, model: str, error: CallError) -> None:
        """The one ``validation`` row of a call rejected before sending."""
        self.record(
            ctx,
            ts=self.clock.now(),
            attempt=1,
            provider=provider,
            model=model[:128] or "(none)",
            priority=ctx.options.priority if isinstance(ctx.options.priority, int) else Priority.USER_FACING,
            error_class=error.error_class,
            caller=False,
        )

    def finish(self, ctx: CallContext) -> None:
        """Hand the call's rows to the recorder, the last one marked final. Never raises."""
        rows = ctx.rows
        if not rows:
            return
        rows[-1].is_final = True
        record = self.recorder.record
        for number, row in enumerate(rows, start=1):
            row.attempt = number  # rows in the order they happened, refusals included
            record(row)
        rows.clear()
