"""Leader election on real SQLite and PostgreSQL stores, time moved by a ManualClock.

Two electors (two workers' ``Leadership``) compete for the same store; the lease row is read back to show what
every replica sees.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.clock import ManualClock
from pulsegate.core.store.tables import worker_leases
from pulsegate.jobs.service.leadership import Election, Leadership, LeaseLeadership, PostgresLeadership, leadership_for

LEASE = 3.0


def electors(store: sa.Engine) -> tuple[Leadership, Leadership]:
    return leadership_for(store, "worker-a", LEASE), leadership_for(store, "worker-b", LEASE)


async def close(*leaderships: Leadership) -> None:
    for leadership in leaderships:
        await leadership.close()


async def session_ended(store: sa.Engine, holder: str) -> None:
    """Wait (up to 5 s) until the server has ended ``holder``'s leader session: a client closing its socket, or
    ``pg_terminate_backend``, returns at once; the backend exits — and frees the advisory lock — a moment later."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND datname = current_database()"
    )
    for _ in range(500):
        with store.connect() as connection:
            if connection.execute(query, {"name": f"pulsegate-leader {holder}"}).scalar_one() == 0:
                return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{holder}'s leader session is still open 5 s after it was ended")


def lease_rows(store: sa.Engine) -> list[tuple[str, str]]:
    with store.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.select(worker_leases.c.name, worker_leases.c.holder))]


async def test_the_backend_fits_the_store(store: sa.Engine) -> None:
    a, _ = electors(store)
    expected = PostgresLeadership if store.dialect.name == "postgresql" else LeaseLeadership
    assert type(a) is expected


async def test_one_of_two_electors_leads_and_both_see_who(store: sa.Engine, clock: ManualClock) -> None:
    a, b = electors(store)
    try:
        assert await a.acquire_or_renew(clock.now()) is True
        assert await b.acquire_or_renew(clock.now()) is False
        seen_by_b = await b.holder(clock.now())
        assert seen_by_b.holder == "worker-a"
        assert seen_by_b.acquired_at == clock.now()
        assert seen_by_b.expires_at == clock.now() + timedelta(seconds=LEASE)
        assert seen_by_b.silent is False
        assert seen_by_b.to_json("worker-b")["is_self"] is False
        assert lease_rows(store) == [("scheduler", "worker-a")]
    finally:
        await close(a, b)


async def test_renewal_keeps_the_lease_and_its_start(store: sa.Engine, clock: ManualClock) -> None:
    a, b = electors(store)
    start = clock.now()
    try:
        assert await a.acquire_or_renew(start)
        for _ in range(9):  # three lease periods, renewed every third
            clock.advance(LEASE / 3)
            assert await a.acquire_or_renew(clock.now()) is True
            assert await b.acquire_or_renew(clock.now()) is False
        info = await b.holder(clock.now())
        assert (info.holder, info.acquired_at, info.renewed_at) == ("worker-a", start, clock.now())
        assert info.expires_at == clock.now() + timedelta(seconds=LEASE)
    finally:
        await close(a, b)


async def test_release_on_shutdown_hands_over_at_once(store: sa.Engine, clock: ManualClock) -> None:
    a, b = electors(store)
    try:
        assert await a.acquire_or_renew(clock.now())
        await a.release(clock.now())
        assert (await b.holder(clock.now())).holder is None
        assert await b.acquire_or_renew(clock.now()) is True
        assert lease_rows(store) == [("scheduler", "worker-b")]
    finally:
        await close(a, b)


async def test_sqlite_lease_expires_and_a_standby_takes_it(tmp_path, clock: ManualClock) -> None:
    from pulsegate import migrations
    from pulsegate.core.store import create_store_engine

    url = f"sqlite:///{tmp_path / 'lease.db'}"
    migrations.upgrade(url)
    store = create_store_engine(url)
    a, b = LeaseLeadership(store, "worker-a", LEASE), LeaseLeadership(store, "worker-b", LEASE)
    try:
        assert await a.acquire_or_renew(clock.now())
        clock.advance(LEASE - 0.001)
        assert await b.acquire_or_renew(clock.now()) is False  # not a moment early
        assert (await b.holder(clock.now())).silent is False
        clock.advance(0.001)
        assert (await b.holder(clock.now())).silent is True  # the standby reports the silent leader
        assert await b.acquire_or_renew(clock.now()) is True
        assert await a.acquire_or_renew(clock.now()) is False  # the old leader learns it lost
        info = await a.holder(clock.now())
        assert (info.holder, info.acquired_at) == ("worker-b", clock.now())
    finally:
        store.dispose()


@pytest.mark.postgres
async def test_postgres_lock_is_freed_when_the_leader_session_dies(postgres_store_url: str, clock: ManualClock) -> None:
    from pulsegate.core.store import create_store_engine

    store = create_store_engine(postgres_store_url)
    with store.begin() as connection:
        connection.execute(worker_leases.delete())
    a, b = PostgresLeadership(store, "worker-a", LEASE), PostgresLeadership(store, "worker-b", LEASE)
    try:
        assert await a.acquire_or_renew(clock.now())
        clock.advance(LEASE * 5)  # time alone never expires a lock whose session lives
        assert await b.acquire_or_renew(clock.now()) is False
        assert (await b.holder(clock.now())).silent is True  # ...but a leader that stopped renewing is reported
        with store.connect() as connection:  # the leader's process dies: the server ends its session
            killed = connection.execute(
                sa.text(  # this test's scratch database only: other runs on the server lead under the same name
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name AND datname = current_database()"
                ),
                {"name": "pulsegate-leader worker-a"},
            ).all()
        assert killed == [(True,)]
        await session_ended(store, "worker-a")
        assert await b.acquire_or_renew(clock.now()) is True
        assert (await b.holder(clock.now())).holder == "worker-b"
        assert await a.acquire_or_renew(clock.now()) is False  # its session is gone: it does not lead
        assert a.held is False
    finally:
        await close(a, b)
        store.dispose()


class Outage(Leadership):
    """A real backend whose store can be cut off: calls raise while ``down`` (as a dead connection would)."""

    def __init__(self, inner: Leadership) -> None:
        super().__init__(inner.engine, inner.instance_id, inner.lease_s)
        self.inner = inner
        self.down = False

    async def acquire_or_renew(self, now):  # type: ignore[no-untyped-def]
        if self.down:
            raise sa.exc.OperationalError("UPDATE worker_leases", {}, Exception("could not connect to server"))
        return await self.inner.acquire_or_renew(now)

    async def release(self, now):  # type: ignore[no-untyped-def]
        await self.inner.release(now)

    async def holder(self, now):  # type: ignore[no-untyped-def]
        if self.down:
            raise sa.exc.OperationalError("SELECT", {}, Exception("could not connect to server"))
        return await self.inner.holder(now)

    async def close(self) -> None:
        await self.inner.close()


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def callbacks(self, name: str) -> dict[str, object]:
        async def elected() -> None:
            self.events.append(f"{name} elected")

        async def demoted() -> None:
            self.events.append(f"{name} demoted")

        return {"on_elected": elected, "on_demoted": demoted}


async def test_a_leader_that_cannot_renew_stops_before_its_lease_ends(store: sa.Engine, clock: ManualClock) -> None:
    a_inner, b_inner = electors(store)
    a = Outage(a_inner)
    events = Recorder()
    ea = Election(a, clock=clock, **events.callbacks("a"))  # type: ignore[arg-type]
    eb = Election(b_inner, clock=clock, **events.callbacks("b"))  # type: ignore[arg-type]
    try:
        assert await ea.tick() is True and await eb.tick() is False
        assert eb.leader.holder == "worker-a" and eb.role == "standby"
        a.down = True
        clock.advance(LEASE / 3)
        assert await ea.tick() is True  # one failed renewal: the lease still covers it
        assert ea.failures == 1 and ea.last_error == "(builtins.Exception) could not connect to server"
        clock.advance(LEASE / 3 - 0.01)
        assert ea.is_leader() is True
        clock.advance(0.01)  # two thirds of the lease since the last confirmed renewal
        assert ea.is_leader() is False  # no job starts from here on, even before the loop notices
        assert await ea.tick() is False
        assert events.events == ["a elected", "a demoted"]
        if store.dialect.name == "sqlite":
            assert await eb.tick() is False  # its lease has a third left: nobody else leads yet
            clock.advance(LEASE / 3)
        else:
            await (
                a_inner.close()
            )  # the server ends the unreachable session (see pulsegate.jobs.service.leadership.postgres)
            await session_ended(store, "worker-a")
        assert await eb.tick() is True
        assert events.events == ["a elected", "a demoted", "b elected"]
    finally:
        await close(a_inner, b_inner)


async def test_a_standby_takes_over_a_dead_leader_within_two_lease_periods(
    store: sa.Engine, clock: ManualClock
) -> None:
    a, b = electors(store)
    ea, eb = Election(a, clock=clock), Election(b, clock=clock)
    try:
        assert await ea.tick() and not await eb.tick()
        last_renewal = clock.now()
        if store.dialect.name == "postgresql":
            await a.close()  # kill -9: the server ends the session and frees the lock
            await session_ended(store, "worker-a")
        waited = 0.0
        while not await eb.tick():  # ea ticks no more: its process is gone
            clock.advance(eb.renew_every_s)
            waited += eb.renew_every_s
        assert eb.is_leader() and eb.leader.holder == "worker-b"
        # SQLite: the lease is free the moment it expires (ticks here fall on it; worst case a tick later,
        # LEASE + LEASE / 3); PostgreSQL: the lock is free as soon as the session ends
        assert waited == pytest.approx(0.0 if store.dialect.name == "postgresql" else LEASE)
        assert clock.now() - last_renewal < timedelta(seconds=2 * LEASE)
    finally:
        await close(a, b)


async def test_a_slow_store_counts_as_no_answer(store: sa.Engine, clock: ManualClock) -> None:
    class Hanging(Outage):
        async def acquire_or_renew(self, now):  # type: ignore[no-untyped-def]
            if self.down:
                await asyncio.sleep(60)
            return await self.inner.acquire_or_renew(now)

    inner, _ = electors(store)
    hanging = Hanging(inner)
    election = Election(hanging, clock=clock)
    try:
        assert await election.tick()
        hanging.down = True
        clock.advance(LEASE * 2 / 3)  # past the deadline: the renewal gets no time at all
        assert await asyncio.wait_for(election.tick(), 5) is False
        assert election.last_error == "no answer in time"
    finally:
        await inner.close()
