"""The fixed log-spaced latency histogram kept in every rollup row.

Percentiles do not add up across rows, bucket counts do: summing the bucket columns of any set of rollup rows
and reading the quantile from the sum works on SQLite and Postgres alike. Bounds grow by √2, so an estimate is
within one bucket (±41 %) of the truth, from 1 ms to about 12 minutes; slower calls land in the last bucket.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

BUCKET_COUNT = 41
#: Upper bounds (ms, inclusive) of buckets 0 … 39; bucket 40 holds everything slower.
UPPER_BOUNDS_MS: tuple[float, ...] = tuple(2 ** (i / 2) for i in range(BUCKET_COUNT - 1))
COLUMN_NAMES: tuple[str, ...] = tuple(f"lat_b{i:02d}" for i in range(BUCKET_COUNT))


def bucket_index(latency_ms: float) -> int:
    """The bucket a latency falls in (negative or NaN values count as 0 ms)."""
    if not latency_ms > 0:
        return 0
    return bisect.bisect_left(UPPER_BOUNDS_MS, latency_ms)


def bucket_bounds(index: int) -> tuple[float, float]:
    """Lower and upper bound of a bucket in ms; the last bucket's upper bound is infinite."""
    lower = 0.0 if index == 0 else UPPER_BOUNDS_MS[index - 1]
    upper = UPPER_BOUNDS_MS[index] if index < BUCKET_COUNT - 1 else math.inf
    return lower, upper


def quantile(counts: Sequence[int], q: float) -> float | None:
    """Estimate the q-quantile (0 < q ≤ 1) from bucket counts: geometric interpolation inside the bucket."""
    if len(counts) != BUCKET_COUNT:
        raise ValueError(f"expected {BUCKET_COUNT} bucket counts, got {len(counts)}")
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(counts):
        if count and seen + count >= rank:
            lower, upper = bucket_bounds(index)
            if math.isinf(upper):
                return lower
            fraction = (rank - seen) / count
            if lower == 0:
                return upper * fraction
            return lower * (upper / lower) ** fraction
        seen += count
    return bucket_bounds(BUCKET_COUNT - 1)[0]
