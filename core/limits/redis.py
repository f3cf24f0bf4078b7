"""The shared rate limiter: the GCRA of :mod:`pulsegate.core.limits.gcra`, its state in Redis, every operation one Lua
script.

Several app servers (or worker processes) holding one provider's limits together: each limit is one Redis string
``<prefix>{<group>}:<kind>`` (e.g. ``pulsegate:limit:{anthropic}:rpm``) holding its ``tat`` (theoretical arrival
time, seconds), updated only inside a Lua script, so an acquire over several limits (the provider's RPM + TPM)
admits all of its demands or none, atomically across every process. The ``{group}`` is a Redis Cluster hash tag:
the limits one acquire names must share it (they do: a provider's, one key's, one user's limits are each acquired
together). Keys carry a TTL of "until the bucket is full again" (plus a second of slack) — a full bucket and a missing
key mean the same — so idle per-user and per-key limits vanish by themselves.

Time: by default the script reads Redis's own ``TIME``, so the app servers' clocks never matter (no NTP skew can
over-admit); seconds are counted from :data:`pulsegate.core.redis_link.EPOCH_S` so doubles keep sub-microsecond
resolution. Tests inject a :class:`~pulsegate.core.clock.Clock` instead and the script then uses the ``now`` it is
handed (``clock.monotonic()``).

Redis down or slow (``timeout_s``, default 50 ms, no retries): the call is answered by a local
:class:`~pulsegate.core.limits.memory.MemoryRateLimiter` whose limits are scaled to ``local_share`` of the configured
ones (default ``1 / processes`` when the number of processes is given, else 1.0), one loud warning is logged per outage,
and :attr:`RedisRateLimiter.degraded` / :attr:`degraded_since` say so for snapshots. While degraded, Redis is tried
again at most once every ``probe_interval_s`` (the call that probes waits at most ``timeout_s``); the first answer
ends the outage and the shared state resumes. No call fails because Redis failed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.limits import gcra
from pulsegate.core.limits.base import Demand, LimitSpec, LimitState
from pulsegate.core.limits.memory import MemoryRateLimiter
from pulsegate.core.redis_link import FAILURES, NOW_LUA, RedisLink, Script, hash_tagged

DEFAULT_PREFIX = "pulsegate:limit:"
EXPIRY_SLACK_MS = 1_000
"""Keys live this much longer than their bucket needs to refill: a stale key only ever means "full"."""

_PREAMBLE = (
    NOW_LUA
    + f"""
local function store(key, tat, now)
  local ttl = math.ceil((tat - now) * 1000)
  if ttl < 0 then ttl = 0 end
  redis.call('SET', key, string.format('%.17g', tat), 'PX', ttl + {EXPIRY_SLACK_MS})
end
"""
)

# KEYS: one per demand (repeats allowed). ARGV: now|'', mode (acquire|peek|consume), then cost, interval,
# tolerance per demand. Returns the longest wait as a string (Lua numbers would be truncated to integers).
_DEMANDS_LUA = (
    _PREAMBLE
    + f"""
local now = now_s()
local mode = ARGV[2]
local planned = {{}}
local longest = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local cost = tonumber(ARGV[3 * i])
  local interval = tonumber(ARGV[3 * i + 1])
  local tolerance = tonumber(ARGV[3 * i + 2])
  local tat = planned[key]
  if tat == nil then tat = tonumber(redis.call('GET', key)) or now end
  if mode ~= 'consume' then
    local need = cost * interval
    if need > tolerance then need = tolerance end
    local backlog = tat - now
    if backlog < 0 then backlog = 0 end
    local wait = backlog + need - tolerance
    if wait > {gcra.EPSILON_S!r} and wait > longest then longest = wait end
  end
  if tat < now then tat = now end
  planned[key] = tat + cost * interval
end
if mode == 'consume' or (mode == 'acquire' and longest == 0) then
  for key, tat in pairs(planned) do store(key, tat, now) end
end
return string.format('%.17g', longest)
"""
)

# KEYS[1]; ARGV: now|'', amount, interval.
_REFUND_LUA = (
    _PREAMBLE
    + """
local now = now_s()
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then return 0 end
local refunded = tat - tonumber(ARGV[2]) * tonumber(ARGV[3])
if refunded <= now then
  redis.call('DEL', KEYS[1])
else
  store(KEYS[1], refunded, now)
end
return 1
"""
)

# KEYS[1]; ARGV: now|'', remaining, reset_s, interval, tolerance. Mirrors gcra.observe.
_OBSERVE_LUA = (
    _PREAMBLE
    + """
local now = now_s()
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local interval = tonumber(ARGV[4])
local tolerance = tonumber(ARGV[5])
local capacity = tolerance / interval
local deficit = capacity - tonumber(ARGV[2])
if deficit < 0 then deficit = 0 elseif deficit > capacity then deficit = capacity end
local until_full = deficit * interval
local reset = tonumber(ARGV[3])
if reset < 0 then reset = 0 end
if reset > tolerance then reset = tolerance end
if reset > until_full then until_full = reset end
local floor = now + until_full
if floor > tat then store(KEYS[1], floor, now) end
return 1
"""
)

# KEYS[1]; ARGV: now|''. Returns the backlog (tat - now, floored at 0) as a string.
_BACKLOG_LUA = (
    _PREAMBLE
    + """
local now = now_s()
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then return '0' end
return string.format('%.17g', tat - now)
"""
)

_DEMANDS = Script(_DEMANDS_LUA)
_REFUND = Script(_REFUND_LUA)
_OBSERVE = Script(_OBSERVE_LUA)
_BACKLOG = Script(_BACKLOG_LUA)


def _scaled(spec: LimitSpec, share: float) -> LimitSpec:
    return LimitSpec(limit=spec.limit * share, period_s=spec.period_s, capacity=spec.burst * share)


def _state(spec: LimitSpec, backlog: float) -> LimitState:
    capacity = spec.burst
    remaining = max(0.0, (spec.tolerance_s - backlog) / spec.interval_s)
    return LimitState(
        limit=spec.limit,
        period_s=spec.period_s,
        capacity=capacity,
        remaining=remaining,
        used=max(0.0, capacity - remaining),
        reset_s=backlog,
    )


class RedisRateLimiter:
    """:class:`~pulsegate.core.limits.base.RateLimiter` shared by every process that uses the same Redis and ``prefix``.

    ``url`` is a ``redis://`` / ``rediss://`` URL, or pass a :class:`~pulsegate.core.redis_link.RedisLink` shared with
    the key and breaker state (one outage, one warning). ``clock=None`` (production) takes time from Redis ``TIME``; a
    clock (tests) supplies ``now`` itself and also paces the outage probes. Redis keys carry a Redis Cluster hash
    tag (:func:`~pulsegate.core.redis_link.hash_tagged`), so the limits one script touches always share a slot.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        link: RedisLink | None = None,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
        timeout_s: float = 0.05,
        local_share: float | None = None,
        processes: int | None = None,
        probe_interval_s: float = 2.0,
    ) -> None:
        if local_share is None:
            local_share = 1.0 / processes if processes else 1.0
        if not (0.0 < local_share <= 1.0):
            raise ValueError(f"local_share must be in (0, 1], got {local_share!r}")
        if link is None:
            if url is None:
                raise ValueError("RedisRateLimiter needs a Redis URL or a RedisLink")
            link = RedisLink(url, timeout_s=timeout_s, probe_interval_s=probe_interval_s, clock=clock or SYSTEM_CLOCK)
        self.link = link
        link.headline = "RATE LIMITS DEGRADED"
        link.fallback_note = (
            f"Calls continue under LOCAL limits scaled to {local_share:.3g} of the configured ones, so all processes "
            "together may exceed the provider's limits"
        )
        self.prefix = prefix
        self.local_share = local_share
        self._clock = clock
        self._local = MemoryRateLimiter(clock or SYSTEM_CLOCK)
        self._scaled: dict[LimitSpec, LimitSpec] = {}
        self._names: dict[str, str] = {}

    @property
    def degraded(self) -> bool:
        return self.link.degraded

    @property
    def degraded_since(self) -> datetime | None:
        return self.link.degraded_since

    @property
    def outages(self) -> int:
        return self.link.outages

    # -- the RateLimiter protocol --------------------------------------------------------------------------------

    async def try_acquire(self, demands: Sequence[Demand]) -> float:
        if not demands:
            return 0.0
        if self.link.usable():
            try:
                return float(await self.link.run(_DEMANDS, *self._demand_args(demands, "acquire")))
            except FAILURES as exc:
                self.link.failed(exc)
        return await self._local.try_acquire(self._local_demands(demands))

    async def wait_time(self, demands: Sequence[Demand]) -> float:
        if not demands:
            return 0.0
        if self.link.usable():
            try:
                return float(await self.link.run(_DEMANDS, *self._demand_args(demands, "peek")))
            except FAILURES as exc:
                self.link.failed(exc)
        return await self._local.wait_time(self._local_demands(demands))

    async def consume(self, demands: Sequence[Demand]) -> None:
        if not demands:
            return
        if self.link.usable():
            try:
                await self.link.run(_DEMANDS, *self._demand_args(demands, "consume"))
                return
            except FAILURES as exc:
                self.link.failed(exc)
        await self._local.consume(self._local_demands(demands))

    async def refund(self, key: str, spec: LimitSpec, amount: float) -> None:
        if amount < 0:
            raise ValueError(f"refund amount must not be negative (got {amount!r}); use consume() to charge more")
        if self.link.usable():
            try:
                await self.link.run(_REFUND, [self._name(key)], [self._now_arg(), amount, spec.interval_s])
                return
            except FAILURES as exc:
                self.link.failed(exc)
        await self._local.refund(key, self._local_spec(spec), amount)

    async def observe(self, key: str, spec: LimitSpec, remaining: float, reset_s: float) -> None:
        if self.link.usable():
            try:
                args = [self._now_arg(), remaining, reset_s, spec.interval_s, spec.tolerance_s]
                await self.link.run(_OBSERVE, [self._name(key)], args)
                return
            except FAILURES as exc:
                self.link.failed(exc)
        await self._local.observe(key, self._local_spec(spec), remaining * self.local_share, reset_s)

    async def state(self, key: str, spec: LimitSpec) -> LimitState:
        if self.link.usable():
            try:
                backlog = await self.link.run(_BACKLOG, [self._name(key)], [self._now_arg()])
                return _state(spec, float(backlog))
            except FAILURES as exc:
                self.link.failed(exc)
        return self._local.state_nowait(key, self._local_spec(spec))

    # -- synchronous extras (AIClient.snapshot reads state_nowait) --------------------------------------------------

    def state_nowait(self, key: str, spec: LimitSpec) -> LimitState:
        """:meth:`state` for synchronous callers, over a blocking client with the same short timeout."""
        if self.link.usable():
            try:
                backlog = self.link.run_blocking(_BACKLOG, [self._name(key)], [self._now_arg()])
                return _state(spec, float(backlog))
            except FAILURES as exc:
                self.link.failed(exc)
        return self._local.state_nowait(key, self._local_spec(spec))

    def status(self) -> dict[str, Any]:
        """For snapshots and the dashboard's "Redis degraded" banner."""
        return {**self.link.status(), "local_share": self.local_share}

    async def aclose(self) -> None:
        """Close this loop's connections (and the blocking client)."""
        await self.link.aclose()

    # -- internals ----------------------------------------------------------------------------------------------------

    def _now_arg(self) -> float | str:
        return "" if self._clock is None else self._clock.monotonic()

    def _name(self, key: str) -> str:
        name = self._names.get(key)
        if name is None:
            if len(self._names) > 10_000:  # per-user names come and go
                self._names.clear()
            name = self._names[key] = hash_tagged(self.prefix, key)
        return name

    def _demand_args(self, demands: Sequence[Demand], mode: str) -> tuple[list[str], list[Any]]:
        keys = [self._name(demand.key) for demand in demands]
        args: list[Any] = [self._now_arg(), mode]
        for demand in demands:
            spec = demand.spec
            args += (demand.cost, spec.interval_s, spec.tolerance_s)
        return keys, args

    def _local_spec(self, spec: LimitSpec) -> LimitSpec:
        scaled = self._scaled.get(spec)
        if scaled is None:
            scaled = self._scaled[spec] = _scaled(spec, self.local_share) if self.local_share != 1.0 else spec
        return scaled

    def _local_demands(self, demands: Sequence[Demand]) -> list[Demand]:
        return [Demand(d.key, self._local_spec(d.spec), d.cost) for d in demands]
