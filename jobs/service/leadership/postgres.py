"""Leadership on PostgreSQL: a session-level advisory lock held on a dedicated connection.

The lock lives exactly as long as the session: when the leader's process dies the server ends the session and
frees the lock at once, and the next standby attempt (every ``lease_s / 3``) wins it. The leader proves the
session is alive on every renewal by updating the ``worker_leases`` row through that same connection (the row is
for visibility — who leads, since when, last renewal — the lock is what decides).

A leader cut off from the server cannot renew and stops its jobs two thirds of a lease after its last confirmed
renewal (see :class:`~pulsegate.jobs.service.leadership.election.Election`). The session is told to give a silent peer
up only after a full lease (TCP keepalives and ``tcp_user_timeout``, set on both ends), so the server frees the lock
after the old leader has stopped — never before.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from pulsegate.core.store.tables import worker_leases
from pulsegate.jobs.service.leadership.base import LEADER_LEASE_NAME, Leadership
from pulsegate.jobs.service.leadership.lease import drop_lease

log = logging.getLogger(__name__)

KEEPALIVE_COUNT = 2


def advisory_key(name: str) -> int:
    """A stable signed 64-bit lock id for ``name`` (advisory locks are per database, so names never collide
    across stores)."""
    return int.from_bytes(hashlib.sha256(f"pulsegate:{name}".encode()).digest()[:8], "big", signed=True)


class PostgresLeadership(Leadership):
    """``pg_try_advisory_lock`` on a dedicated connection, plus the lease row for everyone to read."""

    def __init__(self, engine: sa.Engine, instance_id: str, lease_s: float, name: str = LEADER_LEASE_NAME) -> None:
        super().__init__(engine, instance_id, lease_s, name)
        self.lock_key = advisory_key(name)
        self._lock_engine: sa.Engine | None = None
        self._connection: sa.Connection | None = None
        self._held = False
        self._busy = threading.Lock()

    @property
    def held(self) -> bool:
        return self._held

    # --- the dedicated connection ------------------------------------------------------------------------------

    def _connect(self) -> sa.Connection:
        if self._connection is not None:
            return self._connection
        if self._lock_engine is None:
            lease = max(1, math.ceil(self.lease_s))
            connect_args = {
                "connect_timeout": max(2, lease),
                "application_name": f"pulsegate-leader {self.instance_id}"[:63],
                "keepalives": 1,
                "keepalives_idle": lease,
                "keepalives_interval": 1,
                "keepalives_count": KEEPALIVE_COUNT,
                "tcp_user_timeout": lease * 1000,
            }
            self._lock_engine = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool, connect_args=connect_args)
        connection = self._lock_engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        lease_ms = max(1000, math.ceil(self.lease_s * 1000))
        settings = [
            f"SET statement_timeout = {max(500, lease_ms // 3)}",
            f"SET tcp_keepalives_idle = {lease_ms // 1000}",
            "SET tcp_keepalives_interval = 1",
            f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}",
            f"SET tcp_user_timeout = {lease_ms}",
        ]
        for statement in settings:
            try:
                connection.exec_driver_sql(statement)
            except sa.exc.DBAPIError as exc:  # an old server without tcp_user_timeout: keep the rest
                log.debug("leader connection: %s failed: %s", statement, exc)
        self._connection = connection
        return connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        self._held = False
        if connection is not None:
            try:
                connection.invalidate()  # never back to a pool: the session (and its lock) must end
                connection.close()
            except Exception as exc:  # already broken: nothing left to free
                log.debug("leader connection close: %s", exc)

    # --- blocking steps ----------------------------------------------------------------------------------------

    def _write_row(self, connection: sa.Connection, now: datetime, *, acquired: bool) -> None:
        t = worker_leases
        expires = now + timedelta(seconds=self.lease_s)
        if not acquired:
            renewed = connection.execute(
                t.update()
                .where(t.c.name == self.name, t.c.holder == self.instance_id)
                .values(renewed_at=now, expires_at=expires)
            ).rowcount
            if renewed:
                return
        row = {"name": self.name, "holder": self.instance_id, "acquired_at": now, "renewed_at": now}
        statement = postgresql.insert(t).values(**row, expires_at=expires)
        update = {key: statement.excluded[key] for key in ("holder", "acquired_at", "renewed_at", "expires_at")}
        connection.execute(statement.on_conflict_do_update(index_elements=[t.c.name], set_=update))

    def _acquire_or_renew(self, now: datetime) -> bool:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the previous leadership call to PostgreSQL is still running")
        try:
            connection = self._connect()
            try:
                if self._held:
                    self._write_row(connection, now, acquired=False)
                    return True
                got = connection.execute(sa.select(sa.func.pg_try_advisory_lock(self.lock_key))).scalar_one()
                if got:
                    self._held = True
                    self._write_row(connection, now, acquired=True)
                return bool(got)
            except sa.exc.DBAPIError:
                held = self._held
                self._disconnect()  # the session may be dead: our lock with it; start over on a fresh one
                if held:
                    return False  # we cannot prove we still hold it: stop leading now
                raise
        finally:
            self._busy.release()

    def _release(self) -> None:
        with self._busy:
            connection = self._connection
            if connection is None or not self._held:
                return
            try:
                drop_lease(connection, self.name, self.instance_id)
                connection.execute(sa.select(sa.func.pg_advisory_unlock(self.lock_key)))
            finally:
                self._disconnect()

    def _close(self) -> None:
        with self._busy:
            self._disconnect()
            if self._lock_engine is not None:
                self._lock_engine.dispose()
                self._lock_engine = None

    # --- async interface ---------------------------------------------------------------------------------------

    async def acquire_or_renew(self, now: datetime) -> bool:
        return await asyncio.to_thread(self._acquire_or_renew, now)

    async def release(self, now: datetime) -> None:
        await asyncio.to_thread(self._release)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)
