"""The rollup histogram: every latency lands in one bucket and quantiles come back within a bucket."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pulsegate.core.store import latency_buckets as lb


def test_bounds_grow_by_sqrt2_from_1ms() -> None:
    assert lb.UPPER_BOUNDS_MS[0] == 1.0
    assert lb.UPPER_BOUNDS_MS[2] == 2.0
    assert len(lb.COLUMN_NAMES) == lb.BUCKET_COUNT == len(lb.UPPER_BOUNDS_MS) + 1
    assert all(b / a == pytest.approx(math.sqrt(2)) for a, b in itertools.pairwise(lb.UPPER_BOUNDS_MS))


@pytest.mark.parametrize(
    ("latency", "index"), [(-5, 0), (0, 0), (0.5, 0), (1.0, 0), (1.01, 1), (2.0, 2), (1e9, lb.BUCKET_COUNT - 1)]
)
def test_bucket_index_edges(latency: float, index: int) -> None:
    assert lb.bucket_index(latency) == index


@settings(deadline=None)  # the first example pays numpy's import
@given(
    st.lists(st.floats(min_value=0.01, max_value=500_000), min_size=1, max_size=300), st.sampled_from([0.5, 0.95, 0.99])
)
def test_quantile_is_within_one_bucket_of_the_exact_value(values: list[float], q: float) -> None:
    counts = [0] * lb.BUCKET_COUNT
    for value in values:
        counts[lb.bucket_index(value)] += 1
    exact = sorted(values)[max(0, math.ceil(q * len(values)) - 1)]
    estimate = lb.quantile(counts, q)
    assert estimate is not None
    lower, upper = lb.bucket_bounds(lb.bucket_index(exact))
    assert lower <= estimate <= upper


def test_quantiles_of_many_rows_equal_each_row_alone() -> None:
    rows = [[0] * lb.BUCKET_COUNT, [0] * lb.BUCKET_COUNT, [0] * lb.BUCKET_COUNT]
    rows[1][3], rows[1][10] = 5, 5  # half at ≤ 2.83 ms, half at ≤ 32 ms
    rows[2][lb.BUCKET_COUNT - 1] = 2  # only the open last bucket
    for q in (0.5, 0.95, 0.99):
        together = lb.quantiles(rows, q)
        assert math.isnan(together[0])
        assert together[1:].tolist() == [lb.quantile(rows[1], q), lb.quantile(rows[2], q)]
    assert lb.quantile(rows[1], 0.5) == lb.UPPER_BOUNDS_MS[3]
    assert lb.quantile(rows[2], 0.99) == lb.UPPER_BOUNDS_MS[-1]


def test_quantile_of_nothing_is_none_and_bad_input_is_refused() -> None:
    assert lb.quantile([0] * lb.BUCKET_COUNT, 0.5) is None
    with pytest.raises(ValueError, match="expected 41 bucket counts"):
        lb.quantile([1, 2], 0.5)
    with pytest.raises(ValueError, match="quantile must be in"):
        lb.quantile([1] * lb.BUCKET_COUNT, 0)
