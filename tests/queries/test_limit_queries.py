"""The Limits page's queries on SQLite and PostgreSQL: change history, step series, per-user usage, Redis status."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa

from core.queries import QueryFilter, latest_instances
from core.queries.limits import instance_lifetimes, limit_change_history, limit_steps, redis_degraded, user_usage
from core.store.tables import limit_changes
from tests.queries.data import (
    NOW,
    attempt_row,
    insert,
    insert_attempts,
    insert_instances,
    instance_row,
    limit_change_row,
)

HOUR = QueryFilter(NOW - timedelta(hours=1), NOW)


def test_history_filters_and_steps(store: sa.Engine) -> None:
    insert(
        store,
        limit_changes,
        [
            limit_change_row(90, 1, 50.0),  # before the range
            limit_change_row(30, 2, 50.0),
            limit_change_row(20, 3, 75.0, before=50.0),
            limit_change_row(25, 4, 10.0, key_label="Primary", configured=None, before=20.0),
            limit_change_row(10, 5, 5.0, provider="openai"),
        ],
    )
    history = limit_change_history(store, HOUR)
    assert list(history["seq"]) == [2, 4, 3, 5]
    assert list(limit_change_history(store, QueryFilter(HOUR.start, HOUR.end, provider="openai"))["seq"]) == [5]
    keyed = limit_change_history(store, QueryFilter(HOUR.start, HOUR.end, key_label="Primary"))
    assert list(keyed["seq"]) == [2, 4, 3, 5]  # the key's changes and the provider-wide ones it is subject to
    assert keyed["key_label"].tolist() == [None, "Primary", None, None]

    steps = limit_steps(history, HOUR.start, HOUR.end)
    primary = steps[steps["series"] == "anthropic · Primary · rpm"]
    assert primary[["effective", "reason"]].values.tolist() == [
        [20.0, "before this range"],
        [10.0, "r4"],
        [10.0, "now"],
    ]
    assert primary["configured"].isna().all()
    provider = steps[steps["series"] == "anthropic · provider · rpm"]
    assert provider["effective"].tolist() == [100.0, 50.0, 75.0, 75.0]
    assert provider["ts"].tolist() == [
        pd.Timestamp(HOUR.start),
        pd.Timestamp(NOW - timedelta(minutes=30)),
        pd.Timestamp(NOW - timedelta(minutes=20)),
        pd.Timestamp(HOUR.end),
    ]


def test_a_series_spans_its_instance_life_within_the_range(store: sa.Engine) -> None:
    """Started 40 min ago, last heard of 15 min ago: its line runs from the one to the other, not over the hour."""
    insert_instances(
        store, [instance_row(NOW - timedelta(minutes=40), "app-1"), instance_row(NOW - timedelta(minutes=15), "app-1")]
    )
    insert(store, limit_changes, [limit_change_row(30, 1, 50.0), limit_change_row(20, 2, 75.0, before=50.0)])
    lifetimes = instance_lifetimes(store, ["app-1", "gone"])
    assert lifetimes == {"app-1": (NOW - timedelta(minutes=40), NOW - timedelta(minutes=15))}
    steps = limit_steps(limit_change_history(store, HOUR), HOUR.start, HOUR.end, lifetimes)
    assert steps[["ts", "effective", "reason"]].values.tolist() == [
        [pd.Timestamp(NOW - timedelta(minutes=40)), 100.0, "instance started"],
        [pd.Timestamp(NOW - timedelta(minutes=30)), 50.0, "r1"],
        [pd.Timestamp(NOW - timedelta(minutes=20)), 75.0, "r2"],
        [pd.Timestamp(NOW - timedelta(minutes=15)), 75.0, "latest heartbeat"],
    ]


def test_user_usage_is_top_users_over_at_most_a_day(store: sa.Engine) -> None:
    zero = {"input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0}
    rows = [attempt_row(NOW - timedelta(minutes=5), **{**zero, "user_id": "b", "output_tokens": 7}) for _ in "xy"]
    refused = {"outcome": "error", "error_class": "user_rate_limited", "key_label": None}
    rows.append(attempt_row(NOW - timedelta(minutes=4), **zero, user_id="b", **refused))
    rows.append(attempt_row(NOW - timedelta(minutes=3), **{**zero, "user_id": "a", "cost_usd": 0.25}))
    rows.append(attempt_row(NOW - timedelta(minutes=3), **zero, user_id=None))
    rows.append(attempt_row(NOW - timedelta(hours=30), **zero, user_id="old"))
    insert_attempts(store, rows)
    usage = user_usage(store, HOUR)
    assert usage.values.tolist() == [["b", 3, 1, 1, 0, 14, 0.0], ["a", 1, 0, 0, 0, 0, 0.25]]
    week = QueryFilter(NOW - timedelta(days=7), NOW)
    assert user_usage(store, week)["user_id"].tolist() == ["b", "a"]  # 30 h ago is past the 24 h bound
    assert user_usage(store, HOUR, top=1)["user_id"].tolist() == ["b"]


def test_redis_degraded_reads_live_instances_only(store: sa.Engine) -> None:
    degraded = {"backend": "redis", "degraded": True, "degraded_since": "x", "local_share": 0.5}
    insert_instances(
        store,
        [
            instance_row(NOW - timedelta(seconds=2), "live", details={"shared_state": degraded}),
            instance_row(NOW - timedelta(minutes=5), "gone", details={"limiter": degraded}),
        ],
    )
    frame = latest_instances(store, NOW, heartbeat_interval_s=5.0)
    assert redis_degraded(frame) == [{"instance_id": "live", "block": "shared_state", "since": "x", "local_share": 0.5}]
