"""Builders for hand-made rollup, snapshot and raw rows (inserted directly: no dependency on the writer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from benchmarks.support.store_rows import (  # noqa: F401 — the builders the benchmarks share, for the tests as before
    insert,
    insert_hours,
    insert_instances,
    insert_minutes,
    insert_tiers,
    instance_row,
    rollup_row,
)
from pulsegate.core.store.rollups import user_aggregate_sql
from pulsegate.core.store.snapshot_rollups import write_snapshots
from pulsegate.core.store.tables import api_usage_metrics

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def limit_change_row(
    minutes_ago: int, seq: int, after: float, *, before: float = 100.0, reason: str | None = None, **values: Any
) -> dict[str, Any]:
    """One ``limit_changes`` row: an anthropic RPM limit (ceiling 100) moved from ``before`` to ``after``."""
    row = {
        "ts": NOW - timedelta(minutes=minutes_ago),
        "instance_id": "app-1",
        "seq": seq,
        "provider": "anthropic",
        "key_label": None,
        "kind": "rpm",
        "configured": 100.0,
        "effective_before": before,
        "effective_after": after,
        "reason": reason if reason is not None else f"r{seq}",
    }
    row.update(values)
    return row


def key_row(
    ts: datetime,
    instance_id: str,
    key_label: str,
    score: float,
    status: str = "healthy",
    provider: str = "anthropic",
    **values: Any,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": ts,
        "instance_id": instance_id,
        "provider": provider,
        "key_label": key_label,
        "key_fingerprint": "fp" + key_label[:10],
        "key_masked": "sk-…" + key_label[:4],
        "score": score,
        "status": status,
        "cooldown_until": None,
        "consecutive_failures": 0,
        "disabled_reason": None,
        "requests": 0,
    }
    row.update(values)
    return row


def insert_keys(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        write_snapshots(connection, [], rows)


def attempt_row(ts: datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": uuid.uuid4(),
        "ts": ts,
        "call_id": uuid.uuid4(),
        "attempt": 1,
        "is_final": True,
        "source": "live",
        "provider": "anthropic",
        "model": "claude-x",
        "key_label": "Primary",
        "outcome": "success",
        "error_class": None,
        "http_status": None,
        "latency_ms": 100.0,
        "instance_id": "i1",
    }
    row.update(values)
    return row


def episode_row(rule_id: str, provider: str, **values: Any) -> dict[str, Any]:
    """An alert episode firing for 9 minutes (pending a minute before), as the engine writes it."""
    row: dict[str, Any] = {
        "rule_id": rule_id,
        "fingerprint": f"{rule_id}:{provider}",
        "labels": {"provider": provider},
        "severity": "critical",
        "state": "firing",
        "pending_since": NOW - timedelta(minutes=10),
        "fired_at": NOW - timedelta(minutes=9),
        "summary": f"{provider} {rule_id}",
    }
    row.update(values)
    return row


def insert_attempts(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    insert(engine, api_usage_metrics, rows)


def roll_up_users(engine: sa.Engine) -> None:
    """Fill ``user_rollups_1h`` from the raw rows with the flush's own aggregate (seeds insert raw rows directly)."""
    statement = user_aggregate_sql(
        engine.dialect.name, source="api_usage_metrics", hour_column="ts", target="user_rollups_1h"
    )
    with engine.begin() as connection:
        connection.execute(sa.text(statement))
