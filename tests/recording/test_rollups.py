"""Rollups maintained at flush time equal the aggregates over raw rows — also after replaying committed batches."""

from __future__ import annotations

import random
from pathlib import Path

import sqlalchemy as sa

from pulsegate.core.recording import SqlRecorder
from pulsegate.core.recording.batch_writer import BatchWriter
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import metric_rollups_1h, metric_rollups_1m, metric_rollups_10m, user_rollups_1h
from tests.recording.support import assert_rollups_match_raw, expected_rollups, hour_ago, random_attempt, raw_rows


def test_rollups_equal_raw_aggregates_after_a_random_load(store: sa.Engine, tmp_path: Path) -> None:
    rng = random.Random(4)
    recorder = SqlRecorder(store, batch_size=137, interval_s=0.01, spool_dir=tmp_path)
    start = hour_ago()
    try:
        for _ in range(3000):
            recorder.record(random_attempt(rng, start))
        assert recorder.flush()
    finally:
        recorder.close()
    assert recorder.stats()["written"] == 3000
    assert assert_rollups_match_raw(store) == 3000

    # percentiles from the stored histogram are within one bucket of the true ones
    with store.connect() as connection:
        stored = [dict(r._mapping) for r in connection.execute(sa.select(metric_rollups_1h))]
    expected = expected_rollups(raw_rows(store), "1h")
    checked = 0
    for row in stored:
        latencies = expected[(row["bucket"], row["provider"], row["model"], row["key_label"], row["source"])][
            "_latencies"
        ]
        if len(latencies) < 20:
            continue
        counts = [row[c] for c in latency_buckets.COLUMN_NAMES]
        for q in (0.5, 0.95, 0.99):
            true = latencies[max(0, int(q * len(latencies) + 0.999999) - 1)]
            estimate = latency_buckets.quantile(counts, q)
            assert estimate is not None
            assert abs(latency_buckets.bucket_index(estimate) - latency_buckets.bucket_index(true)) <= 1
            checked += 1
    assert checked > 20


def test_a_replayed_committed_batch_is_never_counted_twice(store: sa.Engine, tmp_path: Path) -> None:
    rng = random.Random(7)
    start = hour_ago()
    recorder = SqlRecorder(store, batch_size=100, interval_s=0.01, spool_dir=tmp_path)
    try:
        for _ in range(400):
            recorder.record(random_attempt(rng, start))
        assert recorder.flush()
        before = assert_rollups_match_raw(store)
        with store.connect() as connection:
            rollup_before = sorted(tuple(r) for r in connection.execute(sa.select(metric_rollups_1h)))

        # the commit outcome of a batch was unknown: it is replayed from the spool, whole
        committed = raw_rows(store)[:150]
        recorder.spool.append(committed)
        assert recorder.flush()
        assert recorder.stats()["duplicates_skipped"] == 150
        assert assert_rollups_match_raw(store) == before == 400
        with store.connect() as connection:
            assert sorted(tuple(r) for r in connection.execute(sa.select(metric_rollups_1h))) == rollup_before

        # a batch half committed, half new: only the new half is stored and counted
        fresh = [random_attempt(rng, start).as_row() for _ in range(60)]
        recorder.spool.append(committed[:60] + fresh)
        assert recorder.flush()
        assert recorder.stats()["duplicates_skipped"] == 210
        assert assert_rollups_match_raw(store) == 460
    finally:
        recorder.close()


def test_rollup_sql_covers_every_rollup_column() -> None:
    from pulsegate.core.store import rollups

    for dialect in ("sqlite", "postgresql"):
        aggregate, minutes, tens, hours, users = rollups.rollup_sql(dialect)
        for table, sql in ((metric_rollups_1m, minutes), (metric_rollups_10m, tens), (metric_rollups_1h, hours)):
            assert f"INSERT INTO {table.name} " in sql
            for name in (c.name for c in table.columns):
                assert name in sql and name in aggregate
        assert f"INSERT INTO {user_rollups_1h.name} " in users
        for name in (c.name for c in user_rollups_1h.columns):
            assert name in users


def test_staging_rows_bind_timestamps_like_the_store(store: sa.Engine) -> None:
    """Minute and hour buckets are bound exactly like every other timestamp of the store."""
    rng = random.Random(1)
    writer = BatchWriter(store.dialect)
    attempt = random_attempt(rng, hour_ago())
    assert writer.write(store, [attempt]) == 1
    assert attempt.id is not None
    assert writer.write(store, [attempt]) == 0  # the same id again: skipped
    with store.connect() as connection:
        bucket = connection.execute(sa.select(metric_rollups_1h.c.bucket)).scalar_one()
        ts = connection.execute(sa.text("SELECT ts FROM api_usage_metrics")).scalar_one()
        matched = connection.execute(
            sa.select(sa.func.count()).select_from(metric_rollups_1h).where(metric_rollups_1h.c.bucket <= attempt.ts)
        ).scalar_one()
    assert bucket == attempt.ts.replace(minute=0, second=0, microsecond=0)
    assert matched == 1
    if store.dialect.name == "sqlite":
        assert isinstance(ts, str) and "+" not in ts  # 'YYYY-MM-DD HH:MM:SS.ffffff', UTC
