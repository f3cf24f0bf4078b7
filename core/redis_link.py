"""One connection to the shared Redis that degrades instead of failing.

The shared limiter (:mod:`pulsegate.core.limits.redis`) and the shared key and breaker state
(:mod:`pulsegate.core.shared_state.redis`) both run Lua scripts through a :class:`RedisLink`; sharing one link means one
outage, one warning and one "degraded" flag for both. Every call has a short timeout (default 50 ms) and no retries: a
call that fails marks the link degraded (one loud warning per outage), callers fall back to their local state, and while
degraded Redis is tried again at most once every ``probe_interval_s`` — the first answer ends the outage.

An async client is made per event loop, since redis-py's asyncio connections belong to the loop that opened them; a
blocking client serves synchronous readers (snapshots). Scripts, the hot path (one per rate-limit decision and one per
attempt), skip the client's command machinery — pool lock, retry wrapper, observability hooks, ~30 µs a call — and
run on redis-py connections kept in a small idle stack per loop (:class:`_LoopConnections`): redis-py still connects,
authenticates, selects the database, speaks TLS and parses replies (with ``hiredis``, which also packs our commands:
redis-py's asyncio packer takes 11 µs for a three-limit acquire, hiredis 2 µs).

Redis Cluster: the first call asks the server which kind it is (``INFO cluster``, :mod:`pulsegate.core.redis_cluster`);
a cluster's scripts then go through redis-py's cluster client, which routes each script to the node owning its keys'
slot (every script's keys share one hash tag, :func:`hash_tagged`). The single-node path above pays one attribute
check for this. After an outage the server is asked again, so a Redis replaced by a cluster (or back) is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import weakref
from collections import deque
from datetime import datetime
from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.redis_cluster import (
    CLUSTER,
    SINGLE,
    Mode,
    RedisUrlError,
    async_cluster_client,
    blocking_cluster_client,
    detect_blocking,
    detect_on,
)

log = logging.getLogger(__name__)

#: What a failed Redis call raises (connection refused, reset, timeout, script errors; a cluster client that reaches
#: no node raises ``RedisClusterException``, which is not a ``RedisError``).
FAILURES: tuple[type[BaseException], ...] = (
    redis.RedisError,
    redis.exceptions.RedisClusterException,
    OSError,
    asyncio.TimeoutError,
)

EPOCH_S = 1_700_000_000
"""Redis ``TIME`` seconds are counted from here (2023-11-14) so a double resolves time well below 1 µs."""

#: Lua: ``now_s()`` is ``ARGV[1]`` when the caller injects time (tests), else Redis's own ``TIME``.
NOW_LUA = f"""
local function now_s()
  if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
  local t = redis.call('TIME')
  return (tonumber(t[1]) - {EPOCH_S}) + tonumber(t[2]) / 1000000
end
"""


class Script:
    """A Lua script known by its SHA-1, as ``EVALSHA`` wants it."""

    __slots__ = ("lua", "sha")

    def __init__(self, lua: str) -> None:
        self.lua = lua
        self.sha = hashlib.sha1(lua.encode()).hexdigest()  # noqa: S324 - Redis's naming, not security


class _LoopConnections:
    """One event loop's client and the script connections idle between calls (and, for a cluster, its cluster
    client: made on first use, kept across outages — it re-reads the topology itself when nodes return).

    A connection is taken for exactly one request and reply, so concurrent calls never share one; a call that raises
    or is cancelled mid-way drops its connection (it may hold half a reply) instead of returning it. At most
    ``MAX_IDLE`` stay open between bursts.
    """

    MAX_IDLE = 16

    __slots__ = ("client", "cluster", "idle")

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.cluster: AsyncRedisCluster | None = None
        self.idle: deque[AbstractConnection] = deque()

    def take(self) -> AbstractConnection:
        return self.idle.pop() if self.idle else self.client.connection_pool.make_connection()

    async def give_back(self, conn: AbstractConnection) -> None:
        if len(self.idle) < self.MAX_IDLE:
            self.idle.append(conn)
        else:
            await conn.disconnect()

    async def aclose(self) -> None:
        while self.idle:
            await self.idle.pop().disconnect()
        await self.client.aclose()
        if self.cluster is not None:
            await self.cluster.aclose()


class RedisLink:
    """A Redis URL, its per-loop clients and its health. ``clock`` paces the outage probes (tests inject one)."""

    def __init__(
        self, url: str, *, timeout_s: float = 0.05, probe_interval_s: float = 2.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.probe_interval_s = probe_interval_s
        self.clock = clock
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = (
            weakref.WeakKeyDictionary()
        )
        self._sync: redis.Redis | None = None
        self._sync_cluster: RedisCluster | None = None
        #: ``single`` / ``cluster`` once the server has said which it is; ``None`` until then and after a failure.
        self.mode: Mode | None = None
        self._lock = threading.Lock()
        self.degraded = False
        self.degraded_since: datetime | None = None
        self.outages = 0
        self._next_probe = 0.0
        #: The warning's first words and what callers do meanwhile (set by whoever builds the link).
        self.headline = "SHARED STATE DEGRADED"
        self.fallback_note = "Each process goes on with its local state"

    # -- calls ---------------------------------------------------------------------------------------------------

    def usable(self) -> bool:
        """Healthy, or degraded and a probe is due (then the caller's call is the probe)."""
        if not self.degraded:
            return True
        now = self.clock.monotonic()
        with self._lock:
            if now < self._next_probe:
                return False
            self._next_probe = now + self.probe_interval_s
        return True

    async def run(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """``EVALSHA`` on an idle connection of this loop; on ``NOSCRIPT`` (a restarted or flushed Redis) the script
        is loaded and the call repeated once. Raises one of :data:`FAILURES`; the caller reports it with
        :meth:`failed`."""
        connections = self._loop_connections()
        if self.mode is not SINGLE:
            return await self._run_detected(connections, script, keys, args)
        conn = connections.take()
        try:
            packed = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))  # 2 µs; redis-py's: 11
            await conn.send_packed_command(packed, check_health=False)
            try:
                result = await conn.read_response()
            except redis.exceptions.NoScriptError:
                await conn.send_packed_command(hiredis.pack_command(("SCRIPT", "LOAD", script.lua)), check_health=False)
                await conn.read_response()
                await conn.send_packed_command(packed, check_health=False)
                result = await conn.read_response()
        except BaseException:
            await conn.disconnect(nowait=True)
            raise
        await connections.give_back(conn)
        if self.degraded:
            self.recovered()
        return result

    def run_blocking(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """:meth:`run` for synchronous callers, over a blocking client with the same short timeout."""
        client: redis.Redis | RedisCluster = self.blocking_client()
        if self.mode is None:
            self.mode = detect_blocking(self.url, self.timeout_s)
        if self.mode == CLUSTER:
            if self._sync_cluster is None:
                self._sync_cluster = blocking_cluster_client(self.url, self.timeout_s)
            client = self._sync_cluster
        try:
            try:
                result = client.evalsha(script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                result = client.eval(script.lua, len(keys), *keys, *args)
        except FAILURES:
            if client is self._sync_cluster:  # as in _run_detected: no stale node connections after an outage
                self._sync_cluster = None
                with contextlib.suppress(*FAILURES):
                    client.close()
            raise
        if self.degraded:
            self.recovered()
        return result

    async def _run_detected(
        self, connections: _LoopConnections, script: Script, keys: list[str], args: list[Any]
    ) -> Any:
        """:meth:`run` when the server's kind is not known to be single: ask it first, then either go on as a
        single Redis or run the script through this loop's cluster client."""
        if self.mode is None:
            conn = connections.take()
            try:
                self.mode = await detect_on(conn, self.url, self.timeout_s)
            except BaseException:
                await conn.disconnect(nowait=True)
                raise
            if self.mode == SINGLE:
                await connections.give_back(conn)  # the script goes out on it next
                return await self.run(script, keys, args)
            await conn.disconnect()  # a cluster's scripts go through the cluster client's own connections
        cluster = connections.cluster
        if cluster is None:
            cluster = connections.cluster = async_cluster_client(self.url, self.timeout_s)
        try:
            try:
                result = await cluster.evalsha(script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                # scripts are cached per node: this slot's node never saw it (or restarted); EVAL runs and caches it
                result = await cluster.eval(script.lua, len(keys), *keys, *args)
        except FAILURES:
            # the client keeps idle connections to every node: after nodes restarted, each would fail once more and
            # start an outage of its own; the next probe starts from a fresh client (and a fresh topology)
            if connections.cluster is cluster:
                connections.cluster = None
                with contextlib.suppress(*FAILURES):
                    await cluster.aclose()
            raise
        if self.degraded:
            self.recovered()
        return result

    def client(self) -> aioredis.Redis:
        """This loop's redis-py client, for anything other than scripts (on a cluster: the URL's node only)."""
        return self._loop_connections().client

    def _loop_connections(self) -> _LoopConnections:
        loop = asyncio.get_running_loop()
        connections = self._loops.get(loop)
        if connections is None:
            client = aioredis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=aioredis.retry.Retry(NoBackoff(), 0),
            )
            connections = self._loops[loop] = _LoopConnections(client)
        return connections

    def blocking_client(self) -> redis.Redis:
        if self._sync is None:
            self._sync = redis.Redis.from_url(
                self.url,
                socket_timeout=self.timeout_s,
                socket_connect_timeout=self.timeout_s,
                retry=redis.retry.Retry(NoBackoff(), 0),
            )
        return self._sync

    # -- health --------------------------------------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._next_probe = self.clock.monotonic() + self.probe_interval_s
            self.mode = None  # the first answer after an outage says again which kind of server it is
            if self.degraded:
                return
            self.degraded = True
            self.degraded_since = self.clock.now()
            self.outages += 1
        what = "cannot be used" if isinstance(exc, RedisUrlError) else "did not answer"
        log.warning(
            "%s: Redis at %s %s (%s: %s). %s until Redis answers again (checked every %.3g s).",
            self.headline,
            redacted(self.url),
            what,
            type(exc).__name__,
            exc,
            self.fallback_note,
            self.probe_interval_s,
        )

    def recovered(self) -> None:
        with self._lock:
            if not self.degraded:
                return
            since = self.degraded_since
            self.degraded = False
            self.degraded_since = None
        log.warning(
            "Redis at %s answers again (degraded since %s); shared limits and state resumed.",
            redacted(self.url),
            since.isoformat() if since else "?",
        )

    def status(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "degraded": self.degraded,
            "degraded_since": self.degraded_since.isoformat() if self.degraded_since else None,
            "outages": self.outages,
        }

    async def aclose(self) -> None:
        """Close this loop's connections (and the blocking client)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        connections = self._loops.pop(loop, None) if loop is not None else None
        if connections is not None:
            await connections.aclose()
        if self._sync is not None:
            self._sync.close()
            self._sync = None
        if self._sync_cluster is not None:
            self._sync_cluster.close()
            self._sync_cluster = None


def redacted(url: str) -> str:
    """The URL without its password, for logs."""
    head, sep, tail = url.rpartition("@")
    if not sep:
        return url
    scheme, _, _ = head.partition("://")
    return f"{scheme}://***@{tail}"


def hash_tagged(prefix: str, name: str) -> str:
    """``<prefix>{<group>}:<last part>``: the Redis key of ``name``, with the Redis Cluster hash tag ``{group}``
    (``name`` up to its last ``:``) so the keys one script touches together share a slot: ``anthropic:rpm`` and
    ``anthropic:tpm`` → ``{anthropic}``; ``anthropic:key:<fp>:rpm`` / ``:tpm`` → ``{anthropic:key:<fp>}``."""
    group, sep, last = name.rpartition(":")
    if not sep:
        return f"{prefix}{{{name}}}"
    return f"{prefix}{{{group}}}:{last}"
