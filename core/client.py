"""``AIClient``: what an application imports. Async, with a sync twin and a streaming twin.

The client is the public face of one :class:`~pulsegate.core.instance.Instance` (``client.instance``), which holds the
state — key health, breakers, limits, queues, the recorder. The client owns only the event loop binding: the first loop
it is used on is its home; used on a new loop (e.g. a second ``asyncio.run``), the instance rebuilds its per-loop
runtimes; a call made from a loop other than the running home loop is handed to that loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, Unpack

from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.call.context import CallContext
from pulsegate.core.clock import Clock
from pulsegate.core.home_loop import HomeLoop
from pulsegate.core.ids import uuid7
from pulsegate.core.instance import Instance, InstanceParts
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limits.base import RateLimiter
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.ops.probe import ProbeResult, ProbeTarget, probe_key
from pulsegate.core.provider import Provider
from pulsegate.core.recording import Recorder
from pulsegate.core.request import CallOptions, ModelConfig
from pulsegate.core.response import AIResponse
from pulsegate.core.settings import Settings, load_settings
from pulsegate.core.shared_state import SharedState
from pulsegate.core.streaming import ResponseStream
from pulsegate.core.validation import Rejected, screen_call

if TYPE_CHECKING:
    from pulsegate.core.ops.heartbeat import Heartbeat

log = logging.getLogger(__name__)
T = TypeVar("T")


class AIClient:
    """Calls Anthropic and OpenAI with key rotation, limits, a priority queue, retries, a breaker and fallback."""

    def __init__(self, settings: Settings, *, heartbeat: bool = True, **parts: Unpack[InstanceParts]) -> None:
        """``parts`` are what the instance may be handed instead of building it from ``settings`` (a recorder, a
        limiter, a clock…: :class:`~pulsegate.core.instance.InstanceParts` lists them); ``heartbeat`` reports this
        client's state to the store its recorder writes to."""
        self._home = HomeLoop(self._bound)
        self.instance = Instance(settings, on_home=self._home.on_home, **parts)
        store = self.recorder.engine  # state snapshots go where the attempts go
        self._heartbeat: Heartbeat | None = None
        if heartbeat and store is not None:
            from pulsegate.core.ops.heartbeat import (
                instance_heartbeat,  # SQLAlchemy: only for a client that has a store
            )

            self._heartbeat = instance_heartbeat(self.instance, store)

    # --- the instance's state, as before ------------------------------------------------------------------------

    @property
    def settings(self) -> Settings:
        return self.instance.settings

    @property
    def clock(self) -> Clock:
        return self.instance.clock

    @property
    def recorder(self) -> Recorder:
        return self.instance.recorder

    @property
    def instance_id(self) -> str:
        return self.instance.instance_id

    @property
    def limiter(self) -> RateLimiter:
        return self.instance.limiter

    @property
    def shared_state(self) -> SharedState:
        return self.instance.shared_state

    @property
    def period_s(self) -> float:
        return self.instance.period_s

    @property
    def max_queue(self) -> int:
        return self.instance.max_queue

    @property
    def pools(self) -> dict[Provider, KeyPool]:
        return self.instance.pools

    @property
    def breakers(self) -> dict[Provider, CircuitBreaker]:
        return self.instance.breakers

    @property
    def tuner(self) -> LimitTuner:
        return self.instance.tuner

    @classmethod
    def from_env(cls, **overrides: Any) -> AIClient:
        """Settings from the environment (and ``.env``); attempts recorded to ``DATABASE_URL``."""
        from pulsegate.core.recording import SqlRecorder
        from pulsegate.core.store import create_store_engine, store_status

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

    def _bound(self, moved: bool) -> None:
        """The client is bound to a loop (see :class:`~pulsegate.core.home_loop.HomeLoop`): the instance rebuilds what
        the old loop held, and the heartbeat runs on the new one."""
        if moved:
            log.debug("AIClient moves to a new event loop; connection pools and queues are rebuilt")
            self.instance.rebind()
        if self._heartbeat is not None:
            self._heartbeat.start()

    # --- calls --------------------------------------------------------------------------------------------------

    def _context(
        self, config: object, messages: object, system_prompt: object, options: object | None, streamed: bool
    ) -> CallContext:
        """The checked call, timed from now; a malformed one is recorded (its one ``validation`` row) and raised."""
        now = self.clock.monotonic()
        checked = screen_call(config, messages, system_prompt, options)
        if isinstance(checked, Rejected):
            self._reject(checked, config, streamed)
            raise checked.error
        return CallContext(
            call_id=uuid7(),
            config=checked.config,
            messages=checked.messages,
            system=checked.system,
            options=checked.options,
            started=now,
            started_at=self.clock.now(),
            deadline=now + checked.options.timeout_s,
            streamed=streamed,
        )

    def _reject(self, rejected: Rejected, raw_config: object, streamed: bool) -> None:
        config, error = rejected.config, rejected.error
        provider = config.provider if config else _guess_provider(raw_config)
        model = config.model if config else "(invalid)"
        error.provider = error.provider or provider
        now = self.clock.monotonic()
        ctx = CallContext(
            uuid7(), config or ModelConfig(model=model), [], None, rejected.options, now, self.clock.now(), now,
            streamed=streamed,
        )  # fmt: skip
        call = self.instance.runner.call(ctx)
        call.reject(provider, model, error)
        call.end()

    async def generate_response(
        self,
        config: ModelConfig | Mapping[str, Any],
        messages: list[dict[str, Any]],
        system_prompt: str | list[dict[str, Any]] | None = None,
        options: CallOptions | Mapping[str, Any] | None = None,
    ) -> AIResponse:
        """One completion. Raises a :class:`~pulsegate.core.errors.CallError` subclass naming what failed and why."""
        return await self._home.run(self._generate(config, messages, system_prompt, options))

    async def _generate(
        self, config: object, messages: object, system_prompt: object, options: object | None
    ) -> AIResponse:
        ctx = self._context(config, messages, system_prompt, options, streamed=False)
        async with self.instance.runner.call(ctx) as call:
            completion = await call.run()
            cost = await call.succeed(completion.response, completion.headers)
            return AIResponse.of_call(call, completion.response, cost=cost, ttft_ms=None, now=self.clock.monotonic())

    def generate_response_sync(
        self,
        config: ModelConfig | Mapping[str, Any],
        messages: list[dict[str, Any]],
        system_prompt: str | list[dict[str, Any]] | None = None,
        options: CallOptions | Mapping[str, Any] | None = None,
    ) -> AIResponse:
        """The same call from plain synchronous code (any thread; not from inside the client's own event loop)."""
        return self._home.run_sync(self.generate_response(config, messages, system_prompt, options))

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
        self._home.enter_for_stream()
        return ResponseStream(
            self.instance.runner, self._context(config, messages, system_prompt, options, streamed=True)
        )

    # --- probes -------------------------------------------------------------------------------------------------

    async def probe(self, target: ProbeTarget, *, timeout_s: float | None = None) -> ProbeResult:
        """One probe on exactly ``target``'s key (see :mod:`pulsegate.core.ops.probe`), recorded with
        ``source='probe'``. Provider failures come back as a failed result; an unknown provider or key label raises
        ``ProbeError``."""
        timeout = timeout_s if timeout_s is not None else self.settings.probe_timeout_s
        return await self._home.run(probe_key(self.instance, target, timeout))

    # --- operations ---------------------------------------------------------------------------------------------

    def clear_queue(self, provider: str | Provider | None = None) -> int:
        """Cancel every waiting request (of one provider, or all); each gets a clear ``cancelled`` error."""
        return self.instance.clear_queue(provider)

    def snapshot(self) -> dict[str, Any]:
        """Queue, limiter, breaker and per-key state, JSON-serialisable (the heartbeat and health JSON read it)."""
        return self.instance.snapshot()

    async def aclose(self) -> None:
        """Close connections and flush the recorder; the client cannot be used afterwards."""
        if not self._home.close():
            return
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        await self.instance.aclose(on_home=self._home.is_home_or_unbound(asyncio.get_running_loop()))
        self._home.stop_background()

    def close(self) -> None:
        """:meth:`aclose` from synchronous code."""
        self._home.run_to_end(self.aclose)

    async def __aenter__(self) -> AIClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        keys = {p.value: len(self.pools[p]) for p in Provider}
        return f"AIClient(instance={self.instance_id!r}, keys={keys})"


def _guess_provider(config: object) -> str:
    value = getattr(config, "provider", None) if not isinstance(config, Mapping) else config.get("provider")
    return value if value in ("anthropic", "openai") else "anthropic"
