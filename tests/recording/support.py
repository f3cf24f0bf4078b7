"""Random attempt rows and the rollups recomputed from raw rows, independently of the SQL under test."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.request import PRIORITY_CLASSES, priority_class
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import (
    api_usage_metrics,
    error_count_column,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
    priority_count_column,
    user_rollups_1h,
)

MODELS = {"anthropic": ["claude-sonnet-4-6", "claude-haiku-4-5"], "openai": ["gpt-4.1"]}
LABELS = ["Primary", "Backup 1", None]


def random_attempt(rng: random.Random, start: datetime, span_minutes: int = 150) -> AttemptRecord:
    provider = rng.choice(sorted(MODELS))
    draw = rng.random()
    error, cancelled = draw < 0.3, 0.3 <= draw < 0.4
    ts = start + timedelta(microseconds=rng.randrange(span_minutes * 60_000_000))
    unpriced = rng.random() < 0.1
    attempt = AttemptRecord(
        ts=ts,
        call_id=uuid.uuid4(),
        attempt=rng.randint(1, 3),
        provider=provider,
        model=rng.choice(MODELS[provider]),
        outcome="error" if error else "cancelled" if cancelled else "success",
        latency_ms=rng.lognormvariate(6, 1.2),
        instance_id="test-instance",
        is_final=rng.random() < 0.7,
        source="probe" if rng.random() < 0.1 else "live",
        key_label=rng.choice(LABELS),
        error_class=rng.choice(list(ErrorClass)[:8]) if error else ErrorClass.CANCELLED if cancelled else None,
        ttft_ms=rng.uniform(10, 500) if rng.random() < 0.5 else None,
        queue_wait_ms=rng.uniform(0, 50) if rng.random() < 0.8 else None,
        input_tokens=rng.randint(0, 5000),
        output_tokens=rng.randint(0, 2000),
        cache_read_tokens=rng.randint(0, 100),
        cache_write_tokens=rng.randint(0, 100),
        cost_usd=None if unpriced else rng.uniform(0, 0.05),
        unpriced=unpriced,
        usage_estimated=cancelled or rng.random() < 0.05,
        streamed=rng.random() < 0.4,
        fell_back_from="anthropic" if provider == "openai" and rng.random() < 0.3 else None,
        user_id=f"user-{rng.randint(1, 20)}",
        priority=rng.randint(0, 10),
    )
    if error and rng.random() < 0.1:
        attempt.error_class = ErrorClass.USER_RATE_LIMITED
    if not error and rng.random() < 0.1:
        attempt.outcome = "cancelled"  # counted in calls, neither a success nor an error
    if rng.random() < 0.1:
        attempt.user_id = None  # not in the user rollup
    return attempt


def hour_ago() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)


def raw_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(sa.select(api_usage_metrics))]


def expected_rollups(rows: list[dict[str, Any]], tier: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The rollup rows recomputed in Python from raw rows."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        ts = row["ts"].astimezone(UTC)
        bucket = ts.replace(second=0, microsecond=0)
        if tier == "1h":
            bucket = bucket.replace(minute=0)
        elif tier == "10m":
            bucket = bucket.replace(minute=bucket.minute - bucket.minute % 10)
        groups[(bucket, row["provider"], row["model"], row["key_label"] or "", row["source"])].append(row)
    result = {}
    for key, members in groups.items():
        agg: dict[str, Any] = {
            "calls": len(members),
            "successes": sum(r["outcome"] == "success" for r in members),
            "errors": sum(r["outcome"] == "error" for r in members),
            "cancelled": sum(r["outcome"] == "cancelled" for r in members),
            "fallbacks": sum(r["fell_back_from"] is not None for r in members),
            "streamed": sum(bool(r["streamed"]) for r in members),
            **{
                priority_count_column(name): sum(priority_class(r["priority"]) == name for r in members)
                for name, _ in PRIORITY_CLASSES
            },
            "unpriced": sum(bool(r["unpriced"]) for r in members),
            "usage_estimated": sum(bool(r["usage_estimated"]) for r in members),
            "ttft_count": sum(r["ttft_ms"] is not None for r in members),
            "latency_sum_ms": sum(r["latency_ms"] for r in members),
            "latency_max_ms": max(r["latency_ms"] for r in members),
            "ttft_sum_ms": sum(r["ttft_ms"] or 0 for r in members),
            "queue_wait_sum_ms": sum(r["queue_wait_ms"] or 0 for r in members),
            "cost_usd": sum(r["cost_usd"] or 0 for r in members),
        }
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            agg[name] = sum(r[name] for r in members)
        for error_class in ErrorClass:
            agg[error_count_column(error_class)] = sum(r["error_class"] == error_class.value for r in members)
        counts = [0] * latency_buckets.BUCKET_COUNT
        for r in members:
            counts[latency_buckets.bucket_index(r["latency_ms"])] += 1
        for index, column in enumerate(latency_buckets.COLUMN_NAMES):
            agg[column] = counts[index]
        agg["_latencies"] = sorted(r["latency_ms"] for r in members)
        result[key] = agg
    return result


def stored_rollups(engine: sa.Engine, tier: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    table = {"1m": metric_rollups_1m, "10m": metric_rollups_10m, "1h": metric_rollups_1h}[tier]
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(sa.select(table))]
    return {(r["bucket"], r["provider"], r["model"], r["key_label"], r["source"]): r for r in rows}


FLOAT_COLUMNS = {"latency_sum_ms", "latency_max_ms", "ttft_sum_ms", "queue_wait_sum_ms", "cost_usd"}


def assert_rollups_match_raw(engine: sa.Engine) -> int:
    """Every rollup row equals the aggregate over raw rows: counts exact, sums to float precision. Returns rows."""
    import pytest

    rows = raw_rows(engine)
    for tier in ("1m", "10m", "1h"):
        expected = expected_rollups(rows, tier)
        stored = stored_rollups(engine, tier)
        assert set(stored) == set(expected), tier
        for key, agg in expected.items():
            got = stored[key]
            for name, value in agg.items():
                if name.startswith("_"):
                    continue
                if name in FLOAT_COLUMNS:
                    assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), (tier, key, name)
                else:
                    assert got[name] == value, (tier, key, name)
    expected_users = expected_user_rollups(rows)
    stored_users = stored_user_rollups(engine)
    assert set(stored_users) == set(expected_users)
    for key, agg in expected_users.items():
        got = stored_users[key]
        assert {name: got[name] for name in agg if name != "cost_usd"} == {
            k: v for k, v in agg.items() if k != "cost_usd"
        }
        assert got["cost_usd"] == pytest.approx(agg["cost_usd"], rel=1e-9, abs=1e-9), key
    return len(rows)


def expected_user_rollups(rows: list[dict[str, Any]]) -> dict[tuple[Any, ...], dict[str, Any]]:
    """``user_rollups_1h`` recomputed in Python: per hour × user id, rows without a user left out."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if row["user_id"] is not None:
            hour = row["ts"].astimezone(UTC).replace(minute=0, second=0, microsecond=0)
            groups[(hour, row["user_id"])].append(row)
    return {
        key: {
            "calls": len(members),
            "errors": sum(r["outcome"] == "error" for r in members),
            "user_rate_limited": sum(r["error_class"] == ErrorClass.USER_RATE_LIMITED.value for r in members),
            "input_tokens": sum(r["input_tokens"] for r in members),
            "output_tokens": sum(r["output_tokens"] for r in members),
            "cost_usd": sum(r["cost_usd"] or 0 for r in members),
        }
        for key, members in groups.items()
    }


def stored_user_rollups(engine: sa.Engine) -> dict[tuple[Any, ...], dict[str, Any]]:
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(sa.select(user_rollups_1h))]
    return {(r["bucket"], r["user_id"]): r for r in rows}
