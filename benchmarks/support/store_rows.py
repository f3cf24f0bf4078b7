"""Synthetic store rows for the tests and the benchmarks: rollup rows for given per-call latencies (in every tier,
as the rollup writer keeps them) and instance snapshots, inserted directly (no dependency on the writer)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.snapshot_rollups import write_snapshots
from pulsegate.core.store.tables import (
    error_count_column,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
)


def rollup_row(
    bucket: datetime,
    latencies: Iterable[float],
    *,
    provider: str = "anthropic",
    model: str = "claude-x",
    key_label: str = "Primary",
    source: str = "live",
    errors: dict[str, int] | None = None,
    fallbacks: int = 0,
    input_tokens: int = 0,
    output_tokens: int = 0,
    cost_usd: float = 0.0,
    background: int = 0,
) -> dict[str, Any]:
    """A rollup row for the given per-call latencies; the first ``sum(errors)`` calls are the failures; all calls
    user-facing but ``background`` of them."""
    latencies = list(latencies)
    errors = errors or {}
    cancelled = errors.get("cancelled", 0)  # the cancelled outcome: neither a success nor an error
    failed = sum(errors.values()) - cancelled
    row: dict[str, Any] = {
        "bucket": bucket,
        "provider": provider,
        "model": model,
        "key_label": key_label,
        "source": source,
        "calls": len(latencies),
        "successes": len(latencies) - failed - cancelled,
        "errors": failed,
        "cancelled": cancelled,
        "fallbacks": fallbacks,
        "calls_user_facing": len(latencies) - background,
        "calls_admin": 0,
        "calls_background": background,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cost_usd": cost_usd,
        "latency_sum_ms": float(sum(latencies)),
        "latency_max_ms": float(max(latencies, default=0.0)),
    }
    for error_class in ErrorClass:
        row[error_count_column(error_class)] = errors.get(error_class.value, 0)
    counts = Counter(latency_buckets.bucket_index(v) for v in latencies)
    for index, column in enumerate(latency_buckets.COLUMN_NAMES):
        row[column] = counts.get(index, 0)
    return row


def insert(engine: sa.Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        connection.execute(table.insert(), rows)


def insert_minutes(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    insert(engine, metric_rollups_1m, rows)


def insert_hours(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    insert(engine, metric_rollups_1h, rows)


def _coarser(minute_rows: list[dict[str, Any]], width_min: int) -> list[dict[str, Any]]:
    """The minute rows added up into ``width_min``-minute buckets (as the rollup writer does)."""
    merged: dict[tuple, dict[str, Any]] = {}
    for row in minute_rows:
        start = row["bucket"]
        bucket = start.replace(minute=start.minute - start.minute % width_min, second=0, microsecond=0)
        key = (bucket, row["provider"], row["model"], row["key_label"], row["source"])
        if key not in merged:
            merged[key] = {**row, "bucket": bucket}
            continue
        total = merged[key]
        for name, value in row.items():
            if name == "latency_max_ms":
                total[name] = max(total[name], value)
            elif isinstance(value, int | float) and name not in ("bucket",):
                total[name] += value
    return list(merged.values())


def insert_tiers(engine: sa.Engine, minute_rows: list[dict[str, Any]]) -> None:
    """Minute rows, and the 10-minute and hour rows they add up to (as the rollup writer keeps every tier)."""
    insert_minutes(engine, minute_rows)
    insert(engine, metric_rollups_10m, _coarser(minute_rows, 10))
    insert_hours(engine, _coarser(minute_rows, 60))


def instance_row(ts: datetime, instance_id: str, provider: str = "anthropic", **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": ts,
        "instance_id": instance_id,
        "kind": "client",
        "host": "host-" + instance_id,
        "pid": 100,
        "provider": provider,
        "queue_depth": 0,
        "oldest_wait_ms": None,
        "requests_used": 0,
        "requests_remaining": 50,
        "requests_limit": 50,
        "breaker_state": "closed",
    }
    row.update(values)
    return row


def insert_instances(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    """As a heartbeat writes them: raw snapshots, their rollups and the instance registry."""
    with engine.begin() as connection:
        write_snapshots(connection, rows, [])
