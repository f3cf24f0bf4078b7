"""What the dashboard lists and annotates about incidents: alert episodes, the delivery log, and breaker openings.

Read-only and cheap: episodes and deliveries are small tables read through their time indexes; breaker openings
come from the snapshot rollups (``queue_rollups.breaker_open_samples``), never from raw snapshots.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store.tables import alert_deliveries, alert_episodes, queue_rollups

EPISODE_COLUMNS: tuple[str, ...] = (
    "id",
    "rule_id",
    "severity",
    "state",
    "labels",
    "summary",
    "value",
    "threshold",
    "pending_since",
    "fired_at",
    "resolved_at",
    "last_notified_at",
)
DELIVERY_COLUMNS: tuple[str, ...] = (
    "ts",
    "channel",
    "transition",
    "attempt",
    "delivered",
    "status_code",
    "error",
    "episode_id",
    "notification_id",
)
BREAKER_COLUMNS: tuple[str, ...] = ("provider", "start", "end", "instances")
_TIMES = ("pending_since", "fired_at", "resolved_at", "last_notified_at", "ts", "start", "end")
MAX_LIMIT = 1000


def _frame(rows: list, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.DataFrame([tuple(row) for row in rows], columns=list(columns))
    for name in columns:
        if name in _TIMES:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif not pd.api.types.is_numeric_dtype(frame[name]) and not pd.api.types.is_bool_dtype(frame[name]):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)  # None, not NaN
    return frame


def _limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    return limit


def alert_episodes_frame(
    engine: sa.Engine, start: datetime, end: datetime, *, states: tuple[str, ...] | None = None, limit: int = 200
) -> pd.DataFrame:
    """Episodes overlapping ``[start, end)`` (open at ``end``, or begun or resolved in the range, or spanning
    it), newest first; ``states`` keeps only those states."""
    e = alert_episodes
    statement = (
        sa.select(*(e.c[name] for name in EPISODE_COLUMNS))
        .where(*_episodes_in(start, end, states))
        .order_by(e.c.pending_since.desc(), e.c.id.desc())
        .limit(_limit(limit))
    )
    _, rows = common.fetch(engine, statement)
    return _frame(list(rows), EPISODE_COLUMNS)


def alert_episode_count(engine: sa.Engine, start: datetime, end: datetime) -> int:
    """How many episodes :func:`alert_episodes_frame` would list without a row limit (so a page that shows the
    newest ones can say how many it left out)."""
    statement = sa.select(sa.func.count()).select_from(alert_episodes).where(*_episodes_in(start, end, None))
    _, rows = common.fetch(engine, statement)
    return int(rows[0][0])


def _episodes_in(start: datetime, end: datetime, states: tuple[str, ...] | None) -> list[sa.ColumnElement[bool]]:
    """Episodes overlapping ``[start, end)``: begun before ``end`` and not resolved before ``start`` (still open,
    or resolved in or after the range — one that outlasts a past range on both sides is in it too); only
    ``states`` if given."""
    e = alert_episodes
    where = [e.c.pending_since < end, sa.or_(e.c.resolved_at.is_(None), e.c.resolved_at >= start)]
    if states:
        where.append(e.c.state.in_(states))
    return where


def alert_deliveries_frame(
    engine: sa.Engine, start: datetime, end: datetime, *, channel: str | None = None, limit: int = 200
) -> pd.DataFrame:
    """Delivery attempts in ``[start, end)``, newest first (the notification log: channel, HTTP status, error)."""
    d = alert_deliveries
    where = [d.c.ts >= start, d.c.ts < end]
    if channel is not None:
        where.append(d.c.channel == channel)
    statement = (
        sa.select(*(d.c[name] for name in DELIVERY_COLUMNS))
        .where(*where)
        .order_by(d.c.ts.desc(), d.c.id.desc())
        .limit(_limit(limit))
    )
    _, rows = common.fetch(engine, statement)
    return _frame(list(rows), DELIVERY_COLUMNS)


def breaker_open_spans(engine: sa.Engine, flt: QueryFilter) -> pd.DataFrame:
    """Per provider, the spans of the filter's range during which some instance reported its breaker open:
    consecutive rollup buckets (of the filter's tier) with ``breaker_open_samples > 0`` merged into one
    ``[start, end)`` span, with the most instances open at once in it."""
    t = queue_rollups
    low = common.floor_time(flt.start, flt.tier_s)
    where = [t.c.tier_s == flt.tier_s, t.c.bucket >= low, t.c.bucket < flt.end, t.c.breaker_open_samples > 0]
    if flt.provider is not None:
        where.append(t.c.provider == flt.provider)
    statement = (
        sa.select(t.c.provider, t.c.bucket, sa.func.count(sa.distinct(t.c.instance_id)).label("instances"))
        .where(*where)
        .group_by(t.c.provider, t.c.bucket)
        .order_by(t.c.provider, t.c.bucket)
    )
    _, rows = common.fetch(engine, statement)
    step = pd.Timedelta(seconds=flt.tier_s)
    spans: list[tuple[str, pd.Timestamp, pd.Timestamp, int]] = []
    for provider, bucket, count in rows:
        moment = pd.Timestamp(bucket)
        moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
        if spans and spans[-1][0] == provider and spans[-1][2] == moment:
            previous = spans[-1]
            spans[-1] = (provider, previous[1], moment + step, max(previous[3], int(count)))
        else:
            spans.append((provider, moment, moment + step, int(count)))
    return _frame(spans, BREAKER_COLUMNS)
