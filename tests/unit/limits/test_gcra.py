"""The float arithmetic the Redis script mirrors: exact waits, clamping, and no 1e-16 s waits."""

from __future__ import annotations

import pytest

from pulsegate.core.limits import gcra

INTERVAL = 0.6  # 100 units per 60 s
TOLERANCE = 60.0  # capacity 100


def test_a_full_bucket_admits_its_capacity_and_then_waits_one_interval_per_unit() -> None:
    now = 1_000.0
    assert gcra.wait_time(now, now, 100, INTERVAL, TOLERANCE) == 0.0
    tat = gcra.charge(now, now, 100, INTERVAL)
    assert tat == pytest.approx(now + 60)
    assert gcra.wait_time(tat, now, 1, INTERVAL, TOLERANCE) == pytest.approx(0.6)
    assert gcra.wait_time(tat, now, 10, INTERVAL, TOLERANCE) == pytest.approx(6.0)


def test_a_stale_tat_in_the_past_means_full_not_extra_burst() -> None:
    now = 1_000.0
    assert gcra.remaining(now - 500, now, INTERVAL, TOLERANCE) == pytest.approx(100)
    assert gcra.charge(now - 500, now, 10, INTERVAL) == pytest.approx(now + 6)


def test_cost_above_capacity_waits_for_a_full_bucket_only() -> None:
    now = 1_000.0
    tat = now + 6  # 10 units short of full
    assert gcra.wait_time(tat, now, 250, INTERVAL, TOLERANCE) == pytest.approx(6.0)
    assert gcra.wait_time(now, now, 250, INTERVAL, TOLERANCE) == 0.0


def test_rounding_noise_counts_as_no_wait() -> None:
    now = 1_000.0
    tat = now + TOLERANCE - INTERVAL + 1e-12
    assert gcra.wait_time(tat, now, 1, INTERVAL, TOLERANCE) == 0.0


def test_refund_never_fills_beyond_full() -> None:
    now = 1_000.0
    assert gcra.refund(now + 30, now, 10, INTERVAL) == pytest.approx(now + 24)
    assert gcra.refund(now + 30, now, 1_000, INTERVAL) == now
    assert gcra.refund(now - 5, now, 10, INTERVAL) == now - 5


def test_observe_takes_the_stricter_of_remaining_and_reset_and_never_loosens() -> None:
    now = 1_000.0
    assert gcra.observe(now, now, 40, 0, INTERVAL, TOLERANCE) == pytest.approx(now + 36)
    assert gcra.observe(now, now, 90, 30, INTERVAL, TOLERANCE) == pytest.approx(now + 30)
    assert gcra.observe(now + 50, now, 90, 30, INTERVAL, TOLERANCE) == now + 50
    assert gcra.observe(now, now, 100, 500, INTERVAL, TOLERANCE) == pytest.approx(now + 60)  # reset capped
    assert gcra.observe(now, now, -7, 0, INTERVAL, TOLERANCE) == pytest.approx(now + 60)  # remaining clamped
    assert gcra.observe(now, now, 1e9, 0, INTERVAL, TOLERANCE) == now
