"""Attempts into the SQL store: a bounded buffer on the call path, batches, rollups and a disk spool behind it.

- ``record()`` only appends to a bounded in-memory buffer (hashing the user id first when a key is set): it never
  blocks and never raises.
- A background thread writes what is buffered when ``batch_size`` rows are waiting, else every ``interval_s``,
  each batch in ONE transaction through a TEMP staging table — binary COPY on PostgreSQL, executemany on SQLite —
  into ``api_usage_metrics`` and every rollup tier (see :mod:`core.store.rollups`). A batch holds what is waiting,
  up to ``max_batch_size`` rows: under light load batches stay small and rows show up within ``interval_s``;
  under heavy load fewer, larger transactions keep up (measured: 500-row batches reach about half the rows/s
  of 5,000-row ones, see benchmarks/RESULTS.md "ingest").
- When a write fails the batch goes to the spool (:mod:`core.recording.spool`); while the spool holds anything,
  new batches are appended behind it, so rows reach the database in the order they were recorded. The spool is
  replayed every ``retry_interval_s`` (and on ``flush()`` / ``close()``); replays skip rows already stored, so a
  batch whose commit outcome was unknown is never stored or counted twice.
- Rows are lost only when the buffer is full or closed AND nothing could take them (database down, spool
  unwritable): counted in ``stats()["lost"]`` and logged, never silently.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from core.ids import uuid7_batch
from core.recording.attempt import AttemptRecord
from core.recording.spool import Spool
from core.store import latency_buckets, rollups
from core.store.engine import SQLITE_IMMEDIATE
from core.user_ids import hash_user_id

log = logging.getLogger(__name__)

DEFAULT_SPOOL_DIR = "./data/spool"
_bucket_index = latency_buckets.bucket_index


#: The raw table's columns in the order the fast staging functions below emit them.
_STAGED_RAW = (
    "id", "ts", "call_id", "attempt", "is_final", "source", "provider", "model", "key_label", "key_fingerprint",
    "outcome", "error_class", "http_status", "request_id", "latency_ms", "ttft_ms", "queue_wait_ms", "input_tokens",
    "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd", "unpriced", "usage_estimated", "priority",
    "streamed", "user_id", "feature", "fell_back_from", "instance_id",
)  # fmt: skip


#: Binary COPY types of the Postgres staging columns.
_PG_TYPES = {
    "id": "uuid", "ts": "timestamptz", "call_id": "uuid", "attempt": "int2", "is_final": "bool", "source": "text",
    "provider": "text", "model": "text", "key_label": "text", "key_fingerprint": "text", "outcome": "text",
    "error_class": "text", "http_status": "int2", "request_id": "text", "latency_ms": "float8", "ttft_ms": "float8",
    "queue_wait_ms": "float8", "input_tokens": "int4", "output_tokens": "int4", "cache_read_tokens": "int4",
    "cache_write_tokens": "int4", "cost_usd": "float8", "unpriced": "bool", "usage_estimated": "bool",
    "priority": "int2", "streamed": "bool", "user_id": "text", "feature": "text", "fell_back_from": "text",
    "instance_id": "text", "lat_bucket": "int2",
}  # fmt: skip


def assign_ids(attempts: list[AttemptRecord]) -> int:
    """Time-ordered (version 7) uuids from each attempt's own time for the attempts that have none (one
    ``os.urandom`` call per batch); returns how many were assigned. See :mod:`core.ids` for why."""
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
            a.user_id, a.feature, a.fell_back_from, a.instance_id,
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
            a.priority, bool(a.streamed), a.user_id, a.feature, a.fell_back_from, a.instance_id, bucket(a.latency_ms),
        ))  # fmt: skip
    return staged


def _is_outage(exc: BaseException) -> bool:
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
    """Writes batches of attempts through the staging table, one transaction each (see :mod:`core.store.rollups`).

    Rows are staged by a hand-written function per database (a generic per-column bind-processor loop cost ~4× more
    Python time per row); the values are the ones SQLAlchemy's binds would send, so SQLite stores timestamps in the
    exact text form every other query of the store binds. The tests check both against the tables.
    """

    def __init__(self, dialect: sa.Dialect) -> None:
        if rollups.RAW_COLUMNS != _STAGED_RAW:
            raise RuntimeError("api_usage_metrics changed: update the staging functions in core/recording/sql.py")
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
        with engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
            info = connection.info
            if not info.get("pulsegate_staging"):
                if not self.postgres:
                    connection.exec_driver_sql("PRAGMA temp_store=MEMORY")  # staging never touches the disk
                connection.exec_driver_sql(self.create_staging)
                connection.exec_driver_sql(self.create_aggregate)
                info["pulsegate_staging"] = True
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
        return len(staged) - skipped


class SqlRecorder:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        max_buffer: int = 100_000,
        batch_size: int = 1000,
        interval_s: float = 1.0,
        max_batch_size: int = 5000,
        spool_dir: str | os.PathLike[str] | None = None,
        user_id_key: str | bytes | None = None,
        retry_interval_s: float = 1.0,
    ) -> None:
        self.engine = engine
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.max_batch_size = max(batch_size, max_batch_size)
        self.interval_s = interval_s
        self.retry_interval_s = retry_interval_s
        self._user_key = user_id_key.encode() if isinstance(user_id_key, str) else user_id_key
        self._buffer: collections.deque[AttemptRecord] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._closed = False
        self._flush_requested = 0
        self._flush_done = 0
        self._next_replay = 0.0
        self.written = 0
        self.duplicates = 0
        self.dropped = 0  # rows lost (buffer full / closed and nowhere to go); "lost" in stats
        self.write_failures = 0
        self.spooled = 0
        self.replayed = 0
        self.spool_failures = 0
        self._reported_lost = 0
        self._in_flight = 0
        self._in_flight_rows: list[AttemptRecord] = []  # the buffer batch being written (not a spool replay)
        self._last_error_is_outage = True
        self._failing = False
        self.rejected = 0
        self._writers: dict[str, BatchWriter] = {}
        directory = spool_dir if spool_dir is not None else (os.environ.get("SPOOL_DIR") or DEFAULT_SPOOL_DIR)
        self._spool_args = (Path(directory), engine.url.render_as_string(hide_password=True))
        self.spool = Spool(*self._spool_args)
        self._thread = threading.Thread(target=self._run, name="pulsegate-recorder", daemon=True)
        self._thread.start()
        atexit.register(self.close, 5.0)

    # --- call path ----------------------------------------------------------------------------------------------

    def record(self, attempt: AttemptRecord) -> None:
        try:
            if self._user_key is not None and attempt.user_id is not None:
                attempt.user_id = hash_user_id(attempt.user_id, self._user_key)
            buffer = self._buffer
            if self._closed or len(buffer) >= self.max_buffer:
                self.dropped += 1
                return
            buffer.append(attempt)
            if len(buffer) >= self.batch_size and not self._wake.is_set():
                self._wake.set()
        except Exception:  # recording must never break a call
            self.dropped += 1

    # --- writer thread ------------------------------------------------------------------------------------------

    def _writer(self) -> BatchWriter:
        dialect = self.engine.dialect
        writer = self._writers.get(dialect.name)
        if writer is None:
            writer = self._writers[dialect.name] = BatchWriter(dialect)
        return writer

    def _take(self) -> list[AttemptRecord]:
        buffer = self._buffer
        count = min(len(buffer), self.max_batch_size)
        return [buffer.popleft() for _ in range(count)]

    def _store(self, rows: list[AttemptRecord], *, replay: bool) -> bool:
        try:
            added = self._writer().write(self.engine, rows, replay=replay)
        except Exception as exc:
            self.write_failures += 1
            self._last_error_is_outage = _is_outage(exc)
            self._next_replay = time.monotonic() + self.retry_interval_s
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            # one warning when an outage starts (and one when it ends), not one per retry
            log.log(
                logging.DEBUG if self._failing else logging.WARNING,
                "recorder: writing %d attempt rows failed (%s: %s); spooling them until the store takes them",
                len(rows),
                type(exc).__name__,
                reason[0][:200] if reason else "",
            )
            self._failing = True
            return False
        if self._failing:
            self._failing = False
            log.warning("recorder: the store takes rows again; %d rows still in the spool", self.spool.pending_rows)
        self.written += added
        self.duplicates += len(rows) - added
        return True

    def _to_spool(self, rows: list[AttemptRecord]) -> bool:
        try:
            assign_ids(rows)
            self.spool.append([attempt.as_row() for attempt in rows])
        except Exception as exc:
            self.spool_failures += 1
            log.error("recorder: the spool cannot take %d rows (%s); keeping them in memory", len(rows), exc)
            return False
        self.spooled += len(rows)
        return True

    def _replay(self) -> None:
        """Replay spooled batches in order until one fails (then wait ``retry_interval_s``) or the spool is empty.

        A batch the database rejects for its data (not for being unreachable) is retried row by row, so one bad
        row can never hold the spool — and every row behind it — forever; the rows still refused are counted as
        ``rejected`` and logged.

        While writes are failing, the database is asked first whether it can take one: decoding a spooled batch and
        building its rows holds the GIL for ~25 ms per thousand rows, which once a second during an outage added
        that much to the app's slowest calls, only to fail at the connection.
        """
        if self._failing:
            try:
                self._writer().check_ready(self.engine)
            except Exception as exc:
                if _is_outage(exc):
                    self._next_replay = time.monotonic() + self.retry_interval_s
                    return
        for rows, spool_file, end in self.spool.batches():
            try:
                attempts = [AttemptRecord(**row) for row in rows]
            except TypeError:
                attempts = []
            if not attempts or not self._store(attempts, replay=True):
                if attempts and self._last_error_is_outage:
                    return
                if not self._salvage(rows):
                    return
            self.replayed += len(rows)
            self.spool.commit(spool_file, end, len(rows))

    def _salvage(self, rows: list[dict[str, Any]]) -> bool:
        """Store a rejected batch row by row; False if the database went away meanwhile (retry the batch later)."""
        writer = self._writer()
        for row in rows:
            try:
                self.written += writer.write(self.engine, [AttemptRecord(**row)], replay=True)
            except Exception as exc:
                if _is_outage(exc):
                    self._next_replay = time.monotonic() + self.retry_interval_s
                    return False
                self.rejected += 1
                log.error(
                    "recorder: the store rejects attempt row %s (%s: %s); dropped",
                    row.get("id"),
                    type(exc).__name__,
                    str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "",
                )
        return True

    def _cycle(self, forced: bool) -> None:
        if self.spool.pending and (forced or time.monotonic() >= self._next_replay):
            self._replay()
        first = True
        # One batch per wake-up, then more only while a full batch is waiting (or on flush/close): under a steady
        # trickle this writes every interval instead of committing the few rows that arrived during the last write.
        while self._buffer and (first or forced or len(self._buffer) >= self.batch_size):
            first = False
            batch = self._take()
            self._in_flight = len(batch)
            self._in_flight_rows = batch
            try:
                if not self.spool.pending and self._store(batch, replay=False):
                    continue
                if not self._to_spool(batch):
                    self._buffer.extendleft(reversed(batch))  # nowhere to go: keep them; the bounded buffer decides
                    break
            finally:
                self._in_flight = 0
                self._in_flight_rows = []
        if self.spool.pending and (forced or time.monotonic() >= self._next_replay):
            self._replay()
        if self.dropped > self._reported_lost:
            log.error(
                "recorder: %d attempt rows lost (buffer full or closed, database and spool unavailable); %d in all",
                self.dropped - self._reported_lost,
                self.dropped,
            )
            self._reported_lost = self.dropped

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            closing = self._closed
            requested = self._flush_requested
            try:
                self._cycle(forced=closing or requested > self._flush_done)
            except Exception:  # the writer must outlive any surprise
                log.exception("recorder: unexpected error in the writer thread")
            if closing and self._buffer:
                lost = len(self._buffer)
                self._buffer.clear()
                self.dropped += lost
                log.error("recorder: %d attempt rows could not be written or spooled before closing; lost", lost)
            with self._idle:
                self._flush_done = requested
                self._idle.notify_all()
            if closing:
                self.spool.close()
                return

    # --- control ------------------------------------------------------------------------------------------------

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Write what is buffered and replay the spool now; True when nothing waits for the database afterwards."""
        if self._closed:
            return not self._buffer and not self._in_flight and not self.spool.pending
        with self._idle:
            self._flush_requested += 1
            wanted = self._flush_requested
            self._wake.set()
            self._idle.wait_for(lambda: self._flush_done >= wanted or not self._thread.is_alive(), timeout=timeout_s)
        # a batch still in flight counts: a write that hangs (the database stopped answering) has not stored it
        return not self._buffer and not self._in_flight and not self.spool.pending

    def close(self, timeout_s: float = 10.0) -> None:
        """One last write (or spooling) of what is buffered, bounded by ``timeout_s``; then the writer stops."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        if self._thread.is_alive():
            self._rescue()
        atexit.unregister(self.close)

    def _rescue(self) -> None:
        """The writer is stuck in a database call that does not return (a hung server, a network dropping packets):
        spool the batch it holds and the buffer into a spool file of their own, which the next start replays.

        The rows keep their ids, so if the stuck write does commit after all, the replay skips them (and the
        primary key refuses a second copy): nothing lost, nothing doubled. The writer's own spool is not touched
        (it is not thread-safe, and the writer may be inside a replay)."""
        rows = [*self._in_flight_rows, *self._buffer]
        self._buffer.clear()
        if not rows:
            return
        try:
            assign_ids(rows)
            rescue = Spool(*self._spool_args)
            try:
                rescue.append([attempt.as_row() for attempt in rows])
            finally:
                rescue.close()
        except Exception as exc:
            self.dropped += len(rows)
            log.error("recorder: %d attempt rows lost: the store hangs and the spool failed (%s)", len(rows), exc)
            return
        self.spooled += len(rows)
        self._in_flight = 0
        log.warning(
            "recorder: the store did not answer before closing; %d attempt rows spooled for the next start", len(rows)
        )

    def stats(self) -> dict[str, int]:
        in_memory = len(self._buffer) + self._in_flight
        spooled_pending = self.spool.pending_rows
        return {
            "buffered": in_memory + spooled_pending,  # waiting for the database, in memory or in the spool
            "in_memory": in_memory,
            "written": self.written,
            "duplicates_skipped": self.duplicates,
            "dropped": self.dropped,
            "lost": self.dropped,
            "write_failures": self.write_failures,
            "spooled": self.spooled,
            "spool_pending": spooled_pending,
            "replayed": self.replayed,
            "spool_failures": self.spool_failures,
            "rejected": self.rejected,
        }
