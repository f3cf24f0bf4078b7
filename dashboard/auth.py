"""The password gate: ``DASHBOARD_PASSWORD`` checked in constant time, slowed down after failed attempts.

The gate runs in the entrypoint before ``st.navigation``, so no page — whatever its URL or query string — renders
for a session that has not signed in. Failures are counted per process (not per browser session: a new session
must not reset the delay), and each attempt after a failure waits ``BASE_DELAY_S × 2^(failures − 1)`` seconds, up
to ``MAX_DELAY_S``, before the comparison. A success resets the count.
"""

from __future__ import annotations

import hmac
import threading
import time

import streamlit as st

BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
#: Failures older than this no longer slow anyone down.
FORGET_AFTER_S = 900.0
SESSION_KEY = "_pulsegate_authenticated"

_lock = threading.Lock()
_failures: list[float] = []


def delay_s(now: float | None = None) -> float:
    """How long the next attempt waits, from the recent failures."""
    moment = time.monotonic() if now is None else now
    with _lock:
        _failures[:] = [t for t in _failures if moment - t < FORGET_AFTER_S]
        count = len(_failures)
    return 0.0 if count == 0 else min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (count - 1))


def check(entered: str, password: str) -> bool:
    """Wait out the delay, then compare in constant time; records the outcome."""
    wait = delay_s()
    if wait:
        time.sleep(wait)
    ok = hmac.compare_digest(entered.encode("utf-8"), password.encode("utf-8"))
    with _lock:
        if ok:
            _failures.clear()
        else:
            _failures.append(time.monotonic())
    return ok


def reset() -> None:
    with _lock:
        _failures.clear()


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
        if check(entered or "", password):
            st.session_state[SESSION_KEY] = True
            st.rerun()
        st.error("Wrong password. Each failed attempt makes the next one wait longer.")
    st.caption("This dashboard is protected by DASHBOARD_PASSWORD.")
    st.stop()
    return False  # not reached: st.stop() ends the run
