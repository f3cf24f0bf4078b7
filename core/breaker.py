"""The per-provider circuit breaker: stop hammering a provider that is failing, and probe it with ONE call.

closed → open when, over the sliding ``window_s``, at least ``min_calls`` verdicts were recorded and the failure
rate reached ``failure_rate``. Open fails fast for ``open_s``; then half-open admits exactly one trial call at a
time (the libraries evaluated all let every concurrent caller through, which is what a recovering provider must
not see). A healthy trial closes the breaker with an empty window; a failed one re-opens it for
``open_s × backoff^n`` (capped at ``max_open_s``).

Several processes (a shared-state backend, :mod:`pulsegate.core.shared_state`): each process judges its own window, and
the transitions it decides are collected in ``pending`` for the backend to publish; :meth:`CircuitBreaker.adopt` takes
the common state, so one process tripping opens the breaker for all, and the half-open trial is claimed in the
shared state so that exactly one process sends it.

The caller decides what counts: only provider-health failures are ``healthy=False``; a call that ends without a
verdict (cancelled, a 429, a 400) is :meth:`CircuitBreaker.release`\\ d. The API is synchronous and cheap: a
``threading.Lock`` held for microseconds, never across the call.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from pulsegate.core.clock import SYSTEM_CLOCK, Clock

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

TransitionCallback = Callable[[str, str, str], None]
"""``on_transition(name, old_state, new_state)``, called after the breaker's lock is released."""


class Permit:
    """Leave to make one call. Exactly one of :meth:`record` / :meth:`release` settles it; later ones are no-ops.

    As a context manager, leaving the block without a verdict releases it (e.g. on cancellation).
    """

    __slots__ = ("_breaker", "epoch", "settled", "trial")

    def __init__(self, breaker: CircuitBreaker, epoch: int, trial: bool) -> None:
        self._breaker = breaker
        self.epoch = epoch
        self.trial = trial
        self.settled = False

    def record(self, healthy: bool) -> None:
        self._breaker.record(self, healthy)

    def release(self) -> None:
        self._breaker.release(self)

    def __enter__(self) -> Permit:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self.settled:
            self._breaker.release(self)

    def __repr__(self) -> str:
        kind = "trial" if self.trial else "closed"
        return f"Permit({self._breaker.name!r}, {kind}, epoch={self.epoch}, settled={self.settled})"


class CircuitBreaker:
    """One per provider. ``acquire()`` → a :class:`Permit`, or ``None`` meaning "open: fail fast"."""

    def __init__(
        self,
        name: str,
        clock: Clock = SYSTEM_CLOCK,
        *,
        window_s: float = 60.0,
        min_calls: int = 10,
        failure_rate: float = 0.5,
        open_s: float = 30.0,
        max_open_s: float = 300.0,
        backoff: float = 2.0,
        on_transition: TransitionCallback | None = None,
    ) -> None:
        if window_s <= 0 or open_s <= 0 or max_open_s < open_s:
            raise ValueError("need window_s > 0, open_s > 0 and max_open_s >= open_s")
        if min_calls < 1 or not 0.0 < failure_rate <= 1.0 or backoff < 1.0:
            raise ValueError("need min_calls >= 1, 0 < failure_rate <= 1 and backoff >= 1")
        self.name = name
        self.window_s = window_s
        self.min_calls = min_calls
        self.failure_rate = failure_rate
        self.open_s = open_s
        self.max_open_s = max_open_s
        self.backoff = backoff
        self.on_transition = on_transition
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._epoch = 0  # bumped on every transition: verdicts of calls begun in an earlier state are ignored
        self._window: deque[tuple[float, bool]] = deque()  # (monotonic time, healthy) of closed-state verdicts
        self._failures = 0
        self._trial_out = False
        self._opens = 0  # consecutive opens without a close in between
        self._opened_at_wall: datetime | None = None
        self._open_until: float | None = None
        self._trial_mine = False  # the trial in flight is this process's (else another process holds it)
        self.pending: list[dict[str, Any]] | None = None  # transitions to publish, when a backend shares them

    # --- the call path ---------------------------------------------------------------------------------------

    def acquire(self) -> Permit | None:
        """A permit when closed, the single trial permit when half-open and none is out; else ``None``."""
        transitions: list[tuple[str, str]] = []
        with self._lock:
            self._advance(self._clock.monotonic(), transitions)
            if self._state == CLOSED:
                permit: Permit | None = Permit(self, self._epoch, trial=False)
            elif self._state == HALF_OPEN and not self._trial_out:
                self._trial_out = self._trial_mine = True
                permit = Permit(self, self._epoch, trial=True)
            else:
                permit = None
        self._notify(transitions)
        return permit

    def record(self, permit: Permit, healthy: bool) -> None:
        """The call ended with a verdict on the provider's health."""
        transitions: list[tuple[str, str]] = []
        with self._lock:
            if permit.settled:
                return
            permit.settled = True
            if permit.epoch != self._epoch:
                return
            now = self._clock.monotonic()
            if permit.trial:
                self._trial_out = self._trial_mine = False
                if healthy:
                    self._close(transitions)
                else:
                    self._open(now, transitions)
            elif self._state == CLOSED:
                self._window.append((now, healthy))
                if not healthy:
                    self._failures += 1
                self._prune(now)
                if not healthy and self._tripped():
                    self._open(now, transitions)
        self._notify(transitions)

    def release(self, permit: Permit) -> None:
        """The call ended without a verdict: a half-open trial slot is freed for the next caller."""
        with self._lock:
            if permit.settled:
                return
            permit.settled = True
            if permit.trial and permit.epoch == self._epoch:
                self._trial_out = self._trial_mine = False
                if self.pending is not None:
                    self.pending.append({"op": "release"})

    def adopt(self, state: str, open_remaining_s: float, opens: int, trial_busy: bool) -> None:
        """Take the state all processes share: ``open_remaining_s`` of an open period left, ``opens`` in a row,
        and whether another process holds the half-open trial. Not published back (it came from there)."""
        transitions: list[tuple[str, str]] = []
        with self._lock:
            now = self._clock.monotonic()
            if state == CLOSED:
                if self._state != CLOSED:
                    self._reset_closed()
                    self._move(CLOSED, transitions)
            elif state == OPEN:
                if self._state != OPEN:
                    self._window.clear()
                    self._failures = 0
                    self._trial_out = self._trial_mine = False
                    self._opened_at_wall = self._clock.now()
                    self._move(OPEN, transitions)
                self._open_until = now + round(open_remaining_s, 6)  # shared times travel with µs precision
                self._opens = opens
            else:
                if self._state != HALF_OPEN:
                    if self._state == CLOSED:
                        self._opened_at_wall = self._clock.now()
                    self._open_until = now
                    self._trial_out = self._trial_mine = False
                    self._move(HALF_OPEN, transitions)
                self._opens = opens
                if not self._trial_mine:
                    self._trial_out = trial_busy
        self._notify(transitions)

    # --- introspection ---------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """``"closed"``, ``"open"`` or ``"half_open"`` (an elapsed open period reads as half-open)."""
        transitions: list[tuple[str, str]] = []
        with self._lock:
            self._advance(self._clock.monotonic(), transitions)
            state = self._state
        self._notify(transitions)
        return state

    def retry_in(self) -> float:
        """Seconds until :meth:`acquire` may give a permit: 0 when it would now; while a trial is out, ``open_s``
        (an estimate: the trial's verdict decides)."""
        with self._lock:
            now = self._clock.monotonic()
            if self._state == OPEN and self._open_until is not None and now < self._open_until:
                return self._open_until - now
            if self._state == HALF_OPEN and self._trial_out:
                return self.open_s
            return 0.0

    def snapshot(self) -> dict[str, Any]:
        """JSON-serialisable state for heartbeats and health (times as ISO-8601 wall time)."""
        state = self.state
        with self._lock:
            now = self._clock.monotonic()
            self._prune(now)
            calls = len(self._window)
            open_until = None
            if self._open_until is not None and state == OPEN:
                open_until = (self._clock.now() + timedelta(seconds=self._open_until - now)).isoformat()
            return {
                "name": self.name,
                "state": state,
                "calls_in_window": calls,
                "failures_in_window": self._failures,
                "failure_rate": self._failures / calls if calls else 0.0,
                "window_s": self.window_s,
                "opened_at": self._opened_at_wall.isoformat() if self._opened_at_wall is not None else None,
                "open_until": open_until,
                "consecutive_opens": self._opens,
                "trial_in_flight": self._trial_out,
            }

    # --- transitions (lock held) -----------------------------------------------------------------------------

    def _advance(self, now: float, transitions: list[tuple[str, str]]) -> None:
        if self._state == OPEN and self._open_until is not None and now >= self._open_until:
            self._move(HALF_OPEN, transitions)
            self._trial_out = self._trial_mine = False

    def _prune(self, now: float) -> None:
        window, horizon = self._window, now - self.window_s
        while window and window[0][0] <= horizon:
            _, healthy = window.popleft()
            if not healthy:
                self._failures -= 1

    def _tripped(self) -> bool:
        calls = len(self._window)
        return calls >= self.min_calls and self._failures / calls >= self.failure_rate

    def _open(self, now: float, transitions: list[tuple[str, str]]) -> None:
        duration = min(self.open_s * self.backoff**self._opens, self.max_open_s)
        self._opens += 1
        self._opened_at_wall = self._clock.now()
        self._open_until = now + duration
        self._window.clear()
        self._failures = 0
        self._move(OPEN, transitions)
        if self.pending is not None:
            self.pending.append({"op": "open", "until": self._open_until, "opens": self._opens})

    def _close(self, transitions: list[tuple[str, str]]) -> None:
        self._reset_closed()
        self._move(CLOSED, transitions)
        if self.pending is not None:
            self.pending.append({"op": "close"})

    def _reset_closed(self) -> None:
        self._opens = 0
        self._opened_at_wall = None
        self._open_until = None
        self._window.clear()
        self._failures = 0
        self._trial_out = self._trial_mine = False

    def _move(self, state: str, transitions: list[tuple[str, str]]) -> None:
        transitions.append((self._state, state))
        self._state = state
        self._epoch += 1

    def _notify(self, transitions: list[tuple[str, str]]) -> None:
        if self.on_transition is not None:
            for old, new in transitions:
                self.on_transition(self.name, old, new)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self._state!r})"
