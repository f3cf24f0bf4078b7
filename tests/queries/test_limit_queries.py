"""The Limits page's queries on SQLite and PostgreSQL: change history, step series, per-user usage, Redis status."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import QueryFilter, latest_instances
from pulsegate.core.queries.limits import (
    USER_COLUMNS,
    instance_lifetimes,
    limit_change_history,
    limit_steps,
    redis_degraded,
    user_usage,
    user_window,
)
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.recording.batch_writer import BatchWriter
from pulsegate.core.store.tables import limit_changes, user_rollups_1h
from tests.queries.data import (
    NOW,
    attempt_row,
    insert,
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
    record(store, rows)
    usage = user_usage(store, HOUR)
    assert usage.values.tolist() == [["b", 3, 1, 1, 0, 14, 0.0], ["a", 1, 0, 0, 0, 0, 0.25]]
    week = QueryFilter(NOW - timedelta(days=7), NOW)
    assert user_usage(store, week)["user_id"].tolist() == ["b", "a"]  # 30 h ago is past the 24 h bound
    assert user_usage(store, HOUR, top=1)["user_id"].tolist() == ["b"]


def record(store: sa.Engine, rows: list[dict[str, Any]]) -> None:
    """Store attempts as the recorder does: raw rows and every rollup (the user hours too), one flush."""
    BatchWriter(store.dialect).write(store, [AttemptRecord(**row) for row in rows])


def raw_user_usage(rows: list[dict[str, Any]], start: datetime, end: datetime) -> list[list[Any]]:
    """The top-users table computed in Python from the raw rows over ``[start, end)``, every dimension."""
    totals: dict[str, list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0])
    for row in rows:
        if row["user_id"] is None or not start <= row["ts"] < end:
            continue
        have = totals[row["user_id"]]
        have[0] += 1
        have[1] += row["outcome"] == "error"
        have[2] += row["error_class"] == "user_rate_limited"
        have[3] += row["input_tokens"]
        have[4] += row["output_tokens"]
        have[5] += row["cost_usd"] or 0.0
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
    return [[user, *values] for user, values in ranked]


def seeded_rows(rng: random.Random, start: datetime, hours: int) -> list[dict[str, Any]]:
    """Attempts of 7 users (and some without a user) over ``hours``, at microsecond times: every provider, model,
    key (none too), source and outcome, user-rate-limited refusals, and costs in 1/64 dollars (NULL: unpriced) so
    every sum is exact in binary floating point whatever order it is summed in."""
    models = {"anthropic": ["claude-x", "claude-y"], "openai": ["gpt-x"]}
    rows = []
    for _ in range(1500):
        provider = rng.choice(sorted(models))
        outcome = rng.choice(["success", "success", "error", "cancelled"])
        error_class = rng.choice(["user_rate_limited", "rate_limited", "server_error"]) if outcome == "error" else None
        ts = start + timedelta(microseconds=rng.randrange(hours * 3_600_000_000))
        cost = None if rng.random() < 0.1 else rng.randint(0, 64) / 64
        rows.append(
            attempt_row(
                ts,
                provider=provider,
                model=rng.choice(models[provider]),
                key_label=rng.choice(["Primary", "Backup 1", None]),
                source=rng.choice(["live", "live", "live", "probe"]),
                outcome=outcome,
                error_class=error_class,
                input_tokens=rng.randint(0, 3000),
                output_tokens=rng.randint(0, 900),
                cost_usd=cost,
                user_id=rng.choice([None, "u1", "u2", "u3", "u4", "u5", "u6", "u7"]),
            )
        )
    return rows


def test_user_usage_is_the_raw_aggregate_over_whole_hours_whatever_the_filters(store: sa.Engine) -> None:
    rng = random.Random(17)
    start = NOW - timedelta(hours=30)
    rows = seeded_rows(rng, start, 30)
    for index in range(0, len(rows), 400):  # several flushes, as the recorder writes them
        record(store, rows[index : index + 400])
    odd = timedelta(minutes=17, seconds=23, microseconds=450_001)
    hour = timedelta(hours=1)
    ranges = [  # (range, the whole hours the table covers)
        ((NOW - timedelta(hours=24), NOW), (NOW - timedelta(hours=24), NOW)),
        ((NOW - timedelta(hours=24) + odd, NOW - timedelta(hours=2) + odd), (NOW - 24 * hour, NOW - hour)),
        ((NOW - timedelta(days=3), NOW - odd), (NOW - 25 * hour, NOW)),  # bounded to the end's last 24 h
        (
            (NOW - timedelta(hours=5, minutes=40), NOW - timedelta(hours=5, minutes=3, seconds=1)),
            (NOW - 6 * hour, NOW - 5 * hour),
        ),
        ((NOW - timedelta(hours=3) - odd, NOW - timedelta(hours=1) + odd), (NOW - 4 * hour, NOW)),
    ]
    filters: list[dict[str, str]] = [
        {},
        {"provider": "openai"},
        {"model": "claude-y"},
        {"key_label": "Backup 1"},
        {"source": "probe"},
        {"provider": "anthropic", "source": "live"},
    ]
    compared = 0
    for (low, high), window in ranges:
        expected = raw_user_usage(rows, *window)
        for chosen in filters:  # the user rollup spans every dimension, as the per-user limits do
            flt = QueryFilter(low, high, **chosen)
            assert user_window(flt) == window, (low, high)
            assert user_usage(store, flt, top=100).values.tolist() == expected, (low, high, chosen)
            assert user_usage(store, flt, top=3).values.tolist() == expected[:3]
        compared += len(expected)
    assert compared > 25
    # the seed covers what matters: cancelled calls of users, refusals, unpriced rows, rows without a key or user
    assert {r["outcome"] for r in rows if r["user_id"]} == {"success", "error", "cancelled"}
    assert any(r["error_class"] == "user_rate_limited" and r["user_id"] for r in rows)
    assert any(r["cost_usd"] is None and r["user_id"] for r in rows)
    assert any(r["key_label"] is None and r["user_id"] for r in rows)


def test_user_usage_reads_the_user_rollup_alone(store: sa.Engine) -> None:
    """Every figure comes from ``user_rollups_1h`` (here changed by hand: the query must show the change), never from
    the raw rows — a range starting mid-hour takes that hour whole, a filter changes nothing."""
    rows = [attempt_row(NOW - timedelta(minutes=90), user_id="a", input_tokens=1, output_tokens=2, cost_usd=0.5)]
    rows.append(attempt_row(NOW - timedelta(minutes=20), user_id="a", input_tokens=1, output_tokens=2, cost_usd=0.5))
    record(store, rows)
    with store.begin() as connection:
        connection.execute(sa.update(user_rollups_1h).values(calls=user_rollups_1h.c.calls + 100))
    both_hours = [["a", 202, 0, 0, 2, 4, 1.0]]
    assert user_usage(store, QueryFilter(NOW - timedelta(hours=2), NOW)).values.tolist() == both_hours
    assert user_usage(store, QueryFilter(NOW - timedelta(minutes=100), NOW)).values.tolist() == both_hours
    assert user_usage(store, QueryFilter(NOW - timedelta(minutes=59), NOW)).values.tolist() == [
        ["a", 101, 0, 0, 1, 2, 0.5]
    ]
    filtered = QueryFilter(NOW - timedelta(hours=2), NOW, provider="openai")
    assert user_usage(store, filtered).values.tolist() == both_hours
    assert list(user_usage(store, filtered).columns) == list(USER_COLUMNS)


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
