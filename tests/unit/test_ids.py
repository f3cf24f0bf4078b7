"""Attempt and call ids: RFC 9562 version 7, time-ordered, unique."""

from __future__ import annotations

import uuid

from pulsegate.core.ids import uuid7, uuid7_batch, uuid7_from_ms


def test_version_variant_and_time_prefix() -> None:
    made = uuid7_from_ms(1_700_000_000_123, bytes(range(10)))
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert made.int >> 80 == 1_700_000_000_123
    assert uuid7(5).int >> 80 == 5


def test_ids_sort_by_their_millisecond_and_never_repeat() -> None:
    times = [1_000, 1_000, 999, 2_000, 1_500] * 2_000
    ids = uuid7_batch(times)
    assert len(set(ids)) == len(ids) == 10_000
    assert [i.int >> 80 for i in sorted(ids)] == sorted(times)
    assert all(i.version == 7 for i in ids)
