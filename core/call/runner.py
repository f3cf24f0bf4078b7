"""The call runner: one call, attempt by attempt — admission, key choice, breaker, send, classify, retry, fall back
— and a row for every attempt.

The runner never builds SDK clients or parses wire formats (adapters do) and never decides retry timing (the
policy does); it sequences the call's rooms under one deadline: its plan (:mod:`pulsegate.core.call.plan`), admission
(:mod:`pulsegate.core.call.admission`), attempts (:mod:`pulsegate.core.call.attempt`), settling
(:mod:`pulsegate.core.call.settle`) and rows (:mod:`pulsegate.core.call.rows`). Attempts are settled when they end,
which for a stream is when the stream ends. A call is one object (:class:`Call`, from :meth:`CallRunner.call`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.call.admission import Admission, circuit_open, deadline_error
from pulsegate.core.call.attempt import Attempts
from pulsegate.core.call.context import NO_VERDICT, CallContext, Lease, Send
from pulsegate.core.call.plan import Planner
from pulsegate.core.call.policy import FALLBACK_ON, KEY_SCOPED, REQUEST_SCOPED
from pulsegate.core.call.rows import Rows
from pulsegate.core.call.settle import Settler
from pulsegate.core.clock import Clock
from pulsegate.core.errors import CallError, ErrorClass, RequestValidationError
from pulsegate.core.limits.base import RateLimiter
from pulsegate.core.pricing import PriceTable
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.queue_wait import DEFAULT_FALLBACK_RESERVE_S, LeftQueueForFallback
from pulsegate.core.recording import Recorder
from pulsegate.core.request import Priority
from pulsegate.core.retry import RetryPolicy, RetryState
from pulsegate.core.shared_state import LocalSharedState, SharedState
from pulsegate.core.translate.model_map import ModelMap
from pulsegate.core.translate.result import NormalizedResponse
from pulsegate.core.translate.usage import Usage
from pulsegate.core.user_limits import UserLimits

T = TypeVar("T")
log = logging.getLogger(__name__)


class CallRunner:
    def __init__(
        self,
        runtimes: Mapping[Provider, ProviderRuntime],
        limiter: RateLimiter,
        clock: Clock,
        recorder: Recorder,
        retry_policy: RetryPolicy,
        prices: PriceTable,
        model_map: ModelMap,
        instance_id: str,
        user_limits: UserLimits | None = None,
        feature_limits: UserLimits | None = None,
        shared_state: SharedState | None = None,
        fallback_reserve_s: float = DEFAULT_FALLBACK_RESERVE_S,
        user_id_key: bytes | None = None,
    ) -> None:
        self.runtimes = runtimes
        self.limiter = limiter
        self.clock = clock
        self.retry_policy = retry_policy
        self.user_limits = user_limits if user_limits is not None else UserLimits()
        self.feature_limits = feature_limits if feature_limits is not None else UserLimits(scope="feature")
        shared: SharedState = shared_state if shared_state is not None else LocalSharedState()
        self.planner = Planner(runtimes, model_map, user_id_key)
        self.rows = Rows(clock, instance_id, recorder)
        self.admission = Admission(
            limiter, clock, shared, self.rows, self.user_limits, self.feature_limits, fallback_reserve_s
        )
        self.settler = Settler(limiter, clock, shared, prices, self.rows)
        self.attempts = Attempts(clock, self.settler)

    def call(self, ctx: CallContext) -> Call:
        """``async with runner.call(ctx) as call``: the call ``ctx`` as one object (:class:`Call`)."""
        return Call(self, ctx)

    async def drain(self) -> None:
        """Wait for the settlements of cancelled calls still running (the client is closing)."""
        await self.settler.drain()

    # --- a call over its plan ------------------------------------------------------------------------------

    async def run(self, ctx: CallContext, send: Send[T] | None) -> tuple[T, Lease]:
        """The first successful ``send`` (default: the adapter's ``complete``) and its unsettled lease; or the last
        failure, raised."""
        plan = self.planner.plan(ctx.config, ctx.options)
        primary = plan[0][0]
        last_error: CallError | None = None
        try:
            for stage, (provider, model) in enumerate(plan):
                runtime = self.runtimes[provider]
                try:
                    prepared = self.planner.prepare(ctx, runtime, model)
                except RequestValidationError as exc:
                    if last_error is None:
                        self.rows.rejection(ctx, provider.value, model, exc)
                        raise
                    log.warning("call %s cannot fall back to %s: %s", ctx.call_id, provider.value, exc)
                    raise last_error from exc
                if stage == 0:
                    await self.admission.charge_caller(ctx, prepared)
                can_fall_back = stage + 1 < len(plan)
                try:
                    return await self._on_provider(
                        ctx, runtime, prepared, stage, send, primary if stage else None, can_fall_back
                    )
                except CallError as exc:
                    last_error = exc
                    if can_fall_back and (exc.error_class in FALLBACK_ON or isinstance(exc, LeftQueueForFallback)):
                        continue
                    raise
            assert last_error is not None
            raise last_error
        except asyncio.CancelledError:
            # the cancellation goes on at once (a no-op once already settled)
            self.settler.later(self.settler.settle_user(ctx))
            raise
        except BaseException:
            await self.settler.settle_user(ctx)
            raise

    async def _on_provider(
        self,
        ctx: CallContext,
        runtime: ProviderRuntime,
        prepared: PreparedRequest,
        stage: int,
        send: Send[T] | None,
        fell_back_from: Provider | None,
        can_fall_back: bool = False,
    ) -> tuple[T, Lease]:
        """Attempts on one provider: queue, key, breaker, send; the next key at once for a key's failure, a retry
        when the policy allows, else the failure raised."""
        clock, admission, refusal = self.clock, self.admission, self.rows.refusal
        boost = Priority.FALLBACK_BOOST if stage else 0
        priority = min(Priority.MAX, ctx.options.priority + boost)
        tokens = prepared.estimated_input_tokens + prepared.max_tokens
        excluded: set[str] = set()
        tries = 0
        streak_class: ErrorClass | None = None
        streak = 0
        fallback_name = fell_back_from.value if fell_back_from else None
        while True:
            if clock.monotonic() >= ctx.deadline:
                raise refusal(ctx, prepared, priority, fallback_name, deadline_error(ctx, runtime))
            if runtime.breaker.state == "open":  # fail fast: do not queue for a provider we will not call
                raise refusal(ctx, prepared, priority, fallback_name, circuit_open(ctx, runtime))
            try:
                queue_wait = await admission.admit(ctx, runtime, tokens, priority, can_fall_back)
                key, key_demands, permit = await admission.take_key(ctx, runtime, tokens, excluded)
            except CallError as error:
                raise refusal(ctx, prepared, priority, fallback_name, error) from None
            tries += 1
            sent, lease, error = await self.attempts.attempt(
                ctx, runtime, key, permit, prepared, key_demands,
                queue_wait_s=queue_wait, priority=priority, fell_back_from=fallback_name, send=send,
            )  # fmt: skip
            if error is None:
                return sent, lease  # type: ignore[return-value]

            if error.error_class in REQUEST_SCOPED:
                raise error
            if error.error_class in KEY_SCOPED:
                excluded.add(key.fingerprint)
                if runtime.pool.has_usable(exclude=excluded):
                    continue  # another key takes the same request at once: not a retry
                excluded.clear()
                if error.error_class is not ErrorClass.RATE_LIMITED:
                    continue  # every key is out now: the next round reports no usable key
            streak = streak + 1 if error.error_class is streak_class else 1
            streak_class = error.error_class
            now = clock.monotonic()
            state = RetryState(tries, error, now - ctx.started, ctx.deadline - now, streak)
            decision = self.retry_policy.decide(state)
            if not decision.retry:
                raise error
            await clock.sleep(decision.wait_s)

    async def run_pinned(
        self,
        ctx: CallContext,
        provider: Provider,
        model: str,
        key: ApiKey,
        *,
        extra: Mapping[str, Any] | None = None,
        send: Send[T] | None = None,
    ) -> tuple[T, Lease]:
        """One attempt on exactly ``key`` — a probe: the trial that tells whether a key cooling down or disabled
        works again, so the pool's choice, the breaker gate, retries and fallback are all skipped. It never waits
        in the priority queue (a probe must not starve behind user traffic) but is charged to the limits like any
        call. ``extra`` is merged into the SDK arguments; ``send`` replaces the adapter's ``complete``. The
        attempt is settled like any other (key health, the row); a failure is raised after its row is recorded,
        a success returns its unsettled lease."""
        runtime = self.runtimes[provider]
        prepared = self.planner.prepare(ctx, runtime, model, extra)
        tokens = prepared.estimated_input_tokens + prepared.max_tokens
        key_demands = runtime.key_demands(key, tokens)
        await self.limiter.consume(runtime.provider_demands(tokens))  # one limiter call per owner (Redis Cluster)
        await self.limiter.consume(key_demands)
        sent, lease, error = await self.attempts.attempt(
            ctx, runtime, key, NO_VERDICT, prepared, key_demands,
            queue_wait_s=0.0, priority=ctx.options.priority, fell_back_from=None, send=send,
        )  # fmt: skip
        if error is not None:
            raise error from None
        return sent, lease  # type: ignore[return-value]


class Call:
    """One call from its first attempt to its rows in the recorder. Each path — a completion, a stream, a probe —
    says only what differs about it (how it sends, what it does with the answer); leaving the ``async with`` block
    (or :meth:`end`) settles an attempt still open — its caller went away after the request left: a ``cancelled``
    row, written synchronously so a second cancellation cannot lose it — and hands the rows to the recorder."""

    __slots__ = ("_ended", "ctx", "lease", "runner")

    def __init__(self, runner: CallRunner, ctx: CallContext) -> None:
        self.runner = runner
        self.ctx = ctx
        self.lease: Lease | None = None  # the attempt that answered (unsettled until the path settles it)
        self._ended = False

    async def run(self, send: Send[T] | None = None) -> T:
        """The first successful ``send`` over keys, retries and fallback (default: the adapter's ``complete``)."""
        result, self.lease = await self.runner.run(self.ctx, send)
        return result

    async def run_pinned(
        self,
        provider: Provider,
        model: str,
        key: ApiKey,
        *,
        extra: Mapping[str, Any] | None = None,
        send: Send[T] | None = None,
    ) -> T:
        """One attempt on exactly ``key`` (a probe: :meth:`CallRunner.run_pinned`)."""
        result, self.lease = await self.runner.run_pinned(self.ctx, provider, model, key, extra=extra, send=send)
        return result

    def _answered(self) -> Lease:
        if self.lease is None:
            raise RuntimeError("no attempt of this call has answered")
        return self.lease

    async def succeed(
        self, response: NormalizedResponse, headers: Mapping[str, str] | None, ttft_ms: float | None = None
    ) -> float | None:
        """The answer is complete: settle the attempt as a success; returns its cost (None = unpriced)."""
        return await self.runner.settler.settle_success(self.ctx, self._answered(), response, headers, ttft_ms)

    async def fail(self, error: CallError, *, ttft_ms: float | None = None, usage: Usage | None = None) -> None:
        """The answer broke after it began (a stream): the attempt is that failure, and the call is over for its
        user. ``usage``: what the attempt was billed, estimated."""
        await self.runner.settler.settle_failure(self.ctx, self._answered(), error, None, ttft_ms, usage=usage)
        await self.runner.settler.settle_user(self.ctx)

    async def abandon(self) -> None:
        """The answered attempt is not part of the call's record (a probe's free auth check): settle it, no row."""
        await self.runner.settler.abandon(self._answered())

    def reject(self, provider: str, model: str, error: CallError) -> None:
        """The call is refused before any attempt: its one ``validation`` row."""
        self.runner.rows.rejection(self.ctx, provider, model, error)

    def estimated_usage(self, reported: Usage | None = None, partial_text: str = "") -> Usage:
        """The answered attempt's tokens so far, where the provider has not reported them all (a broken stream)."""
        return self.runner.settler.estimated_usage(self._answered(), reported, partial_text)

    def end(self, usage: Usage | None = None, ttft_ms: float | None = None) -> None:
        """Settle an attempt still open as ``cancelled`` (``usage``: its estimate, if the path knows better than
        the request's) and hand the rows to the recorder. Idempotent; synchronous on purpose."""
        if self._ended:
            return
        self._ended = True
        lease = self.lease
        if lease is not None and not lease.settled:
            self.runner.settler.settle_cancelled(self.ctx, lease, usage, ttft_ms)
        self.runner.rows.finish(self.ctx)

    async def __aenter__(self) -> Call:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.end()
