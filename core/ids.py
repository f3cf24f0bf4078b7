"""Time-ordered ids (UUID version 7, RFC 9562): what every attempt and call is keyed by.

A random (version 4) primary key lands each insert on a random page of the key's B-tree, so a busy raw table
spends most of its insert time on index pages it has to read and split; a version 7 id starts with the time in
milliseconds, so new ids append to the right edge of the index and sort like the rows' times. The 74 random bits
keep ids unique across instances without coordination, which the spool's idempotent replays rely on.
"""

from __future__ import annotations

import os
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


def uuid7(unix_ms: int | None = None) -> uuid.UUID:
    """A version 7 uuid for ``unix_ms`` (default: now)."""
    if unix_ms is None:
        import time

        unix_ms = time.time_ns() // 1_000_000
    return uuid7_from_ms(unix_ms, os.urandom(10))


def uuid7_batch(unix_ms: Sequence[int]) -> list[uuid.UUID]:
    """One version 7 uuid per millisecond in ``unix_ms``, from a single ``os.urandom`` call."""
    data = os.urandom(10 * len(unix_ms))
    return [uuid7_from_ms(ms, data[10 * index : 10 * index + 10]) for index, ms in enumerate(unix_ms)]
