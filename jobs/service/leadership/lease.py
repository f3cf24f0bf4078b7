"""Leases in the ``worker_leases`` table: the leader's lease on SQLite, and every job's claim on its period.

A lease is taken with one conditional ``UPDATE … WHERE name = :name AND (expires_at <= :now [OR holder = :me])``
(then an ``INSERT … ON CONFLICT DO NOTHING`` for a name never seen): the database decides, so two workers can
never both win, whatever their timing. On SQLite the transaction begins ``IMMEDIATE`` — the write lock is taken
first and a concurrent writer waits out the busy timeout instead of failing.

A *period claim* (``job:<id>``) is the same row taken for one run: a job runs only if nobody ran it in the
current period, so even two workers that both believe they lead (a partition, a paused process coming back)
cannot run a job twice in one period; its ``acquired_at`` is the last run's start, from which a new leader
resumes the schedule instead of starting afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pulsegate.core.store.engine import SQLITE_IMMEDIATE
from pulsegate.core.store.tables import Timestamp, worker_leases
from pulsegate.jobs.service.leadership.base import LEADER_LEASE_NAME, LeaderInfo, Leadership

CLAIM_PREFIX = "job:"
NAME_MAX = 64


def claim_name(job_id: str) -> str:
    """The lease name of a job's period claim (hashed when the id would not fit the 64-character column)."""
    name = CLAIM_PREFIX + job_id
    if len(name) <= NAME_MAX:
        return name
    digest = hashlib.sha256(job_id.encode()).hexdigest()[:12]
    return f"{name[: NAME_MAX - 13]}~{digest}"


def _writer(engine: sa.Engine) -> sa.Engine:
    if engine.dialect.name == "sqlite":
        return engine.execution_options(**{SQLITE_IMMEDIATE: True})
    return engine


def take_lease(
    connection: sa.Connection, name: str, holder: str, now: datetime, duration_s: float, *, renew_own: bool
) -> bool:
    """Take (or, with ``renew_own``, extend our own) lease ``name`` until ``now + duration_s``; True if we got it."""
    t = worker_leases
    expires = now + timedelta(seconds=duration_s)
    free = t.c.expires_at <= now
    ours = sa.and_(t.c.holder == holder, t.c.expires_at > now)
    values: dict[str, object] = {"holder": holder, "renewed_at": now, "expires_at": expires}
    if renew_own:
        values["acquired_at"] = sa.case((ours, t.c.acquired_at), else_=sa.literal(now, Timestamp))
        condition = sa.or_(free, t.c.holder == holder)
    else:
        values["acquired_at"] = now
        condition = free
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT through SQLAlchemy
    update = t.update().where(t.c.name == name, condition).values(**values).returning(t.c.name)
    if connection.execute(update).first() is not None:
        return True
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    row = {"name": name, "holder": holder, "acquired_at": now, "renewed_at": now, "expires_at": expires}
    return connection.execute(insert(t).values(**row).on_conflict_do_nothing().returning(t.c.name)).first() is not None


def drop_lease(connection: sa.Connection, name: str, holder: str) -> int:
    """Delete lease ``name`` if ``holder`` holds it; returns the rows deleted (0 or 1)."""
    t = worker_leases
    return connection.execute(t.delete().where(t.c.name == name, t.c.holder == holder)).rowcount


def claim_period(engine: sa.Engine, job_id: str, holder: str, now: datetime, period_s: float) -> bool:
    """Blocking: claim job ``job_id``'s period starting ``now``; False when it already ran within its period."""
    with _writer(engine).begin() as connection:
        return take_lease(connection, claim_name(job_id), holder, now, period_s, renew_own=False)


def last_claims(engine: sa.Engine, job_ids: list[str], now: datetime) -> dict[str, LeaderInfo]:
    """Blocking: each job's last claim (``acquired_at`` = its last run's start, ``holder`` = who ran it)."""
    names = {claim_name(job_id): job_id for job_id in job_ids}
    if not names:
        return {}
    query = sa.select(worker_leases).where(worker_leases.c.name.in_(list(names)))
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    return {
        names[row["name"]]: LeaderInfo(
            row["holder"], row["acquired_at"], row["renewed_at"], row["expires_at"], silent=row["expires_at"] <= now
        )
        for row in rows
    }


class LeaseLeadership(Leadership):
    """The leader's lease as a row with an expiry (SQLite; works on any SQL store).

    The leader extends it every ``lease_s / 3``; a standby takes it once ``expires_at`` has passed, so a dead
    leader is replaced within ``lease_s + lease_s / 3`` — under the two lease periods promised.
    """

    def __init__(self, engine: sa.Engine, instance_id: str, lease_s: float, name: str = LEADER_LEASE_NAME) -> None:
        super().__init__(engine, instance_id, lease_s, name)
        self._busy = threading.Lock()

    def _take(self, now: datetime) -> bool:
        # a call the election gave up on (store locked, busy timeout) must not pile up threads behind it
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("the previous leadership call to the store is still running")
        try:
            with _writer(self.engine).begin() as connection:
                return take_lease(connection, self.name, self.instance_id, now, self.lease_s, renew_own=True)
        finally:
            self._busy.release()

    def _drop(self) -> int:
        with _writer(self.engine).begin() as connection:
            return drop_lease(connection, self.name, self.instance_id)

    async def acquire_or_renew(self, now: datetime) -> bool:
        return await asyncio.to_thread(self._take, now)

    async def release(self, now: datetime) -> None:
        await asyncio.to_thread(self._drop)
