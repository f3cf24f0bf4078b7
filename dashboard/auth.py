"""The password gate: ``DASHBOARD_PASSWORD`` checked in constant time, slowed down after failed attempts.

The gate runs in the entrypoint before ``st.navigation``, so no page — whatever its URL or query string — renders
for a session that has not signed in. Failures are counted per process (not per browser session: a new session
must not reset the delay), and each attempt after a failure waits ``BASE_DELAY_S × 2^(failures − 1)`` seconds, up
to ``MAX_DELAY_S``, before the comparison. A success resets the count.

Attempts are serialised: each one reserves the next comparison slot as if it were going to fail, so attempts sent
in parallel (many sessions at once) queue behind each other instead of all waiting the same delay side by side.
An attempt whose slot is more than ``MAX_INLINE_WAIT_S`` away is refused at once, without comparing, with how
long to wait ("too many failed sign-ins") — no script thread sleeps for long on an attacker's behalf.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import streamlit as st

BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
#: An attempt that would wait longer than this for its slot is refused at once with how long to wait.
MAX_INLINE_WAIT_S = 2.0
#: Failures older than this no longer slow anyone down.
FORGET_AFTER_S = 900.0
SESSION_KEY = "_pulsegate_authenticated"

_lock = threading.Lock()
_failures: list[float] = []
_next_slot = [0.0]  # monotonic time of the next comparison slot


@dataclass(frozen=True, slots=True)
class Outcome:
    """A sign-in attempt's result: ``ok``, or refused; ``wait_s`` > 0 when it was refused without comparing."""

    ok: bool
    wait_s: float = 0.0


def _delay(count: int) -> float:
    return 0.0 if count == 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (count - 1))


def _forget(moment: float) -> int:
    _failures[:] = [t for t in _failures if moment - t < FORGET_AFTER_S]
    if not _failures:
        _next_slot[0] = min(_next_slot[0], moment)
    return len(_failures)


def delay_s(now: float | None = None) -> float:
    """How long the next attempt waits, from the recent failures."""
    moment = time.monotonic() if now is None else now
    with _lock:
        return _delay(_forget(moment))


def attempt(
    entered: str,
    password: str,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
) -> Outcome:
    """Wait for this attempt's slot (or refuse it when that is too far off), then compare in constant time."""
    now = clock()
    with _lock:
        count = _forget(now)
        slot = max(now, _next_slot[0])
        wait = slot - now
        if wait > MAX_INLINE_WAIT_S:
            return Outcome(False, wait)
        _next_slot[0] = slot + _delay(count + 1)  # as if this one fails: a parallel attempt takes the slot after
    if wait > 0:
        sleep(wait)
    ok = hmac.compare_digest(entered.encode("utf-8"), password.encode("utf-8"))
    with _lock:
        if ok:
            _failures.clear()
            _next_slot[0] = 0.0
        else:
            _failures.append(clock())
    return Outcome(ok)


def check(entered: str, password: str) -> bool:
    """Wait out the delay, then compare in constant time; records the outcome."""
    return attempt(entered, password).ok


def reset() -> None:
    with _lock:
        _failures.clear()
        _next_slot[0] = 0.0


def authenticated() -> bool:
    return bool(st.session_state.get(SESSION_KEY))


def gate(password: str | None) -> bool:
    """Draw the sign-in form and stop the run unless this session has signed in. Returns whether the visitor is
    an authenticated operator (False when no password is configured: the dashboard is open, on loopback only)."""
    if password is None:
        return False
    if authenticated():
        if st.sidebar.button("Sign out", key="auth_sign_out"):
            st.session_state[SESSION_KEY] = False
            st.rerun()
        return True
    st.title("Pulsegate")
    with st.form("auth_form", clear_on_submit=True):
        entered = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        outcome = attempt(entered or "", password)
        if outcome.ok:
            st.session_state[SESSION_KEY] = True
            st.rerun()
        if outcome.wait_s:
            st.error(f"Too many failed sign-ins: wait {math.ceil(outcome.wait_s)} s, then try again.")
        else:
            st.error("Wrong password. Each failed attempt makes the next one wait longer.")
    st.caption("This dashboard is protected by DASHBOARD_PASSWORD.")
    st.stop()
    return False  # not reached: st.stop() ends the run
