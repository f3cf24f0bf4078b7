"""Auto-refresh pacing: a refresh that waited for the last render redraws that render's view; it starts no new one.

How Streamlit 1.67 drives ``st.fragment(run_every=N)``: the browser sets a timer that sends a rerun request for
the fragment every N seconds, whatever the server is doing. Requests that arrive while a run is in progress are
folded into one, which starts the moment that run ends. So a render slower than N runs back to back for as long
as the tab is open (a core per tab), each with fresh queries — and a slow render makes the next one slower still.

Here each live panel remembers, per session, the view ("now") its last fresh render drew, when that render ended
and how long it took. A refresh that comes sooner than :func:`idle_needed` after that end (it either queued behind
the render or arrives right after a slow one) draws the same view again: every query is then answered from the
10-second cache and nothing new is computed. The next refresh after the idle time renders fresh. A session
therefore renders fresh at most every ``max(N, 2 × render time)`` and never back to back.

A full run (page load, a filter changed) always renders fresh. When the browser goes away Streamlit asks the
script to stop, which takes effect at the script's next Streamlit call; renders are short, so it stops within
one step, and a session without a browser receives no more timer requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pulsegate.core.clock import Clock, SystemClock

#: A fresh render is followed by at least this share of the refresh interval without one.
IDLE_SHARE = 0.5


def idle_needed(refresh_s: float, render_s: float) -> float:
    """Seconds after a fresh render ends before the next may start: half the interval, or as long as the render
    took if that is longer (so a session spends at most half its time rendering)."""
    return max(refresh_s * IDLE_SHARE, render_s)


@dataclass(slots=True)
class Pace:
    """One live panel's pacing in one session (kept in ``st.session_state``)."""

    clock: Clock
    view: datetime | None = None  # the "now" the last fresh render drew
    started: float | None = None
    finished: float | None = None

    def choose(self, fresh: datetime, refresh_s: float | None, *, full_run: bool) -> tuple[datetime, bool]:
        """The "now" this run draws and whether it is a redraw of the last fresh render's view."""
        if full_run or refresh_s is None or self.view is None or self.started is None or self.finished is None:
            return fresh, False
        waited = self.clock.monotonic() - self.finished
        if waited < idle_needed(refresh_s, self.finished - self.started):
            return self.view, True
        return fresh, False

    def begin(self) -> float:
        return self.clock.monotonic()

    def rendered(self, view: datetime, started: float) -> None:
        """Record a fresh render of ``view`` that began at ``started`` (monotonic) and ends now."""
        self.view, self.started, self.finished = view, started, self.clock.monotonic()


def pace(state: dict, key: str, clock: Clock | None = None) -> Pace:
    """The :class:`Pace` of live panel ``key`` in this session's ``state`` (created on first use)."""
    name = f"_pulsegate_pace_{key}"
    if name not in state:
        state[name] = Pace(clock or SystemClock())
    return state[name]
