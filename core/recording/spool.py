"""The recorder's local spool: batches the database could not take, on disk until it can.

One append-only JSON-lines file per recorder (one line per batch, fsync'd before the batch counts as spooled),
under ``<spool_dir>/<store id>/`` so that a spool is only ever replayed into the database it was meant for. The
file is locked (``flock``) while its recorder lives; a recorder starting later adopts the unlocked files left by
one that died and replays them first, oldest first. Batches are replayed in the order they were spooled; rows
keep their uuid ids, and the store's replay path skips ids it already has, so replaying twice is harmless.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson

log = logging.getLogger(__name__)

_UUID_FIELDS = ("id", "call_id")


def store_id(url: str) -> str:
    """A short stable folder name for one database (its URL without the password, hashed)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def encode_batch(rows: list[dict[str, Any]]) -> bytes:
    """orjson, not the standard library: a thousand rows take 0.8 ms instead of 11, and this runs on the writer
    thread while the app's calls wait for the GIL (datetimes as ISO 8601, UUIDs hyphenated; anything else it cannot
    encode raises ``TypeError``)."""
    return orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS) + b"\n"  # keys may be str subclasses (SQLAlchemy)


def decode_batch(line: bytes) -> list[dict[str, Any]]:
    """Rows as :func:`encode_batch` wrote them (also the standard library's older lines: UUIDs as bare hex);
    ``ValueError`` for a damaged line."""
    rows: list[dict[str, Any]] = orjson.loads(line)
    for row in rows:
        row["ts"] = datetime.fromisoformat(row["ts"])
        for name in _UUID_FIELDS:
            if row.get(name) is not None:
                row[name] = uuid.UUID(row[name])
    return rows


@dataclass
class _File:
    path: Path
    handle: IO[bytes]
    offset: int = 0  # bytes already replayed
    adopted: bool = False


class Spool:
    """Not thread-safe: only the recorder's writer thread uses it."""

    def __init__(self, directory: str | os.PathLike[str], store_url: str) -> None:
        self.directory = Path(directory) / store_id(store_url)
        self._own: _File | None = None
        self._files: list[_File] = []  # replay order: adopted files (oldest first), then our own
        self.pending_rows = 0
        self.corrupt_lines = 0
        self._adopt_orphans()

    # --- writing ------------------------------------------------------------------------------------------------

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Write one batch durably; raises ``OSError`` (or ``TypeError``) when it cannot."""
        data = encode_batch(rows)
        own = self._own_file()
        handle = own.handle
        handle.seek(0, os.SEEK_END)
        start = handle.tell()
        try:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            with contextlib.suppress(OSError):  # never leave half a line that the next append would follow
                handle.truncate(start)
            raise
        self.pending_rows += len(rows)

    def _own_file(self) -> _File:
        if self._own is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"spool-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
            handle = path.open("a+b")
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            self._own = _File(path, handle)
            self._files.append(self._own)
        return self._own

    # --- replaying ----------------------------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        return self.pending_rows > 0

    def batches(self) -> Iterator[tuple[list[dict[str, Any]], _File, int]]:
        """The spooled batches in order, each with the position to :meth:`commit` once it is stored."""
        for spool_file in list(self._files):
            handle = spool_file.handle
            handle.seek(spool_file.offset)
            while True:
                line = handle.readline()
                if not line:
                    break
                end = handle.tell()
                if not line.endswith(b"\n"):
                    break  # a batch still being written cannot happen (one thread); a torn tail is left alone
                try:
                    rows = decode_batch(line)
                except ValueError:
                    self.corrupt_lines += 1
                    log.error("spool %s: an unreadable batch at byte %d is skipped", spool_file.path, end - len(line))
                    spool_file.offset = end
                    continue
                yield rows, spool_file, end
                if handle.closed:
                    break  # that was its last batch: commit() dropped the adopted file
                handle.seek(end)

    def commit(self, spool_file: _File, end: int, rows: int) -> None:
        """The batch ending at ``end`` is in the database: move past it, and drop files fully replayed."""
        spool_file.offset = end
        self.pending_rows = max(0, self.pending_rows - rows)
        handle = spool_file.handle
        handle.seek(0, os.SEEK_END)
        if handle.tell() > end:
            return
        if spool_file.adopted:
            self._files.remove(spool_file)
            with contextlib.suppress(OSError):
                spool_file.path.unlink()
            handle.close()
        else:
            handle.truncate(0)
            os.fsync(handle.fileno())
            spool_file.offset = 0

    # --- orphans and shutdown -----------------------------------------------------------------------------------

    def _adopt_orphans(self) -> None:
        if not self.directory.is_dir():
            return
        paths = sorted(self.directory.glob("spool-*.jsonl"), key=lambda p: p.stat().st_mtime)
        for path in paths:
            try:
                handle = path.open("r+b")
            except OSError:
                continue
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # a live recorder owns it
                handle.close()
                continue
            spool_file = _File(path, handle, adopted=True)
            self._files.append(spool_file)
            for line in handle:
                with contextlib.suppress(ValueError):
                    self.pending_rows += len(orjson.loads(line))
        if self._files:
            log.warning("spool: %d rows left by an earlier run will be replayed", self.pending_rows)

    def close(self) -> None:
        """Release the files; an empty own file is removed, anything still pending stays for the next start."""
        for spool_file in self._files:
            handle = spool_file.handle
            handle.seek(0, os.SEEK_END)
            empty = handle.tell() <= spool_file.offset
            if empty:
                with contextlib.suppress(OSError):
                    spool_file.path.unlink()
            handle.close()
        self._files.clear()
        self._own = None
        with contextlib.suppress(OSError):
            self.directory.rmdir()  # only when empty
