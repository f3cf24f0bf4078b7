"""The shared rate limiter: the GCRA of :mod:`core.limits.gcra`, its state in Redis, every operation one Lua script.

Several app servers (or worker processes) holding one provider's limits together: each limit is one Redis string
``<prefix><key>`` holding its ``tat`` (theoretical arrival time, seconds), updated only inside a Lua script, so an
acquire over several limits (RPM + TPM + the key's RPM) admits all of its demands or none, atomically across every
process. Keys carry a TTL of "until the bucket is full again" (plus a second of slack) — a full bucket and a missing
key mean the same — so idle per-user and per-key limits vanish by themselves.

Time: by default the script reads Redis's own ``TIME``, so the app servers' clocks never matter (no NTP skew can
over-admit); seconds are counted from :data:`EPOCH_S` so doubles keep sub-microsecond resolution. Tests inject a
:class:`~core.clock.Clock` instead and the script then uses the ``now`` it is handed (``clock.monotonic()``).

Redis down or slow (``timeout_s``, default 50 ms, no retries): the call is answered by a local
:class:`~core.limits.memory.MemoryRateLimiter` whose limits are scaled to ``local_share`` of the configured ones
(default ``1 / processes`` when the number of processes is given, else 1.0), one loud warning is logged per outage,
and :attr:`RedisRateLimiter.degraded` / :attr:`degraded_since` say so for snapshots. While degraded, Redis is tried
again at most once every ``probe_interval_s`` (the call that probes waits at most ``timeout_s``); the first answer
ends the outage and the shared state resumes. No call fails because Redis failed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.backoff import NoBackoff

from core.clock import SYSTEM_CLOCK, Clock
from core.limits import gcra
from core.limits.base import Demand, LimitSpec, LimitState
from core.limits.memory import MemoryRateLimiter

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "pulsegate:limit:"
EPOCH_S = 1_700_000_000
"""Redis ``TIME`` seconds are counted from here (2023-11-14) so a ``tat`` double resolves well below 1 µs."""
EXPIRY_SLACK_MS = 1_000
"""Keys live this much longer than their bucket needs to refill: a stale key only ever means "full"."""

_PREAMBLE = f"""
local function now_s()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return (tonumber(t[1]) - {EPOCH_S}) + tonumber(t[2]) / 1000000
end
local function store(key, tat, now)
  local ttl = math.ceil((tat - now) * 1000)
  if ttl < 0 then ttl = 0 end
  redis.call('SET', key, string.format('%.17g', tat), 'PX', ttl + {EXPIRY_SLACK_MS})
end
"""

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

_SCRIPTS = {"demands": _DEMANDS_LUA, "refund": _REFUND_LUA, "observe": _OBSERVE_LUA, "backlog": _BACKLOG_LUA}
_SHAS = {name: hashlib.sha1(lua.encode()).hexdigest() for name, lua in _SCRIPTS.items()}  # noqa: S324 - Redis's naming

_FAILURES: tuple[type[BaseException], ...] = (redis.RedisError, OSError, asyncio.TimeoutError)


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
    """:class:`~core.limits.base.RateLimiter` shared by every process that uses the same Redis and ``prefix``.

    ``url`` is a ``redis://`` / ``rediss://`` URL; an async client (and its pool) is made per event loop, since
    redis-py's asyncio connections belong to the loop that opened them. ``clock=None`` (production) takes time from
    Redis ``TIME``; a clock (tests) supplies ``now`` itself and also paces the outage probes.
    """

    def __init__(
        self,
        url: str,
        *,
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
        self.url = url
        self.prefix = prefix
        self.local_share = local_share
        self.timeout_s = timeout_s
        self.probe_interval_s = probe_interval_s
        self._clock = clock
        self._time: Clock = clock or SYSTEM_CLOCK
        self._local = MemoryRateLimiter(self._time)
        self._scaled: dict[LimitSpec, LimitSpec] = {}
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Scripts] = weakref.WeakKeyDictionary()
        self._sync: redis.Redis | None = None
        self._lock = threading.Lock()
        self.degraded = False
        self.degraded_since: datetime | None = None
        self.outages = 0
        self._next_probe = 0.0

    # -- the RateLimiter protocol --------------------------------------------------------------------------------

    async def try_acquire(self, demands: Sequence[Demand]) -> float:
        if not demands:
            return 0.0
        if self._use_redis():
            try:
                return float(await self._call("demands", *self._demand_args(demands, "acquire")))
            except _FAILURES as exc:
                self._failed(exc)
        return await self._local.try_acquire(self._local_demands(demands))

    async def wait_time(self, demands: Sequence[Demand]) -> float:
        if not demands:
            return 0.0
        if self._use_redis():
            try:
                return float(await self._call("demands", *self._demand_args(demands, "peek")))
            except _FAILURES as exc:
                self._failed(exc)
        return await self._local.wait_time(self._local_demands(demands))

    async def consume(self, demands: Sequence[Demand]) -> None:
        if not demands:
            return
        if self._use_redis():
            try:
                await self._call("demands", *self._demand_args(demands, "consume"))
                return
            except _FAILURES as exc:
                self._failed(exc)
        await self._local.consume(self._local_demands(demands))

    async def refund(self, key: str, spec: LimitSpec, amount: float) -> None:
        if amount < 0:
            raise ValueError(f"refund amount must not be negative (got {amount!r}); use consume() to charge more")
        if self._use_redis():
            try:
                await self._call("refund", [self.prefix + key], [self._now_arg(), amount, spec.interval_s])
                return
            except _FAILURES as exc:
                self._failed(exc)
        await self._local.refund(key, self._local_spec(spec), amount)

    async def observe(self, key: str, spec: LimitSpec, remaining: float, reset_s: float) -> None:
        if self._use_redis():
            try:
                args = [self._now_arg(), remaining, reset_s, spec.interval_s, spec.tolerance_s]
                await self._call("observe", [self.prefix + key], args)
                return
            except _FAILURES as exc:
                self._failed(exc)
        await self._local.observe(key, self._local_spec(spec), remaining * self.local_share, reset_s)

    async def state(self, key: str, spec: LimitSpec) -> LimitState:
        if self._use_redis():
            try:
                backlog = await self._call("backlog", [self.prefix + key], [self._now_arg()])
                return _state(spec, float(backlog))
            except _FAILURES as exc:
                self._failed(exc)
        return self._local.state_nowait(key, self._local_spec(spec))

    # -- synchronous extras (AIClient.snapshot reads state_nowait) --------------------------------------------------

    def state_nowait(self, key: str, spec: LimitSpec) -> LimitState:
        """:meth:`state` for synchronous callers, over a blocking client with the same short timeout."""
        if self._use_redis():
            try:
                sync = self._sync_client()
                try:
                    backlog = sync.evalsha(_SHAS["backlog"], 1, self.prefix + key, self._now_arg())
                except redis.exceptions.NoScriptError:
                    backlog = sync.eval(_BACKLOG_LUA, 1, self.prefix + key, self._now_arg())
                if self.degraded:
                    self._recovered()
                return _state(spec, float(backlog))
            except _FAILURES as exc:
                self._failed(exc)
        return self._local.state_nowait(key, self._local_spec(spec))

    def status(self) -> dict[str, Any]:
        """For snapshots and the dashboard's "Redis degraded" banner."""
        return {
            "backend": "redis",
            "degraded": self.degraded,
            "degraded_since": self.degraded_since.isoformat() if self.degraded_since else None,
            "outages": self.outages,
            "local_share": self.local_share,
        }

    async def aclose(self) -> None:
        """Close this loop's connections (and the blocking client)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        scripts = self._clients.pop(loop, None) if loop is not None else None
        if scripts is not None:
            await scripts.client.aclose()
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    # -- internals ----------------------------------------------------------------------------------------------------

    def _now_arg(self) -> float | str:
        return "" if self._clock is None else self._clock.monotonic()

    def _demand_args(self, demands: Sequence[Demand], mode: str) -> tuple[list[str], list[Any]]:
        prefix = self.prefix
        keys = [prefix + demand.key for demand in demands]
        args: list[Any] = [self._now_arg(), mode]
        for demand in demands:
            spec = demand.spec
            args += (demand.cost, spec.interval_s, spec.tolerance_s)
        return keys, args

    async def _call(self, script: str, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA`` straight through ``execute_command`` (redis-py's ``Script`` object costs ~15 µs more per
        call); on ``NOSCRIPT`` (a restarted or flushed Redis) the script is loaded and the call repeated once."""
        scripts = self._scripts()
        try:
            result = await scripts.client.execute_command("EVALSHA", _SHAS[script], len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            await scripts.client.script_load(_SCRIPTS[script])
            result = await scripts.client.execute_command("EVALSHA", _SHAS[script], len(keys), *keys, *args)
        if self.degraded:
            self._recovered()
        return result

    def _scripts(self) -> _Scripts:
        loop = asyncio.get_running_loop()
        scripts = self._clients.get(loop)
        if scripts is None:
            client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=aioredis.retry.Retry(NoBackoff(), 0),
            )
            scripts = self._clients[loop] = _Scripts(client)
        return scripts

    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=redis.retry.Retry(NoBackoff(), 0),
            )
        return self._sync

    def _use_redis(self) -> bool:
        """Healthy, or degraded and a probe is due (then this call is the probe)."""
        if not self.degraded:
            return True
        now = self._time.monotonic()
        with self._lock:
            if now < self._next_probe:
                return False
            self._next_probe = now + self.probe_interval_s
        return True

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self._next_probe = self._time.monotonic() + self.probe_interval_s
            if self.degraded:
                return
            self.degraded = True
            self.degraded_since = self._time.now()
            self.outages += 1
        log.warning(
            "RATE LIMITS DEGRADED: Redis at %s did not answer (%s: %s). Calls continue under LOCAL limits scaled to "
            "%.3g of the configured ones, so all processes together may exceed the provider's limits until Redis "
            "answers again (checked every %.3g s).",
            _redacted(self.url),
            type(exc).__name__,
            exc,
            self.local_share,
            self.probe_interval_s,
        )

    def _recovered(self) -> None:
        with self._lock:
            if not self.degraded:
                return
            since = self.degraded_since
            self.degraded = False
            self.degraded_since = None
        log.warning(
            "Rate limits: Redis at %s answers again (degraded since %s); shared limits resumed.",
            _redacted(self.url),
            since.isoformat() if since else "?",
        )

    def _local_spec(self, spec: LimitSpec) -> LimitSpec:
        scaled = self._scaled.get(spec)
        if scaled is None:
            scaled = self._scaled[spec] = _scaled(spec, self.local_share) if self.local_share != 1.0 else spec
        return scaled

    def _local_demands(self, demands: Sequence[Demand]) -> list[Demand]:
        return [Demand(d.key, self._local_spec(d.spec), d.cost) for d in demands]


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


class _Scripts:
    """One event loop's client (redis-py's asyncio connections belong to the loop that opened them)."""

    __slots__ = ("client",)

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
