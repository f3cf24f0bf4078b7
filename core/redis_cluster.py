"""Which kind of Redis ``REDIS_URL`` names, asked of the server itself, and redis-py's cluster clients for a cluster.

There is no setting for it: a Redis Cluster node answers ``INFO cluster`` with ``cluster_enabled:1``, and any one
node's URL (``redis://host:port/0``) is enough for redis-py's cluster client to find the others. A plain Redis (or
one that refuses ``INFO``, as some managed services' ACLs do) keeps the link's single-node fast path; only a cluster
pays for the cluster client's routing (key → slot → node, ``MOVED`` / ``ASK`` followed, the topology refreshed).

A cluster has one database, 0: a URL naming another cannot work there, and :class:`RedisUrlError` says so. It is a
:class:`redis.RedisError` on purpose, so the link treats it like any other Redis failure — calls go on under local
state, one warning (naming ``REDIS_URL`` and the fix) per outage — instead of failing calls over a setting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.connection import parse_url

from pulsegate.core.errors import PulsegateError

Mode = Literal["single", "cluster"]
SINGLE: Mode = "single"
CLUSTER: Mode = "cluster"


class RedisUrlError(PulsegateError, redis.RedisError):
    """The server answers, but ``REDIS_URL`` cannot work with it (another database than 0 on a cluster)."""


def mode_from_info(url: str, info: Mapping[str, Any]) -> Mode:
    """``single`` or ``cluster`` from the server's ``INFO cluster``; raises :class:`RedisUrlError` for a cluster
    that ``url`` cannot address (a database other than 0, a Unix socket)."""
    if not int(info.get("cluster_enabled", 0) or 0):
        return SINGLE
    parts = parse_url(url)
    if parts.get("path"):
        raise RedisUrlError(
            "REDIS_URL names a Unix socket, but the server is a Redis Cluster node and redis-py reaches a cluster "
            "over TCP only: set REDIS_URL to any node's redis://host:port/0"
        )
    database = int(parts.get("db", 0) or 0)
    if database:
        raise RedisUrlError(
            f"REDIS_URL names database {database}, but the server is a Redis Cluster node and a cluster has only "
            "database 0: end REDIS_URL with /0"
        )
    return CLUSTER


async def detect(url: str, timeout_s: float) -> Mode:
    """Ask the server (one ``INFO cluster``) which kind it is. A server that refuses ``INFO`` (an ACL) is taken as
    a single Redis, as before cluster support; connection failures propagate (the caller degrades). Asked on a
    connection of its own that selects no database: a cluster node refuses ``SELECT 3`` before it could say it is
    a cluster."""
    client = aioredis.Redis.from_url(_database_0(url), **_quick(timeout_s, aioredis.retry.Retry))
    try:
        info = await client.info("cluster")
    except redis.ResponseError:
        return SINGLE
    finally:
        await client.aclose()
    return mode_from_info(url, info)


async def detect_on(conn: AbstractConnection, url: str, timeout_s: float) -> Mode:
    """:func:`detect` on one of the link's own script connections, so a single Redis costs no extra connection. The
    connection is left to the caller, except on a ``ResponseError`` (``INFO`` refused, or a cluster node refusing the
    URL's ``SELECT``): it is closed and :func:`detect` asks on a connection of its own."""
    try:
        await conn.send_packed_command(hiredis.pack_command(("INFO", "cluster")), check_health=False)
        raw = await conn.read_response()
    except redis.ResponseError:
        await conn.disconnect(nowait=True)
        return await detect(url, timeout_s)
    return mode_from_info(url, _parse_info(raw))


def detect_blocking(url: str, timeout_s: float) -> Mode:
    """:func:`detect` for synchronous callers."""
    client = redis.Redis.from_url(_database_0(url), **_quick(timeout_s, redis.retry.Retry))
    try:
        info = client.info("cluster")
    except redis.ResponseError:
        return SINGLE
    finally:
        client.close()
    return mode_from_info(url, info)  # type: ignore[arg-type]


def _database_0(url: str) -> str:
    """``url`` without its database (path or ``?db=``), so connecting sends no ``SELECT``."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return url
    query = urlencode([(name, value) for name, value in parse_qsl(parts.query) if name != "db"])
    return urlunsplit(parts._replace(path="", query=query))


def _quick(timeout_s: float, retry: type[Any]) -> dict[str, Any]:
    """The link's client options: short timeouts, no retries (a failure is the caller's to judge)."""
    return {"socket_timeout": timeout_s, "socket_connect_timeout": timeout_s, "retry": retry(NoBackoff(), 0)}


def async_cluster_client(url: str, timeout_s: float) -> AsyncRedisCluster:
    """redis-py's asyncio cluster client with the link's short timeouts and no retries of its own (the link decides
    what a failure means; ``MOVED`` / ``ASK`` redirections are still followed)."""
    return AsyncRedisCluster.from_url(url, **_quick(timeout_s, aioredis.retry.Retry))


def blocking_cluster_client(url: str, timeout_s: float) -> RedisCluster:
    """:func:`async_cluster_client` for synchronous readers."""
    return RedisCluster.from_url(url, **_quick(timeout_s, redis.retry.Retry))


def describe_mode(url: str, timeout_s: float = 2.0) -> str:
    """What ``pulsegate settings`` shows for ``REDIS_URL``: ``single``, ``cluster (N masters)``, or why it cannot
    say. Never the URL itself (the caller shows it masked); redis-py's errors name host and port only."""
    try:
        if detect_blocking(url, timeout_s) == SINGLE:
            return "single (INFO cluster: cluster_enabled:0)"
        client = redis.Redis.from_url(url, **_quick(timeout_s, redis.retry.Retry))
        try:
            info = client.cluster("INFO")
        finally:
            client.close()
        return f"cluster ({info.get('cluster_size', '?')} masters, cluster_state:{info.get('cluster_state', '?')})"
    except RedisUrlError as exc:
        return f"cluster, unusable: {exc}"
    except redis.RedisError as exc:
        return f"unknown: Redis did not answer ({type(exc).__name__}: {exc})"


def _parse_info(raw: bytes | str) -> dict[str, str]:
    """An ``INFO`` reply read raw (``name:value`` lines) as a dict."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return {name: value for name, sep, value in (line.partition(":") for line in text.splitlines()) if sep}
