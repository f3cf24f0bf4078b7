"""Key health and the breaker shared through Redis: one Lua script per exchange, so every merge is atomic.

Per provider, two Redis keys with one Redis Cluster hash tag (``<prefix>{<provider>}:keys`` and ``…:breaker``):

- a hash of key fingerprint → JSON record: decayed outcome weights (``g`` good, ``t`` total, as of ``ts``), the
  cooldown's end ``cu`` and growth streak ``cs``, and the disabled reason / class ``dr`` / ``dc``;
- the breaker as JSON: ``state`` (closed / open), the open period's end ``ou``, ``opens`` in a row, and the
  half-open trial's holder ``trial`` and the end of its claim ``tu``.

Each exchange sends what this process learnt since the last one — outcome weights to add, and decisions in order:
a cooldown (the later end wins), disable, enable, reset, a breaker open / close / trial release — and returns the
merged view, which the in-process objects adopt. Times are Redis ``TIME`` (the app servers' clocks never matter)
unless a test injects a clock. The weights decay with the pool's half-life, exactly as
:class:`~pulsegate.core.keys.health.KeyHealth` decays them. Records live a day after their last write.

Redis down or slow: the exchange is skipped (the shared :class:`~pulsegate.core.redis_link.RedisLink` warns once), the
process decides alone, and what it learnt meanwhile is kept and sent with the first exchange after Redis returns.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.clock import Clock
from pulsegate.core.keys.health import PendingChanges, SharedKeyView
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.redis_link import FAILURES, NOW_LUA, RedisLink, Script, hash_tagged

DEFAULT_PREFIX = "pulsegate:state:"
KEEP_MS = 86_400_000

# KEYS: the keys hash, the breaker key. ARGV: now|'', half-life (s), payload JSON, trial claim token|'',
# claim TTL (s), keep (ms). Returns JSON: {keys: {fp: {g, t, cd, cs, dr, dc}}, breaker: {state, open_s, opens,
# busy}, claimed: 0|1}.
_EXCHANGE = Script(
    NOW_LUA
    + """
local now = now_s()
local half_life = tonumber(ARGV[2])
local payload = cjson.decode(ARGV[3])
local claim = ARGV[4]
local claim_ttl = tonumber(ARGV[5])
local keep_ms = tonumber(ARGV[6])
-- records pass through cjson, which keeps 14 significant digits: an end within a microsecond has come
local slack = 0.000001

local records = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do records[raw[i]] = cjson.decode(raw[i + 1]) end

local function decay(r)
  if now > r.ts then
    local f = 0.5 ^ ((now - r.ts) / half_life)
    r.g = r.g * f
    r.t = r.t * f
  end
  r.ts = now
end

local wrote = false
for fp, change in pairs(payload.keys) do
  local r = records[fp]
  if r == nil then r = {g = 0, t = 0, ts = now, cu = 0, cs = 0} end
  decay(r)
  r.g = r.g + change.g
  r.t = r.t + change.t
  for _, op in ipairs(change.ops) do
    if op.op == 'cool' then
      if now + op.s > r.cu then r.cu = now + op.s end
      if op.streak > r.cs then r.cs = op.streak end
    elseif op.op == 'calm' then
      r.cs = 0
    elseif op.op == 'disable' then
      r.dr = op.reason
      r.dc = op.class
    elseif op.op == 'enable' then
      r.dr = nil
      r.dc = nil
      r.cu = 0
      r.cs = 0
    elseif op.op == 'reset' then
      r.cu = 0
      r.cs = 0
    end
  end
  records[fp] = r
  redis.call('HSET', KEYS[1], fp, cjson.encode(r))
  wrote = true
end
if wrote then redis.call('PEXPIRE', KEYS[1], keep_ms) end

local out = {}
for fp, r in pairs(records) do
  decay(r)
  local left = r.cu - now
  if left < slack then left = 0 end
  out[fp] = {g = r.g, t = r.t, cd = left, cs = r.cs, dr = r.dr, dc = r.dc}
end

local b = {state = 'closed', opens = 0}
local stored = redis.call('GET', KEYS[2])
if stored then b = cjson.decode(stored) end
local changed = false
for _, op in ipairs(payload.breaker) do
  if op.op == 'open' then
    local u = now + op.s
    if b.state ~= 'open' or u > b.ou then b.ou = u end
    b.state = 'open'
    if op.opens > b.opens then b.opens = op.opens end
    b.trial = nil
    b.tu = nil
  elseif op.op == 'close' then
    b = {state = 'closed', opens = 0}
  elseif op.op == 'release' then
    if b.trial ~= nil and b.trial == op.token then
      b.trial = nil
      b.tu = nil
    end
  end
  changed = true
end
local claimed = 0
if claim ~= '' then
  if b.state ~= 'open' then
    claimed = 1
  elseif now + slack >= b.ou and (b.trial == nil or now + slack >= b.tu) then
    b.trial = claim
    b.tu = now + claim_ttl
    claimed = 1
    changed = true
  end
end
if changed then redis.call('SET', KEYS[2], cjson.encode(b), 'PX', keep_ms) end

local view = {state = 'closed', open_s = 0, opens = b.opens, busy = false}
if b.state == 'open' then
  if now + slack < b.ou then
    view.state = 'open'
    view.open_s = b.ou - now
  else
    view.state = 'half_open'
    view.busy = b.trial ~= nil and now + slack < b.tu
  end
end
return cjson.encode({keys = out, breaker = view, claimed = claimed})
"""
)


@dataclass(slots=True)
class _Provider:
    pool: KeyPool
    breaker: CircuitBreaker
    names: list[str]
    trial_token: str = ""
    sending: int = 0  # exchanges in flight carrying breaker decisions


class RedisSharedState:
    """:class:`~pulsegate.core.shared_state.base.SharedState` over Redis. ``clock`` (tests only) supplies ``now`` to the
    script instead of Redis ``TIME``; processes sharing state then must share that clock."""

    def __init__(
        self, link: RedisLink, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None, instance_id: str = ""
    ) -> None:
        self.link = link
        self.prefix = prefix
        self.instance_id = instance_id or uuid.uuid4().hex[:12]
        self._clock = clock
        self._providers: dict[str, _Provider] = {}

    def attach(self, provider: str, pool: KeyPool, breaker: CircuitBreaker) -> None:
        for key in pool.keys:
            pool.state(key).pending = PendingChanges()
        breaker.pending = []
        names = [hash_tagged(self.prefix, f"{provider}:keys"), hash_tagged(self.prefix, f"{provider}:breaker")]
        self._providers[provider] = _Provider(pool, breaker, names)

    async def sync(self, provider: str) -> None:
        await self._exchange(self._providers[provider], "", 0.0)

    async def flush(self, provider: str) -> None:
        shared = self._providers[provider]
        pool = shared.pool
        if shared.breaker.pending or any(pool.state(key).pending.ops for key in pool.keys):  # type: ignore[union-attr]
            await self._exchange(shared, "", 0.0)

    async def claim_trial(self, provider: str, ttl_s: float) -> bool:
        shared = self._providers[provider]
        token = f"{self.instance_id}:{uuid.uuid4().hex[:8]}"
        claimed = await self._exchange(shared, token, ttl_s)
        if claimed is None:
            return True  # Redis cannot say: the local breaker decides alone
        if claimed:
            shared.trial_token = token
        return claimed

    def status(self) -> dict[str, Any]:
        return self.link.status()

    async def aclose(self) -> None:
        await self.link.aclose()

    # -- the exchange --------------------------------------------------------------------------------------------

    async def _exchange(self, shared: _Provider, claim: str, ttl_s: float) -> bool | None:
        """One round trip; ``None`` when Redis was not asked or did not answer."""
        if not self.link.usable():
            return None
        pool, breaker = shared.pool, shared.breaker
        now = pool.clock.monotonic()
        # what is sent is taken out of `pending` at once: concurrent exchanges never send the same thing twice
        taken: list[tuple[PendingChanges, float, float, list[dict[str, Any]]]] = []
        keys: dict[str, Any] = {}
        for key in pool.keys:
            pending = pool.state(key).pending
            assert pending is not None
            if pending.good or pending.total or pending.ops:
                ops = list(pending.ops)
                keys[key.fingerprint] = {"g": pending.good, "t": pending.total, "ops": [_relative(o, now) for o in ops]}
                taken.append((pending, pending.good, pending.total, ops))
                pending.good = pending.total = 0.0
                pending.ops.clear()
                pending.sending += 1
        breaker_ops = list(breaker.pending or ())
        if breaker.pending:
            breaker.pending.clear()
            shared.sending += 1
        payload = json.dumps(
            {"keys": keys, "breaker": [_relative(self._with_token(shared, op), now) for op in breaker_ops]}
        )
        now_arg: float | str = "" if self._clock is None else self._clock.monotonic()
        args = [now_arg, pool.policy.half_life_s, payload, claim, ttl_s, KEEP_MS]
        try:
            raw = await self.link.run(_EXCHANGE, shared.names, args)
        except FAILURES as exc:
            self.link.failed(exc)
            for pending, good, total, ops in taken:  # kept for the first exchange after Redis returns
                pending.good += good
                pending.total += total
                pending.ops[:0] = ops
            if breaker.pending is not None:
                breaker.pending[:0] = breaker_ops
            return None
        finally:
            for pending, *_ in taken:
                pending.sending -= 1
            if breaker_ops:
                shared.sending -= 1
        view = json.loads(raw)
        self._adopt(shared, view)
        return bool(view["claimed"]) if claim else False

    def _with_token(self, shared: _Provider, op: dict[str, Any]) -> dict[str, Any]:
        """A trial's release names the claim it gives back; an open or close settles it."""
        if op["op"] == "release":
            token, shared.trial_token = shared.trial_token, ""
            return {**op, "token": token}
        shared.trial_token = ""
        return op

    def _adopt(self, shared: _Provider, view: dict[str, Any]) -> None:
        now = shared.pool.clock.monotonic()
        records = view["keys"] or {}
        for key in shared.pool.keys:
            record = records.get(key.fingerprint)
            if record is not None:
                shared.pool.state(key).adopt(
                    SharedKeyView(
                        good=float(record["g"]),
                        total=float(record["t"]),
                        cooldown_s=float(record["cd"]),
                        cooldown_streak=int(record["cs"]),
                        disabled_reason=record.get("dr"),
                        disabled_class=record.get("dc"),
                    ),
                    now,
                )
        if not shared.breaker.pending and not shared.sending:  # decisions not yet in the view keep the local state
            state = view["breaker"]
            shared.breaker.adopt(state["state"], float(state["open_s"]), int(state["opens"]), bool(state["busy"]))


def _relative(op: dict[str, Any], now: float) -> dict[str, Any]:
    """Ends are kept in this process's monotonic time and sent as seconds left, which the script adds to its own
    now: a decision told late (after an outage) still ends when it was meant to."""
    if "until" not in op:
        return op
    sent = {name: value for name, value in op.items() if name != "until"}
    sent["s"] = max(0.0, op["until"] - now)
    return sent
