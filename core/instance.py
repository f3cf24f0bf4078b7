"""``Instance``: one process's running state — what an :class:`~pulsegate.core.client.AIClient` calls through and what
the operators' tools (:mod:`pulsegate.core.ops`: heartbeat, control commands, probes) act on.

State that must outlive any one event loop lives here for the instance's whole life: key pools and their health,
breakers, the limiter, shared state, the limit tuner, this process's own use of each key, user and feature limits,
the recorder. What is bound to a loop — SDK connection pools and the admission queues' dispatchers — lives in the
per-loop runtimes of :attr:`Instance.runner`, rebuilt by :meth:`Instance.rebind` when the client moves to a new loop.

The instance knows no event loop of its own: work that must run on the client's home loop (clearing a queue wakes
the waiters parked there) goes through the ``on_home`` callable the client hands it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar, Unpack

from pulsegate.core.admission import AdmissionQueue
from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.call.runner import CallRunner
from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.keys.health import HealthPolicy
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limit_snapshot import configured_limits, provider_limits, with_key_limits
from pulsegate.core.limits.base import LimitSpec, RateLimiter
from pulsegate.core.limits.memory import MemoryRateLimiter
from pulsegate.core.limits.own_use import OwnUse
from pulsegate.core.limits.tuner import LimitTuner
from pulsegate.core.pricing import PriceTable
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import KeyLimits, ProviderRuntime
from pulsegate.core.providers.anthropic_adapter import AnthropicAdapter
from pulsegate.core.providers.base import ProviderAdapter
from pulsegate.core.providers.openai_adapter import OpenAIAdapter
from pulsegate.core.recording import NullRecorder, Recorder, new_instance_id
from pulsegate.core.retry import RetryPolicy
from pulsegate.core.settings import Settings
from pulsegate.core.shared_state import LocalSharedState, SharedState
from pulsegate.core.translate.model_map import ModelMap
from pulsegate.core.user_limits import UserLimits

if TYPE_CHECKING:
    from pulsegate.core.redis_link import RedisLink

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BREAKER = {"window_s": 60.0, "min_calls": 10, "failure_rate": 0.5, "open_s": 30.0, "max_open_s": 300.0}

#: Runs a piece of work on the loop the instance's queues belong to and returns its result.
OnHome = Callable[[Callable[[], T]], T]
AdapterFactory = Callable[[Provider, Settings], ProviderAdapter]


class InstanceParts(TypedDict, total=False):
    """What an instance (and so an ``AIClient``) may be handed instead of building it from the settings — one
    list, so the client's keyword arguments and the instance's are the same by construction."""

    recorder: Recorder | None  #: where attempt rows go (default: none kept; ``AIClient.from_env`` passes the store's)
    clock: Clock  #: time (tests pass a ManualClock)
    limiter: RateLimiter | None  #: default: Redis when REDIS_URL is set, else in-process
    retry_policy: RetryPolicy | None
    health_policy: HealthPolicy | None
    breaker: Mapping[str, float] | None  #: overrides of DEFAULT_BREAKER's options
    prices: PriceTable | None  #: default: the shipped table, or PRICE_TABLE_FILE
    model_map: ModelMap | None  #: which OpenAI model answers for which Anthropic model on fallback
    rate_limit_period_s: float | None  #: default: RATE_LIMIT_PERIOD_S
    max_queue: int  #: waiting calls per provider queue (default 1000)
    instance_id: str | None
    adapter_factory: AdapterFactory | None
    shared_state: SharedState | None  #: default: Redis when REDIS_URL is set, else this process alone


def run_here(work: Callable[[], T]) -> T:
    """The ``on_home`` of an instance no client hands off for: the work runs where it is asked for."""
    return work()


class Instance:
    """One process's keys, breakers, limits, queues and recorder, with the factories that build them."""

    def __init__(self, settings: Settings, *, on_home: OnHome[Any] = run_here, **parts: Unpack[InstanceParts]) -> None:
        unknown = sorted(set(parts) - InstanceParts.__optional_keys__)
        if unknown:
            expected = ", ".join(sorted(InstanceParts.__optional_keys__))
            raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; the parts are: {expected}")
        recorder, limiter, shared_state = parts.get("recorder"), parts.get("limiter"), parts.get("shared_state")
        clock, breaker = parts.get("clock", SYSTEM_CLOCK), parts.get("breaker")
        health_policy, retry_policy = parts.get("health_policy"), parts.get("retry_policy")
        prices, model_map, adapter_factory = parts.get("prices"), parts.get("model_map"), parts.get("adapter_factory")
        rate_limit_period_s, max_queue = parts.get("rate_limit_period_s"), parts.get("max_queue", 1000)
        instance_id = parts.get("instance_id")
        self.settings = settings
        self.clock = clock
        self.recorder: Recorder = recorder or NullRecorder()
        self.instance_id = instance_id or new_instance_id()
        link = _redis_link(settings) if settings.redis_url is not None and None in (limiter, shared_state) else None
        self.limiter: RateLimiter = limiter or _default_limiter(settings, clock, link)
        self.shared_state: SharedState = shared_state or _default_shared_state(link, self.instance_id)
        self.period_s = rate_limit_period_s or settings.rate_limit_period_s
        self.max_queue = max_queue
        self._on_home = on_home
        self._adapter_factory = adapter_factory or default_adapter
        breaker_options = {**DEFAULT_BREAKER, **(breaker or {})}
        self.pools = {p: KeyPool(p, settings.keys(p), clock, health_policy) for p in Provider}
        self.breakers = {p: CircuitBreaker(p.value, clock, **breaker_options) for p in Provider}
        for p in Provider:
            self.shared_state.attach(p.value, self.pools[p], self.breakers[p])
        self._key_limits = {p: self._configured_key_limits(p) for p in Provider}
        self.tuner = LimitTuner(clock, enabled=settings.limit_tuning)  # self-tuning limits (LIMIT_TUNING)
        # what this instance sent per key lately: kept across event loops, like the tuner it serves
        self._own_use = {p: OwnUse(self.period_s) for p in Provider}
        user_id_key = settings.hash_user_ids.get_secret_value().encode() if settings.hash_user_ids else None
        self._runner_args: dict[str, Any] = {
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
                rpm=self._spec(settings.user_rpm), tpm=self._spec(settings.user_tpm), hash_key=user_id_key
            ),
            "feature_limits": UserLimits(
                rpm=self._spec(settings.feature_rpm), tpm=self._spec(settings.feature_tpm), scope="feature"
            ),
        }
        self.runner: CallRunner = self._build_runner()

    # --- factories ----------------------------------------------------------------------------------------------

    def _spec(self, limit: float | None) -> LimitSpec | None:
        """A per-period limit from a setting; none when the setting is unset (or 0)."""
        return LimitSpec(float(limit), self.period_s) if limit else None

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
                tpm=self._spec(tpm),
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
        limits = KeyLimits(rpm=self._spec(key_rpm), tpm=self._spec(key_tpm))
        return {key.fingerprint: limits for key in self.settings.keys(provider)}

    def rebind(self) -> None:
        """The client moved to a new event loop: fresh connection pools and queues; everything else carries on."""
        self.runner = self._build_runner()

    @property
    def runtimes(self) -> Mapping[Provider, ProviderRuntime]:
        return self.runner.runtimes

    # --- what operators do ----------------------------------------------------------------------------------------

    def clear_queue(self, provider: str | Provider | None = None) -> int:
        """Cancel every waiting request (of one provider, or all) on the home loop; returns how many."""
        providers = [Provider(provider)] if provider is not None else list(Provider)
        runtimes = self.runtimes

        def clear() -> int:
            return sum(runtimes[p].queue.clear() for p in providers)

        result: int = self._on_home(clear)
        return result

    def snapshot(self) -> dict[str, Any]:
        """Queue, limiter, breaker and per-key state, JSON-serialisable (the heartbeat and health JSON read it)."""
        runner = self.runner
        providers: dict[str, Any] = {}
        for provider, runtime in runner.runtimes.items():
            providers[provider.value] = {
                "queue": runtime.queue.snapshot(),
                **provider_limits(runtime, self._limit_state),  # "limits" (effective vs configured), "limit_reason"
                "breaker": runtime.breaker.snapshot(),
                "keys": with_key_limits(runtime, runtime.pool.snapshot()),
            }
        return {
            "instance_id": self.instance_id,
            "providers": providers,
            "users": runner.user_limits.snapshot(),
            "features": runner.feature_limits.snapshot(),
            "configured_limits": configured_limits(runner.runtimes),
            "limit_changes": self.tuner.changes(),
            "limiter": self.limiter.status(),
            "shared_state": self.shared_state.status(),
            "recorder": self.recorder.stats(),
        }

    def _limit_state(self, name: str, spec: LimitSpec) -> dict[str, float]:
        return self.limiter.state_nowait(name, spec).as_dict()

    async def aclose(self, *, on_home: bool) -> None:
        """Close connections and flush the recorder. ``on_home``: called on the loop the runtimes belong to — else
        that loop is gone, and nothing of its queues, SDK pools or Redis connections can be awaited from here."""
        if on_home:
            await self.runner.drain()
            for runtime in self.runtimes.values():
                runtime.queue.clear("the client is closing")
                await runtime.adapter.aclose()
            await self.limiter.aclose()
            await self.shared_state.aclose()
        await asyncio.to_thread(self.recorder.close)

    def __repr__(self) -> str:
        keys = {p.value: len(self.pools[p]) for p in Provider}
        return f"Instance({self.instance_id!r}, keys={keys})"


def _redis_link(settings: Settings) -> RedisLink:
    """One connection for the limiter and the key/breaker state: one outage, one warning, one flag."""
    from pulsegate.core.redis_link import RedisLink

    assert settings.redis_url is not None
    return RedisLink(settings.redis_url.get_secret_value())


def _default_limiter(settings: Settings, clock: Clock, link: RedisLink | None) -> RateLimiter:
    """Redis when ``REDIS_URL`` is set (limits shared by every app server, time from Redis), else in memory."""
    if link is None:
        return MemoryRateLimiter(clock)
    from pulsegate.core.limits.redis import RedisRateLimiter

    return RedisRateLimiter(link=link, local_share=settings.redis_local_share)


def _default_shared_state(link: RedisLink | None, instance_id: str) -> SharedState:
    """Key health, cooldowns and the breaker shared through the same Redis as the limits, else this process's."""
    if link is None:
        return LocalSharedState()
    from pulsegate.core.shared_state.redis import RedisSharedState

    link.headline = "RATE LIMITS DEGRADED (and shared key/breaker state)"
    link.fallback_note += "; key cooldowns and the circuit breaker are each process's own"
    return RedisSharedState(link, instance_id=instance_id)


def default_adapter(provider: Provider, settings: Settings) -> ProviderAdapter:
    """The SDK adapter for ``provider`` at its configured base URL."""
    base_url = settings.base_url(provider)
    return AnthropicAdapter(base_url) if provider is Provider.ANTHROPIC else OpenAIAdapter(base_url)
