"""Auto-refresh pacing (``pulsegate.dashboard.pacing``) on a manual clock: a refresh that comes before the idle time
after the last fresh render redraws that render's view; the next one after it renders fresh."""

from __future__ import annotations

from datetime import timedelta

from pulsegate.core.clock import ManualClock
from pulsegate.dashboard.pacing import Pace, idle_needed, pace
from tests.queries.data import NOW


def rendered(paced: Pace, clock: ManualClock, seconds: float) -> None:
    started = paced.begin()
    clock.advance(seconds)
    paced.rendered(NOW, started)


def test_a_refresh_queued_behind_a_render_redraws_its_view() -> None:
    clock = ManualClock()
    paced = Pace(clock)
    assert paced.choose(NOW, 10, full_run=False) == (NOW, False)  # nothing drawn yet
    rendered(paced, clock, 12.0)  # slower than the 10 s interval: the next tick queued behind it
    later = NOW + timedelta(seconds=12)
    assert paced.choose(later, 10, full_run=False) == (NOW, True)  # starts as the render ends: a redraw
    clock.advance(8)  # the next tick, 8 s later: still less idle than the render took (12 s)
    assert paced.choose(later, 10, full_run=False) == (NOW, True)
    clock.advance(4.5)  # 12.5 s idle: fresh
    assert paced.choose(later, 10, full_run=False) == (later, False)


def test_a_quick_render_leaves_half_the_interval_idle_and_full_runs_are_always_fresh() -> None:
    clock = ManualClock()
    paced = Pace(clock)
    rendered(paced, clock, 0.5)
    later = NOW + timedelta(seconds=3)
    clock.advance(2.4)
    assert paced.choose(later, 5, full_run=False) == (NOW, True)  # 2.4 s < half of 5 s
    assert paced.choose(later, 5, full_run=True) == (later, False)  # page load or a filter change
    assert paced.choose(later, None, full_run=False) == (later, False)  # paused: only clicks rerun the panel
    clock.advance(0.2)
    assert paced.choose(later, 5, full_run=False) == (later, False)
    assert (idle_needed(5, 0.5), idle_needed(5, 7.0)) == (2.5, 7.0)


def test_each_panel_keeps_its_own_pace_per_session() -> None:
    state: dict = {}
    assert pace(state, "overview") is pace(state, "overview")
    assert pace(state, "overview") is not pace(state, "keys")
