"""The flush-time rollup SQL: a batch goes through a TEMP staging table into the raw table and every rollup tier.

One transaction per batch, the same steps on SQLite and PostgreSQL (both have ``INSERT … ON CONFLICT DO UPDATE``):

1. the batch is loaded into the connection's TEMP staging table (binary COPY on Postgres, executemany on SQLite),
   each row carrying its latency-histogram bucket index (computed in Python, exactly
   ``latency_buckets.bucket_index``) and, on SQLite, its minute bucket as text (Postgres truncates ``ts`` in SQL,
   in UTC whatever the session time zone);
2. staged rows whose id is already in ``api_usage_metrics`` are deleted — a batch replayed from the spool after an
   unknown commit outcome leaves only the rows that were really missing;
3. the rest go into the raw table;
4. the same staged rows are aggregated once per minute × provider × model × key × source into a second TEMP table,
   which is upserted into ``metric_rollups_1m`` and, re-aggregated per 10 minutes and per hour, into
   ``metric_rollups_10m`` and ``metric_rollups_1h`` — all in sorted key order, so that several app servers
   flushing at once take row locks in the same order (no deadlocks);
5. the staged rows that carry a user id are aggregated per hour × user and upserted into ``user_rollups_1h`` (the
   Limits page's top-users table), in key order too.

Because steps 3, 4 and 5 read the same staging rows after step 2, rollups count exactly the rows the raw insert added:
never twice. (``INSERT … ON CONFLICT DO NOTHING RETURNING id`` gives the same guarantee but was measured 7× slower.)
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.request import PRIORITY_CLASSES
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

STAGING_TABLE = "pulsegate_attempt_stage"
AGGREGATE_TABLE = "pulsegate_rollup_stage"
RAW_COLUMNS: tuple[str, ...] = tuple(column.name for column in api_usage_metrics.columns)
KEY_COLUMNS: tuple[str, ...] = ("bucket", "provider", "model", "key_label", "source")


def staging_columns(dialect_name: str) -> tuple[str, ...]:
    """The columns a staged row carries: the raw ones, the latency bucket index and, on SQLite, the minute and hour
    buckets as text (Postgres truncates ``ts`` itself, see :func:`bucket_expression`)."""
    if dialect_name == "postgresql":
        return (*RAW_COLUMNS, "lat_bucket")
    return (*RAW_COLUMNS, "bucket_1m", "lat_bucket")


def minute_expression(dialect_name: str) -> str:
    """The minute bucket of a staged row: ``ts`` truncated in UTC, whatever the session time zone."""
    if dialect_name == "postgresql":
        return "(date_trunc('minute', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return "bucket_1m"


def hour_expression(dialect_name: str) -> str:
    """The hour bucket of a minute bucket (SQLite: the store's text form 'YYYY-MM-DD HH:00:00.000000')."""
    if dialect_name == "postgresql":
        return "(date_trunc('hour', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return "(substr(bucket, 1, 14) || '00:00.000000')"


def ten_minute_expression(dialect_name: str) -> str:
    """The 10-minute bucket of a minute bucket (SQLite: 'YYYY-MM-DD HH:M0:00.000000')."""
    if dialect_name == "postgresql":
        return "to_timestamp(floor(extract(epoch FROM bucket) / 600) * 600)"
    return "(substr(bucket, 1, 15) || '0:00.000000')"


def create_staging_sql(dialect_name: str) -> str:
    """A TEMP table with the raw table's columns (no constraints, no indexes) plus the bucket columns."""
    if dialect_name == "postgresql":
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT *, 0::smallint AS lat_bucket FROM {api_usage_metrics.name} WITH NO DATA"
        )
    return (
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGING_TABLE} AS "  # noqa: S608
        f"SELECT *, NULL AS bucket_1m, 0 AS lat_bucket FROM {api_usage_metrics.name} WHERE 0"
    )


def create_aggregate_sql(dialect_name: str) -> str:
    """A TEMP table shaped like a rollup tier: the batch's per-minute aggregates."""
    if dialect_name == "postgresql":
        return (
            f"CREATE TEMP TABLE IF NOT EXISTS {AGGREGATE_TABLE} ON COMMIT DELETE ROWS AS "  # noqa: S608
            f"SELECT * FROM {metric_rollups_1m.name} WITH NO DATA"
        )
    return f"CREATE TEMP TABLE IF NOT EXISTS {AGGREGATE_TABLE} AS SELECT * FROM {metric_rollups_1m.name} WHERE 0"  # noqa: S608


def clear_staging_sql() -> list[str]:
    return [f"DELETE FROM {STAGING_TABLE}", f"DELETE FROM {AGGREGATE_TABLE}"]  # noqa: S608 — our schema's names


def stage_insert_sql(dialect_name: str) -> str:
    marker = "%s" if dialect_name == "postgresql" else "?"
    columns = staging_columns(dialect_name)
    return (
        f"INSERT INTO {STAGING_TABLE} ({', '.join(columns)}) "  # noqa: S608
        f"VALUES ({', '.join([marker] * len(columns))})"
    )


def stage_copy_sql() -> str:
    return f"COPY {STAGING_TABLE} ({', '.join(staging_columns('postgresql'))}) FROM STDIN"


def drop_already_stored_sql(dialect_name: str) -> str:
    """Delete the staged rows the raw table already has (a replay of a batch that did commit)."""
    raw = api_usage_metrics.name
    if dialect_name == "postgresql":
        return f"DELETE FROM {STAGING_TABLE} s USING {raw} m WHERE m.id = s.id"  # noqa: S608
    return (
        f"DELETE FROM {STAGING_TABLE} WHERE EXISTS "  # noqa: S608
        f"(SELECT 1 FROM {raw} m WHERE m.id = {STAGING_TABLE}.id)"
    )


def move_to_raw_sql() -> str:
    names = ", ".join(RAW_COLUMNS)
    return f"INSERT INTO {api_usage_metrics.name} ({names}) SELECT {names} FROM {STAGING_TABLE}"  # noqa: S608


def _priority_counts() -> list[tuple[str, str, str]]:
    """One count per priority class (:data:`pulsegate.core.request.PRIORITY_CLASSES`, highest first; NULL → the
    last)."""
    items = []
    upper: int | None = None
    for index, (name, lowest) in enumerate(PRIORITY_CLASSES):
        if index == len(PRIORITY_CLASSES) - 1:
            condition = "priority IS NULL OR priority < " + str(upper)
        elif upper is None:
            condition = f"priority >= {lowest}"
        else:
            condition = f"priority >= {lowest} AND priority < {upper}"
        items.append((priority_count_column(name), f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)", "SUM"))
        upper = lowest
    return items


def _aggregates() -> list[tuple[str, str, str]]:
    """(rollup column, aggregate over staged rows, aggregate over per-minute rows); stored values merge by addition,
    except ``latency_max_ms`` which keeps the larger."""
    items: list[tuple[str, str, str]] = [
        ("calls", "COUNT(*)", "SUM"),
        ("successes", "SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END)", "SUM"),
        ("errors", "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END)", "SUM"),
        ("cancelled", "SUM(CASE WHEN outcome = 'cancelled' THEN 1 ELSE 0 END)", "SUM"),
    ]
    for error_class in ErrorClass:
        counted = f"SUM(CASE WHEN error_class = '{error_class.value}' THEN 1 ELSE 0 END)"
        items.append((error_count_column(error_class), counted, "SUM"))
    items += [
        ("fallbacks", "SUM(CASE WHEN fell_back_from IS NOT NULL THEN 1 ELSE 0 END)", "SUM"),
        ("streamed", "SUM(CASE WHEN streamed THEN 1 ELSE 0 END)", "SUM"),
        *_priority_counts(),
        ("input_tokens", "SUM(input_tokens)", "SUM"),
        ("output_tokens", "SUM(output_tokens)", "SUM"),
        ("cache_read_tokens", "SUM(cache_read_tokens)", "SUM"),
        ("cache_write_tokens", "SUM(cache_write_tokens)", "SUM"),
        ("cost_usd", "COALESCE(SUM(cost_usd), 0)", "SUM"),
        ("unpriced", "SUM(CASE WHEN unpriced THEN 1 ELSE 0 END)", "SUM"),
        ("usage_estimated", "SUM(CASE WHEN usage_estimated THEN 1 ELSE 0 END)", "SUM"),
        ("latency_sum_ms", "SUM(latency_ms)", "SUM"),
        ("latency_max_ms", "MAX(latency_ms)", "MAX"),
        ("ttft_sum_ms", "COALESCE(SUM(ttft_ms), 0)", "SUM"),
        ("ttft_count", "COUNT(ttft_ms)", "SUM"),
        ("queue_wait_sum_ms", "COALESCE(SUM(queue_wait_ms), 0)", "SUM"),
    ]
    for index, column in enumerate(latency_buckets.COLUMN_NAMES):
        items.append((column, f"SUM(CASE WHEN lat_bucket = {index} THEN 1 ELSE 0 END)", "SUM"))
    expected = {column.name for column in metric_rollups_1m.columns} - set(KEY_COLUMNS)
    if {name for name, _, _ in items} != expected:  # the schema and this SQL must not drift apart
        raise RuntimeError("the rollup SQL does not cover the rollup tables' columns")
    return items


def raw_row_aggregates() -> list[tuple[str, str]]:
    """(rollup column, SQL aggregate over raw ``api_usage_metrics`` rows) for every rollup column a raw row holds —
    all but the latency histogram, whose bucket index is computed in Python at flush time. A reader can count part
    of a minute exactly as that minute's rollup row counts it."""
    return [(name, expression) for name, expression, _ in _aggregates() if "lat_bucket" not in expression]


def _names() -> str:
    return ", ".join(KEY_COLUMNS + tuple(name for name, _, _ in _aggregates()))


def aggregate_minutes_sql(dialect_name: str) -> str:
    """The staged rows, aggregated per minute × provider × model × key × source into the aggregate table."""
    keys = f"{minute_expression(dialect_name)}, provider, model, COALESCE(key_label, ''), source"
    selects = ", ".join(expression for _, expression, _ in _aggregates())
    return (
        f"INSERT INTO {AGGREGATE_TABLE} ({_names()}) "  # noqa: S608
        f"SELECT {keys}, {selects} FROM {STAGING_TABLE} GROUP BY {keys}"
    )


def _on_conflict(table: sa.Table) -> str:
    updates = []
    for name, _, reaggregate in _aggregates():
        if reaggregate == "MAX":
            merge = f"CASE WHEN excluded.{name} > {table.name}.{name} THEN excluded.{name} ELSE {table.name}.{name} END"
        else:
            merge = f"{table.name}.{name} + excluded.{name}"
        updates.append(f"{name} = {merge}")
    return f"ON CONFLICT ({', '.join(KEY_COLUMNS)}) DO UPDATE SET {', '.join(updates)}"


def upsert_minutes_sql() -> str:
    """The batch's minute aggregates added to ``metric_rollups_1m``, in key order."""
    names = _names()
    # ``WHERE true``: SQLite needs it to parse ON CONFLICT after INSERT … SELECT unambiguously.
    return (
        f"INSERT INTO {metric_rollups_1m.name} ({names}) "  # noqa: S608
        f"SELECT {names} FROM {AGGREGATE_TABLE} WHERE true ORDER BY {', '.join(KEY_COLUMNS)} "
        f"{_on_conflict(metric_rollups_1m)}"
    )


def upsert_coarser_sql(table: sa.Table, bucket_expression: str) -> str:
    """The batch's minute aggregates, re-aggregated into a coarser tier's buckets, added to ``table`` in key order."""
    keys = f"{bucket_expression}, provider, model, key_label, source"
    selects = ", ".join(f"{reaggregate}({name})" for name, _, reaggregate in _aggregates())
    return (
        f"INSERT INTO {table.name} ({_names()}) "  # noqa: S608
        f"SELECT {keys}, {selects} FROM {AGGREGATE_TABLE} WHERE true GROUP BY {keys} ORDER BY {keys} "
        f"{_on_conflict(table)}"
    )


def user_hour_expression(dialect_name: str, column: str) -> str:
    """The hour bucket of a raw or staged row, from ``column``: ``ts`` on PostgreSQL (truncated in UTC, whatever the
    session time zone); on SQLite the store's timestamp text ('YYYY-MM-DD HH:MM:SS.ffffff', ``ts`` or the staged
    ``bucket_1m``), cut to the hour."""
    if dialect_name == "postgresql":
        return f"(date_trunc('hour', {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return f"(substr({column}, 1, 14) || '00:00.000000')"


#: (``user_rollups_1h`` column, aggregate over raw/staged rows): how one hour of a user's attempts is counted.
USER_AGGREGATES: tuple[tuple[str, str], ...] = (
    ("calls", "COUNT(*)"),
    ("errors", "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END)"),
    ("user_rate_limited", f"SUM(CASE WHEN error_class = '{ErrorClass.USER_RATE_LIMITED.value}' THEN 1 ELSE 0 END)"),
    ("input_tokens", "SUM(input_tokens)"),
    ("output_tokens", "SUM(output_tokens)"),
    ("cost_usd", "COALESCE(SUM(cost_usd), 0)"),
)


def user_aggregate_sql(dialect_name: str, *, source: str, hour_column: str, target: str) -> str:
    """``INSERT INTO target`` the rows of ``source`` that carry a user id, aggregated per hour × user, in key order.
    (The 0009 migration's backfill keeps its own copy of these aggregates, frozen as of that revision.)"""
    if {name for name, _ in USER_AGGREGATES} != {c.name for c in user_rollups_1h.columns} - {"bucket", "user_id"}:
        raise RuntimeError("the user rollup SQL does not cover user_rollups_1h's columns")
    names = ", ".join(("bucket", "user_id", *(name for name, _ in USER_AGGREGATES)))
    keys = f"{user_hour_expression(dialect_name, hour_column)}, user_id"
    selects = ", ".join(expression for _, expression in USER_AGGREGATES)
    # ``WHERE``: rows without a user are not rolled up (and SQLite needs a WHERE before ON CONFLICT anyway)
    return (
        f"INSERT INTO {target} ({names}) "  # noqa: S608 — our schema's names
        f"SELECT {keys}, {selects} FROM {source} WHERE user_id IS NOT NULL GROUP BY {keys} ORDER BY {keys}"
    )


def upsert_users_sql(dialect_name: str) -> str:
    """Step 5: the staged rows' per-hour × user totals added to ``user_rollups_1h``."""
    table = user_rollups_1h.name
    hour_column = "ts" if dialect_name == "postgresql" else "bucket_1m"
    updates = ", ".join(f"{name} = {table}.{name} + excluded.{name}" for name, _ in USER_AGGREGATES)
    insert = user_aggregate_sql(dialect_name, source=STAGING_TABLE, hour_column=hour_column, target=table)
    return f"{insert} ON CONFLICT (bucket, user_id) DO UPDATE SET {updates}"


def rollup_sql(dialect_name: str) -> list[str]:
    """Steps 4 and 5: aggregate the staged rows per minute, then upsert every tier (finest first, the same order in
    every writer), then the per-user hours."""
    return [
        aggregate_minutes_sql(dialect_name),
        upsert_minutes_sql(),
        upsert_coarser_sql(metric_rollups_10m, ten_minute_expression(dialect_name)),
        upsert_coarser_sql(metric_rollups_1h, hour_expression(dialect_name)),
        upsert_users_sql(dialect_name),
    ]
