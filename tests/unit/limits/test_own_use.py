"""The own-use window: requests and tokens this client sent per key over the last period, settled to real use."""

from __future__ import annotations

import pytest

from pulsegate.core.limits.own_use import OwnUse


def test_sends_leave_the_window_one_period_after_they_were_sent() -> None:
    use = OwnUse(60.0)
    use.sent("k1", 0.0, 100.0)
    use.sent("k1", 10.0, 50.0)
    use.sent("k2", 10.0, 7.0)
    assert use.used("k1", 10.0) == (2, 150.0)
    assert use.used("k1", 59.999) == (2, 150.0)
    assert use.used("k1", 60.0) == (1, 50.0)  # sent at 0: no longer in (0, 60]
    assert use.used("k1", 70.0) == (0, 0.0)
    assert use.used("k2", 69.0) == (1, 7.0)
    assert use.used("never", 0.0) == (0, 0.0)


def test_tokens_are_settled_to_what_the_attempt_used_once() -> None:
    use = OwnUse(60.0)
    first = use.sent("k1", 0.0, 1_000.0)  # the reservation: input estimate + max_tokens
    use.sent("k1", 1.0, 1_000.0)
    use.settle("k1", first, 120.0)
    assert use.used("k1", 2.0) == (2, 1_120.0)
    use.settle("k1", first, 5.0)  # settled already: nothing changes
    assert use.used("k1", 2.0) == (2, 1_120.0)


def test_settling_an_attempt_that_left_the_window_changes_nothing() -> None:
    use = OwnUse(60.0)
    old = use.sent("k1", 0.0, 1_000.0)
    use.sent("k1", 30.0, 10.0)
    assert use.used("k1", 61.0) == (1, 10.0)
    use.settle("k1", old, 0.0)
    assert use.used("k1", 61.0) == (1, 10.0)


def test_a_period_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"OwnUse\.period_s must be positive, got 0"):
        OwnUse(0)
