"""Small SQL building blocks common to the queries (and the alert signals and metrics that read the same rollups):
the same expression on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.request import PRIORITY_CLASSES
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import METRIC_ROLLUPS, error_count_column, priority_count_column

ERROR_COLUMNS: tuple[str, ...] = tuple(error_count_column(ec) for ec in ErrorClass)
PRIORITY_COLUMNS: tuple[str, ...] = tuple(priority_count_column(name) for name, _ in PRIORITY_CLASSES)
#: Rollup columns that add up across rows and buckets.
INT_SUMS: tuple[str, ...] = (
    "calls",
    "successes",
    "errors",
    "cancelled",
    *ERROR_COLUMNS,
    "fallbacks",
    "streamed",
    *PRIORITY_COLUMNS,
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "unpriced",
    "usage_estimated",
    "ttft_count",
    *latency_buckets.COLUMN_NAMES,
)
FLOAT_SUMS: tuple[str, ...] = ("cost_usd", "latency_sum_ms", "ttft_sum_ms", "queue_wait_sum_ms")


def answered(totals: Any) -> Any:
    """The attempts that got an answer — all but the ``cancelled`` ones, which are neither a success nor an error:
    every success rate, error share and burn rate divides by this (works on numbers and numpy columns alike)."""
    return totals["calls"] - totals["cancelled"]


def epoch_seconds(column: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """Whole seconds since 1970 for a timestamp column (truncated)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", column), sa.BigInteger)


def bucket_index(column: sa.ColumnElement, origin: datetime, step_s: int, dialect: str) -> sa.ColumnElement:
    """Which step-long bucket after ``origin`` a timestamp falls in (timestamps are never before ``origin``)."""
    offset = epoch_seconds(column, dialect) - sa.literal(int(origin.timestamp()), sa.BigInteger)
    return sa.cast(offset // sa.literal(step_s, sa.BigInteger), sa.Integer)


def floor_time(moment: datetime, step_s: int) -> datetime:
    seconds = int(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % step_s, UTC)


def grid(start: datetime, end: datetime, step_s: int) -> pd.DatetimeIndex:
    """Bucket starts from ``floor(start)`` up to (not including) ``end``."""
    origin = floor_time(start, step_s)
    count = max(1, -(-int((end - origin).total_seconds()) // step_s))
    return pd.DatetimeIndex([origin + timedelta(seconds=step_s * i) for i in range(count)], name="bucket")


def rollup_table(tier_s: int) -> tuple[sa.Table, int]:
    return METRIC_ROLLUPS[tier_s], tier_s


def summed(table: sa.Table) -> list[sa.ColumnElement]:
    """SUM of every additive rollup column (cast so PostgreSQL returns ints and floats, not Decimals)."""
    columns: list[sa.ColumnElement] = [
        sa.cast(sa.func.coalesce(sa.func.sum(table.c[name]), 0), sa.BigInteger).label(name) for name in INT_SUMS
    ]
    columns += [sa.cast(sa.func.coalesce(sa.func.sum(table.c[name]), 0.0), sa.Float).label(name) for name in FLOAT_SUMS]
    columns.append(
        sa.cast(sa.func.coalesce(sa.func.max(table.c.latency_max_ms), 0.0), sa.Float).label("latency_max_ms")
    )
    return columns


def fetch(engine: sa.Engine, statement: sa.Executable) -> tuple[list[str], Sequence[Any]]:
    with engine.connect() as connection:
        result = connection.execute(statement)
        return list(result.keys()), result.fetchall()
