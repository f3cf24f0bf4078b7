"""Retention: old rows pruned in small batches, one short transaction each.

What is kept: raw attempts ``RETENTION_DAYS`` (default 14), minute and 10-minute rollups 30 days, hour rollups 400
days, state snapshots and the instance registry 7 days (their rollups as long as the metric tier of the same width,
the minute tier 7 days), limit changes 30 days, control commands and their acks, probe requests, alert deliveries
and notifications 30 days, silences 30 days after they end.

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

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from core.store.tables import (
    alert_deliveries,
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
)

DEFAULT_BATCH_SIZE = 5_000
MINUTE_ROLLUP_DAYS = 30
HOUR_ROLLUP_DAYS = 400
SNAPSHOT_DAYS = 7
CONTROL_DAYS = 30


@dataclass(slots=True)
class PruneReport:
    """Rows deleted and transactions used, per table."""

    deleted: dict[str, int] = field(default_factory=dict)
    batches: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def retention_plan(now: datetime, retention_days: int) -> list[tuple[sa.Table, sa.ColumnElement[bool]]]:
    """(table, which rows are expired) in deletion order: acks before their commands."""

    def older(column: sa.Column[datetime], days: int) -> sa.ColumnElement[bool]:
        return column < now - timedelta(days=days)

    def snapshot_rollup_expired(table: sa.Table) -> sa.ColumnElement[bool]:
        """Each snapshot tier kept as long as the metric tier of the same width."""
        days = {60: SNAPSHOT_DAYS, 600: MINUTE_ROLLUP_DAYS, 3600: HOUR_ROLLUP_DAYS}
        return sa.or_(*(sa.and_(table.c.tier_s == tier, older(table.c.bucket, days[tier])) for tier in days))

    old_commands = sa.select(control_commands.c.id).where(older(control_commands.c.created_at, CONTROL_DAYS))
    return [
        (api_usage_metrics, older(api_usage_metrics.c.ts, retention_days)),
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
        (alert_deliveries, older(alert_deliveries.c.ts, CONTROL_DAYS)),
        (alert_notifications, older(alert_notifications.c.created_at, CONTROL_DAYS)),
        (alert_silences, older(alert_silences.c.ends_at, CONTROL_DAYS)),
    ]


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
    if now.tzinfo is None:
        raise ValueError(f"now: expected a timezone-aware datetime, got {now!r}")
    report = PruneReport()
    for table, expired in retention_plan(now, retention_days):
        deleted, batches = delete_in_batches(engine, table, expired, batch_size)
        report.deleted[table.name] = deleted
        report.batches[table.name] = batches
    return report
