"""Every read the dashboard makes: ``core`` queries behind ``st.cache_data`` with a short TTL.

The engine is shared (``st.cache_resource``); query results are cached per (database URL, filter), and the
filter's end is rounded to a few seconds so reruns within it hit the cache. A database error becomes
:class:`StoreDown` carrying one line — the page shows a banner, never a traceback — and is not cached, so the
next rerun tries again and the page recovers by itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import pandas as pd
import sqlalchemy as sa
import streamlit as st

from pulsegate.core.errors import PulsegateError, StoreError, one_line_reason
from pulsegate.core.queries import (
    QueryFilter,
    key_health_series,
    kpi_summary,
    latest_instances,
    latest_key_health,
    queue_depth_series,
    range_totals,
    recent_attempts,
    traffic_series,
)
from pulsegate.core.store import create_store_engine, store_status
from pulsegate.core.store.engine import describe_url

TTL_S = 10
P = ParamSpec("P")
R = TypeVar("R")
FilterKey = tuple[datetime, datetime, str | None, str | None, str | None, str | None]


class StoreDown(PulsegateError):
    """The store cannot be read right now; ``str()`` is one line naming the database (never its password)."""


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a database failure into :class:`StoreDown`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (sa.exc.SQLAlchemyError, StoreError, OSError) as exc:
            url = args[0] if args and isinstance(args[0], str) else None
            where = describe_url(sa.make_url(url)) if url else "the store"
            driver_error = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's own, clearer, message
            reason = one_line_reason(driver_error if driver_error is not None else exc)
            raise StoreDown(f"cannot read {where}: {reason}") from None

    return wrapper


def cached(fn: Callable[P, R]) -> Callable[P, R]:
    """A read cached per arguments for ``TTL_S`` seconds, its database failures turned into :class:`StoreDown`.

    A failure is never cached (``st.cache_data`` keeps only results), so the next rerun asks the database again."""
    return guarded(st.cache_data(ttl=TTL_S, show_spinner=False)(fn))


@st.cache_resource(show_spinner=False)
def engine(url: str) -> sa.Engine:
    return create_store_engine(url)


def key_of(flt: QueryFilter) -> FilterKey:
    return (flt.start, flt.end, flt.provider, flt.model, flt.key_label, flt.source)


def _flt(key: FilterKey) -> QueryFilter:
    start, end, provider, model, key_label, source = key
    return QueryFilter(start, end, provider=provider, model=model, key_label=key_label, source=source)


def status(url: str) -> tuple[bool, str | None, str, str | None]:
    """(reachable, revision, description, problem). Not cached: a ``SELECT 1`` and the revision cost a few
    milliseconds, and an outage must be noticed — and a recovery too — on the very next run."""
    result = store_status(engine(url))
    return result.reachable, result.revision, result.description, result.problem


@cached
def traffic(url: str, key: FilterKey) -> pd.DataFrame:
    return traffic_series(engine(url), _flt(key))


@cached
def kpis(url: str, key: FilterKey) -> pd.DataFrame:
    return kpi_summary(engine(url), _flt(key))


@cached
def totals(url: str, key: FilterKey) -> dict[str, float]:
    return range_totals(engine(url), _flt(key))


@cached
def queues(url: str, key: FilterKey) -> pd.DataFrame:
    return queue_depth_series(engine(url), _flt(key))


@cached
def key_health_timeline(url: str, key: FilterKey) -> pd.DataFrame:
    return key_health_series(engine(url), _flt(key))


@cached
def instances(url: str, now: datetime, heartbeat_s: float) -> pd.DataFrame:
    return latest_instances(engine(url), now, heartbeat_interval_s=heartbeat_s)


@cached
def keys_now(url: str, now: datetime, heartbeat_s: float) -> pd.DataFrame:
    return latest_key_health(engine(url), now, heartbeat_interval_s=heartbeat_s).keys


@cached
def health(url: str, now: datetime, window_s: int, heartbeat_s: float) -> dict[str, Any]:
    from pulsegate.core.ops.health_report import health_report

    return health_report(engine(url), now, window=timedelta(seconds=window_s), heartbeat_interval_s=heartbeat_s)


@cached
def attempts(
    url: str,
    key: FilterKey,
    limit: int,
    offset: int,
    outcome: str | None,
    error_class: str | None,
) -> pd.DataFrame:
    return recent_attempts(
        engine(url),
        _flt(key),
        limit=limit,
        offset=offset,
        outcome=outcome,
        error_class=error_class,
        include_user_id=True,  # the Calls page drops it unless the operator signed in
    )


@guarded
def calls_count(url: str, key: FilterKey, outcome: str | None, error_class: str | None) -> int:
    """How many attempts a CSV export of this view holds (not cached: asked once per click, and must be exact)."""
    from pulsegate.core.queries.attempt_export import count_attempts

    return count_attempts(engine(url), _flt(key), outcome=outcome, error_class=error_class)


@cached
def episodes(
    url: str, start: datetime, end: datetime, states: tuple[str, ...] | None = None, limit: int = 200
) -> pd.DataFrame:
    from pulsegate.core.queries.alerts import alert_episodes_frame

    return alert_episodes_frame(engine(url), start, end, states=states, limit=limit)


@cached
def episode_count(url: str, start: datetime, end: datetime) -> int:
    from pulsegate.core.queries.alerts import alert_episode_count

    return alert_episode_count(engine(url), start, end)


@cached
def deliveries(url: str, start: datetime, end: datetime) -> pd.DataFrame:
    from pulsegate.core.queries.alerts import alert_deliveries_frame

    return alert_deliveries_frame(engine(url), start, end)


@cached
def breaker_spans(url: str, key: FilterKey) -> pd.DataFrame:
    from pulsegate.core.queries.alerts import breaker_open_spans

    return breaker_open_spans(engine(url), _flt(key))


@cached
def limit_history(url: str, key: FilterKey) -> pd.DataFrame:
    from pulsegate.core.queries.limits import limit_change_history

    return limit_change_history(engine(url), _flt(key))


@cached
def instance_lifetimes(url: str, instance_ids: tuple[str, ...]) -> dict[str, tuple[datetime, datetime]]:
    from pulsegate.core.queries.limits import instance_lifetimes as lifetimes

    return lifetimes(engine(url), instance_ids)


@cached
def users(url: str, key: FilterKey, top: int) -> pd.DataFrame:
    from pulsegate.core.queries.limits import user_usage

    return user_usage(engine(url), _flt(key), top=top)


@guarded
def redis_status(url: str, now: datetime, heartbeat_s: float) -> list[dict[str, Any]]:
    """Live instances whose newest snapshot says Redis is degraded (cached with :func:`instances`)."""
    from pulsegate.core.queries.limits import redis_degraded

    return redis_degraded(instances(url, now, heartbeat_s))


# --- writes and polls (never cached) ------------------------------------------------------------------------------


@guarded
def issue(url: str, command: str, *, provider: str | None, key_label: str | None, now: datetime) -> int:
    from pulsegate.core.ops.control import issue_command

    return issue_command(
        engine(url), command, provider=provider, key_label=key_label, requested_by="dashboard", now=now
    )


@guarded
def command(url: str, command_id: int, now: datetime) -> dict[str, Any]:
    from pulsegate.core.ops.control import command_status

    return command_status(engine(url), command_id, now)


@guarded
def probe(url: str, *, provider: str | None, key_label: str | None, model: str | None, now: datetime) -> int:
    from pulsegate.core.ops.probe_requests import request_probe

    return request_probe(
        engine(url), requested_by="dashboard", now=now, provider=provider, key_label=key_label, model=model
    )


@guarded
def probe_status(url: str, request_id: int) -> dict[str, Any] | None:
    from pulsegate.core.ops.probe_requests import probe_request_status

    return probe_request_status(engine(url), request_id)


def clear() -> None:
    """Forget cached results (after an action, so the page shows its effect at once)."""
    st.cache_data.clear()
