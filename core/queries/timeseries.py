"""Time series for charts: traffic from the rollup tiers, queue depth and key health from the snapshot rollups.

Every series covers ``[floor(start, step), end)`` with one row per step (``QueryFilter.step_s``), empty steps
included (counts 0, rates and percentiles NaN), so a chart draws a continuous frame. Grouping by step happens in
SQL; only ≤ a few hundred rows per series reach pandas.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.snapshot_rollups import RANK_STATUS
from pulsegate.core.store.tables import PROVIDERS, key_health_rollups, queue_rollups

TRAFFIC_COLUMNS: tuple[str, ...] = (
    "bucket",
    "calls",
    "successes",
    "errors",
    "cancelled",
    "success_rate",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "avg_latency_ms",
    "max_latency_ms",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cost_usd",
    "unpriced",
    "fallbacks",
    "streamed",
    "live_calls",
    "probe_calls",
    *common.PRIORITY_COLUMNS,
    *common.ERROR_COLUMNS,
)
_INT_SUM_SET = frozenset(common.INT_SUMS)
QUEUE_COLUMNS: tuple[str, ...] = ("bucket", "provider", "queue_depth", "oldest_wait_ms", "instances")
KEY_HEALTH_COLUMNS: tuple[str, ...] = ("bucket", "provider", "key_label", "score", "status", "instances")


def traffic_series(engine: sa.Engine, flt: QueryFilter) -> pd.DataFrame:
    """Calls, success rate (0–1), p50/p95/p99 latency (ms, from the summed histograms), tokens, cost, fallbacks,
    live vs probe calls and one ``err_<class>`` count column per error class, per step."""
    table, tier_s = common.rollup_table(flt.tier_s)
    step = flt.step_s
    index = common.grid(flt.start, flt.end, step)
    origin = index[0].to_pydatetime()
    idx = common.bucket_index(table.c.bucket, origin, step, engine.dialect.name).label("idx")
    low = common.floor_time(flt.start, tier_s)
    where = [table.c.bucket >= low, table.c.bucket < flt.end, *flt.conditions(table, time_column="bucket")[2:]]
    statement = (
        sa.select(idx, table.c.source, *common.summed(table))
        .where(*where)
        .group_by(sa.literal_column("idx"), table.c.source)
    )
    _, rows = common.fetch(engine, statement)
    # Assembled with numpy, not groupby/pivot: a few hundred rows, where pandas' per-call overhead would dominate.
    # The statement's columns are idx, source, then the sums in ``sums`` order, then latency_max_ms.
    sums = [*common.INT_SUMS, *common.FLOAT_SUMS]
    n = len(index)
    totals = np.zeros((n, len(sums)), dtype="float64")
    latency_max = np.zeros(n, dtype="float64")
    by_source = {"live": np.zeros(n, dtype="int64"), "probe": np.zeros(n, dtype="int64")}
    if rows:
        idx_values = np.fromiter((row[0] for row in rows), dtype="int64", count=len(rows))
        sources = np.array([row[1] for row in rows])
        values = np.array([row[2:] for row in rows], dtype="float64")
        np.add.at(totals, idx_values, values[:, :-1])
        np.maximum.at(latency_max, idx_values, values[:, -1])
        calls_at = sums.index("calls")
        for source, counts in by_source.items():
            mask = sources == source
            np.add.at(counts, idx_values[mask], values[mask, calls_at].astype("int64"))
    # One DataFrame built from whole columns: per-column assignment into a frame costs more than the query.
    data: dict[str, object] = {"bucket": index}
    for i, name in enumerate(sums):
        data[name] = totals[:, i].astype("int64") if name in _INT_SUM_SET else totals[:, i]
    calls = totals[:, sums.index("calls")]
    has_calls = calls > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        answered = calls - totals[:, sums.index("cancelled")]
        data["success_rate"] = np.where(answered > 0, totals[:, sums.index("successes")] / answered, np.nan)
        data["avg_latency_ms"] = np.where(has_calls, totals[:, sums.index("latency_sum_ms")] / calls, np.nan)
    data["max_latency_ms"] = np.where(has_calls, latency_max, np.nan)
    first_bucket = sums.index(latency_buckets.COLUMN_NAMES[0])
    histogram = totals[:, first_bucket : first_bucket + latency_buckets.BUCKET_COUNT]
    for q, name in ((0.5, "p50_ms"), (0.95, "p95_ms"), (0.99, "p99_ms")):
        data[name] = latency_buckets.quantiles(histogram, q)
    data["live_calls"] = by_source["live"]
    data["probe_calls"] = by_source["probe"]
    return pd.DataFrame({name: data[name] for name in TRAFFIC_COLUMNS})


def _snapshot_steps(
    engine: sa.Engine, t: sa.Table, flt: QueryFilter
) -> tuple[pd.DatetimeIndex, sa.ColumnElement[int], list[sa.ColumnElement[bool]]]:
    """The step grid of a snapshot series, the step-index column and the tier/time/provider conditions."""
    index = common.grid(flt.start, flt.end, flt.step_s)
    origin = index[0].to_pydatetime()
    idx = common.bucket_index(t.c.bucket, origin, flt.step_s, engine.dialect.name).label("idx")
    where = [t.c.tier_s == flt.tier_s, t.c.bucket >= origin, t.c.bucket < flt.end]
    if flt.provider is not None:
        where.append(t.c.provider == flt.provider)
    return index, idx, where


def queue_depth_series(engine: sa.Engine, flt: QueryFilter) -> pd.DataFrame:
    """Per step and provider: the summed queue depth of the instances that reported in the step (each instance's
    peak in the step), the longest oldest-wait, and how many instances reported. Model, key and source filters do
    not apply (queues are per provider). Reads the snapshot rollups (``queue_rollups``)."""
    t = queue_rollups
    index, idx, where = _snapshot_steps(engine, t, flt)
    per_instance = (
        sa.select(
            idx,
            t.c.provider,
            t.c.instance_id,
            sa.func.max(t.c.max_queue_depth).label("depth"),
            sa.func.max(t.c.max_oldest_wait_ms).label("wait"),
        )
        .where(*where)
        .group_by(sa.literal_column("idx"), t.c.provider, t.c.instance_id)
        .subquery()
    )
    statement = sa.select(
        per_instance.c.idx,
        per_instance.c.provider,
        sa.cast(sa.func.sum(per_instance.c.depth), sa.BigInteger).label("queue_depth"),
        sa.cast(sa.func.max(per_instance.c.wait), sa.Float).label("oldest_wait_ms"),
        sa.func.count().label("instances"),
    ).group_by(per_instance.c.idx, per_instance.c.provider)
    columns, rows = common.fetch(engine, statement)
    raw = pd.DataFrame(rows, columns=columns)
    providers = [flt.provider] if flt.provider else list(PROVIDERS)
    full = pd.MultiIndex.from_product([range(len(index)), providers], names=["idx", "provider"])
    if raw.empty:
        raw = pd.DataFrame(columns=["idx", "provider", "queue_depth", "oldest_wait_ms", "instances"])
    raw["idx"] = raw["idx"].astype(int)
    merged = raw.set_index(["idx", "provider"]).reindex(full)
    frame = merged.reset_index()
    frame["bucket"] = index[frame["idx"].to_numpy()]
    frame["queue_depth"] = frame["queue_depth"].fillna(0).astype("int64")
    frame["oldest_wait_ms"] = frame["oldest_wait_ms"].astype("float64")
    frame["instances"] = frame["instances"].fillna(0).astype("int64")
    return frame[list(QUEUE_COLUMNS)]


def key_health_series(engine: sa.Engine, flt: QueryFilter) -> pd.DataFrame:
    """Per step, provider and key label: the worst view across instances — lowest score and worst status
    (healthy < degraded < unhealthy < cooldown < disabled). Steps with no snapshot have NaN score and no status.
    Reads the snapshot rollups (``key_health_rollups``)."""
    t = key_health_rollups
    index, idx, where = _snapshot_steps(engine, t, flt)
    if flt.key_label is not None:
        where.append(t.c.key_label == flt.key_label)
    statement = (
        sa.select(
            idx,
            t.c.provider,
            t.c.key_label,
            sa.cast(sa.func.min(t.c.min_score), sa.Float).label("score"),
            sa.func.max(t.c.worst_rank).label("rank"),
            sa.func.count(sa.distinct(t.c.instance_id)).label("instances"),
        )
        .where(*where)
        .group_by(sa.literal_column("idx"), t.c.provider, t.c.key_label)
    )
    columns, rows = common.fetch(engine, statement)
    raw = pd.DataFrame(rows, columns=columns)
    if raw.empty:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in KEY_HEALTH_COLUMNS})
    raw["idx"] = raw["idx"].astype(int)
    keys = raw[["provider", "key_label"]].drop_duplicates().sort_values(["provider", "key_label"])
    full = pd.MultiIndex.from_tuples(
        [(i, p, k) for p, k in keys.itertuples(index=False) for i in range(len(index))],
        names=["idx", "provider", "key_label"],
    )
    frame = raw.set_index(["idx", "provider", "key_label"]).reindex(full).reset_index()
    frame["bucket"] = index[frame["idx"].to_numpy()]
    frame["score"] = frame["score"].astype("float64")
    frame["status"] = [None if pd.isna(r) else RANK_STATUS[int(r)] for r in frame["rank"]]
    frame["instances"] = frame["instances"].fillna(0).astype("int64")
    return frame[list(KEY_HEALTH_COLUMNS)].reset_index(drop=True)


def _dtype(name: str) -> str:
    return {
        "bucket": "datetime64[ns, UTC]",
        "score": "float64",
        "instances": "int64",
        "queue_depth": "int64",
        "oldest_wait_ms": "float64",
    }.get(name, "object")
