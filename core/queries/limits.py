"""Limits for the dashboard's Limits page: the self-tuning history, the limits in force now, Redis degradation, and
per-user usage.

The history comes from ``limit_changes`` (one row per change, written by the heartbeat), not from the snapshots:
a change is an event with a reason, and a step line drawn from its events is exact between heartbeats, while a
5-second snapshot series would blur when it happened and repeat the reason thousands of times. Per-key limits
are in the events too (snapshots keep one row per provider). Per-user numbers cover the whole hours touching the
range's last :data:`USER_RANGE_MAX` (:func:`user_window`), read from ``user_rollups_1h`` (per hour × user, written
at flush time) alone — a day is 25 buckets per user whatever the raw table holds. The user rollup has no provider,
model, key or source: per-user numbers span them all, as the per-user limits do, and the page says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store.tables import instances, limit_changes, user_rollups_1h

CHANGE_COLUMNS: tuple[str, ...] = (
    "ts",
    "instance_id",
    "seq",
    "provider",
    "key_label",
    "kind",
    "configured",
    "effective_before",
    "effective_after",
    "reason",
)
STEP_COLUMNS: tuple[str, ...] = (
    "series",
    "instance_id",
    "provider",
    "key_label",
    "kind",
    "ts",
    "effective",
    "configured",
    "reason",
)
NOW_COLUMNS: tuple[str, ...] = ("instance_id", "provider", "kind", "effective", "configured", "reason", "changed_at")
USER_COLUMNS: tuple[str, ...] = (
    "user_id",
    "calls",
    "errors",
    "user_rate_limited",
    "input_tokens",
    "output_tokens",
    "cost_usd",
)
MAX_CHANGES = 5000
USER_RANGE_MAX = timedelta(hours=24)


def _empty(columns: tuple[str, ...]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype="object") for name in columns})


def limit_change_history(engine: sa.Engine, flt: QueryFilter, *, limit: int = MAX_CHANGES) -> pd.DataFrame:
    """Changes in ``[start, end)`` (provider and key filters apply; ``key_label`` NULL = the provider's own limit),
    oldest first, at most ``limit`` (the newest ones)."""
    t = limit_changes
    where = [t.c.ts >= flt.start, t.c.ts < flt.end]
    if flt.provider is not None:
        where.append(t.c.provider == flt.provider)
    if flt.key_label is not None:
        where.append(sa.or_(t.c.key_label == flt.key_label, t.c.key_label.is_(None)))
    newest = sa.select(*(t.c[name] for name in CHANGE_COLUMNS)).where(*where).order_by(t.c.ts.desc(), t.c.id.desc())
    columns, rows = common.fetch(engine, newest.limit(limit))
    if not rows:
        return _empty(CHANGE_COLUMNS)
    frame = pd.DataFrame(rows[::-1], columns=columns)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["key_label"] = frame["key_label"].astype(object).where(frame["key_label"].notna(), None)
    return frame.reset_index(drop=True)


def series_name(provider: str, key_label: str | None, kind: str) -> str:
    return f"{provider} · {key_label or 'provider'} · {kind}"


def instance_lifetimes(engine: sa.Engine, instance_ids: Sequence[str]) -> dict[str, tuple[datetime, datetime]]:
    """``instance_id`` → (first heartbeat, latest heartbeat) from the instance registry, for the ids it knows."""
    ids = sorted({str(i) for i in instance_ids})
    if not ids:
        return {}
    t = instances
    statement = sa.select(t.c.instance_id, t.c.first_seen, t.c.last_seen).where(t.c.instance_id.in_(ids))
    _, rows = common.fetch(engine, statement)
    return {str(instance): (first, last) for instance, first, last in rows}


def limit_steps(
    changes: pd.DataFrame,
    start: datetime,
    end: datetime,
    lifetimes: Mapping[str, tuple[datetime, datetime]] | None = None,
) -> pd.DataFrame:
    """Step points per series (instance × provider × key × kind) for a chart: the value before the first change,
    one point per change, and the last value carried on.

    A series covers its instance's life within the range, never more: it starts at the later of ``start`` and the
    instance's first heartbeat (or its first change, if that came before the first heartbeat), and ends at the
    earlier of ``end`` and its latest heartbeat (never before its last change). An instance missing from
    ``lifetimes`` (forgotten by retention: an old one) spans the whole range."""
    if changes.empty:
        return _empty(STEP_COLUMNS)
    lifetimes = lifetimes or {}
    points: list[dict[str, Any]] = []
    several = changes["instance_id"].nunique() > 1
    for (instance, provider, key_label, kind), group in changes.groupby(
        ["instance_id", "provider", changes["key_label"].fillna(""), "kind"], sort=True
    ):
        name = series_name(provider, key_label or None, kind) + (f" ({instance})" if several else "")
        base = {"series": name, "instance_id": instance, "provider": provider, "key_label": key_label or None}
        base["kind"] = kind
        first, last = group.iloc[0], group.iloc[-1]
        born, seen = lifetimes.get(str(instance), (None, None))
        opens = pd.Timestamp(start) if born is None else max(pd.Timestamp(start), min(pd.Timestamp(born), first["ts"]))
        closes = pd.Timestamp(end) if seen is None else min(pd.Timestamp(end), max(pd.Timestamp(seen), last["ts"]))
        points.append(
            {**base, "ts": opens, "effective": first["effective_before"]}
            | {
                "configured": first["configured"],
                "reason": "before this range" if opens == start else "instance started",
            }
        )
        for row in group.itertuples(index=False):
            points.append(
                {**base, "ts": row.ts, "effective": row.effective_after, "configured": row.configured}
                | {"reason": row.reason}
            )
        points.append(
            {**base, "ts": closes, "effective": last["effective_after"]}
            | {"configured": last["configured"], "reason": "now" if closes == end else "latest heartbeat"}
        )
    frame = pd.DataFrame(points, columns=list(STEP_COLUMNS))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    return frame


def limits_now(instances: pd.DataFrame) -> pd.DataFrame:
    """Per live instance, provider and kind: the effective and configured limit and why it last changed (from each
    instance's newest snapshot, see :func:`pulsegate.core.queries.latest_instances`)."""
    rows = []
    live = instances[~instances["stale"].astype(bool)] if not instances.empty else instances
    for row in live.itertuples(index=False):
        details = row.details if isinstance(row.details, dict) else {}
        for kind, entry in sorted((details.get("limits") or {}).items()):
            rows.append(
                {
                    "instance_id": row.instance_id,
                    "provider": row.provider,
                    "kind": kind,
                    "effective": entry.get("limit"),
                    "configured": entry.get("configured"),
                    "reason": entry.get("reason"),
                    "changed_at": entry.get("changed_at"),
                }
            )
    return pd.DataFrame(rows, columns=list(NOW_COLUMNS)) if rows else _empty(NOW_COLUMNS)


def redis_degraded(instances: pd.DataFrame) -> list[dict[str, Any]]:
    """Live instances whose newest snapshot says Redis is degraded (the shared limiter or the shared key/breaker
    state): ``[{"instance_id", "block", "since", "local_share"}]``, sorted."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    if instances.empty:
        return []
    live = instances[~instances["stale"].astype(bool)]
    for row in live.itertuples(index=False):
        details = row.details if isinstance(row.details, dict) else {}
        for block in ("limiter", "shared_state"):
            status = details.get(block)
            if isinstance(status, dict) and status.get("degraded"):
                found[(row.instance_id, block)] = {
                    "instance_id": row.instance_id,
                    "block": block,
                    "since": status.get("degraded_since"),
                    "local_share": status.get("local_share"),
                }
    return [found[k] for k in sorted(found)]


def user_window(flt: QueryFilter) -> tuple[datetime, datetime]:
    """The whole hours the top-users table covers: every hour that touches the range's last
    :data:`USER_RANGE_MAX` — from the hour the bounded range starts in up to the end of the hour it ends in. For a
    range ending now that is "since HH:00" (the current hour holds what was flushed so far)."""
    start = common.floor_time(max(flt.start, flt.end - USER_RANGE_MAX), 3600)
    end = common.floor_time(flt.end, 3600)
    if end < flt.end:
        end += timedelta(hours=1)
    return start, end


def user_usage(engine: sa.Engine, flt: QueryFilter, *, top: int = 20) -> pd.DataFrame:
    """The ``top`` users by calls over :func:`user_window` (ids as stored: hashed under ``HASH_USER_IDS``), with
    errors (outcome ``error``: a cancelled call counts in calls only), user-rate-limited refusals, tokens and cost,
    across every provider, model, key and source — as the per-user limits count them; the range's other filters do
    not apply. Read from ``user_rollups_1h`` alone (hour × user, written with the raw rows at flush time, counting
    them exactly: costs are summed per hour first, so a cost may differ from one summed row by row in its last
    binary digit) — one day is at most 25 buckets per user, never the raw rows."""
    start, end = user_window(flt)
    r = user_rollups_1h
    calls = sa.cast(sa.func.sum(r.c.calls), sa.BigInteger).label("calls")
    statement = (
        sa.select(
            r.c.user_id,
            calls,
            *(
                sa.cast(sa.func.sum(r.c[name]), sa.BigInteger).label(name)
                for name in ("errors", "user_rate_limited", "input_tokens", "output_tokens")
            ),
            sa.cast(sa.func.coalesce(sa.func.sum(r.c.cost_usd), 0.0), sa.Float).label("cost_usd"),
        )
        .where(r.c.bucket >= start, r.c.bucket < end)
        .group_by(r.c.user_id)
        .order_by(calls.desc(), r.c.user_id)
        .limit(top)
    )
    columns, rows = common.fetch(engine, statement)
    if not rows:
        return _empty(USER_COLUMNS)
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("calls", "errors", "user_rate_limited", "input_tokens", "output_tokens"):
        frame[name] = frame[name].astype("int64")
    frame["cost_usd"] = frame["cost_usd"].astype("float64")
    return frame
