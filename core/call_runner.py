"""One call, attempt by attempt: admission, key choice, breaker, send, classify, retry, fall back — and a row
for every attempt.

The runner never builds SDK clients or parses wire formats (adapters do) and never decides retry timing (the
policy does); it sequences them under one deadline. Attempts are settled — key health, breaker, limiter refunds,
the attempt row — when they end, which for a stream is when the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from core.api_keys import ApiKey
from core.breaker import Permit
from core.clock import Clock
from core.errors import (
    AdmissionError,
    CallError,
    CircuitOpenError,
    DeadlineExceededError,
    ErrorClass,
    KeysCoolingDownError,
    NoUsableKeyError,
    ProviderError,
    RequestValidationError,
    UserRateLimitedError,
)
from core.limit_signals import observe_attempt
from core.limits.base import Demand, LimitSpec, RateLimiter
from core.limits.own_use import Sent
from core.pricing import PriceTable
from core.provider import Provider
from core.provider_runtime import KeyLimits, ProviderRuntime, learned_spec
from core.providers.base import PreparedRequest, RequestSpec
from core.providers.classify import classify_exception
from core.providers.rate_limit_headers import RateLimitHeaders, Window, parse_rate_limit_headers
from core.providers.sent_mark import SentMark, sending
from core.queue_wait import DEFAULT_FALLBACK_RESERVE_S, LeftQueueForFallback, wait_in_queue
from core.recording import AttemptRecord, Recorder
from core.request import CallOptions, ModelConfig, Priority
from core.retry import RETRYABLE, RetryPolicy, RetryState
from core.shared_state import LocalSharedState, SharedState
from core.token_estimate import estimate_input_tokens, estimate_output_tokens
from core.translate.model_map import ModelMap
from core.translate.result import NormalizedResponse
from core.translate.usage import Usage
from core.user_ids import hash_user_id
from core.user_limits import UserLimits

T = TypeVar("T")
log = logging.getLogger(__name__)

#: The request itself is wrong: no other key, retry or provider will help.
REQUEST_SCOPED = frozenset({ErrorClass.BAD_REQUEST, ErrorClass.NOT_FOUND, ErrorClass.TOO_LARGE})
#: The key is the problem: the same request moves to the next usable key at once (not a retry).
KEY_SCOPED = frozenset({ErrorClass.AUTH, ErrorClass.QUOTA, ErrorClass.RATE_LIMITED})
#: Failures that say the provider is unwell; only these move the breaker.
PROVIDER_HEALTH = frozenset(
    {
        ErrorClass.OVERLOADED,
        ErrorClass.SERVER_ERROR,
        ErrorClass.TIMEOUT,
        ErrorClass.CONNECTION,
        ErrorClass.STREAM_INTERRUPTED,
    }
)
#: A call that ends on one of these may go on on the other provider, when the caller allows it (and so does a call
#: that left a queue for its fallback: :class:`~core.queue_wait.LeftQueueForFallback`).
FALLBACK_ON = RETRYABLE | {ErrorClass.CIRCUIT_OPEN, ErrorClass.NO_USABLE_KEY, ErrorClass.KEYS_COOLING_DOWN}
#: How long the SDK's own (per-read) timeout outlasts the call's deadline, so the deadline — a total bound enforced
#: here around the whole attempt — always fires first and a slowly-arriving body cannot stretch the call.
SDK_TIMEOUT_GRACE_S = 1.0


@dataclass(slots=True)
class CallContext:
    call_id: uuid.UUID
    config: ModelConfig
    messages: list[dict[str, Any]]
    system: str | list[dict[str, Any]] | None
    options: CallOptions
    started: float
    started_at: datetime
    deadline: float
    source: str = "live"
    streamed: bool = False
    rows: list[AttemptRecord] = field(default_factory=list)
    attempts: int = 0
    queue_wait_s: float = 0.0
    user_demands: list[Demand] = field(default_factory=list)  # charged per call, settled when the call ends
    user_reserved_tokens: int = 0
    used_tokens: int = 0  # what every attempt of the call spent (reported or estimated): the user's settled charge


class _NoVerdict:
    """The permit of an attempt the breaker neither gates nor learns from (a probe)."""

    __slots__ = ()

    def record(self, healthy: bool) -> None:
        pass

    def release(self) -> None:
        pass


NO_VERDICT = _NoVerdict()
NO_USAGE = Usage()


@dataclass(slots=True)
class Lease:
    """One attempt in flight: everything that must be settled when it ends."""

    runtime: ProviderRuntime
    key: ApiKey
    permit: Permit | _NoVerdict
    prepared: PreparedRequest
    reserved_tokens: int
    key_demands: list[Demand]
    sent_at: float
    sent_at_wall: datetime
    queue_wait_s: float
    attempt: int
    priority: int
    fell_back_from: str | None
    settled: bool = False
    sent: Sent | None = None  # this attempt in the provider's own-use window (self-tuning limits)


Send = Callable[[ProviderRuntime, ApiKey, PreparedRequest, float], Awaitable[T]]


def _same_limits(limits: KeyLimits, requests: Window | None, tokens: Window | None) -> bool:
    def same(spec: LimitSpec | None, window: Window | None) -> bool:
        return (spec is None and window is None) or (
            spec is not None and window is not None and spec.limit == window.limit
        )

    return same(limits.rpm, requests) and same(limits.tpm, tokens)


def _plenty_left(window: Window | None) -> bool:
    return window is None or window.remaining * 2 > window.limit


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
        self.recorder = recorder
        self.retry_policy = retry_policy
        self.prices = prices
        self.model_map = model_map
        self.instance_id = instance_id
        self.user_limits = user_limits if user_limits is not None else UserLimits()
        self.feature_limits = feature_limits if feature_limits is not None else UserLimits(scope="feature")
        self.shared_state: SharedState = shared_state if shared_state is not None else LocalSharedState()
        self.fallback_reserve_s = fallback_reserve_s
        self.user_id_key = user_id_key
        self._settling: set[asyncio.Task[None]] = set()  # settlements of cancelled calls, finished off the call

    # --- the plan ------------------------------------------------------------------------------------------

    def plan(self, config: ModelConfig, options: CallOptions) -> list[tuple[Provider, str]]:
        primary = Provider(config.provider)
        stages = [(primary, config.model)]
        if primary is Provider.ANTHROPIC and options.fallback_to_openai:
            stages.append((Provider.OPENAI, self.model_map.to_openai(config.model)))
        elif primary is Provider.OPENAI and options.fallback_to_anthropic:
            stages.append((Provider.ANTHROPIC, self.model_map.to_anthropic(config.model)))
        return [stages[0]] + [stage for stage in stages[1:] if len(self.runtimes[stage[0]].pool)]

    async def run(self, ctx: CallContext, send: Send[T] | None) -> tuple[T, Lease]:
        """The first successful ``send`` (default: the adapter's ``complete``) and its unsettled lease; or the last
        failure, raised."""
        plan = self.plan(ctx.config, ctx.options)
        primary = plan[0][0]
        last_error: CallError | None = None
        try:
            for stage, (provider, model) in enumerate(plan):
                runtime = self.runtimes[provider]
                try:
                    prepared = self._prepare(ctx, runtime, model)
                except RequestValidationError as exc:
                    if last_error is None:
                        self.record_rejection(ctx, provider.value, model, exc)
                        raise
                    log.warning("call %s cannot fall back to %s: %s", ctx.call_id, provider.value, exc)
                    raise last_error from exc
                if stage == 0:
                    await self._charge_caller(ctx, prepared)
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
            self.later(self.settle_user(ctx))  # the cancellation goes on at once (a no-op once already settled)
            raise
        except BaseException:
            await self.settle_user(ctx)
            raise

    async def _charge_caller(self, ctx: CallContext, prepared: PreparedRequest) -> None:
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
                raise self._refuse(ctx, prepared, ctx.options.priority, None, error)
            charged += charges
        ctx.user_demands = charged
        ctx.user_reserved_tokens = tokens

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

    def provider_user_id(self, user_id: str | None) -> str | None:
        """What the provider is told about the end user: with ``HASH_USER_IDS``, the keyed hash the store holds."""
        if user_id is None or self.user_id_key is None:
            return user_id
        return hash_user_id(user_id, self.user_id_key)

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

    def _prepare(self, ctx: CallContext, runtime: ProviderRuntime, model: str) -> PreparedRequest:
        config = ctx.config
        spec = RequestSpec(
            model=model,
            system=ctx.system,
            messages=ctx.messages,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            stop_sequences=list(config.stop_sequences) if config.stop_sequences else None,
            tools=config.tools,
            tool_choice=config.tool_choice,
            user_id=self.provider_user_id(ctx.options.user_id),
            estimated_input_tokens=estimate_input_tokens(ctx.system, ctx.messages, config.tools),
        )
        return runtime.adapter.prepare(spec)

    # --- attempts on one provider -----------------------------------------------------------------------------

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
        clock = self.clock
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
                raise self._refuse(ctx, prepared, priority, fallback_name, self._deadline_error(ctx, runtime))
            if runtime.breaker.state == "open":  # fail fast: do not queue for a provider we will not call
                raise self._refuse(ctx, prepared, priority, fallback_name, self._circuit_open(ctx, runtime))
            try:
                queue_wait = await self._admit(ctx, runtime, tokens, priority, can_fall_back)
            except CallError as error:
                raise self._refuse(ctx, prepared, priority, fallback_name, error) from None
            key_demands: list[Demand] = []
            try:
                key, key_demands = await self._choose_key(ctx, runtime, tokens, excluded)
                permit = runtime.breaker.acquire()  # after the wait: a half-open trial slot is not held in a queue
                if permit is None:
                    raise self._circuit_open(ctx, runtime)
                if permit.trial and not await self.shared_state.claim_trial(
                    runtime.provider.value, max(1.0, ctx.deadline - clock.monotonic())
                ):
                    permit.release()  # another process sends the trial
                    raise self._circuit_open(ctx, runtime)
            except CallError as error:
                await self._refund_admission(runtime, tokens, key_demands)
                raise self._refuse(ctx, prepared, priority, fallback_name, error) from None
            except BaseException:
                await self._refund_admission(runtime, tokens, key_demands)
                raise
            ctx.attempts += 1
            tries += 1
            health = runtime.pool.state(key)
            health.requests += 1
            health.in_flight += 1
            lease = Lease(
                runtime,
                key,
                permit,
                prepared,
                tokens,
                key_demands,
                clock.monotonic(),
                clock.now(),
                queue_wait,
                ctx.attempts,
                priority,
                fallback_name,
            )
            self._count_sent(lease)
            sent, error = await self._send(ctx, lease, send)
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
        prepared = self._prepare(ctx, runtime, model)
        if extra:
            prepared = replace(prepared, kwargs={**prepared.kwargs, **extra})
        tokens = prepared.estimated_input_tokens + prepared.max_tokens
        key_demands = runtime.key_demands(key, tokens)
        await self.limiter.consume(runtime.provider_demands(tokens))  # one limiter call per owner (Redis Cluster)
        await self.limiter.consume(key_demands)
        ctx.attempts += 1
        health = runtime.pool.state(key)
        health.requests += 1
        health.in_flight += 1
        clock = self.clock
        lease = Lease(
            runtime, key, NO_VERDICT, prepared, tokens, key_demands, clock.monotonic(), clock.now(), 0.0,
            ctx.attempts, ctx.options.priority, None,
        )  # fmt: skip
        self._count_sent(lease)
        sent, error = await self._send(ctx, lease, send)
        if error is not None:
            raise error from None
        return sent, lease  # type: ignore[return-value]

    async def _send(self, ctx: CallContext, lease: Lease, send: Send[T] | None) -> tuple[T | None, CallError | None]:
        """Send the leased attempt: ``(result, None)``, or ``(None, error)`` with the failure already settled
        (key health, breaker, the row). The deadline bounds the whole attempt, body included: past it, the attempt is a
        ``timeout`` row and the call a ``deadline_exceeded`` failure. Cancelled → a ``cancelled`` row, and the
        cancellation goes on at once. A request that left and got no answer at all (cut by the deadline, a timeout, a
        reset) may have been billed: its row carries the estimated usage (:meth:`estimated_usage`)."""
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
                self.settle_cancelled(ctx, lease)
            else:
                self._unsent(lease)  # cancelled before its request left: nothing to record, nothing was used
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
            await self.settle_failure(ctx, lease, slow, usage=self._unanswered_usage(lease, mark, slow))
            error = self._deadline_error(ctx, runtime)
            error.key_label = key.label
            return None, error
        except Exception as exc:
            return None, await self._failed(ctx, lease, exc, mark)

    def _unanswered_usage(self, lease: Lease, mark: SentMark | None, error: CallError) -> Usage | None:
        """The estimated usage of a failed attempt whose request left but got no answer (no HTTP status): the
        provider may have billed it. An error the provider answered (429, 529, 5xx, …) is not billed: None."""
        if mark is None or not mark.left or error.http_status is not None:
            return None
        return self.estimated_usage(lease)

    async def _failed(self, ctx: CallContext, lease: Lease, exc: Exception, mark: SentMark | None) -> CallError:
        """Classify the exception a send raised and settle the attempt as that failure."""
        runtime, key, clock = lease.runtime, lease.key, self.clock
        try:
            error = (
                exc if isinstance(exc, CallError) else classify_exception(exc, runtime.provider, clock.now(), key.label)
            )
        except BaseException:
            await self.abandon(lease)  # not a provider failure (a bug): free the key, record nothing
            raise
        headers = getattr(getattr(exc, "response", None), "headers", None)
        await self.settle_failure(ctx, lease, error, headers, usage=self._unanswered_usage(lease, mark, error))
        return error

    def _circuit_open(self, ctx: CallContext, runtime: ProviderRuntime) -> CircuitOpenError:
        return CircuitOpenError(
            f"{runtime.provider.value} circuit breaker is open (next trial in {runtime.breaker.retry_in():.1f} s)",
            provider=runtime.provider.value,
            attempts=ctx.attempts,
        )

    async def _refund_admission(self, runtime: ProviderRuntime, tokens: int, key_demands: list[Demand]) -> None:
        """The request was admitted but never sent (no key, breaker, cancelled): give its share of the limits back."""
        for demand in [*runtime.provider_demands(tokens), *key_demands]:
            await self.limiter.refund(demand.key, demand.spec, demand.cost)

    async def _admit(
        self, ctx: CallContext, runtime: ProviderRuntime, tokens: int, priority: int, can_fall_back: bool = False
    ) -> float:
        """Wait in the provider's queue until the call's share of the limits is charged; return the seconds waited
        (how long, and when a call that may fall back leaves instead: :mod:`core.queue_wait`)."""
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

    async def _choose_key(
        self, ctx: CallContext, runtime: ProviderRuntime, tokens: int, excluded: set[str]
    ) -> tuple[ApiKey, list[Demand]]:
        paced: dict[str, float] = {}
        provider = runtime.provider.value
        await self.shared_state.sync(provider)  # cooldowns, disabled keys, the breaker: as every process sees them
        while True:
            choice = runtime.pool.choose(exclude=excluded | paced.keys())
            if choice is None:
                if paced:
                    await self._wait_within_deadline(ctx, runtime, min(paced.values()), "every key is at its own limit")
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
                await self._wait_within_deadline(ctx, runtime, choice.wait_s, "every key is cooling down")
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

    async def _wait_within_deadline(self, ctx: CallContext, runtime: ProviderRuntime, wait_s: float, why: str) -> None:
        if self.clock.monotonic() + wait_s >= ctx.deadline:
            raise KeysCoolingDownError(
                f"{runtime.provider.value}: {why} for {wait_s:.1f} s, past the call's deadline (nothing was sent)",
                provider=runtime.provider.value,
                attempts=ctx.attempts,
                retry_after=wait_s,
            )
        await self.clock.sleep(wait_s)

    def _deadline_error(self, ctx: CallContext, runtime: ProviderRuntime) -> DeadlineExceededError:
        return DeadlineExceededError(
            f"the call's deadline of {ctx.options.timeout_s:g} s passed after {ctx.attempts} attempt(s)",
            provider=runtime.provider.value,
            attempts=ctx.attempts,
        )

    # --- settling -------------------------------------------------------------------------------------------

    async def _observe_headers(self, lease: Lease, headers: Mapping[str, str] | None) -> RateLimitHeaders | None:
        """Adaptive pacing: what the provider says is left for this key tightens our view before a 429. Returns
        the parsed windows (None when the response had none) for the limit tuner."""
        if not headers:
            return None
        runtime = lease.runtime
        parsed = parse_rate_limit_headers(runtime.provider, headers, self.clock.now())
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
                await self.limiter.observe(name, runtime.effective(name, spec), float(window.remaining), reset_s)
        return parsed

    def _count_sent(self, lease: Lease) -> None:
        """The attempt goes out now: it counts toward this client's own use of its key."""
        own_use = lease.runtime.own_use
        if own_use is not None:
            lease.sent = own_use.sent(lease.key.fingerprint, self.clock.monotonic(), float(lease.reserved_tokens))

    @staticmethod
    def _tune(lease: Lease, parsed: RateLimitHeaders | None, error: CallError | None, used_tokens: int = 0) -> None:
        """Self-tuning limits: the attempt's 429 or remaining-quota headers move the effective limits. Its own-use
        entry is settled to the tokens it used first, so the headers are judged against this client's real use."""
        runtime = lease.runtime
        if runtime.own_use is not None and lease.sent is not None:
            runtime.own_use.settle(lease.key.fingerprint, lease.sent, float(used_tokens))
        if runtime.tuner is not None:
            observe_attempt(runtime.tuner, runtime, lease.key, parsed, error)

    async def _settle_tokens(self, lease: Lease, used: int) -> None:
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
        cost = self._price(lease, usage, response.model)
        self._row(
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
        self._tune(lease, await self._observe_headers(lease, headers), None, used)
        await self._settle_tokens(lease, used)
        await self.settle_user(ctx)
        return cost

    def _price(self, lease: Lease, usage: Usage, answered_model: str | None = None) -> float | None:
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
        self._row(
            ctx,
            lease,
            outcome="cancelled",
            latency_ms=(now - lease.sent_at) * 1000.0,
            request_id=None,
            http_status=None,
            error_class=ErrorClass.CANCELLED,
            ttft_ms=ttft_ms,
            usage=spent,
            cost=self._price(lease, spent),
            usage_estimated=True,
        )
        used = spent.limited_tokens
        ctx.used_tokens += used
        self._tune(lease, None, None, used)
        self.later(self._settle_tokens(lease, used))
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
        self._row(
            ctx,
            lease,
            outcome="error",
            latency_ms=(now - lease.sent_at) * 1000.0,
            request_id=error.request_id,
            http_status=error.http_status,
            error_class=error.error_class,
            ttft_ms=ttft_ms,
            usage=usage,
            cost=self._price(lease, usage) if usage is not None else 0.0,
            usage_estimated=usage is not None,
        )
        used = usage.limited_tokens if usage is not None else 0
        ctx.used_tokens += used
        await self.shared_state.flush(lease.runtime.provider.value)  # a cooldown or an open breaker, for all at once
        self._tune(lease, await self._observe_headers(lease, headers), error)
        await self._settle_tokens(lease, used)

    def _unsent(self, lease: Lease) -> None:
        """An attempt cancelled before its request left: free the key and the breaker slot now, give its share of
        the limits back off the call."""
        if lease.settled:
            return
        lease.settled = True
        lease.runtime.pool.state(lease.key).in_flight -= 1
        lease.permit.release()
        self._tune(lease, None, None, 0)
        self.later(self._refund_admission(lease.runtime, lease.reserved_tokens, lease.key_demands))

    async def abandon(self, lease: Lease) -> None:
        """The caller went away mid-attempt: free the breaker trial and the reservation, record nothing."""
        if lease.settled:
            return
        lease.settled = True
        lease.runtime.pool.state(lease.key).in_flight -= 1
        lease.permit.release()
        await self.shared_state.flush(lease.runtime.provider.value)
        await self._settle_tokens(lease, 0)

    # --- rows -------------------------------------------------------------------------------------------------

    def _row(
        self,
        ctx: CallContext,
        lease: Lease,
        *,
        outcome: str,
        latency_ms: float,
        request_id: str | None,
        http_status: int | None,
        error_class: ErrorClass | None = None,
        ttft_ms: float | None = None,
        usage: Usage | None = None,
        cost: float | None = 0.0,
        usage_estimated: bool = False,
    ) -> None:
        options = ctx.options
        tokens = usage if usage is not None else NO_USAGE
        ctx.rows.append(
            AttemptRecord(
                ts=lease.sent_at_wall,
                call_id=ctx.call_id,
                attempt=lease.attempt,
                provider=lease.runtime.provider.value,
                model=lease.prepared.model,
                outcome=outcome,
                latency_ms=latency_ms,
                instance_id=self.instance_id,
                source=ctx.source,
                key_label=lease.key.label,
                key_fingerprint=lease.key.fingerprint,
                error_class=error_class,
                http_status=http_status,
                request_id=request_id,
                ttft_ms=ttft_ms,
                queue_wait_ms=lease.queue_wait_s * 1000.0,
                input_tokens=tokens.input_tokens,
                output_tokens=tokens.output_tokens,
                cache_read_tokens=tokens.cache_read_tokens,
                cache_write_tokens=tokens.cache_write_tokens,
                cost_usd=cost,
                unpriced=cost is None,
                usage_estimated=usage_estimated,
                priority=lease.priority,
                streamed=ctx.streamed,
                user_id=options.user_id,
                feature=options.feature,
                fell_back_from=lease.fell_back_from,
            )
        )

    def _refuse(
        self, ctx: CallContext, prepared: PreparedRequest, priority: int, fell_back_from: str | None, error: CallError
    ) -> CallError:
        """Record an attempt that never reached the provider (queue, breaker, keys, deadline) and return its error."""
        error.attempts = ctx.attempts
        ctx.rows.append(
            AttemptRecord(
                ts=self.clock.now(),
                call_id=ctx.call_id,
                attempt=ctx.attempts + 1,
                provider=prepared.provider.value,
                model=prepared.model,
                outcome="error",
                latency_ms=0.0,
                instance_id=self.instance_id,
                source=ctx.source,
                error_class=error.error_class,
                queue_wait_ms=ctx.queue_wait_s * 1000.0,
                priority=priority,
                streamed=ctx.streamed,
                user_id=ctx.options.user_id,
                feature=ctx.options.feature,
                fell_back_from=fell_back_from,
                cost_usd=0.0,
            )
        )
        return error

    def record_rejection(self, ctx: CallContext, provider: str, model: str, error: CallError) -> None:
        """The one ``validation`` row of a call rejected before sending."""
        ctx.rows.append(
            AttemptRecord(
                ts=self.clock.now(),
                call_id=ctx.call_id,
                attempt=1,
                provider=provider,
                model=model[:128] or "(none)",
                outcome="error",
                latency_ms=0.0,
                instance_id=self.instance_id,
                source=ctx.source,
                error_class=error.error_class,
                priority=ctx.options.priority if isinstance(ctx.options.priority, int) else Priority.USER_FACING,
                streamed=ctx.streamed,
                cost_usd=0.0,
            )
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
