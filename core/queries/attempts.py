"""Recent attempts from the raw table, newest first — the one query that reads raw rows (a list, not a chart).

Paginate with ``offset`` or, cheaper on deep pages, with the keyset ``before=(ts, id)`` of the last row shown.
The newest rows are looked for in a recent window first (:data:`WINDOWS`), widened only when it holds less than a
page — so the first pages cost milliseconds at any table size.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter, QueryFilterError
from pulsegate.core.store.tables import OUTCOMES, api_usage_metrics

MAX_LIMIT = 1000
ATTEMPT_COLUMNS: tuple[str, ...] = (
    "ts",
    "id",
    "call_id",
    "attempt",
    "is_final",
    "source",
    "provider",
    "model",
    "key_label",
    "outcome",
    "error_class",
    "http_status",
    "latency_ms",
    "ttft_ms",
    "queue_wait_ms",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "priority",
    "streamed",
    "fell_back_from",
    "feature",
    "request_id",
    "instance_id",
)


#: Widths of the recent windows tried before the whole range: the raw table has only a time index (BRIN on
#: PostgreSQL), so "newest first" over 7 days would read every row; a page of the newest rows is nearly always in
#: the last minute or quarter hour.
WINDOWS: tuple[timedelta, ...] = (timedelta(minutes=1), timedelta(minutes=15), timedelta(hours=4), timedelta(days=2))


def _newest_first(
    engine: sa.Engine,
    statement: sa.Select,
    ts: sa.ColumnElement[datetime],
    newest: datetime,
    oldest: datetime,
    limit: int,
) -> tuple[list[str], Sequence[Any]]:
    """Run ``statement`` (ordered newest first, with its limit and offset) over growing recent windows.

    A window holding a full page answers exactly what the whole range would: its rows are the newest ones of the
    range, so the ``offset + limit`` newest rows of the range all lie in it. Otherwise widen, up to the range.
    """
    for width in WINDOWS:
        low = newest - width
        if low <= oldest:
            break
        columns, rows = common.fetch(engine, statement.where(ts >= low))
        if len(rows) == limit:
            return columns, rows
    return common.fetch(engine, statement)


def attempt_conditions(flt: QueryFilter, outcome: str | None, error_class: str | None) -> list[sa.ColumnElement]:
    """The WHERE clauses of ``flt`` plus an outcome and an error class (checked: a bad one is a
    :class:`QueryFilterError` naming it) — shared by the Calls page's rows, its count and its CSV export."""
    if outcome is not None and outcome not in OUTCOMES:
        raise QueryFilterError(f"outcome={outcome!r} is not one of {', '.join(OUTCOMES)}")
    if error_class is not None and error_class not in {ec.value for ec in ErrorClass}:
        raise QueryFilterError(f"error_class={error_class!r} is not a known error class")
    t = api_usage_metrics
    where = flt.conditions(t)
    if outcome is not None:
        where.append(t.c.outcome == outcome)
    if error_class is not None:
        where.append(t.c.error_class == error_class)
    return where


def recent_attempts(
    engine: sa.Engine,
    flt: QueryFilter,
    *,
    limit: int = 50,
    offset: int = 0,
    before: tuple[datetime, uuid.UUID] | None = None,
    outcome: str | None = None,
    error_class: str | None = None,
    include_user_id: bool = False,
) -> pd.DataFrame:
    """Attempts in ``flt``'s range and filters, ordered by ``ts`` then ``id`` descending. ``user_id`` (as stored:
    raw, or hashed under ``HASH_USER_IDS``) is a column only when asked for — for an authenticated operator."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise QueryFilterError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise QueryFilterError(f"offset must be a non-negative integer, got {offset!r}")
    t = api_usage_metrics
    where = attempt_conditions(flt, outcome, error_class)
    if before is not None:
        ts, row_id = before
        if not isinstance(row_id, uuid.UUID):
            raise QueryFilterError("before must be (ts, uuid.UUID) of the last row shown")
        where.append(sa.or_(t.c.ts < ts, sa.and_(t.c.ts == ts, t.c.id < row_id)))
    names = (*ATTEMPT_COLUMNS, "user_id") if include_user_id else ATTEMPT_COLUMNS
    statement = (
        sa.select(*(t.c[name] for name in names))
        .where(*where)
        .order_by(t.c.ts.desc(), t.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    newest = min(flt.end, before[0]) if before is not None else flt.end
    columns, rows = _newest_first(engine, statement, t.c.ts, newest, flt.start, limit)
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return pd.DataFrame(
            {name: pd.Series(dtype="datetime64[ns, UTC]" if name == "ts" else "object") for name in names}
        )
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    if include_user_id:  # pandas reads a column of strings and NULLs with NaN for the NULLs
        frame["user_id"] = frame["user_id"].astype(object).where(frame["user_id"].notna(), None)
    return frame
