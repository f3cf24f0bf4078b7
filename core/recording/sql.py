"""Attempts into the SQL store. The call path only appends to a bounded buffer; a background thread writes batches.

This is the simple recorder: batches of up to ``batch_size`` rows every ``interval_s`` in one transaction. When a
write fails the batch is kept and retried, and rows that do not fit the buffer are counted as dropped — never
silently. (The durable pipeline with a disk spool and rollups replaces the write step; the contract stays.)
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading

import sqlalchemy as sa

from core.recording.attempt import AttemptRecord
from core.store.tables import api_usage_metrics

log = logging.getLogger(__name__)


class DriverInsert:
    """A plain INSERT executed through the driver's executemany with each column's own bind processor applied
    once per value — the same values SQLAlchemy would send, without its per-row statement machinery."""

    def __init__(self, table: sa.Table, dialect: sa.Dialect) -> None:
        self.columns = [column.name for column in table.columns]
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(self.columns)
        placeholders = ", ".join([marker] * len(self.columns))
        self.sql = f"INSERT INTO {table.name} ({names}) VALUES ({placeholders})"  # noqa: S608 — our schema's names
        self.processors = [column.type.bind_processor(dialect) for column in table.columns]

    def parameters(self, attempt: AttemptRecord) -> tuple[object, ...]:
        row = attempt.as_row()
        return tuple(
            process(row[name]) if process is not None and row[name] is not None else row[name]
            for name, process in zip(self.columns, self.processors, strict=True)
        )


class SqlRecorder:
    def __init__(
        self, engine: sa.Engine, *, max_buffer: int = 100_000, batch_size: int = 500, interval_s: float = 0.5
    ) -> None:
        self.engine = engine
        self.max_buffer = max_buffer
        self.batch_size = batch_size
        self.interval_s = interval_s
        self._buffer: collections.deque[AttemptRecord] = collections.deque()
        self._wake = threading.Event()
        self._idle = threading.Condition()
        self._closed = False
        self._writing = False
        self.written = 0
        self.dropped = 0
        self.write_failures = 0
        self._inserts: dict[str, DriverInsert] = {}
        self._thread = threading.Thread(target=self._run, name="pulsegate-recorder", daemon=True)
        self._thread.start()
        atexit.register(self.close, 5.0)

    def record(self, attempt: AttemptRecord) -> None:
        try:
            if self._closed or len(self._buffer) >= self.max_buffer:
                self.dropped += 1
                return
            self._buffer.append(attempt)
            if len(self._buffer) >= self.batch_size:
                self._wake.set()
        except Exception:  # recording must never break a call
            self.dropped += 1

    def _take(self) -> list[AttemptRecord]:
        batch: list[AttemptRecord] = []
        while self._buffer and len(batch) < self.batch_size:
            batch.append(self._buffer.popleft())
        return batch

    def _write(self, batch: list[AttemptRecord]) -> bool:
        try:
            engine = self.engine
            insert = self._inserts.get(engine.dialect.name)
            if insert is None:
                insert = self._inserts[engine.dialect.name] = DriverInsert(api_usage_metrics, engine.dialect)
            with engine.begin() as connection:
                connection.exec_driver_sql(insert.sql, [insert.parameters(a) for a in batch])
        except Exception as exc:  # any failure keeps the batch for the next try
            self.write_failures += 1
            log.warning("recorder: writing %d attempt rows failed (%s); will retry", len(batch), type(exc).__name__)
            self._buffer.extendleft(reversed(batch))
            return False
        self.written += len(batch)
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            closing = self._closed
            while self._buffer:
                self._writing = True
                ok = self._write(self._take())
                self._writing = False
                if not ok:
                    break
            with self._idle:
                self._idle.notify_all()
            if closing:
                if self._buffer:
                    lost = len(self._buffer)
                    self._buffer.clear()
                    self.dropped += lost
                    log.error("recorder: %d attempt rows could not be written before closing and are lost", lost)
                return

    def flush(self, timeout_s: float = 10.0) -> bool:
        with self._idle:
            self._wake.set()
            self._idle.wait_for(lambda: not self._buffer and not self._writing, timeout=timeout_s)
        return not self._buffer and not self._writing

    def close(self, timeout_s: float = 10.0) -> None:
        """One last write of what is buffered (bounded by ``timeout_s``), then the writer stops."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=timeout_s)
        atexit.unregister(self.close)

    def stats(self) -> dict[str, int]:
        return {
            "buffered": len(self._buffer),
            "written": self.written,
            "dropped": self.dropped,
            "write_failures": self.write_failures,
        }
