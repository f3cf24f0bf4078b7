"""Time-ordered ids (UUID version 7, RFC 9562): what every attempt and call is keyed by.

A random (version 4) primary key lands each insert on a random page of the key's B-tree, so a busy raw table
spends most of its insert time on index pages it has to read and split; a version 7 id starts with the time in
milliseconds, so new ids append to the right edge of the index and sort like the rows' times. The 74 random bits
keep ids unique across instances without coordination, which the spool's idempotent replays rely on.

The random bits come from ``os.urandom`` a block at a time: one system call per call id would release the GIL on
the event loop's thread, which then waits for the recorder's thread to hand it back. A forked child starts a block
of its own, so parent and child never share bits.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Sequence

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62
_RAND_A = ((1 << 12) - 1) << 64
_RAND_B = (1 << 62) - 1


def uuid7_from_ms(unix_ms: int, random_bits: bytes) -> uuid.UUID:
    """A version 7 uuid for the millisecond ``unix_ms`` with 74 of the 80 ``random_bits`` (10 bytes)."""
    rand = int.from_bytes(random_bits, "big")
    value = ((unix_ms & ((1 << 48) - 1)) << 80) | _VERSION_7 | ((rand >> 2) & _RAND_A) | _VARIANT | (rand & _RAND_B)
    return uuid.UUID(int=value)


class _RandomBlock:
    """``os.urandom`` bytes handed out 10 at a time, a 4 KiB block per system call."""

    SIZE = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._data = b""
        self._at = 0

    def forget(self) -> None:
        self._data, self._at = b"", 0

    def take(self, count: int) -> bytes:
        with self._lock:
            at = self._at
            if at + count > len(self._data):
                self._data, at = os.urandom(max(self.SIZE, count)), 0
            self._at = at + count
            return self._data[at : at + count]


_RANDOM = _RandomBlock()
os.register_at_fork(after_in_child=_RANDOM.forget)


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A version 7 uuid for ``unix_ms`` (default: now)."""
    if unix_ms is None:
        unix_ms = time.time_ns() // 1_000_000
    return uuid7_from_ms(unix_ms, _RANDOM.take(10))


def uuid7_batch(unix_ms: Sequence[int]) -> list[uuid.UUID]:
    """One version 7 uuid per millisecond in ``unix_ms``, from a single ``os.urandom`` call."""
    data = os.urandom(10 * len(unix_ms))
    return [uuid7_from_ms(ms, data[10 * index : 10 * index + 10]) for index, ms in enumerate(unix_ms)]
