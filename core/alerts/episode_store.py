"""Episodes in the database: load the open ones, write a transition's difference, mark a notification sent.

Every write is conditional on the state it was decided from (``WHERE state = …``, ``last_notified_at IS NULL``,
the partial unique index on open fingerprints). When two evaluators race, the second finds nothing to change and
raises :class:`EpisodeConflict` (or the database reports contention, :func:`is_contention`): its caller rolls the group
back and writes nothing, so a notification is written once.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Literal

import sqlalchemy as sa

from pulsegate.core.alerts.episode import OPEN_STATES, Episode
from pulsegate.core.errors import PulsegateError
from pulsegate.core.store.tables import alert_episodes


class EpisodeConflict(PulsegateError):
    """Another evaluator changed what this group's transaction was decided from: roll back, write nothing."""


def is_contention(exc: sa.exc.OperationalError) -> bool:
    """A deadlock / serialization failure / busy database: another evaluator is at it; not a broken store."""
    text = str(exc.orig or exc).lower()
    return any(word in text for word in ("deadlock", "could not serialize", "database is locked"))


def open_episodes(store: sa.Engine) -> dict[str, Episode]:
    """Pending and firing episodes by fingerprint, oldest first."""
    e = alert_episodes
    with store.connect() as connection:
        rows = connection.execute(sa.select(e).where(e.c.state.in_(OPEN_STATES)).order_by(e.c.id)).mappings()
        return {row["fingerprint"]: Episode.from_row(row) for row in rows}


def write(connection: sa.Connection, before: Episode | None, after: Episode) -> None:
    """Store ``after`` in place of ``before``: insert a new episode, or update the columns that changed where the
    row is still in ``before``'s state. A change of state that finds the row moved on raises :class:`EpisodeConflict`
    (a second open episode of a fingerprint breaks the unique index: IntegrityError)."""
    e = alert_episodes
    if before is None:
        row = asdict(after)
        del row["id"]
        connection.execute(e.insert().values(**row))
        return
    values = after.changes_from(before)
    if not values:
        return
    updated = connection.execute(
        e.update().where(e.c.id == before.id, e.c.state == before.state).values(**values)
    ).rowcount
    if updated != 1 and after.state != before.state:
        raise EpisodeConflict(before.fingerprint)


def mark_notified(
    connection: sa.Connection,
    episode: Episode,
    transition: Literal["firing", "repeat"],
    now: datetime,
    repeat_interval_s: float,
) -> None:
    """Set ``last_notified_at`` for a firing (never notified) or repeat (not notified for the interval) message;
    :class:`EpisodeConflict` when another evaluator did first."""
    e = alert_episodes
    condition = (
        e.c.last_notified_at.is_(None)
        if transition == "firing"
        else e.c.last_notified_at <= now - timedelta(seconds=repeat_interval_s)
    )
    updated = connection.execute(
        e.update().where(e.c.id == episode.id, e.c.state == "firing", condition).values(last_notified_at=now)
    ).rowcount
    if updated != 1:
        raise EpisodeConflict(episode.fingerprint)
