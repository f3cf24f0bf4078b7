"""Engines for the store: SQLite (WAL, busy timeout) by default, PostgreSQL through psycopg 3.

A bad ``DATABASE_URL`` or an unreachable server becomes one clear line naming the host (never the password),
not a driver traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

from pulsegate.core.errors import StoreError, StoreUnreachableError

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_CONNECT_TIMEOUT_S = 5
#: libpq TCP settings: a server that vanished (host down, network partition, failover to a new address) is noticed
#: in about a minute rather than after the kernel's two-hour keepalive or fifteen-minute retransmission defaults, so
#: the recorder's writer thread gives up, spools what it holds and reconnects. A server that is up but slow is not
#: affected: its kernel still acknowledges our packets.
POSTGRES_TCP_ARGS = {
    "keepalives": 1,
    "keepalives_idle": 30,  # s of silence before the first probe
    "keepalives_interval": 10,  # s between unanswered probes
    "keepalives_count": 3,  # probes before the connection is dropped
    "tcp_user_timeout": 30_000,  # ms a sent packet may stay unacknowledged (a write to a vanished server)
}


#: Execution option: begin this connection's transactions with BEGIN IMMEDIATE (SQLite). A writer that reads
#: first (the recorder checks which ids are stored) would otherwise fail at once with "database is locked" when
#: another writer got in between, instead of waiting out the busy timeout.
SQLITE_IMMEDIATE = "pulsegate_sqlite_immediate"


def _sqlite_begin(connection: sa.Connection) -> None:
    immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: object) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun explicitly by _sqlite_begin
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def describe_url(url: URL) -> str:
    """Where a URL points, safe to print: ``PostgreSQL at host:5432, database 'x', user 'y'``."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    host = url.host or "localhost"
    port = url.port or 5432
    return f"PostgreSQL at {host}:{port}, database {url.database!r}, user {url.username!r}"


def create_store_engine(database_url: str, **engine_options: Any) -> sa.Engine:
    """An engine for ``database_url``; the SQLite file's folder is created if missing."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise StoreError(
            "DATABASE_URL is not a database URL; expected sqlite:///path/to/file.db or "
            "postgresql+psycopg://user@host:5432/db"
        ) from None
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
                Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(url, **engine_options)
            sa.event.listen(engine, "connect", _sqlite_pragmas)
            sa.event.listen(engine, "begin", _sqlite_begin)
            return engine
        if backend == "postgresql":
            if url.get_driver_name() != "psycopg":
                raise StoreError(
                    f"DATABASE_URL driver {url.drivername!r} is not supported; use postgresql+psycopg://user@host/db"
                )
            connect_args = {
                "connect_timeout": POSTGRES_CONNECT_TIMEOUT_S,
                "application_name": "pulsegate",
                **POSTGRES_TCP_ARGS,
                **engine_options.pop("connect_args", {}),
            }
            engine_options.setdefault("pool_pre_ping", True)
            return sa.create_engine(url, connect_args=connect_args, **engine_options)
    except NoSuchModuleError:
        raise StoreError(
            f"DATABASE_URL driver {url.drivername!r} is not installed; use postgresql+psycopg://"
        ) from None
    raise StoreError(f"DATABASE_URL names {backend!r}; Pulsegate supports SQLite and PostgreSQL")


def check_connection(engine: sa.Engine) -> None:
    """Connect once, or raise :class:`StoreUnreachableError` with a one-line reason."""
    try:
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
    except DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise StoreUnreachableError(f"cannot reach {describe_url(engine.url)}: {reason}") from None
