"""The KPI summary of a range, next to the same-length period just before it (for deltas)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import metric_rollups_1h, metric_rollups_1m

KPI_NAMES: tuple[str, ...] = (
    "requests",
    "success_rate",
    "p95_ms",
    "avg_latency_ms",
    "input_tokens",
    "output_tokens",
    "tokens",
    "cost_usd",
    "fallbacks",
    "errors",
    "cancelled",
)
KPI_COLUMNS: tuple[str, ...] = ("current", "previous", "delta", "delta_pct")


def range_totals(engine: sa.Engine, flt: QueryFilter) -> dict[str, float]:
    """Sums of every additive rollup column over the filter's range, plus ``latency_max_ms``.

    Ranges over two days read the hour tier. Shorter ones read the whole hours they contain from the hour tier and
    only the partial hours at either end from the minute tier (the writer keeps every tier in one transaction, so
    they agree) — a 24 h total reads ~24 hour rows per series instead of ~1,440 minute rows."""
    if flt.uses_hour_tier:
        return _tier_totals(engine, flt, metric_rollups_1h, [(common.floor_time(flt.start, 3600), flt.end)])
    low = common.floor_time(flt.start, 60)
    first_hour = common.floor_time(low + timedelta(seconds=3599), 3600)
    last_hour = common.floor_time(flt.end, 3600)
    if first_hour >= last_hour:
        return _tier_totals(engine, flt, metric_rollups_1m, [(low, flt.end)])
    hours = _tier_totals(engine, flt, metric_rollups_1h, [(first_hour, last_hour)])
    edges = [(a, b) for a, b in ((low, first_hour), (last_hour, flt.end)) if a < b]
    if not edges:
        return hours
    minutes = _tier_totals(engine, flt, metric_rollups_1m, edges)
    return {
        name: max(value, minutes[name]) if name == "latency_max_ms" else value + minutes[name]
        for name, value in hours.items()
    }


def _tier_totals(
    engine: sa.Engine, flt: QueryFilter, table: sa.Table, spans: list[tuple[datetime, datetime]]
) -> dict[str, float]:
    in_spans = sa.or_(*(sa.and_(table.c.bucket >= a, table.c.bucket < b) for a, b in spans))
    where = [in_spans, *flt.conditions(table, time_column="bucket")[2:]]
    columns, rows = common.fetch(engine, sa.select(*common.summed(table)).where(*where))
    return {name: (value or 0) for name, value in zip(columns, rows[0], strict=True)}


def kpis_from_totals(totals: dict[str, float]) -> dict[str, float]:
    calls = int(totals["calls"])
    answered = int(common.answered(totals))
    buckets = [int(totals[name]) for name in latency_buckets.COLUMN_NAMES]
    p95 = latency_buckets.quantile(buckets, 0.95)
    return {
        "requests": calls,
        "success_rate": totals["successes"] / answered if answered else math.nan,
        "p95_ms": math.nan if p95 is None else p95,
        "avg_latency_ms": totals["latency_sum_ms"] / calls if calls else math.nan,
        "input_tokens": int(totals["input_tokens"]),
        "output_tokens": int(totals["output_tokens"]),
        "tokens": int(totals["input_tokens"]) + int(totals["output_tokens"]),
        "cost_usd": float(totals["cost_usd"]),
        "fallbacks": int(totals["fallbacks"]),
        "errors": int(totals["errors"]),
        "cancelled": int(totals["cancelled"]),
    }


def kpi_summary(engine: sa.Engine, flt: QueryFilter) -> pd.DataFrame:
    """One row per KPI (index :data:`KPI_NAMES`): ``current``, ``previous`` (the same-length period just before
    ``flt.start``), ``delta`` = current − previous and ``delta_pct`` = delta / previous × 100 (NaN when previous is
    0 or NaN). ``requests`` counts attempts; ``success_rate`` is 0–1, of the attempts
    that were not cancelled; latencies in ms; ``tokens`` = in + out."""
    current = kpis_from_totals(range_totals(engine, flt))
    previous = kpis_from_totals(range_totals(engine, flt.previous()))
    rows = []
    for name in KPI_NAMES:
        now, before = float(current[name]), float(previous[name])
        delta = now - before
        pct = delta / before * 100 if before and not math.isnan(before) else math.nan
        rows.append((now, before, delta, pct))
    return pd.DataFrame(rows, index=pd.Index(KPI_NAMES, name="kpi"), columns=list(KPI_COLUMNS), dtype="float64")
