"""Retention: old rows pruned in small batches, one short transaction each.

What is kept: raw attempts ``RETENTION_DAYS`` (default 14) and the per-user hours (``user_rollups_1h``: an hour goes
once every raw row of it has gone — the top-users query reads both, so they cover the same time), minute and
10-minute rollups 30 days, hour rollups 400 days, state snapshots and the instance registry 7 days (their rollups as
long as the metric tier of the same width, the minute tier 7 days), limit changes 30 days, control commands and
their acks, probe requests, and alert deliveries 30 days. Alert history is kept 30 days too, but never at the cost
of an alert: an episode is pruned 30 days after it *resolved* (an open one — pending or firing — never), an outbox
row (``alert_notifications``) 30 days after it was written once it is delivered or has failed for good (a
``pending`` one never: it is still to be sent), and a silence 30 days after it ended or was expired early.
``worker_leases`` is the one table not pruned: it holds one row per led job and does not grow.

Why batched deletes and not daily partitions on PostgreSQL: a range-partitioned ``api_usage_metrics`` would need a
partitioned parent whose primary key includes the partition column (``(id, ts)`` instead of ``id``), which changes
the idempotent-replay contract the recorder relies on (``ON CONFLICT (id)``), and partitions must be created ahead
of time by a job that Alembic does not own — a missed run means inserts fail for a day. SQLite has no partitions,
so it needs the batched path anyway. A delete of at most ``batch_size`` ids per transaction (picked through the
time index — BRIN on PostgreSQL) holds its locks for milliseconds, never blocks the recorder's inserts for long,
and keeps WAL growth bounded; pruning daily touches about one day of rows. Partitioning stays an option if the
delete ever stops keeping up.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from pulsegate.core.clock import require_aware
from pulsegate.core.store.tables import (
    alert_deliveries,
    alert_episodes,
    alert_notifications,
    alert_silences,
    api_usage_metrics,
    control_acks,
    control_commands,
    instance_snapshots,
    instances,
    key_health_rollups,
    key_health_snapshots,
    limit_changes,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
    probe_requests,
    queue_rollups,
    user_rollups_1h,
)

DEFAULT_BATCH_SIZE = 5_000
MINUTE_ROLLUP_DAYS = 30
HOUR_ROLLUP_DAYS = 400
SNAPSHOT_DAYS = 7
CONTROL_DAYS = 30
#: Resolved alert episodes, finished outbox rows, the delivery log and ended silences: the Alerts page's history.
ALERT_DAYS = 30
#: Tables that never grow with time, so retention leaves them alone (the retention test checks every other table
#: is in :func:`retention_plan`): leases, and the gateway's apps and tokens — configuration, where a revoked token is
#: kept as the record of when a credential stopped working.
NOT_PRUNED = frozenset({"worker_leases", "gateway_apps", "gateway_tokens"})


@dataclass(slots=True)
class PruneReport:
    """Rows deleted and transactions used, per table."""

    deleted: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def retention_plan(
    now: datetime, retention_days: int, held_episodes: Collection[int] = ()
) -> list[tuple[sa.Table, sa.ColumnElement[bool]]]:
    """(table, which rows are expired) in deletion order: acks before their commands, outbox rows before the
    episodes they name. ``held_episodes``: episodes a pending outbox row still names (see :func:`held_episode_ids`),
    kept whatever their age — the dispatcher records each attempt against its episode."""

    def older(column: sa.Column[datetime], days: int) -> sa.ColumnElement[bool]:
        return column < now - timedelta(days=days)

    def snapshot_rollup_expired(table: sa.Table) -> sa.ColumnElement[bool]:
        """Each snapshot tier kept as long as the metric tier of the same width."""
        days = {60: SNAPSHOT_DAYS, 600: MINUTE_ROLLUP_DAYS, 3600: HOUR_ROLLUP_DAYS}
        return sa.or_(*(sa.and_(table.c.tier_s == tier, older(table.c.bucket, days[tier])) for tier in days))

    old_commands = sa.select(control_commands.c.id).where(older(control_commands.c.created_at, CONTROL_DAYS))
    return [
        (api_usage_metrics, older(api_usage_metrics.c.ts, retention_days)),
        # an hour goes once all of its raw rows have: when it ends (an hour after its bucket) by the raw cutoff
        (user_rollups_1h, user_rollups_1h.c.bucket <= now - timedelta(days=retention_days, hours=1)),
        (metric_rollups_1m, older(metric_rollups_1m.c.bucket, MINUTE_ROLLUP_DAYS)),
        (metric_rollups_10m, older(metric_rollups_10m.c.bucket, MINUTE_ROLLUP_DAYS)),
        (metric_rollups_1h, older(metric_rollups_1h.c.bucket, HOUR_ROLLUP_DAYS)),
        (instance_snapshots, older(instance_snapshots.c.ts, SNAPSHOT_DAYS)),
        (key_health_snapshots, older(key_health_snapshots.c.ts, SNAPSHOT_DAYS)),
        (queue_rollups, snapshot_rollup_expired(queue_rollups)),
        (key_health_rollups, snapshot_rollup_expired(key_health_rollups)),
        (instances, older(instances.c.last_seen, SNAPSHOT_DAYS)),
        (limit_changes, older(limit_changes.c.ts, MINUTE_ROLLUP_DAYS)),  # as long as the charts' minute tier
        (
            control_acks,
            sa.or_(older(control_acks.c.acked_at, CONTROL_DAYS), control_acks.c.command_id.in_(old_commands)),
        ),
        (control_commands, older(control_commands.c.created_at, CONTROL_DAYS)),
        (probe_requests, older(probe_requests.c.created_at, CONTROL_DAYS)),
        (alert_deliveries, older(alert_deliveries.c.ts, ALERT_DAYS)),
        (alert_notifications, finished_notification(now)),
        (alert_episodes, resolved_episode(now, held_episodes)),
        # ended: at ends_at, or earlier when expired by hand (expired_at is only ever set before ends_at)
        (
            alert_silences,
            sa.or_(older(alert_silences.c.ends_at, ALERT_DAYS), older(alert_silences.c.expired_at, ALERT_DAYS)),
        ),
    ]


def finished_notification(now: datetime) -> sa.ColumnElement[bool]:
    """Outbox rows written over :data:`ALERT_DAYS` ago that are done: delivered, or failed for good. A ``pending``
    row is kept however old — it is an alert not yet sent, and pruning it would lose it."""
    t = alert_notifications
    return sa.and_(t.c.status.in_(("delivered", "failed")), t.c.created_at < now - timedelta(days=ALERT_DAYS))


def resolved_episode(now: datetime, held: Collection[int] = ()) -> sa.ColumnElement[bool]:
    """Episodes resolved over :data:`ALERT_DAYS` ago and named by no pending outbox row. An open episode (pending
    or firing) has no ``resolved_at`` and is never pruned, however long it has been firing."""
    e = alert_episodes
    expired = sa.and_(e.c.state == "resolved", e.c.resolved_at < now - timedelta(days=ALERT_DAYS))
    return sa.and_(expired, e.c.id.not_in(sorted(held))) if held else expired


def held_episode_ids(engine: sa.Engine) -> set[int]:
    """Episodes named by a ``pending`` outbox row. Read before the deletes: an episode resolved over 30 days ago
    gets no new message (messages are written when an episode fires, repeats or resolves), so the set cannot grow
    under the prune. Few rows: the outbox holds only what is still to be sent."""
    t = alert_notifications
    with engine.connect() as connection:
        rows = connection.execute(sa.select(t.c.episode_ids).where(t.c.status == "pending")).scalars()
        return {int(episode) for ids in rows for episode in (ids or [])}


def delete_in_batches(
    engine: sa.Engine, table: sa.Table, expired: sa.ColumnElement[bool], batch_size: int = DEFAULT_BATCH_SIZE
) -> tuple[int, int]:
    """Delete the rows matching ``expired``, at most ``batch_size`` per transaction; returns (rows, batches).

    A batch that deletes fewer rows than ``batch_size`` is the last one (no extra empty round trip).
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size: expected a positive number of rows, got {batch_size!r}")
    key = list(table.primary_key.columns)
    chosen = sa.select(*key).where(expired).limit(batch_size)
    # rollups and acks have composite keys: row values work on PostgreSQL and SQLite >= 3.15
    condition = key[0].in_(chosen.scalar_subquery()) if len(key) == 1 else sa.tuple_(*key).in_(chosen)
    statement = table.delete().where(condition)
    deleted = batches = 0
    while True:
        with engine.begin() as connection:
            count = connection.execute(statement).rowcount
        batches += 1
        deleted += count
        if count < batch_size:
            return deleted, batches


def prune(
    engine: sa.Engine, now: datetime, *, retention_days: int = 14, batch_size: int = DEFAULT_BATCH_SIZE
) -> PruneReport:
    """Prune every table to its retention; ``report.deleted`` has the rows removed per table name."""
    if retention_days <= 0:
        raise ValueError(f"retention_days: expected a positive number of days, got {retention_days!r}")
    require_aware(now, lambda reason: ValueError(f"now: {reason}"))
    report = PruneReport()
    for table, expired in retention_plan(now, retention_days, held_episode_ids(engine)):
        deleted, batches = delete_in_batches(engine, table, expired, batch_size)
        report.deleted[table.name] = deleted
        report.batches[table.name] = batches
    return report
