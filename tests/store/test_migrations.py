"""One migration set for both databases: it round-trips, and the models never drift from it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from pulsegate import migrations
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import api_usage_metrics, metadata
from tests.queries.data import NOW, attempt_row
from tests.recording.support import expected_user_rollups, stored_user_rollups

EXPECTED_TABLES = {
    "gateway_apps",
    "gateway_tokens",
    "api_usage_metrics",
    "metric_rollups_1m",
    "metric_rollups_1h",
    "metric_rollups_10m",
    "instance_snapshots",
    "key_health_snapshots",
    "control_commands",
    "control_acks",
    "alert_episodes",
    "alert_deliveries",
    "probe_requests",
    "instances",
    "queue_rollups",
    "key_health_rollups",
    "worker_leases",
    "alert_notifications",
    "alert_silences",
    "limit_changes",
    "user_rollups_1h",
}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
    else:
        yield request.getfixturevalue("scratch_postgres").create("pulsegate_migrations")


def _drift(url: str) -> list[object]:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return migrations.current_revision(connection)
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade_without_drift(empty_database_url: str) -> None:
    url = empty_database_url
    migrations.upgrade(url)
    assert _tables(url) == EXPECTED_TABLES
    assert _revision(url) == migrations.head_revision()
    assert _drift(url) == []

    migrations.downgrade(url, "base")
    assert _tables(url) == set()
    assert _revision(url) is None

    migrations.upgrade(url)
    assert _tables(url) == EXPECTED_TABLES
    assert _drift(url) == []


def test_upgrade_is_idempotent(empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url)
    migrations.upgrade(empty_database_url)
    assert _revision(empty_database_url) == migrations.head_revision()


def test_0009_backfills_the_user_hours_from_the_raw_rows(empty_database_url: str) -> None:
    """An upgraded store's top-users table is not empty: 0009 rolls up every raw row it finds."""
    url = empty_database_url
    migrations.upgrade(url, "0008")
    minute = timedelta(minutes=1)

    def row(minutes: int, user_id: str | None, **values: object) -> dict[str, object]:
        counts = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "user_id": user_id}
        return attempt_row(NOW - minutes * minute, **{**counts, **values})

    rows = [
        row(130, "a", input_tokens=10, output_tokens=3, cost_usd=0.25),
        row(125, "a", outcome="error", error_class="user_rate_limited"),
        row(61, "a", outcome="cancelled", input_tokens=5, cost_usd=None),
        row(59, "b", outcome="error", error_class="timeout", cost_usd=0.5),
        row(58, None, input_tokens=99),
    ]
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(api_usage_metrics.insert(), rows)
        migrations.upgrade(url)
        stored = stored_user_rollups(engine)
    finally:
        engine.dispose()
    hour = timedelta(hours=1)
    assert {key: {k: v for k, v in row.items() if k not in ("bucket", "user_id")} for key, row in stored.items()} == {
        (NOW - 3 * hour, "a"): {
            "calls": 2,
            "errors": 1,
            "user_rate_limited": 1,
            "input_tokens": 10,
            "output_tokens": 3,
            "cost_usd": 0.25,
        },
        (NOW - 2 * hour, "a"): {
            "calls": 1,
            "errors": 0,
            "user_rate_limited": 0,
            "input_tokens": 5,
            "output_tokens": 0,
            "cost_usd": 0.0,
        },
        (NOW - hour, "b"): {
            "calls": 1,
            "errors": 1,
            "user_rate_limited": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.5,
        },
    }
    assert set(stored) == set(expected_user_rollups(rows))


@pytest.mark.postgres
def test_raw_time_index_is_brin_on_postgres(scratch_postgres) -> None:
    url = scratch_postgres.create("pulsegate_brin")
    migrations.upgrade(url)
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            method = connection.execute(
                sa.text(
                    "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                    "WHERE c.relname = 'ix_api_usage_metrics_ts'"
                )
            ).scalar_one()
            raw_indexes = dict(
                connection.execute(
                    sa.text("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'api_usage_metrics'")
                ).all()
            )
    finally:
        engine.dispose()
    assert method == "brin"
    # Few raw indexes on purpose: primary key, time, call_id — and probe rows only (partial: live ingest skips it).
    assert set(raw_indexes) == {
        "pk_api_usage_metrics",
        "ix_api_usage_metrics_ts",
        "ix_api_usage_metrics_call_id",
        "ix_api_usage_metrics_probe_ts",
    }
    assert raw_indexes["ix_api_usage_metrics_probe_ts"].endswith(
        "(provider, key_label, ts, outcome) WHERE ((source)::text = 'probe'::text)"
    )
