"""``AIClient``: what an application imports. Async, with a sync twin and a streaming twin.

State that must outlive any one event loop — key health, breakers, limits, the recorder — lives on the client.
What is bound to a loop — SDK connection pools and the admission queues' dispatchers — lives in a per-loop runtime
set, rebuilt when the client is first used on a new loop (e.g. a second ``asyncio.run``). A call made from a loop
other than the one the client runs on is handed to that loop when it is running.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Coroutine, Mapping
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

from core.admission import AdmissionQueue
from core.api_keys import ApiKey
from core.breaker import CircuitBreaker
from core.call_runner import CallContext, CallRunner, Lease
from core.clock import SYSTEM_CLOCK, Clock
from core.errors import CallError, RequestValidationError
from core.ids import uuid7
from core.keys.health import HealthPolicy
from core.keys.pool import KeyPool
from core.limit_snapshot import configured_limits, provider_limits, with_key_limits
from core.limits.base import LimitSpec, RateLimiter
from core.limits.memory import MemoryRateLimiter
from core.limits.own_use import OwnUse
from core.limits.tuning import LimitTuner
from core.pricing import PriceTable
from core.provider import Provider
from core.provider_runtime import KeyLimits, ProviderRuntime
from core.providers.anthropic_adapter import AnthropicAdapter
from core.providers.base import PreparedRequest, ProviderAdapter
from core.providers.openai_adapter import OpenAIAdapter
from core.recording import NullRecorder, Recorder, new_instance_id
from core.request import CallOptions, ModelConfig, Priority
from core.response import AIResponse
from core.retry import RetryPolicy
from core.settings import Settings, load_settings
from core.shared_state import LocalSharedState, SharedState
from core.streaming import ResponseStream
from core.translate.model_map import ModelMap
from core.translate.result import NormalizedResponse
from core.user_limits import UserLimits
from core.validation import validate_call, validate_config, validate_options

if TYPE_CHECKING:
    from core.probe import ProbeResult, ProbeTarget
    from core.redis_link import RedisLink

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BREAKER = {"window_s": 60.0, "min_calls": 10, "failure_rate": 0.5, "open_s": 30.0, "max_open_s": 300.0}


class AIClient:
    """Calls Anthropic and OpenAI with key rotation, limits, a priority queue, retries, a breaker and fallback."""

    def __init__(
        self,
        settings: Settings,
        *,
        recorder: Recorder | None = None,
        clock: Clock = SYSTEM_CLOCK,
        limiter: RateLimiter | None = None,
        retry_policy: RetryPolicy | None = None,
        health_policy: HealthPolicy | None = None,
        breaker: Mapping[str, float] | None = None,
        prices: PriceTable | None = None,
        model_map: ModelMap | None = None,
        rate_limit_period_s: float | None = None,
        max_queue: int = 1000,
        instance_id: str | None = None,
        adapter_factory: Any = None,
        heartbeat: bool = True,
        shared_state: SharedState | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.recorder: Recorder = recorder or NullRecorder()
        self.instance_id = instance_id or new_instance_id()
        link = _redis_link(settings) if settings.redis_url is not None and None in (limiter, shared_state) else None
        self.limiter: RateLimiter = limiter or _default_limiter(self.settings, clock, link)
        self.shared_state: SharedState = shared_state or _default_shared_state(link, self.instance_id)
        self.period_s = rate_limit_period_s or settings.rate_limit_period_s
        self.max_queue = max_queue
        self._adapter_factory = adapter_factory or _default_adapter
        breaker_options = {**DEFAULT_BREAKER, **(breaker or {})}
        self.pools = {p: KeyPool(p, settings.keys(p), clock, health_policy) for p in Provider}
        self.breakers = {p: CircuitBreaker(p.value, clock, **breaker_options) for p in Provider}
        for p in Provider:
            self.shared_state.attach(p.value, self.pools[p], self.breakers[p])
        self._key_limits = {p: self._configured_key_limits(p) for p in Provider}
        self.tuner = LimitTuner(clock, enabled=settings.limit_tuning)  # self-tuning limits (LIMIT_TUNING)
        # what this client sent per key lately: kept across event loops, like the tuner it serves
        self._own_use = {p: OwnUse(self.period_s) for p in Provider}
        user_id_key = settings.hash_user_ids.get_secret_value().encode() if settings.hash_user_ids else None
        self._runner_args = {
            "limiter": self.limiter,
            "clock": clock,
            "recorder": self.recorder,
            "retry_policy": retry_policy or RetryPolicy(),
            "prices": prices or PriceTable.load(settings.price_table_file),
            "model_map": model_map or ModelMap(),
            "instance_id": self.instance_id,
            "shared_state": self.shared_state,
            "fallback_reserve_s": settings.fallback_reserve_s,
            "user_id_key": user_id_key,
            "user_limits": UserLimits(
                rpm=LimitSpec(float(settings.user_rpm), self.period_s) if settings.user_rpm else None,
                tpm=LimitSpec(float(settings.user_tpm), self.period_s) if settings.user_tpm else None,
                hash_key=user_id_key,
            ),
            "feature_limits": UserLimits(
                rpm=LimitSpec(float(settings.feature_rpm), self.period_s) if settings.feature_rpm else None,
                tpm=LimitSpec(float(settings.feature_tpm), self.period_s) if settings.feature_tpm else None,
                scope="feature",
            ),
        }
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: CallRunner = self._build_runner()
        self._background: tuple[asyncio.AbstractEventLoop, threading.Thread] | None = None
        self._lock = threading.Lock()
        self._closed = False
        store = getattr(self.recorder, "engine", None)  # state snapshots go where the attempts go
        if heartbeat and store is not None:
            from core.heartbeat import client_heartbeat

            self._heartbeat: Any = client_heartbeat(self, store)
        else:
            self._heartbeat = None

    @classmethod
    def from_env(cls, **overrides: Any) -> AIClient:
        """Settings from the environment (and ``.env``); attempts recorded to ``DATABASE_URL``."""
        from core.recording import SqlRecorder
        from core.store import create_store_engine, store_status

        settings = overrides.pop("settings", None) or load_settings()
        if "recorder" not in overrides:
            engine = create_store_engine(settings.database_url)
            status = store_status(engine)
            if not status.reachable:
                log.warning("attempt rows are kept in memory until the store is reachable: %s", status.problem)
            elif status.revision is None:
                log.error(
                    "the store (%s) has no tables: run `pulsegate migrate`; rows wait until then", status.description
                )
            key = settings.hash_user_ids.get_secret_value() if settings.hash_user_ids else None
            overrides["recorder"] = SqlRecorder(engine, spool_dir=settings.spool_dir, user_id_key=key)
        return cls(settings, **overrides)

    # --- loop binding -------------------------------------------------------------------------------------------

    def _build_runner(self) -> CallRunner:
        runtimes = {}
        for provider in Provider:
            rpm, tpm, _, _ = self.settings.limits(provider)
            runtimes[provider] = ProviderRuntime(
                provider=provider,
                pool=self.pools[provider],
                adapter=self._adapter_factory(provider, self.settings),
                queue=AdmissionQueue(provider.value, self.limiter, self.clock, self.max_queue),
                breaker=self.breakers[provider],
                rpm=LimitSpec(float(rpm), self.period_s),
                tpm=LimitSpec(float(tpm), self.period_s) if tpm else None,
                period_s=self.period_s,
                key_limits=self._key_limits[provider],
                tuner=self.tuner,
                own_use=self._own_use[provider],
            )
        return CallRunner(runtimes, **self._runner_args)

    def _configured_key_limits(self, provider: Provider) -> dict[str, KeyLimits]:
        _, _, key_rpm, key_tpm = self.settings.limits(provider)
        if key_rpm is None and key_tpm is None:
            return {}  # learned from the provider's headers instead
        limits = KeyLimits(
            rpm=LimitSpec(float(key_rpm), self.period_s) if key_rpm else None,
            tpm=LimitSpec(float(key_tpm), self.period_s) if key_tpm else None,
        )
        return {key.fingerprint: limits for key in self.settings.keys(provider)}

    def _home(self) -> asyncio.AbstractEventLoop | None:
        """Bind to the running loop; return another loop to hand the call to, or None to run it here."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._closed:
                raise RuntimeError("this AIClient is closed")
            if self._loop is loop:
                return None
            if self._loop is not None and self._loop.is_running() and not self._loop.is_closed():
                return self._loop
            if self._loop is not None:
                log.debug("AIClient moves to a new event loop; connection pools and queues are rebuilt")
                self._runner = self._build_runner()
            self._loop = loop
            if self._heartbeat is not None:
                self._heartbeat.start()
            return None

    # --- calls --------------------------------------------------------------------------------------------------

    def _context(
        self, config: object, messages: object, system_prompt: object, options: object | None, streamed: bool
    ) -> CallContext:
        now = self.clock.monotonic()
        call_id = uuid7()
        try:
            call = validate_call(config, messages, system_prompt, options)
        except RequestValidationError as error:
            self._record_rejection(call_id, config, options, error, streamed)
            raise
        return CallContext(
            call_id=call_id,
            config=call.config,
            messages=call.messages,
            system=call.system,
            options=call.options,
            started=now,
            started_at=self.clock.now(),
            deadline=now + call.options.timeout_s,
            streamed=streamed,
        )

    def _record_rejection(
        self, call_id: uuid.UUID, config: object, options: object | None, error: RequestValidationError, streamed: bool
    ) -> None:
        try:
            valid_config: ModelConfig | None = validate_config(config)
        except RequestValidationError:
            valid_config = None
        try:
            valid_options = validate_options(options)
        except RequestValidationError:
            valid_options = CallOptions()
        provider = valid_config.provider if valid_config else _guess_provider(config)
        model = valid_config.model if valid_config else "(invalid)"
        error.provider = error.provider or provider
        ctx = CallContext(
            call_id, valid_config or ModelConfig(model=model), [], None, valid_options,
            self.clock.monotonic(), self.clock.now(), self.clock.monotonic(), streamed=streamed,
        )  # fmt: skip
        self._runner.record_rejection(ctx, provider, model, error)
        self._runner.finish(ctx)

    async def generate_response(
        self,
        config: ModelConfig | Mapping[str, Any],
        messages: list[dict[str, Any]],
        system_prompt: str | list[dict[str, Any]] | None = None,
        options: CallOptions | Mapping[str, Any] | None = None,
    ) -> AIResponse:
        """One completion. Raises a :class:`~core.errors.CallError` subclass naming what failed and why."""
        home = self._home()
        call = self._generate(config, messages, system_prompt, options)
        if home is None:
            return await call
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, home))

    async def _generate(
        self, config: object, messages: object, system_prompt: object, options: object | None
    ) -> AIResponse:
        ctx = self._context(config, messages, system_prompt, options, streamed=False)
        runner = self._runner
        try:
            completion, lease = await runner.run(ctx, None)
            cost = await runner.settle_success(ctx, lease, completion.response, completion.headers)
            return self._response(ctx, lease, completion.response, cost, None)
        finally:
            runner.finish(ctx)

    def generate_response_sync(
        self,
        config: ModelConfig | Mapping[str, Any],
        messages: list[dict[str, Any]],
        system_prompt: str | list[dict[str, Any]] | None = None,
        options: CallOptions | Mapping[str, Any] | None = None,
    ) -> AIResponse:
        """The same call from plain synchronous code (any thread; not from inside the client's own event loop)."""
        return self._run_sync(self.generate_response(config, messages, system_prompt, options))

    def stream_response(
        self,
        config: ModelConfig | Mapping[str, Any],
        messages: list[dict[str, Any]],
        system_prompt: str | list[dict[str, Any]] | None = None,
        options: CallOptions | Mapping[str, Any] | None = None,
    ) -> ResponseStream:
        """``async with client.stream_response(...) as stream: async for delta in stream`` — then ``stream.response``.

        Streams run on the loop that iterates them; a client already busy on another running loop refuses.
        """
        home = self._loop
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if home is not None and current is not None and home is not current and home.is_running():
            raise RuntimeError("stream_response must be used on the event loop this AIClient already runs on")
        if current is not None:
            self._home()
        return ResponseStream(self, self._context(config, messages, system_prompt, options, streamed=True))

    def _response(
        self, ctx: CallContext, lease: Lease, result: NormalizedResponse, cost: float | None, ttft_ms: float | None
    ) -> AIResponse:
        provider = lease.runtime.provider.value
        return AIResponse(
            text=result.text,
            provider=provider,
            model=result.model or lease.prepared.model,
            key_label=lease.key.label,
            usage=result.usage,
            stop_reason=result.stop_reason,
            attempts=ctx.attempts,
            latency_ms=(self.clock.monotonic() - ctx.started) * 1000.0,
            cost_usd=cost,
            call_id=str(ctx.call_id),
            fell_back=lease.fell_back_from is not None,
            fallback_from=lease.fell_back_from,
            content=result.content,
            request_id=result.request_id,
            queue_wait_ms=ctx.queue_wait_s * 1000.0,
            ttft_ms=ttft_ms,
        )

    # --- probes -------------------------------------------------------------------------------------------------

    async def probe(self, target: ProbeTarget, *, timeout_s: float | None = None) -> ProbeResult:
        """One probe on exactly ``target``'s key (see :mod:`core.probe`), recorded with ``source='probe'``.
        Provider failures come back as a failed result; an unknown provider or key label raises ``ProbeError``."""
        home = self._home()
        call = self._probe(target, timeout_s if timeout_s is not None else self.settings.probe_timeout_s)
        if home is None:
            return await call
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, home))

    async def _probe(self, target: ProbeTarget, timeout_s: float) -> ProbeResult:
        from core.probe import (
            MESSAGE_MAX,
            PROBE_MAX_TOKENS,
            PROBE_PROMPT,
            ProbeError,
            ProbeResult,
            check_provider,
            reasoning_off,
        )

        provider = check_provider(target.provider)
        assert provider is not None
        key = self.pools[provider].by_label(target.key_label)
        if key is None:
            labels = ", ".join(repr(k.label) for k in self.pools[provider].keys) or "none"
            raise ProbeError("key", f"no {provider.value} key labelled {target.key_label!r} (keys: {labels})")
        started = self.clock.monotonic()
        ctx = CallContext(
            call_id=uuid7(),
            config=ModelConfig(model=target.model, provider=provider.value, max_tokens=PROBE_MAX_TOKENS),
            messages=[{"role": "user", "content": PROBE_PROMPT}],
            system=None,
            options=CallOptions(priority=Priority.BACKGROUND, timeout_s=timeout_s),
            started=started,
            started_at=self.clock.now(),
            deadline=started + timeout_s,
            source="probe",
        )
        runner = self._runner
        try:
            if self.settings.probe_auth_check:
                _, check = await runner.run_pinned(ctx, provider, target.model, key, send=self._list_models)
                await runner.abandon(check)  # passed: free, so no row; the paid probe follows
            completion, lease = await runner.run_pinned(
                ctx, provider, target.model, key, extra=reasoning_off(provider, target.model)
            )
            first_token_ms = (self.clock.monotonic() - lease.sent_at) * 1000.0  # one token: the whole answer
            await runner.settle_success(ctx, lease, completion.response, completion.headers, first_token_ms)
            message = "ok"
        except CallError as error:
            if not ctx.rows:  # refused before sending (e.g. a request the provider's format cannot carry)
                runner.record_rejection(ctx, provider.value, target.model, error)
            message = str(error)
        row = ctx.rows[-1]
        runner.finish(ctx)
        return ProbeResult(
            provider=provider.value,
            key_label=key.label,
            model=target.model,
            ok=row.outcome == "success",
            outcome=row.outcome,
            error_class=row.error_class.value if row.error_class is not None else None,
            http_status=row.http_status,
            latency_ms=row.latency_ms,
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cost_usd=row.cost_usd,
            message=message[:MESSAGE_MAX],
            call_id=str(ctx.call_id),
            ts=row.ts,
        )

    async def _list_models(
        self, runtime: ProviderRuntime, key: ApiKey, prepared: PreparedRequest, timeout_s: float
    ) -> None:
        """The free auth check as a ``send`` for :meth:`CallRunner.run_pinned` (``PROBE_AUTH_CHECK``)."""
        from core.probe_auth import list_models

        await list_models(runtime.provider, self.settings.base_url(runtime.provider), key, timeout_s)

    # --- sync plumbing ------------------------------------------------------------------------------------------

    def _run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:
            coroutine.close()
            raise RuntimeError("generate_response_sync was called inside a running event loop: await generate_response")
        home = self._loop
        loop = home if home is not None and home.is_running() else self._background_loop()
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, loop)
        return future.result()

    def _background_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._background is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="pulsegate-client-loop", daemon=True)
                thread.start()
                self._background = (loop, thread)
            return self._background[0]

    # --- operations ---------------------------------------------------------------------------------------------

    def clear_queue(self, provider: str | Provider | None = None) -> int:
        """Cancel every waiting request (of one provider, or all); each gets a clear ``cancelled`` error."""
        providers = [Provider(provider)] if provider is not None else list(Provider)
        runtimes = self._runner.runtimes

        def clear() -> int:
            return sum(runtimes[p].queue.clear() for p in providers)

        home = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if home is None or running is home or not home.is_running():
            return clear()

        async def on_home() -> int:
            return clear()

        return asyncio.run_coroutine_threadsafe(on_home(), home).result(timeout=10)

    def snapshot(self) -> dict[str, Any]:
        """Queue, limiter, breaker and per-key state, JSON-serialisable (the heartbeat and health JSON read it)."""
        providers: dict[str, Any] = {}
        for provider, runtime in self._runner.runtimes.items():
            providers[provider.value] = {
                "queue": runtime.queue.snapshot(),
                **provider_limits(runtime, self._limit_state),  # "limits" (effective vs configured), "limit_reason"
                "breaker": runtime.breaker.snapshot(),
                "keys": with_key_limits(runtime, runtime.pool.snapshot()),
            }
        return {
            "instance_id": self.instance_id,
            "providers": providers,
            "users": self._runner.user_limits.snapshot(),
            "features": self._runner.feature_limits.snapshot(),
            "configured_limits": configured_limits(self._runner.runtimes),
            "limit_changes": self.tuner.changes(),
            "limiter": self.limiter.status() if hasattr(self.limiter, "status") else {"backend": "memory"},
            "shared_state": self.shared_state.status(),
            "recorder": self.recorder.stats(),
        }

    def _limit_state(self, name: str, spec: LimitSpec) -> dict[str, float]:
        state_now = getattr(self.limiter, "state_nowait", None)
        if state_now is None:
            return {"limit": spec.limit, "period_s": spec.period_s}
        return state_now(name, spec).as_dict()

    async def aclose(self) -> None:
        """Close connections and flush the recorder; the client cannot be used afterwards."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        here = asyncio.get_running_loop()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        if self._loop in (None, here):
            await self._runner.drain()
        for runtime in self._runner.runtimes.values():
            if self._loop in (None, here):
                runtime.queue.clear("the client is closing")
                await runtime.adapter.aclose()
            # else: the pools belonged to a loop that is gone; nothing of theirs can be awaited from here
        limiter_close = getattr(self.limiter, "aclose", None)
        if limiter_close is not None and self._loop in (None, here):
            await limiter_close()
        if self._loop in (None, here):
            await self.shared_state.aclose()
        await asyncio.to_thread(self.recorder.close)
        self._stop_background()

    def close(self) -> None:
        """:meth:`aclose` from synchronous code."""
        if self._loop is not None and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), self._loop).result(timeout=30)
        elif self._background is not None:
            asyncio.run_coroutine_threadsafe(self.aclose(), self._background[0]).result(timeout=30)
        else:
            asyncio.run(self.aclose())

    def _stop_background(self) -> None:
        background = self._background
        if background is None:
            return
        loop, thread = background
        loop.call_soon_threadsafe(loop.stop)
        if threading.current_thread() is not thread:
            thread.join(timeout=5)

    async def __aenter__(self) -> AIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        keys = {p.value: len(self.pools[p]) for p in Provider}
        return f"AIClient(instance={self.instance_id!r}, keys={keys})"


def _redis_link(settings: Settings) -> RedisLink:
    """One connection for the limiter and the key/breaker state: one outage, one warning, one flag."""
    from core.redis_link import RedisLink

    assert settings.redis_url is not None
    return RedisLink(settings.redis_url.get_secret_value())


def _default_limiter(settings: Settings, clock: Clock, link: RedisLink | None) -> RateLimiter:
    """Redis when ``REDIS_URL`` is set (limits shared by every app server, time from Redis), else in memory."""
    if link is None:
        return MemoryRateLimiter(clock)
    from core.limits.redis import RedisRateLimiter

    return RedisRateLimiter(link=link, local_share=settings.redis_local_share)


def _default_shared_state(link: RedisLink | None, instance_id: str) -> SharedState:
    """Key health, cooldowns and the breaker shared through the same Redis as the limits, else this process's."""
    if link is None:
        return LocalSharedState()
    from core.shared_state.redis import RedisSharedState

    link.headline = "RATE LIMITS DEGRADED (and shared key/breaker state)"
    link.fallback_note += "; key cooldowns and the circuit breaker are each process's own"
    return RedisSharedState(link, instance_id=instance_id)


def _default_adapter(provider: Provider, settings: Settings) -> ProviderAdapter:
    base_url = settings.base_url(provider)
    return AnthropicAdapter(base_url) if provider is Provider.ANTHROPIC else OpenAIAdapter(base_url)


def _guess_provider(config: object) -> str:
    value = getattr(config, "provider", None) if not isinstance(config, Mapping) else config.get("provider")
    return value if value in ("anthropic", "openai") else "anthropic"
