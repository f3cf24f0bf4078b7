"""The Keys page's table: each key's own health next to what its calls and probes saw, so the two never disagree
silently.

A key's status and health score (:mod:`pulsegate.core.keys.health`) count only the failures that are the key's own: its
429s, auth and quota refusals, server errors, timeouts and broken connections. An overloaded provider (529) fails every
key alike and a bad request is the caller's, so neither touches the key — during a 529 storm a key is ``healthy``
while half its calls fail. That is right for choosing keys, but a table showing only "healthy" beside a 50 %
success rate and a failed probe would read as a contradiction. So the table splits the range's failures into the
key's own and the others, shows the last probe with its error class, and notes under the table why a status stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from pulsegate.core.errors import ErrorClass
from pulsegate.core.keys.health import KEY_FAILURES, HealthPolicy
from pulsegate.core.queries.kpis import kpis_from_totals
from pulsegate.core.store.tables import error_count_column
from pulsegate.dashboard.tables import Col

_POLICY = HealthPolicy()
#: The health bar's scale: green above its middle, red at or below. The middle sits just under the "unhealthy"
#: threshold (scores have one decimal), so a bar is red exactly when the score makes the key unhealthy.
SCORE_SCALE = (2 * _POLICY.unhealthy_below - 100.0 - 0.1, 100.0)
_KEY_FAILURE_VALUES = frozenset(ec.value for ec in KEY_FAILURES)
#: A success rate under this beside a working status gets a note saying why.
LOW_SUCCESS = 0.9
OTHER_FAILURES: tuple[ErrorClass, ...] = tuple(
    ec for ec in ErrorClass if ec not in KEY_FAILURES and ec is not ErrorClass.CANCELLED
)

COLUMNS: dict[str, Col] = {
    "provider": Col("Provider"),
    "key": Col("Key"),
    "masked": Col("Masked key"),
    "status": Col("Status", help="The key's own state, from its own failures (see the table's note)."),
    "health": Col(
        "Health",
        "score",
        help=f"0–100, recent outcomes weighted by age (half-life {_POLICY.half_life_s:.0f} s): degraded under "
        f"{_POLICY.degraded_below:.0f}, unhealthy (red) under {_POLICY.unhealthy_below:.0f}.",
        scale=SCORE_SCALE,
    ),
    "cooldown": Col("Cooldown", help="Time left before the key is used again."),
    "success_rate": Col(
        "Success (%)",
        "percent",
        help="Share of this key's answered calls that succeeded in the range (cancelled calls are left out).",
    ),
    "key_failures": Col(
        "Own failures", "count", help="Failures that count against the key: 429, auth, quota, 5xx, timeouts."
    ),
    "other_failures": Col(
        "Other failures", "count", help="Overloaded (529, provider-wide) and the caller's errors: not the key's."
    ),
    "p95_ms": Col("p95 (ms)", "ms"),
    "requests": Col("Calls", "count", help="Calls through this key in the range."),
    "last_probe": Col("Last probe (UTC)"),
}


def failure_split(totals: Mapping[str, float]) -> tuple[int, int]:
    """(the key's own failures, all other failures) in a range's totals."""
    own = sum(int(totals.get(error_count_column(ec), 0)) for ec in KEY_FAILURES)
    other = sum(int(totals.get(error_count_column(ec), 0)) for ec in OTHER_FAILURES)
    return own, other


def last_probes(probes: pd.DataFrame) -> dict[tuple[str, str], dict[str, Any]]:
    """The newest probe row of each (provider, key) in ``probes`` (newest first, as the attempts query returns)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in probes.itertuples(index=False):
        found.setdefault((str(row.provider), str(row.key_label)), row._asdict())
    return found


def probe_text(probe: Mapping[str, Any] | None) -> str | None:
    if probe is None:
        return None
    at = pd.Timestamp(probe["ts"]).tz_convert("UTC").strftime("%H:%M:%S")
    if probe["outcome"] == "success":
        return f"✓ ok {at}"
    return f"✗ {probe.get('error_class') or 'failed'} {at}"


def note(
    status: str,
    own: int,
    other: int,
    success_rate: float,
    probe: Mapping[str, Any] | None,
    disabled_reason: str | None,
) -> str | None:
    """Why the status stands when the numbers beside it seem to say otherwise — a working status beside a low
    success rate or a failed probe — and why a key is out of service (``None``: nothing to explain)."""
    if status == "disabled":
        return f"out of service: {disabled_reason}" if disabled_reason else "out of service"
    parts = []
    working = status in ("healthy", "degraded")
    if working and success_rate < LOW_SUCCESS:
        if other:
            parts.append(
                f"{other:,} of its {own + other:,} failures in range were not the key's (provider overloaded…)"
            )
        if own:
            parts.append(f"its own {own:,} count less as they age (half-life {_POLICY.half_life_s:.0f} s)")
    if probe is not None and probe["outcome"] != "success":
        probe_class = str(probe.get("error_class") or "failed")
        if probe_class not in _KEY_FAILURE_VALUES:
            parts.append(f"last probe failed {probe_class}: not the key's, not counted against it")
        elif working:
            parts.append(f"last probe failed {probe_class}: counted, and outweighed by recent successes")
    return "; ".join(parts) or None


def key_rows(
    keys: pd.DataFrame,
    totals_of: Callable[[str, str], Mapping[str, float]],
    probes: pd.DataFrame,
    now: datetime,
    until: Callable[[object, datetime], str],
) -> pd.DataFrame:
    """One row per key of ``keys`` (the worst live view); ``totals_of(provider, key)`` gives the range's totals."""
    newest = last_probes(probes)
    rows = []
    for row in keys.itertuples(index=False):
        totals = totals_of(str(row.provider), str(row.key_label))
        stats = kpis_from_totals(dict(totals))
        own, other = failure_split(totals)
        probe = newest.get((str(row.provider), str(row.key_label)))
        status = str(row.status)
        rows.append(
            {
                "provider": row.provider,
                "key": row.key_label,
                "masked": row.key_masked,
                "status": status,
                "health": float(row.score),
                "cooldown": until(row.cooldown_until, now) or None,
                "success_rate": stats["success_rate"],
                "key_failures": own,
                "other_failures": other,
                "p95_ms": stats["p95_ms"],
                "requests": stats["requests"],
                "last_probe": probe_text(probe),
                "note": note(status, own, other, stats["success_rate"], probe, row.disabled_reason),
            }
        )
    return pd.DataFrame(rows, columns=[*COLUMNS, "note"])


def notes(rows: pd.DataFrame) -> list[str]:
    """``provider · key: note`` for each row of :func:`key_rows` with something to say, in table order."""
    return [f"{r.provider} · {r.key}: {r.note}" for r in rows.itertuples(index=False) if isinstance(r.note, str)]
