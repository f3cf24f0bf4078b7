"""Per-minute and per-hour rollups of the state snapshots, and the instance registry, written with each heartbeat.

A heartbeat every 5 s from every instance is 17,280 snapshot rows per instance, provider and key a day; grouping
those for a 24 h or 7 d chart takes seconds. So each heartbeat also folds its rows into one rollup row per tier
(``SNAPSHOT_TIERS_S``) × bucket × provider (× key) × instance — the peak queue depth and longest wait, the lowest
key score and worst status, breaker-open samples — and upserts its own row in ``instances`` (last heartbeat time),
so "what is current" is a lookup among a handful of instances instead of a scan of snapshots.

Every row carries the instance id in its key: instances never write the same row, so concurrent heartbeats from
several app servers never contend or deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pulsegate.core.store.tables import (
    SNAPSHOT_TIERS_S,
    instance_snapshots,
    instances,
    key_health_rollups,
    key_health_snapshots,
    queue_rollups,
)

#: Key status severity: the worst view of a key across instances is the highest rank.
KEY_STATUS_RANK: dict[str, int] = {"healthy": 0, "degraded": 1, "unhealthy": 2, "cooldown": 3, "disabled": 4}
RANK_STATUS: dict[int, str] = {rank: status for status, rank in KEY_STATUS_RANK.items()}
UNKNOWN_STATUS_RANK = len(KEY_STATUS_RANK) - 1


def tier_bucket(moment: datetime, tier_s: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % tier_s, UTC)


def _insert(connection: sa.Connection) -> Any:
    return postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert


def _greatest(connection: sa.Connection, current: sa.ColumnElement, new: sa.ColumnElement) -> sa.ColumnElement:
    """The larger of two values, NULL only when both are (SQLite's two-argument max() is NULL if either is)."""
    if connection.dialect.name == "postgresql":
        return sa.func.greatest(current, new)
    return sa.func.max(sa.func.coalesce(current, new), sa.func.coalesce(new, current))


def _least(connection: sa.Connection, current: sa.ColumnElement, new: sa.ColumnElement) -> sa.ColumnElement:
    if connection.dialect.name == "postgresql":
        return sa.func.least(current, new)
    return sa.func.min(sa.func.coalesce(current, new), sa.func.coalesce(new, current))


def write_snapshots(
    connection: sa.Connection, instance_rows: Sequence[dict[str, Any]], key_rows: Sequence[dict[str, Any]]
) -> None:
    """Insert snapshot rows, fold them into every rollup tier and move each instance's ``last_seen`` forward —
    in the caller's transaction, so the three never disagree."""
    if instance_rows:
        connection.execute(instance_snapshots.insert(), list(instance_rows))
    if key_rows:
        connection.execute(key_health_snapshots.insert(), list(key_rows))
    upsert_queue_rollups(connection, instance_rows)
    upsert_key_health_rollups(connection, key_rows)
    register_instances(connection, instance_rows)


def register_instances(connection: sa.Connection, instance_rows: Sequence[dict[str, Any]]) -> None:
    """Upsert each reporting instance's registry row; ``last_seen`` only moves forward."""
    values = [
        {
            "instance_id": row["instance_id"],
            "kind": row["kind"],
            "host": row.get("host"),
            "pid": row.get("pid"),
            "first_seen": row["ts"],
            "last_seen": row["ts"],
        }
        for row in instance_rows
    ]
    if values:
        merges = {"kind": "new", "host": "new", "pid": "new", "first_seen": "min", "last_seen": "max"}
        _merge_into(connection, instances, values, merges)


def _max(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _add(a: int, b: int) -> int:
    return a + b


#: How a rollup column merges two values: in Python (rows of one statement) and in SQL (with the stored row).
_MERGES: dict[str, tuple[Callable[[Any, Any], Any], Callable[..., sa.ColumnElement]]] = {
    "max": (_max, lambda connection, current, new: _greatest(connection, current, new)),
    "min": (_min, lambda connection, current, new: _least(connection, current, new)),
    "add": (_add, lambda connection, current, new: current + new),
    "new": (lambda _current, new: new, lambda connection, current, new: new),
}


def _merge_into(
    connection: sa.Connection, table: sa.Table, values: Sequence[dict[str, Any]], merges: dict[str, str]
) -> None:
    """Upsert rows, merging each column of ``merges`` with what is stored: ``max``, ``min``, ``add`` or ``new``
    (the incoming value).

    Rows with the same key are merged here first (one statement may not upsert a row twice), and the statement
    sends them in key order.
    """
    key = [column.name for column in table.primary_key.columns]
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for value in values:
        k = tuple(value[name] for name in key)
        current = merged.get(k)
        if current is None:
            merged[k] = dict(value)
            continue
        for name, how in merges.items():
            current[name] = _MERGES[how][0](current[name], value[name])
    statement = _insert(connection)(table)
    excluded = statement.excluded
    update = {name: _MERGES[how][1](connection, table.c[name], excluded[name]) for name, how in merges.items()}
    connection.execute(
        statement.on_conflict_do_update(index_elements=list(table.primary_key.columns), set_=update),
        [merged[k] for k in sorted(merged)],
    )


def upsert_queue_rollups(connection: sa.Connection, instance_rows: Sequence[dict[str, Any]]) -> None:
    """Fold ``instance_snapshots`` rows into every tier."""
    if not instance_rows:
        return
    values = [
        {
            "tier_s": tier,
            "bucket": tier_bucket(row["ts"], tier),
            "provider": row["provider"],
            "instance_id": row["instance_id"],
            "max_queue_depth": int(row.get("queue_depth") or 0),
            "max_oldest_wait_ms": row.get("oldest_wait_ms"),
            "breaker_open_samples": 1 if row.get("breaker_state") == "open" else 0,
            "samples": 1,
        }
        for tier in SNAPSHOT_TIERS_S
        for row in instance_rows
    ]
    merges = {"max_queue_depth": "max", "max_oldest_wait_ms": "max", "breaker_open_samples": "add", "samples": "add"}
    _merge_into(connection, queue_rollups, values, merges)


def upsert_key_health_rollups(connection: sa.Connection, key_rows: Sequence[dict[str, Any]]) -> None:
    """Fold ``key_health_snapshots`` rows into every tier."""
    if not key_rows:
        return
    values = [
        {
            "tier_s": tier,
            "bucket": tier_bucket(row["ts"], tier),
            "provider": row["provider"],
            "key_label": row["key_label"],
            "instance_id": row["instance_id"],
            "min_score": float(row["score"]),
            "worst_rank": KEY_STATUS_RANK.get(row["status"], UNKNOWN_STATUS_RANK),
            "samples": 1,
        }
        for tier in SNAPSHOT_TIERS_S
        for row in key_rows
    ]
    _merge_into(connection, key_health_rollups, values, {"min_score": "min", "worst_rank": "max", "samples": "add"})
