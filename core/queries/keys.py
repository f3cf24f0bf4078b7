"""The current state from the snapshot tables: each instance's latest heartbeat, live vs stale, and the worst
live view of every key.

An instance whose latest heartbeat is older than three heartbeat intervals is **stale**: it is left out of current
totals (queue depth sums the live instances; key health takes the worst live view) and listed in
``stale_instances``. Instances silent for longer than ``lookback`` are forgotten altogether.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import common
from pulsegate.core.store.snapshot_rollups import KEY_STATUS_RANK, RANK_STATUS, UNKNOWN_STATUS_RANK
from pulsegate.core.store.tables import instance_snapshots, instances, key_health_snapshots

STALE_AFTER_INTERVALS = 3
DEFAULT_HEARTBEAT_INTERVAL_S = 5.0
DEFAULT_LOOKBACK = timedelta(hours=24)

INSTANCE_COLUMNS: tuple[str, ...] = (
    "instance_id",
    "kind",
    "host",
    "pid",
    "provider",
    "ts",
    "queue_depth",
    "oldest_wait_ms",
    "requests_used",
    "requests_remaining",
    "requests_limit",
    "tokens_used",
    "tokens_remaining",
    "tokens_limit",
    "limit_reason",
    "breaker_state",
    "details",
    "last_seen",
    "stale",
)
KEY_COLUMNS: tuple[str, ...] = (
    "provider",
    "key_label",
    "key_masked",
    "score",
    "status",
    "cooldown_until",
    "consecutive_failures",
    "disabled_reason",
    "requests",
    "instances",
    "last_seen",
)
STALE_COLUMNS: tuple[str, ...] = ("instance_id", "kind", "host", "last_seen")
QUEUE_NOW_COLUMNS: tuple[str, ...] = (
    "provider",
    "queue_depth",
    "oldest_wait_ms",
    "requests_used",
    "requests_remaining",
    "requests_limit",
    "instances",
    "breaker_open_instances",
)


@dataclass(frozen=True, slots=True)
class KeyHealthView:
    """``keys``: the worst live view per provider × key label; ``stale_instances``: instances left out."""

    keys: pd.DataFrame
    stale_instances: pd.DataFrame


def stale_before(now: datetime, heartbeat_interval_s: float) -> datetime:
    """Heartbeats older than this are stale."""
    return now - timedelta(seconds=STALE_AFTER_INTERVALS * heartbeat_interval_s)


def _latest(table: sa.Table, now: datetime, lookback: timedelta, where: list) -> sa.Select:
    """The rows of each instance's newest snapshot in ``table`` within ``[now - lookback, now]``.

    The instance registry names the few instances heard from in the window; for each, the newest snapshot time is
    one backward step on the ``(instance_id, ts)`` index — never a scan of the window's snapshots.
    """
    low = now - lookback
    newest = (
        sa.select(sa.func.max(table.c.ts))
        .where(table.c.instance_id == instances.c.instance_id, table.c.ts >= low, table.c.ts <= now)
        .scalar_subquery()
    )
    beats = sa.select(instances.c.instance_id, newest.label("newest")).where(instances.c.last_seen >= low).subquery()
    return (
        sa.select(table)
        .join(beats, sa.and_(table.c.instance_id == beats.c.instance_id, table.c.ts == beats.c.newest))
        .where(*where)
    )


def latest_instances(
    engine: sa.Engine,
    now: datetime,
    *,
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
    provider: str | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> pd.DataFrame:
    """Each instance's latest snapshot per provider, with ``last_seen`` (the instance's latest heartbeat on any
    provider) and ``stale``."""
    t = instance_snapshots
    where = [t.c.provider == provider] if provider is not None else []
    statement = _latest(t, now, lookback, where).order_by(t.c.instance_id, t.c.provider)
    columns, rows = common.fetch(engine, statement)
    frame = pd.DataFrame(rows, columns=columns)
    if frame.empty:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in INSTANCE_COLUMNS})
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["last_seen"] = frame.groupby("instance_id")["ts"].transform("max")
    frame["stale"] = frame["last_seen"] < pd.Timestamp(stale_before(now, heartbeat_interval_s))
    return frame[list(INSTANCE_COLUMNS)].reset_index(drop=True)


def stale_instances(instances: pd.DataFrame) -> pd.DataFrame:
    stale = instances[instances["stale"]]
    return stale.drop_duplicates("instance_id")[list(STALE_COLUMNS)].sort_values("instance_id").reset_index(drop=True)


def current_queues(instances: pd.DataFrame) -> pd.DataFrame:
    """Per provider, over live instances only: summed queue depth and limiter use, longest wait, instance counts."""
    live = instances[~instances["stale"].astype(bool)]
    if live.empty:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in QUEUE_NOW_COLUMNS})
    grouped = live.groupby("provider", sort=True)
    frame = pd.DataFrame(
        {
            "queue_depth": grouped["queue_depth"].sum().astype("int64"),
            "oldest_wait_ms": grouped["oldest_wait_ms"].max().astype("float64"),
            "requests_used": grouped["requests_used"].sum(min_count=1),
            "requests_remaining": grouped["requests_remaining"].sum(min_count=1),
            "requests_limit": grouped["requests_limit"].sum(min_count=1),
            "instances": grouped["instance_id"].nunique().astype("int64"),
            "breaker_open_instances": grouped["breaker_state"].agg(lambda s: int((s == "open").sum())),
        }
    )
    return frame.reset_index()[list(QUEUE_NOW_COLUMNS)]


def latest_key_health(
    engine: sa.Engine,
    now: datetime,
    *,
    heartbeat_interval_s: float = DEFAULT_HEARTBEAT_INTERVAL_S,
    provider: str | None = None,
    key_label: str | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> KeyHealthView:
    """The worst live view of each key (lowest score, worst status — healthy < degraded < unhealthy < cooldown <
    disabled — latest cooldown end, most consecutive failures, requests summed over live instances), plus the
    stale instances left out."""
    views = latest_key_views(engine, now, provider=provider, key_label=key_label, lookback=lookback)
    instances = latest_instances(
        engine, now, heartbeat_interval_s=heartbeat_interval_s, provider=provider, lookback=lookback
    )
    return KeyHealthView(worst_live_view(views, now, heartbeat_interval_s), stale_instances(instances))


def latest_key_views(
    engine: sa.Engine,
    now: datetime,
    *,
    provider: str | None = None,
    key_label: str | None = None,
    lookback: timedelta = DEFAULT_LOOKBACK,
) -> pd.DataFrame:
    """Each instance's latest snapshot of each key (live and stale alike), as stored."""
    t = key_health_snapshots
    where = []
    if provider is not None:
        where.append(t.c.provider == provider)
    if key_label is not None:
        where.append(t.c.key_label == key_label)
    statement = _latest(t, now, lookback, where)
    columns, rows = common.fetch(engine, statement)
    return pd.DataFrame(rows, columns=columns)


def worst_live_view(views: pd.DataFrame, now: datetime, heartbeat_interval_s: float) -> pd.DataFrame:
    """Fold per-instance key snapshots (latest per instance) into one row per key, keeping live ones only."""
    if views.empty:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in KEY_COLUMNS})
    views = views.copy()
    views["ts"] = pd.to_datetime(views["ts"], utc=True)
    views = views[views["ts"] >= pd.Timestamp(stale_before(now, heartbeat_interval_s))]
    if views.empty:
        return pd.DataFrame({name: pd.Series(dtype=_dtype(name)) for name in KEY_COLUMNS})
    views["rank"] = views["status"].map(KEY_STATUS_RANK).fillna(UNKNOWN_STATUS_RANK).astype(int)
    views["cooldown_until"] = pd.to_datetime(views["cooldown_until"], utc=True)
    grouped = views.groupby(["provider", "key_label"], sort=True)
    frame = pd.DataFrame(
        {
            "key_masked": grouped["key_masked"].last(),
            "score": grouped["score"].min().astype("float64"),
            "status": grouped["rank"].max().map(RANK_STATUS),
            "cooldown_until": grouped["cooldown_until"].max(),
            "consecutive_failures": grouped["consecutive_failures"].max().astype("int64"),
            "disabled_reason": grouped["disabled_reason"].agg(lambda s: next((v for v in s if v), None)),
            "requests": grouped["requests"].sum().astype("int64"),
            "instances": grouped["instance_id"].nunique().astype("int64"),
            "last_seen": grouped["ts"].max(),
        }
    )
    reasons = frame["disabled_reason"].astype(object)
    frame["disabled_reason"] = reasons.where(reasons.notna(), None)
    return frame.reset_index()[list(KEY_COLUMNS)]


def _dtype(name: str) -> str:
    if name in ("ts", "last_seen", "cooldown_until"):
        return "datetime64[ns, UTC]"
    if name in ("score", "oldest_wait_ms"):
        return "float64"
    if name in ("queue_depth", "instances", "consecutive_failures", "requests", "breaker_open_instances", "pid"):
        return "int64"
    if name == "stale":
        return "bool"
    return "object"
