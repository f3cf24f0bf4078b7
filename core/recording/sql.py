"""Attempts into the SQL store: a bounded buffer on the call path, batches, rollups and a disk spool behind it.

- ``record()`` only appends to a bounded in-memory buffer (hashing the user id first when a key is set): it never
  blocks and never raises.
- A background thread writes what is buffered when ``batch_size`` rows are waiting, else every ``interval_s``,
  each batch in ONE transaction through a TEMP staging table — binary COPY on PostgreSQL, executemany on SQLite —
  into ``api_usage_metrics`` and every rollup tier (:mod:`pulsegate.core.recording.batch_writer`). A batch holds what is
  waiting, up to ``max_batch_size`` rows: under light load batches stay small and rows show up within ``interval_s``;
  under heavy load fewer, larger transactions keep up (measured: 500-row batches reach about half the rows/s
  of 5,000-row ones, see benchmarks/RESULTS.md "ingest").
- When a write fails the batch goes to the spool (:mod:`pulsegate.core.recording.spool`); while the spool holds
  anything, new batches are appended behind it, so rows reach the database in the order they were recorded. The spool is
  replayed every ``retry_interval_s`` (and on ``flush()`` / ``close()``); replays skip rows already stored, so a batch
  whose commit outcome was unknown is never stored or counted twice.
- Rows are lost only when the buffer is full or closed AND nothing could take them (database down, spool
  unwritable): counted in ``stats()["lost"]`` and logged, never silently.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pulsegate.core.recording.attempt import AttemptRecord
from pulsegate.core.recording.batch_writer import BatchWriter, assign_ids, is_outage
from pulsegate.core.recording.spool import Spool
from pulsegate.core.user_ids import hash_user_id

log = logging.getLogger(__name__)

DEFAULT_SPOOL_DIR = "./data/spool"


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
            self._last_error_is_outage = is_outage(exc)
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
                if is_outage(exc):
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
                if is_outage(exc):
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
