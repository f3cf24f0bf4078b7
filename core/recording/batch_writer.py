"""One batch of attempts into the SQL store: staged per database, then moved into the raw table and every rollup.

Kept apart from the recorder (:mod:`pulsegate.core.recording.sql`), which decides when to write and where rows wait:
this module only knows how one batch is written, in one transaction, and what a failed write means — the benchmarks
and the tests' fixtures write through it directly.
"""

from __future__ import annotations

import sqlite3
import sys
from datetime import UTC, datetime

import sqlalchemy as sa

from pulsegate.core.ids import uuid7_batch
from pulsegate.core.recording.attempt import AttemptRecord
from pulsegate.core.store import latency_buckets, rollups
from pulsegate.core.store.engine import SQLITE_IMMEDIATE

_bucket_index = latency_buckets.bucket_index


#: The raw table's columns in the order the fast staging functions below emit them.
_STAGED_RAW = (
    "id", "ts", "call_id", "attempt", "is_final", "source", "provider", "model", "key_label", "key_fingerprint",
    "outcome", "error_class", "http_status", "request_id", "latency_ms", "ttft_ms", "queue_wait_ms", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced", "usage_estimated", "priority",
    "streamed", "user_id", "feature", "fell_back_from", "instance_id", "app",
)  # fmt: skip


#: Binary COPY types of the Postgres staging columns.
_PG_TYPES = {
    "id": "uuid", "ts": "timestamptz", "call_id": "uuid", "attempt": "int2", "is_final": "bool", "source": "text",
    "provider": "text", "model": "text", "key_label": "text", "key_fingerprint": "text", "outcome": "text",
    "error_class": "text", "http_status": "int2", "request_id": "text", "latency_ms": "float8", "ttft_ms": "float8",
    "queue_wait_ms": "float8", "input_tokens": "int4", "output_tokens": "int4", "cache_read_tokens": "int4",
    "cache_write_tokens": "int4", "cost_usd": "float8", "unpriced": "bool", "usage_estimated": "bool",
    "priority": "int2", "streamed": "bool", "user_id": "text", "feature": "text", "fell_back_from": "text",
    "instance_id": "text", "app": "text", "lat_bucket": "int2",
}  # fmt: skip


def assign_ids(attempts: list[AttemptRecord]) -> int:
    """Time-ordered (version 7) uuids from each attempt's own time for the attempts that have none (one
    ``os.urandom`` call per batch); returns how many were assigned. See :mod:`pulsegate.core.ids` for why."""
    missing = [attempt for attempt in attempts if attempt.id is None]
    if not missing:
        return 0
    ids = uuid7_batch([int(attempt.ts.timestamp() * 1000) for attempt in missing])
    for attempt, new_id in zip(missing, ids, strict=True):
        attempt.id = new_id
    return len(missing)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is UTC:
        return ts
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: the store takes timezone-aware UTC times")
    return ts.astimezone(UTC)


def _error_class(value: object) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _stage_sqlite(attempts: list[AttemptRecord]) -> list[tuple[object, ...]]:
    """Staged rows with SQLite's bind values — the text SQLAlchemy's own binds produce (uuid hex,
    'YYYY-MM-DD HH:MM:SS.ffffff' UTC, booleans as 0/1) — plus the minute bucket's text and the latency bucket."""
    staged = []
    append = staged.append
    bucket = _bucket_index
    for a in attempts:
        ts = a.ts
        text = (ts if ts.tzinfo is UTC else _utc(ts)).isoformat(" ", "microseconds")[:26]
        append((
            a.id.hex,  # type: ignore[union-attr]
            text, a.call_id.hex, a.attempt, 1 if a.is_final else 0, a.source, a.provider, a.model, a.key_label,
            a.key_fingerprint, a.outcome, _error_class(a.error_class), a.http_status, a.request_id, a.latency_ms,
            a.ttft_ms, a.queue_wait_ms, a.input_tokens, a.output_tokens, a.cache_read_tokens, a.cache_write_tokens,
            a.cost_usd, 1 if a.unpriced else 0, 1 if a.usage_estimated else 0, a.priority, 1 if a.streamed else 0,
            a.user_id, a.feature, a.fell_back_from, a.instance_id, a.app,
            text[:17] + "00.000000", bucket(a.latency_ms),
        ))  # fmt: skip
    return staged


def _stage_postgres(attempts: list[AttemptRecord]) -> list[tuple[object, ...]]:
    """Staged rows for COPY (psycopg adapts uuids, aware datetimes and booleans) plus the latency bucket."""
    staged = []
    append = staged.append
    bucket = _bucket_index
    for a in attempts:
        ts = a.ts
        append((
            a.id, ts if ts.tzinfo is UTC else _utc(ts), a.call_id, a.attempt, bool(a.is_final), a.source,
            a.provider, a.model, a.key_label, a.key_fingerprint, a.outcome, _error_class(a.error_class),
            a.http_status, a.request_id, a.latency_ms, a.ttft_ms, a.queue_wait_ms, a.input_tokens, a.output_tokens,
            a.cache_read_tokens, a.cache_write_tokens, a.cost_usd, bool(a.unpriced), bool(a.usage_estimated),
            a.priority, bool(a.streamed), a.user_id, a.feature, a.fell_back_from, a.instance_id, a.app,
            bucket(a.latency_ms),
        ))  # fmt: skip
    return staged


def is_outage(exc: BaseException) -> bool:
    """The database is unreachable, locked or not ready (tables missing) — as opposed to refusing this data."""
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    kinds: tuple[type[BaseException], ...] = (OSError, sa.exc.OperationalError, sa.exc.InterfaceError)
    kinds += (sa.exc.ProgrammingError, sqlite3.OperationalError, sqlite3.InterfaceError, sqlite3.ProgrammingError)
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None:
        kinds += (psycopg.OperationalError, psycopg.InterfaceError, psycopg.ProgrammingError)
    return isinstance(exc, kinds)


class BatchWriter:
    """Writes batches of attempts through the staging table, one transaction each (see
    :mod:`pulsegate.core.store.rollups`).

    Rows are staged by a hand-written function per database (a generic per-column bind-processor loop cost ~4× more
    Python time per row); the values are the ones SQLAlchemy's binds would send, so SQLite stores timestamps in the
    exact text form every other query of the store binds. The tests check both against the tables.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        if rollups.RAW_COLUMNS != _STAGED_RAW:
            raise RuntimeError(
                "api_usage_metrics changed: update the staging functions in core/recording/batch_writer.py"
            )
        self.dialect_name = dialect.name
        self.postgres = dialect.name == "postgresql"
        self.columns = list(rollups.RAW_COLUMNS)
        self.stage = _stage_postgres if self.postgres else _stage_sqlite
        self.create_staging = rollups.create_staging_sql(dialect.name)
        self.stage_insert = rollups.stage_insert_sql(dialect.name)
        self.stage_copy = rollups.stage_copy_sql()
        self.drop_stored = rollups.drop_already_stored_sql(dialect.name)
        self.move_to_raw = rollups.move_to_raw_sql()
        self.create_aggregate = rollups.create_aggregate_sql(dialect.name)
        self.upserts = rollups.rollup_sql(dialect.name)
        self.clear_staging = rollups.clear_staging_sql()
        if self.postgres:
            self.stage_copy += " (FORMAT BINARY)"
            self.copy_types = [_PG_TYPES[name] for name in rollups.staging_columns("postgresql")]

    def check_ready(self, engine: sa.Engine) -> None:
        """Raise what a write would raise if the database cannot take one now (unreachable, or SQLite's write lock
        held elsewhere), without a batch's cost: a checked-out (pre-pinged) connection and an empty write
        transaction."""
        with engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin():
            pass

    def write(self, engine: sa.Engine, attempts: list[AttemptRecord], *, replay: bool = True) -> int:
        """Store a batch with its rollups in one transaction; returns how many rows were new (the rest skipped).

        Staged rows already stored are skipped unless every id was made just now (``replay=False`` and no id set
        before): a row with a brand-new uuid cannot be in the table, so the lookup is only paid by batches that
        were tried before — the spool's replays — or that came with their own ids.
        """
        fresh = assign_ids(attempts) == len(attempts) and not replay
        staged = self.stage(attempts)
        created_on: dict[object, object] | None = None
        with engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
            info = connection.info
            if not info.get("pulsegate_staging"):
                if not self.postgres:
                    connection.exec_driver_sql("PRAGMA temp_store=MEMORY")  # staging never touches the disk
                connection.exec_driver_sql(self.create_staging)
                connection.exec_driver_sql(self.create_aggregate)
                created_on = info
            if self.postgres:
                cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    with cursor.copy(self.stage_copy) as copy:
                        copy.set_types(self.copy_types)
                        write_row = copy.write_row
                        for values in staged:
                            write_row(values)
                finally:
                    cursor.close()
            else:
                connection.exec_driver_sql(self.stage_insert, staged)
            skipped = 0 if fresh else connection.exec_driver_sql(self.drop_stored).rowcount or 0
            if skipped < len(staged):
                connection.exec_driver_sql(self.move_to_raw)
                for upsert in self.upserts:
                    connection.exec_driver_sql(upsert)
            if not self.postgres:  # Postgres empties them at commit (ON COMMIT DELETE ROWS)
                for clear in self.clear_staging:
                    connection.exec_driver_sql(clear)
        if created_on is not None:
            # only once committed: a batch the store refused rolls its CREATE TEMP TABLE back with it, and a flag
            # set before that would send every later batch on this connection to "no such table"
            created_on["pulsegate_staging"] = True
        return len(staged) - skipped
