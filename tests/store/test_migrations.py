"""One migration set for both databases: it round-trips, and the models never drift from it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import migrations
from core.store.engine import create_store_engine
from core.store.tables import metadata

EXPECTED_TABLES = {
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
