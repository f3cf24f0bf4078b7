"""What this client itself sent on each key over the last limit period: the yardstick of the remaining-quota rule.

A provider's rate-limit headers say how much of a key's limit is left, counting everybody who uses the key. A low
number is pushback only when somebody else took part of it: the client's own burst, admitted by its own limiter,
also leaves little. For any bucket the provider may keep — a continuously refilled one like Anthropic's, a sliding
or a fixed window no longer than the period — the amount it counts as used at ``t`` is at most what was sent in the
period before ``t``. So ``limit - remaining`` above this client's own sends of the last period is someone else's
use; at or below it, the headers are explained by this client alone (docs/self-tuning-limits.md).

Requests count from the moment they are sent (a request the provider refused still counts: an overcount errs
toward "explained", never toward a needless cut). Tokens count the reservation when sent and are settled to what the
attempt really used when it ends, because reservations (``max_tokens``) can be many times the real use.
"""

from __future__ import annotations

import threading
from collections import deque


class Sent:
    """One attempt in the window: when it was sent and the tokens it counts for (settled when it ends)."""

    __slots__ = ("at", "settled", "tokens")

    def __init__(self, at: float, tokens: float) -> None:
        self.at = at
        self.tokens = tokens
        self.settled = False


class _KeyWindow:
    __slots__ = ("entries", "requests", "tokens")

    def __init__(self) -> None:
        self.entries: deque[Sent] = deque()
        self.requests = 0
        self.tokens = 0.0


class OwnUse:
    """Per key fingerprint, the requests and tokens this client sent in the last ``period_s`` seconds.

    Thread-safe (the sync twin settles from another thread); O(1) amortised per attempt.
    """

    def __init__(self, period_s: float) -> None:
        if not period_s > 0:
            raise ValueError(f"OwnUse.period_s must be positive, got {period_s!r}")
        self.period_s = period_s
        self._keys: dict[str, _KeyWindow] = {}
        self._lock = threading.Lock()

    def sent(self, fingerprint: str, now: float, tokens: float) -> Sent:
        """Count one attempt sent on the key now, reserving ``tokens``; settle it with :meth:`settle`."""
        entry = Sent(now, tokens)
        with self._lock:
            window = self._keys.get(fingerprint)
            if window is None:
                window = self._keys[fingerprint] = _KeyWindow()
            self._evict(window, now)
            window.entries.append(entry)
            window.requests += 1
            window.tokens += tokens
        return entry

    def settle(self, fingerprint: str, entry: Sent, tokens: float) -> None:
        """The attempt ended having used ``tokens``; once per entry (later calls change nothing)."""
        with self._lock:
            if entry.settled:
                return
            entry.settled = True
            window = self._keys.get(fingerprint)
            if window is not None and window.entries and window.entries[0].at <= entry.at:  # still in the window
                window.tokens += tokens - entry.tokens
            entry.tokens = tokens

    def used(self, fingerprint: str, now: float) -> tuple[int, float]:
        """``(requests, tokens)`` sent on the key in the ``period_s`` seconds up to ``now``."""
        with self._lock:
            window = self._keys.get(fingerprint)
            if window is None:
                return 0, 0.0
            self._evict(window, now)
            return window.requests, max(0.0, window.tokens)

    def _evict(self, window: _KeyWindow, now: float) -> None:
        cutoff = now - self.period_s
        entries = window.entries
        while entries and entries[0].at <= cutoff:
            old = entries.popleft()
            window.requests -= 1
            window.tokens -= old.tokens
