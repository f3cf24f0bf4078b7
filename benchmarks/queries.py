"""Dashboard queries: every ``pulsegate.core.queries`` function for 1 h, 24 h and 7 d ranges over N raw rows spread
across 7 days in PostgreSQL, against a ≤ 50 ms goal, next to the equivalent aggregate straight from the raw table.

- A scratch database on 127.0.0.1:5432 (created and dropped here), schema from the Alembic migrations.
- N raw rows are generated server-side in one ``INSERT … SELECT … generate_series`` (2 providers, 5 models, 3 keys,
  3 % probes, an error rate swinging 5–25 % over the day across 7 error classes, log-normal latencies); both rollup
  tiers are then built from them in SQL with the very aggregate expressions ``core/store/rollups.py`` uses (the
  latency bucket index computed in SQL as ``ceil(2·log2(ms))``, i.e. ``latency_buckets.bucket_index``); instance
  and key-health snapshots every 5 s from 3 instances (the heartbeat default). Then ``VACUUM ANALYZE``.
- A revoked key probed every 5 min for the whole span, failing each time (the ``probe_failures`` rule's worst case).
- 1,000 alert episodes over the data's last 24 hours (``benchmarks/support/overview_store.py``: nine rules on both
  providers and on keys, overlapping, some never fired, some still firing) — the Overview's incident lane reads them.
- Each query: one warm-up call, then the median of 5 calls (wall time, Python side included). The raw comparison is
  the 24 h traffic series' aggregate (same sums, error classes and latency histogram per step × source) computed
  from ``api_usage_metrics`` instead of the rollups.

    .venv/bin/python benchmarks/queries.py --rows 1000000  # quick, ~30 s
    .venv/bin/python benchmarks/queries.py                 # 10 M rows, a few minutes
    .venv/bin/python benchmarks/queries.py --write-results # also rewrites its section of RESULTS.md
    .venv/bin/python benchmarks/queries.py --keep          # … then --reuse URL to re-time queries on that data
    .venv/bin/python benchmarks/queries.py --keep --name NAME   # keep it under a fixed name (replaced if present),
    .venv/bin/python benchmarks/queries.py --drop NAME          # as `make bench` does for dashboard_load.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from results import machine, write_section
from support import ScratchPostgres

ROOT = Path(__file__).resolve().parents[1]

from support.overview_store import episode_rows  # noqa: E402

from pulsegate import migrations  # noqa: E402
from pulsegate.core import queries  # noqa: E402
from pulsegate.core.ops.probe_history import consecutive_probe_failures  # noqa: E402
from pulsegate.core.queries import common  # noqa: E402
from pulsegate.core.queries.limits import user_usage, user_window  # noqa: E402
from pulsegate.core.store import create_store_engine, latency_buckets  # noqa: E402
from pulsegate.core.store.rollups import (  # noqa: E402
    KEY_COLUMNS,
    _aggregates,
    hour_expression,
    minute_expression,
    ten_minute_expression,
    user_aggregate_sql,
)
from pulsegate.core.store.snapshot_rollups import KEY_STATUS_RANK  # noqa: E402
from pulsegate.core.store.tables import (  # noqa: E402
    alert_episodes,
    api_usage_metrics,
    metric_rollups_1h,
    metric_rollups_1m,
    metric_rollups_10m,
    user_rollups_1h,
)

PG_SERVER = os.environ.get("PULSEGATE_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
GOAL_MS = 50.0
SPAN = timedelta(days=7)
RANGES = {"1 h": timedelta(hours=1), "24 h": timedelta(hours=24), "7 d": timedelta(days=7)}
REPEATS = 5
INSTANCES = 3
HEARTBEAT_S = 5
#: The data ends here (a fixed, minute-aligned moment so runs are comparable).
END = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
#: Alert episodes over the data's last day (the dashboard load benchmark's range).
EPISODES = 1000
EPISODE_SPAN = timedelta(hours=24)

# Latency bucket of a row, as latency_buckets.bucket_index: the smallest i with 2**(i/2) >= ms, clamped to 0..40.
LAT_BUCKET_SQL = (
    f"CASE WHEN latency_ms > 0 THEN LEAST({latency_buckets.BUCKET_COUNT - 1}, "
    "GREATEST(0, CEIL(2 * LN(latency_ms) / LN(2))))::int ELSE 0 END"
)

GENERATE_RAW = """
INSERT INTO api_usage_metrics (
    id, ts, call_id, attempt, is_final, source, provider, model, key_label, key_fingerprint, outcome, error_class,
    http_status, request_id, latency_ms, ttft_ms, queue_wait_ms, input_tokens, output_tokens, cost_usd, streamed,
    user_id, feature, fell_back_from, instance_id)
SELECT
    ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
    ts, ('11111111-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 1, true,
    CASE WHEN r_source < 0.03 THEN 'probe' ELSE 'live' END,
    provider, model, key_label, substr(md5(key_label || provider), 1, 12),
    CASE WHEN failed THEN 'error' ELSE 'success' END,
    CASE WHEN failed THEN (ARRAY['rate_limited', 'rate_limited', 'overloaded', 'server_error', 'timeout',
                                 'connection', 'bad_request', 'stream_interrupted'])[1 + floor(r_class * 8)::int] END,
    CASE WHEN failed THEN 500 ELSE 200 END,
    'req_' || g,
    latency_ms,
    CASE WHEN NOT failed THEN latency_ms * 0.3 END,
    r_queue * 20,
    in_tokens, out_tokens,
    (in_tokens * 3 + out_tokens * 15) / 1e6,
    r_stream < 0.3,
    'user-' || (g % 5000), 'chat',
    CASE WHEN r_fallback < 0.01 THEN 'openai' END,
    'bench-' || (g % :instances)
FROM (
    SELECT g, ts, r_source, r_class, r_queue, r_stream, r_fallback,
        CASE WHEN r_provider < 0.6 THEN 'anthropic' ELSE 'openai' END AS provider,
        CASE WHEN r_provider < 0.6
             THEN (ARRAY['claude-sonnet-4-6', 'claude-haiku-4-5', 'claude-opus-4-1'])[1 + floor(r_model * 3)::int]
             ELSE (ARRAY['gpt-4.1', 'gpt-4o'])[1 + floor(r_model * 2)::int] END AS model,
        (ARRAY['Primary', 'Backup 1', 'Backup 2'])[1 + floor(r_key * 3)::int] AS key_label,
        -- the error rate swings between 5 % and 25 % once a day
        r_error < 0.15 + 0.10 * sin(extract(epoch FROM ts) / 86400 * 2 * pi()) AS failed,
        exp(6.5 + 0.8 * sqrt(-2 * ln(r_n1)) * cos(2 * pi() * r_n2)) AS latency_ms,
        50 + floor(r_in * 4000)::int AS in_tokens,
        10 + floor(r_out * 1000)::int AS out_tokens
    FROM (
        SELECT g, :start + (g * :span_s / :rows) * interval '1 second' AS ts,
            random() AS r_source, random() AS r_class, random() AS r_queue, random() AS r_stream,
            random() AS r_fallback, random() AS r_provider, random() AS r_model, random() AS r_key,
            random() AS r_error, 1 - random() AS r_n1, random() AS r_n2, random() AS r_in, random() AS r_out
        FROM generate_series(0, :rows - 1) AS g
    ) r
) s
"""

# A revoked key probed every 5 minutes across the whole span, failing every time: the probe_failures rule's worst
# case (no success in its day of lookback, so every probe row of the day is read). Inserted before the rollups.
GENERATE_DEAD_KEY = """
INSERT INTO api_usage_metrics (id, ts, call_id, attempt, is_final, source, provider, model, key_label,
    key_fingerprint, outcome, error_class, http_status, latency_ms, instance_id)
SELECT ('22222222-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, :end - g * interval '5 minutes',
    ('33333333-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 1, true, 'probe', 'anthropic',
    'claude-haiku-4-5', 'Revoked', 'revokedrevo', 'error', 'auth', 401, 120.0, 'bench-worker'
FROM generate_series(1, :span_s / 300) AS g
"""

GENERATE_INSTANCES = """
INSERT INTO instance_snapshots (ts, instance_id, kind, host, pid, provider, queue_depth, oldest_wait_ms,
    requests_used, requests_remaining, requests_limit, requests_limit_configured, breaker_state)
SELECT ts, 'bench-' || i, 'client', 'host-' || i, 1000 + i, p, floor(random() * 20)::int, random() * 500,
    floor(random() * 50)::int, 50, 100, 100, 'closed'
FROM generate_series(:start, :end - interval '1 second', :step * interval '1 second') AS ts,
     generate_series(0, :instances - 1) AS i, unnest(ARRAY['anthropic', 'openai']) AS p
"""

GENERATE_KEY_HEALTH = """
INSERT INTO key_health_snapshots (ts, instance_id, provider, key_label, key_fingerprint, key_masked, score, status,
    consecutive_failures, requests)
SELECT ts, 'bench-' || i, p, k, substr(md5(k || p), 1, 12), 'sk-…' || substr(md5(k || p), 1, 4),
    0.5 + random() * 0.5, CASE WHEN random() < 0.02 THEN 'degraded' ELSE 'healthy' END, 0,
    floor(random() * 1000)::int
FROM generate_series(:start, :end - interval '1 second', :step * interval '1 second') AS ts,
     generate_series(0, :instances - 1) AS i, unnest(ARRAY['anthropic', 'openai']) AS p,
     unnest(ARRAY['Primary', 'Backup 1', 'Backup 2']) AS k
"""


GENERATE_QUEUE_ROLLUPS = """
INSERT INTO queue_rollups (tier_s, bucket, provider, instance_id, max_queue_depth, max_oldest_wait_ms,
    breaker_open_samples, samples)
SELECT tier, to_timestamp(floor(extract(epoch FROM ts) / tier) * tier), provider, instance_id, max(queue_depth),
    max(oldest_wait_ms), count(*) FILTER (WHERE breaker_state = 'open'), count(*)
FROM instance_snapshots, unnest(ARRAY[60, 600, 3600]) AS tier
GROUP BY 1, 2, 3, 4
"""

GENERATE_KEY_ROLLUPS = f"""
INSERT INTO key_health_rollups (tier_s, bucket, provider, key_label, instance_id, min_score, worst_rank, samples)
SELECT tier, to_timestamp(floor(extract(epoch FROM ts) / tier) * tier), provider, key_label, instance_id,
    min(score), max(CASE status {" ".join(f"WHEN '{s}' THEN {r}" for s, r in KEY_STATUS_RANK.items())} END),
    count(*)
FROM key_health_snapshots, unnest(ARRAY[60, 600, 3600]) AS tier
GROUP BY 1, 2, 3, 4, 5
"""

GENERATE_INSTANCES_REGISTRY = """
INSERT INTO instances (instance_id, kind, host, pid, first_seen, last_seen)
SELECT instance_id, min(kind), min(host), min(pid), min(ts), max(ts) FROM instance_snapshots GROUP BY instance_id
"""


def _rollup_names() -> str:
    return ", ".join(KEY_COLUMNS + tuple(name for name, _, _ in _aggregates()))


def build_minutes_sql() -> str:
    """``metric_rollups_1m`` from every raw row: the flush-time aggregate of rollups.py over the whole table."""
    keys = f"{minute_expression('postgresql')}, provider, model, COALESCE(key_label, ''), source"
    selects = ", ".join(expression for _, expression, _ in _aggregates())
    return (
        f"INSERT INTO {metric_rollups_1m.name} ({_rollup_names()}) "
        f"SELECT {keys}, {selects} FROM (SELECT *, {LAT_BUCKET_SQL} AS lat_bucket FROM api_usage_metrics) s "
        f"GROUP BY {keys}"
    )


def build_coarser_sql(table: sa.Table, bucket_expression: str) -> str:
    """A coarser tier from the minute tier, re-aggregated as the flush-time SQL does."""
    keys = f"{bucket_expression}, provider, model, key_label, source"
    selects = ", ".join(f"{reaggregate}({name})" for name, _, reaggregate in _aggregates())
    return (
        f"INSERT INTO {table.name} ({_rollup_names()}) "
        f"SELECT {keys}, {selects} FROM {metric_rollups_1m.name} GROUP BY {keys}"
    )


def raw_traffic_sql(flt: queries.QueryFilter) -> tuple[str, dict[str, Any]]:
    """The 24 h traffic series' aggregate from raw rows: per step × source, every rollup sum and the histogram."""
    step = flt.step_s
    origin = common.floor_time(flt.start, step)
    selects = ", ".join(f"{expression} AS {name}" for name, expression, _ in _aggregates())
    sql = (
        f"SELECT ((floor(extract(epoch FROM ts))::bigint - :origin) / :step)::int AS idx, source, {selects} "
        f"FROM (SELECT *, {LAT_BUCKET_SQL} AS lat_bucket FROM api_usage_metrics "
        "WHERE ts >= :low AND ts < :end) s GROUP BY 1, source"
    )
    return sql, {"origin": int(origin.timestamp()), "step": step, "low": origin, "end": flt.end}


def populate(engine: sa.Engine, rows: int) -> dict[str, float]:
    start = END - SPAN
    timings: dict[str, float] = {}
    steps = [
        ("raw rows", GENERATE_RAW, {"rows": rows, "span_s": SPAN.total_seconds(), "instances": INSTANCES}),
        ("revoked key's probes", GENERATE_DEAD_KEY, {"span_s": int(SPAN.total_seconds())}),
        ("rollups 1m", build_minutes_sql(), {}),
        ("rollups 10m", build_coarser_sql(metric_rollups_10m, ten_minute_expression("postgresql")), {}),
        ("rollups 1h", build_coarser_sql(metric_rollups_1h, hour_expression("postgresql")), {}),
        (
            "user rollups 1h",
            user_aggregate_sql("postgresql", source="api_usage_metrics", hour_column="ts", target=user_rollups_1h.name),
            {},
        ),
        ("instance snapshots", GENERATE_INSTANCES, {"step": HEARTBEAT_S, "instances": INSTANCES}),
        ("key snapshots", GENERATE_KEY_HEALTH, {"step": HEARTBEAT_S, "instances": INSTANCES}),
        ("queue rollups", GENERATE_QUEUE_ROLLUPS, {}),
        ("key health rollups", GENERATE_KEY_ROLLUPS, {}),
        ("instance registry", GENERATE_INSTANCES_REGISTRY, {}),
    ]
    with engine.begin() as connection:
        connection.execute(sa.text("SET LOCAL synchronous_commit = off"))
        connection.execute(sa.text("SELECT setseed(0.42)"))
        for label, sql, params in steps:
            began = time.perf_counter()
            bound = {"start": start, "end": END, **params}
            connection.execute(sa.text(sql), {k: v for k, v in bound.items() if f":{k}" in sql})
            timings[label] = time.perf_counter() - began
            print(f"  {label}: {timings[label]:.1f} s", flush=True)
        began = time.perf_counter()
        connection.execute(alert_episodes.insert(), episode_rows(END - EPISODE_SPAN, END, EPISODES))
        timings["alert episodes"] = time.perf_counter() - began
    began = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(sa.text("VACUUM ANALYZE"))
    timings["vacuum analyze"] = time.perf_counter() - began
    print(f"  vacuum analyze: {timings['vacuum analyze']:.1f} s", flush=True)
    return timings


def median_ms(call: Callable[[], object]) -> float:
    call()  # warm: plan cache, buffers, pandas code paths
    samples = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


#: The top-users table is also timed for ranges ending mid-hour (as the dashboard's, ending "now", do): it then
#: covers the whole hours touching the range, one more bucket per user than a range ending on the hour.
MID_HOUR = timedelta(minutes=23, seconds=17)


def user_usage_raw(engine: sa.Engine, flt: queries.QueryFilter, top: int = 20) -> object:
    """The top-users query before ``user_rollups_1h``: the same whole hours aggregated from the raw rows."""
    t = api_usage_metrics
    start, end = user_window(flt)
    calls = sa.func.count().label("calls")
    statement = (
        sa.select(
            t.c.user_id,
            calls,
            sa.func.sum(sa.case((t.c.outcome == "error", 1), else_=0)).label("errors"),
            sa.func.sum(sa.case((t.c.error_class == "user_rate_limited", 1), else_=0)).label("user_rate_limited"),
            sa.cast(sa.func.coalesce(sa.func.sum(t.c.input_tokens), 0), sa.BigInteger).label("input_tokens"),
            sa.cast(sa.func.coalesce(sa.func.sum(t.c.output_tokens), 0), sa.BigInteger).label("output_tokens"),
            sa.cast(sa.func.coalesce(sa.func.sum(t.c.cost_usd), 0.0), sa.Float).label("cost_usd"),
        )
        .where(t.c.ts >= start, t.c.ts < end, t.c.user_id.is_not(None))
        .group_by(t.c.user_id)
        .order_by(calls.desc(), t.c.user_id)
        .limit(top)
    )
    return common.fetch(engine, statement)


def cases(engine: sa.Engine) -> dict[str, Callable[[queries.QueryFilter], object]]:
    return {
        "traffic_series": lambda f: queries.traffic_series(engine, f),
        "kpi_summary": lambda f: queries.kpi_summary(engine, f),
        "latest_key_health": lambda f: queries.latest_key_health(engine, f.end),
        "queue_depth_series": lambda f: queries.queue_depth_series(engine, f),
        "key_health_series": lambda f: queries.key_health_series(engine, f),
        "recent_attempts": lambda f: queries.recent_attempts(engine, f),
        "consecutive_probe_failures": lambda f: consecutive_probe_failures(engine, f.end),
        "user_usage": lambda f: user_usage(engine, f, top=20),
        "user_usage, range ending mid-hour": lambda f: user_usage(engine, _mid_hour(f), top=20),
        "top users from raw rows (before)": lambda f: user_usage_raw(engine, f),
    }


def _mid_hour(flt: queries.QueryFilter) -> queries.QueryFilter:
    return queries.QueryFilter(flt.start - MID_HOUR, flt.end - MID_HOUR)


def measure(engine: sa.Engine) -> tuple[dict[str, dict[str, float]], float]:
    table: dict[str, dict[str, float]] = {}
    for name, call in cases(engine).items():
        table[name] = {}
        for label, duration in RANGES.items():
            flt = queries.QueryFilter.last(duration, END)
            table[name][label] = median_ms(lambda flt=flt, call=call: call(flt))
        print(f"  {name}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in table[name].items()), flush=True)
    sql, params = raw_traffic_sql(queries.QueryFilter.last(RANGES["24 h"], END))

    def raw() -> None:
        with engine.connect() as connection:
            connection.execute(sa.text(sql), params).fetchall()

    raw_ms = median_ms(raw)
    print(f"  raw 24 h traffic aggregate: {raw_ms:.0f} ms", flush=True)
    for label, duration in RANGES.items():  # the rollup-backed table is the raw one over its hours, row for row
        for flt in (queries.QueryFilter.last(duration, END), _mid_hour(queries.QueryFilter.last(duration, END))):
            got = user_usage(engine, flt, top=20).values.tolist()
            _, rows = user_usage_raw(engine, flt)  # type: ignore[misc]
            want = [list(row) for row in rows]
            same = len(got) == len(want) and all(
                g[:6] == w[:6] and abs(g[6] - w[6]) <= 1e-9 * max(1.0, abs(w[6]))
                for g, w in zip(got, want, strict=True)
            )
            print(f"  user_usage {label} ending {flt.end:%H:%M:%S} equals the raw query: {same}", flush=True)
    return table, raw_ms


def render(rows: int, table: dict[str, dict[str, float]], raw_ms: float, timings: dict[str, float]) -> str:
    labels = list(RANGES)
    lines = [
        "## Dashboard queries",
        "",
        f"`benchmarks/queries.py`: {rows:,} raw rows over 7 days in PostgreSQL (rollup tiers built from them, "
        f"snapshots every {HEARTBEAT_S} s from {INSTANCES} instances); each query's median of {REPEATS} warm calls "
        f"(Python side included), range ending at the data's end. Goal: ≤ {GOAL_MS:.0f} ms.",
        "",
        "| query | " + " | ".join(labels) + " | goal |",
        "|---|" + "---:|" * len(labels) + "---|",
    ]
    for name, by_range in table.items():
        cells = [f"{by_range[label]:.1f} ms" for label in labels]
        verdict = "PASS" if all(v <= GOAL_MS for v in by_range.values()) else "MISS"
        lines.append(f"| `{name}` | " + " | ".join(cells) + f" | {verdict} |")
    lines += [
        f"| raw-table aggregate of the 24 h traffic series | | {raw_ms:.0f} ms | | (comparison) |",
        "",
        "`latest_key_health` takes no range (the latest snapshot within its default 24 h lookback): "
        "the same call in every column. So does `consecutive_probe_failures` (the `probe_failures` rule's query, "
        "every 30 s: a day of lookback, with one revoked key probed every 5 min and failing all 7 days — its "
        "worst case). `user_usage` (the Limits page's top 20 users) covers the whole hours touching the range's "
        "last 24 h, so its 7 d column reads as much as its 24 h one, all from `user_rollups_1h` (the mid-hour row: "
        f"ranges ending {MID_HOUR.seconds // 60} min {MID_HOUR.seconds % 60} s before the data's end, 25 buckets "
        "per user); the last row is the same hours aggregated from the raw rows, timed in the same run.",
        "",
        "Load: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + ".",
        "",
        f"Machine: {machine(f'PostgreSQL {_server_version()}', f'SQLAlchemy {sa.__version__}')}.",
    ]
    return "\n".join(lines)


_SERVER_VERSION: list[str] = []


def _server_version() -> str:
    return _SERVER_VERSION[0] if _SERVER_VERSION else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="raw rows over 7 days (default 10,000,000)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database (prints its URL)")
    parser.add_argument("--reuse", metavar="URL", help="time the queries on a database kept by --keep (no load)")
    parser.add_argument("--name", help="the scratch database's name (an existing one is dropped first)")
    parser.add_argument("--drop", metavar="NAME", help="drop the database NAME (kept by --keep --name) and exit")
    parser.add_argument("--write-results", action="store_true", help="rewrite this section of RESULTS.md")
    args = parser.parse_args()

    if args.drop:
        scratch = ScratchPostgres(PG_SERVER)
        scratch.name = args.drop
        scratch.drop()
        print(f"dropped {args.drop}")
        return
    if args.reuse:
        engine = create_store_engine(args.reuse)
        measure(engine)
        engine.dispose()
        return
    scratch = ScratchPostgres(PG_SERVER, prefix="pulsegate_bench_queries")
    if args.name:
        scratch.name = args.name
        scratch.drop_only()
    _SERVER_VERSION.append(scratch.server_version())
    name = scratch.name
    url = scratch.create().render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        engine = create_store_engine(url)
        print(f"loading {args.rows:,} rows into {name} …", flush=True)
        timings = populate(engine, args.rows)
        print("timing queries …", flush=True)
        table, raw_ms = measure(engine)
        engine.dispose()
    finally:
        if args.keep:
            print(f"kept: {url}")
        else:
            scratch.drop()

    body = render(args.rows, table, raw_ms, timings)
    print()
    print(body)
    if args.write_results:
        print(f"\nwrote {write_section('queries', body)}")


if __name__ == "__main__":
    main()
