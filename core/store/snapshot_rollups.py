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

from core.store.tables import (
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
    """Insert snapshot rows, fold them into both rollup tiers and move each instance's ``last_seen`` forward —
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
    latest: dict[str, dict[str, Any]] = {}
    for row in instance_rows:
        seen = latest.get(row["instance_id"])
        if seen is None or row["ts"] > seen["last_seen"]:
            latest[row["instance_id"]] = {
                "instance_id": row["instance_id"],
                "kind": row["kind"],
                "host": row.get("host"),
                "pid": row.get("pid"),
                "first_seen": row["ts"] if seen is None else min(seen["first_seen"], row["ts"]),
                "last_seen": row["ts"],
            }
        else:
            seen["first_seen"] = min(seen["first_seen"], row["ts"])
    if not latest:
        return
    statement = _insert(connection)(instances)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=[instances.c.instance_id],
            set_={
                "kind": excluded.kind,
                "host": excluded.host,
                "pid": excluded.pid,
                "first_seen": _least(connection, instances.c.first_seen, excluded.first_seen),
                "last_seen": _greatest(connection, instances.c.last_seen, excluded.last_seen),
            },
        ),
        [latest[name] for name in sorted(latest)],
    )


def _fold(
    values: Sequence[dict[str, Any]], key: tuple[str, ...], combine: dict[str, Callable[[Any, Any], Any]]
) -> list[dict[str, Any]]:
    """Merge rows with the same rollup key (one statement may not upsert a row twice), sorted by key."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for value in values:
        k = tuple(value[name] for name in key)
        current = merged.get(k)
        if current is None:
            merged[k] = dict(value)
            continue
        for name, how in combine.items():
            current[name] = how(current[name], value[name])
    return [merged[k] for k in sorted(merged)]


def _max(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _min(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _add(a: int, b: int) -> int:
    return a + b


def upsert_queue_rollups(connection: sa.Connection, instance_rows: Sequence[dict[str, Any]]) -> None:
    """Fold ``instance_snapshots`` rows into both tiers."""
    if not instance_rows:
        return
    t = queue_rollups
    values = _fold(
        [
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
        ],
        ("tier_s", "bucket", "provider", "instance_id"),
        {"max_queue_depth": _max, "max_oldest_wait_ms": _max, "breaker_open_samples": _add, "samples": _add},
    )
    statement = _insert(connection)(t)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(t.primary_key.columns),
            set_={
                "max_queue_depth": _greatest(connection, t.c.max_queue_depth, excluded.max_queue_depth),
                "max_oldest_wait_ms": _greatest(connection, t.c.max_oldest_wait_ms, excluded.max_oldest_wait_ms),
                "breaker_open_samples": t.c.breaker_open_samples + excluded.breaker_open_samples,
                "samples": t.c.samples + excluded.samples,
            },
        ),
        values,
    )


def upsert_key_health_rollups(connection: sa.Connection, key_rows: Sequence[dict[str, Any]]) -> None:
    """Fold ``key_health_snapshots`` rows into both tiers."""
    if not key_rows:
        return
    t = key_health_rollups
    values = _fold(
        [
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
        ],
        ("tier_s", "bucket", "provider", "key_label", "instance_id"),
        {"min_score": _min, "worst_rank": _max, "samples": _add},
    )
    statement = _insert(connection)(t)
    excluded = statement.excluded
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=list(t.primary_key.columns),
            set_={
                "min_score": _least(connection, t.c.min_score, excluded.min_score),
                "worst_rank": _greatest(connection, t.c.worst_rank, excluded.worst_rank),
                "samples": t.c.samples + excluded.samples,
            },
        ),
        values,
    )
