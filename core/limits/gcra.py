"""GCRA arithmetic on plain floats: the reference the Redis Lua script mirrors line for line.

State per limit is one float, ``tat`` (theoretical arrival time): the moment the bucket is full again. With
``interval = period / limit`` (seconds per unit) and ``tolerance = capacity × interval`` (seconds per full bucket):

* the bucket is full when ``tat <= now``; it holds ``capacity - (tat - now) / interval`` units otherwise;
* ``cost`` units fit when ``max(tat, now) + cost × interval - tolerance <= now``;
* charging moves ``tat`` to ``max(tat, now) + cost × interval``.

Every ``tat <= now`` means the same (full), so a backend may forget such keys.
"""

from __future__ import annotations

EPSILON_S = 1e-9
"""Waits this short count as zero: float rounding must never leave a caller sleeping for 1e-16 s forever."""


def wait_time(tat: float, now: float, cost: float, interval: float, tolerance: float) -> float:
    """Seconds until ``cost`` units fit (``0.0`` when they fit now).

    A cost above the capacity counts as the capacity: it fits when the bucket is full, instead of never.
    """
    need = cost * interval
    if need > tolerance:
        need = tolerance
    backlog = tat - now
    if backlog < 0.0:
        backlog = 0.0
    wait = backlog + need - tolerance
    return wait if wait > EPSILON_S else 0.0


def charge(tat: float, now: float, cost: float, interval: float) -> float:
    """The new ``tat`` after charging ``cost`` units (unconditionally: the result may lie beyond a full bucket)."""
    return (tat if tat > now else now) + cost * interval


def refund(tat: float, now: float, amount: float, interval: float) -> float:
    """The new ``tat`` after giving back ``amount`` units; never fuller than full (``tat`` not below ``now``)."""
    if tat <= now:
        return tat
    refunded = tat - amount * interval
    return refunded if refunded > now else now


def observe(tat: float, now: float, remaining: float, reset_s: float, interval: float, tolerance: float) -> float:
    """The new ``tat`` after the provider said "``remaining`` units now, full again in ``reset_s``".

    Only ever moves ``tat`` later: afterwards we never believe more is left than the provider does, nor that the
    bucket is full sooner. ``reset_s`` is capped at one full refill (``tolerance``) so a single odd header can
    darken the bucket for at most one period; ``remaining`` is clamped to ``[0, capacity]``.
    """
    capacity = tolerance / interval
    deficit = capacity - remaining
    if deficit < 0.0:
        deficit = 0.0
    elif deficit > capacity:
        deficit = capacity
    until_full = deficit * interval
    reset = min(max(reset_s, 0.0), tolerance)
    if reset > until_full:
        until_full = reset
    floor = now + until_full
    return floor if floor > tat else tat


def remaining(tat: float, now: float, interval: float, tolerance: float) -> float:
    """Units that fit now; negative while the limit is in debt."""
    backlog = tat - now
    if backlog < 0.0:
        backlog = 0.0
    return (tolerance - backlog) / interval


def reset_after(tat: float, now: float) -> float:
    """Seconds until the bucket is full again."""
    return tat - now if tat > now else 0.0
