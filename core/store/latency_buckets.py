"""The fixed log-spaced latency histogram kept in every rollup row.

Percentiles do not add up across rows, bucket counts do: summing the bucket columns of any set of rollup rows
and reading the quantile from the sum works on SQLite and Postgres alike. Bounds grow by √2, so an estimate is
within one bucket (±41 %) of the truth, from 1 ms to about 12 minutes; slower calls land in the last bucket.
"""

from __future__ import annotations

import bisect
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

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
    estimate = float(quantiles([counts], q)[0])
    return None if math.isnan(estimate) else estimate


@functools.cache
def _bounds_arrays() -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    lower, upper = zip(*(bucket_bounds(i) for i in range(BUCKET_COUNT)), strict=True)
    return np.array(lower), np.array(upper)


def quantiles(histograms: Sequence[Sequence[float]] | np.ndarray, q: float) -> np.ndarray:
    """The q-quantile of each row of bucket counts at once (NaN for an empty row): a chart's every step in one
    pass. Within the bucket holding the rank, the estimate interpolates geometrically between its bounds (linearly
    in the first bucket, whose lower bound is 0); the open last bucket answers its lower bound."""
    import numpy as np  # only here: the call path imports this module for bucket_index, without numpy

    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], got {q}")
    counts = np.asarray(histograms, dtype="float64").reshape(-1, BUCKET_COUNT)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    rank = q * total
    index = np.argmax(cumulative >= rank[:, None], axis=1)
    rows = np.arange(len(counts))
    in_bucket = counts[rows, index]
    seen = cumulative[rows, index] - in_bucket
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = (rank - seen) / in_bucket
        lower, upper = _bounds_arrays()
        lower, upper = lower[index], upper[index]
        estimate = np.where(lower == 0, upper * fraction, lower * (upper / np.where(lower == 0, 1, lower)) ** fraction)
    estimate = np.where(np.isinf(upper), lower, estimate)
    return np.where(total > 0, estimate, np.nan)
