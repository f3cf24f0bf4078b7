"""Chart, KPI, key-health and attempt queries on SQLite and PostgreSQL, against hand-built rollups and snapshots."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pulsegate.core.queries import (
    ATTEMPT_COLUMNS,
    KEY_HEALTH_COLUMNS,
    KPI_NAMES,
    QUEUE_COLUMNS,
    TRAFFIC_COLUMNS,
    QueryFilter,
    QueryFilterError,
    current_queues,
    key_health_series,
    kpi_summary,
    latest_instances,
    latest_key_health,
    queue_depth_series,
    recent_attempts,
    traffic_series,
)
from pulsegate.core.store.tables import metric_rollups_1m, metric_rollups_10m
from tests.queries.data import (
    NOW,
    attempt_row,
    insert,
    insert_attempts,
    insert_hours,
    insert_instances,
    insert_keys,
    insert_minutes,
    insert_tiers,
    instance_row,
    key_row,
    rollup_row,
)

HOUR = QueryFilter.last(timedelta(hours=1), NOW)
INJECTIONS = ("x' OR '1'='1", "'; DROP TABLE metric_rollups_1m; --", 'a" OR 1=1 --', "%", "_")
SQRT2 = math.sqrt(2)


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def within_one_bucket(estimate: float, truth: float) -> bool:
    return truth / SQRT2 <= estimate <= truth * SQRT2


def load_traffic(store: sa.Engine) -> None:
    insert_tiers(
        store,
        [
            rollup_row(
                at(10),
                [100] * 8 + [1000] * 2,
                errors={"rate_limited": 1},
                fallbacks=1,
                input_tokens=500,
                output_tokens=200,
                cost_usd=0.5,
            ),
            rollup_row(
                at(10),
                [200] * 10,
                provider="openai",
                model="gpt-y",
                key_label="Main",
                errors={"server_error": 2},
                input_tokens=100,
                output_tokens=50,
                cost_usd=0.1,
            ),
            rollup_row(at(10), [50], source="probe"),
            rollup_row(at(8), [400] * 2),
            rollup_row(at(5), [300] * 5),
            # previous hour (KPI deltas) and far outside the ranges
            rollup_row(at(90), [100] * 4, cost_usd=0.2),
            rollup_row(at(600), [100] * 7),
        ],
    )


# --- filters ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": datetime(2026, 1, 1), "end": NOW}, "naive"),
        ({"start": NOW, "end": NOW}, "must be after"),
        ({"start": NOW, "end": NOW - timedelta(1)}, "must be after"),
        ({"start": at(60), "end": NOW, "provider": "gemini"}, "provider='gemini' is not one of"),
        ({"start": at(60), "end": NOW, "source": "batch"}, "source='batch'"),
        ({"start": at(60), "end": NOW, "model": 3}, "model must be a string"),
        ({"start": at(60), "end": NOW, "key_label": "k" * 200}, "longer than"),
        ({"start": "yesterday", "end": NOW}, "start must be a datetime"),
    ],
)
def test_filter_rejects_bad_values_with_a_clear_error(kwargs: dict, message: str) -> None:
    with pytest.raises(QueryFilterError, match=message):
        QueryFilter(**kwargs)


@pytest.mark.parametrize(
    ("duration", "step", "tier"),
    [
        (timedelta(minutes=15), 60, 60),
        (timedelta(hours=1), 60, 60),
        (timedelta(hours=3), 60, 60),
        (timedelta(hours=6), 600, 600),
        (timedelta(hours=24), 600, 600),
        (timedelta(days=2), 600, 600),
        (timedelta(days=7), 3600, 3600),
        (timedelta(days=30), 21600, 3600),
    ],
)
def test_step_fits_the_range(duration: timedelta, step: int, tier: int) -> None:
    flt = QueryFilter.last(duration, NOW)
    assert (flt.step_s, flt.tier_s, flt.uses_hour_tier) == (step, tier, tier == 3600)
    assert duration.total_seconds() / flt.step_s <= 300


def test_filter_normalises_to_utc_and_gives_the_previous_period() -> None:
    from datetime import timezone

    plus2 = timezone(timedelta(hours=2))
    flt = QueryFilter(datetime(2026, 3, 10, 13, 0, tzinfo=plus2), datetime(2026, 3, 10, 14, 0, tzinfo=plus2), "openai")
    assert flt.start == datetime(2026, 3, 10, 11, 0, tzinfo=UTC)
    previous = flt.previous()
    assert (previous.start, previous.end, previous.provider) == (at(120), at(60), "openai")


# --- traffic series ---------------------------------------------------------------------------------------------


def test_traffic_series_exact_points(store: sa.Engine) -> None:
    load_traffic(store)
    frame = traffic_series(store, HOUR)
    assert tuple(frame.columns) == TRAFFIC_COLUMNS
    assert len(frame) == 60
    assert frame["bucket"].iloc[0] == pd.Timestamp(at(60)) and frame["bucket"].iloc[-1] == pd.Timestamp(at(1))
    assert frame["bucket"].diff().dropna().eq(pd.Timedelta(minutes=1)).all()

    point = frame.set_index("bucket").loc[pd.Timestamp(at(10))]
    assert point["calls"] == 21 and point["successes"] == 18 and point["errors"] == 3
    assert point["success_rate"] == pytest.approx(18 / 21)
    assert point["err_rate_limited"] == 1 and point["err_server_error"] == 2 and point["err_timeout"] == 0
    assert (point["live_calls"], point["probe_calls"]) == (20, 1)
    assert (point["input_tokens"], point["output_tokens"]) == (600, 250)
    assert point["cost_usd"] == pytest.approx(0.6)
    assert point["fallbacks"] == 1
    assert point["avg_latency_ms"] == pytest.approx((50 + 800 + 2000 + 2000) / 21)
    assert point["max_latency_ms"] == 1000
    truth = sorted([50] + [100] * 8 + [200] * 10 + [1000] * 2)  # p50 = 200, p95 = p99 = 1000
    assert within_one_bucket(point["p50_ms"], truth[10])
    assert within_one_bucket(point["p95_ms"], 1000) and within_one_bucket(point["p99_ms"], 1000)

    assert frame["calls"].sum() == 28
    empty = frame[frame["calls"] == 0]
    assert len(empty) == 57
    assert empty["success_rate"].isna().all() and empty["p95_ms"].isna().all()
    assert (empty[["errors", "cost_usd", "input_tokens", "live_calls"]] == 0).all().all()


def test_traffic_series_rebuckets_minutes_into_wider_steps(store: sa.Engine) -> None:
    load_traffic(store)
    frame = traffic_series(store, QueryFilter.last(timedelta(hours=3), NOW)).set_index("bucket")
    assert len(frame) == 180  # 3 h of the minute tier, one point per minute
    assert frame["calls"].sum() == 32
    frame = traffic_series(store, QueryFilter.last(timedelta(hours=24), NOW)).set_index("bucket")
    assert len(frame) == 144  # 24 h read from the 10-minute tier, one point per 10 minutes
    assert frame.loc[pd.Timestamp(at(10)), "calls"] == 28  # 11:50, 11:52 and 11:55 share the step
    assert frame.loc[pd.Timestamp(at(90)), "calls"] == 4
    assert frame.loc[pd.Timestamp(at(600)), "calls"] == 7
    assert frame["calls"].sum() == 39


def test_traffic_series_counts_calls_per_priority_class(store: sa.Engine) -> None:
    insert_tiers(store, [rollup_row(at(10), [100] * 6, background=2), rollup_row(at(8), [100] * 3, background=3)])
    frame = traffic_series(store, HOUR).set_index("bucket")
    assert frame.loc[pd.Timestamp(at(10)), ["calls_user_facing", "calls_admin", "calls_background"]].tolist() == [
        4,
        0,
        2,
    ]
    assert frame[["calls_user_facing", "calls_admin", "calls_background"]].sum().tolist() == [4, 0, 5]


def test_day_ranges_read_the_ten_minute_tier(store: sa.Engine) -> None:
    insert_minutes(store, [rollup_row(at(60), [100] * 50)])  # minute tier only: not read for a 24 h range
    insert(store, metric_rollups_10m, [rollup_row(at(120), [100] * 3)])
    frame = traffic_series(store, QueryFilter.last(timedelta(hours=24), NOW))
    assert frame["calls"].sum() == 3
    assert frame.set_index("bucket").loc[pd.Timestamp(at(120)), "calls"] == 3


def test_long_ranges_read_the_hour_tier(store: sa.Engine) -> None:
    insert_minutes(store, [rollup_row(at(60 * 30), [100] * 50)])  # minute tier: not read for a 7-day range
    insert_hours(
        store,
        [rollup_row(NOW - timedelta(hours=30), [100] * 3), rollup_row(NOW - timedelta(days=3), [500] * 2)],
    )
    frame = traffic_series(store, QueryFilter.last(timedelta(days=7), NOW))
    assert len(frame) == 168
    assert frame["calls"].sum() == 5
    assert frame.set_index("bucket").loc[pd.Timestamp(NOW - timedelta(hours=30)), "calls"] == 3


@pytest.mark.parametrize(
    ("filters", "calls"),
    [
        ({"provider": "openai"}, 10),
        ({"provider": "anthropic"}, 18),
        ({"model": "gpt-y"}, 10),
        ({"key_label": "Primary"}, 18),
        ({"source": "probe"}, 1),
        ({"source": "live", "provider": "anthropic", "key_label": "Primary"}, 17),
        ({"key_label": "Nope"}, 0),
    ],
)
def test_traffic_series_filters(store: sa.Engine, filters: dict, calls: int) -> None:
    load_traffic(store)
    frame = traffic_series(store, QueryFilter.last(timedelta(hours=1), NOW, **filters))
    assert frame["calls"].sum() == calls


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_as_filter_values_are_harmless(store: sa.Engine, value: str) -> None:
    load_traffic(store)
    for field in ("model", "key_label"):
        flt = QueryFilter.last(timedelta(hours=1), NOW, **{field: value})
        assert traffic_series(store, flt)["calls"].sum() == 0
        assert kpi_summary(store, flt).loc["requests", "current"] == 0
        assert recent_attempts(store, flt).empty
        assert key_health_series(store, flt).empty
    with store.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(metric_rollups_1m)).scalar_one() == 7


# --- KPIs -------------------------------------------------------------------------------------------------------


def test_kpi_summary_with_previous_period(store: sa.Engine) -> None:
    load_traffic(store)
    kpis = kpi_summary(store, HOUR)
    assert tuple(kpis.index) == KPI_NAMES
    assert tuple(kpis.columns) == ("current", "previous", "delta", "delta_pct")
    assert kpis.loc["requests"].tolist() == [28, 4, 24, 600]
    assert kpis.loc["success_rate", "current"] == pytest.approx(25 / 28)
    assert kpis.loc["success_rate", "previous"] == 1.0
    assert kpis.loc["cost_usd", "current"] == pytest.approx(0.6)
    assert kpis.loc["cost_usd", "delta"] == pytest.approx(0.4)
    assert kpis.loc["tokens", "current"] == 850 and kpis.loc["tokens", "previous"] == 0
    assert math.isnan(kpis.loc["tokens", "delta_pct"])
    assert kpis.loc["fallbacks"].tolist()[:3] == [1, 0, 1]
    assert kpis.loc["errors", "current"] == 3
    truth = sorted([50] + [100] * 8 + [200] * 10 + [1000] * 2 + [400] * 2 + [300] * 5)
    assert within_one_bucket(kpis.loc["p95_ms", "current"], truth[math.ceil(0.95 * len(truth)) - 1])
    assert within_one_bucket(kpis.loc["p95_ms", "previous"], 100)


def test_cancelled_calls_are_counted_apart_and_left_out_of_the_success_rate(store: sa.Engine) -> None:
    # 10 calls in one minute: 2 errors, 3 cancelled by their callers, 5 successes
    insert_tiers(store, [rollup_row(at(10), [100] * 10, errors={"server_error": 2, "cancelled": 3})])
    kpis = kpi_summary(store, HOUR)
    assert kpis.loc["requests", "current"] == 10
    assert kpis.loc["cancelled", "current"] == 3 and kpis.loc["errors", "current"] == 2
    assert kpis.loc["success_rate", "current"] == pytest.approx(5 / 7)
    traffic = traffic_series(store, HOUR)
    minute = traffic[traffic["calls"] > 0].iloc[0]
    assert (minute["calls"], minute["cancelled"], minute["errors"]) == (10, 3, 2)
    assert minute["success_rate"] == pytest.approx(5 / 7)


def test_kpi_summary_filtered(store: sa.Engine) -> None:
    load_traffic(store)
    kpis = kpi_summary(store, QueryFilter.last(timedelta(hours=1), NOW, provider="openai"))
    assert kpis.loc["requests"].tolist()[:3] == [10, 0, 10]
    assert kpis.loc["success_rate", "current"] == pytest.approx(0.8)
    assert math.isnan(kpis.loc["success_rate", "previous"])


# --- snapshots --------------------------------------------------------------------------------------------------


def load_snapshots(store: sa.Engine) -> None:
    seconds = lambda n: NOW - timedelta(seconds=n)  # noqa: E731
    insert_instances(
        store,
        [
            instance_row(seconds(50), "a", queue_depth=9, requests_used=5),
            instance_row(seconds(3), "a", queue_depth=3, requests_used=12, requests_remaining=38, oldest_wait_ms=40.0),
            instance_row(seconds(3), "a", "openai", queue_depth=1, requests_used=2, requests_remaining=48),
            instance_row(seconds(10), "b", queue_depth=4, requests_used=8, requests_remaining=42, oldest_wait_ms=90.0),
            instance_row(seconds(60), "c", queue_depth=100, requests_used=50, requests_remaining=0),  # stale
        ],
    )
    insert_keys(
        store,
        [
            key_row(seconds(30), "a", "Primary", 20, "disabled", disabled_reason="old"),  # superseded below
            key_row(seconds(3), "a", "Primary", 90, requests=10),
            key_row(
                seconds(10),
                "b",
                "Primary",
                60,
                "cooldown",
                cooldown_until=NOW + timedelta(seconds=30),
                consecutive_failures=3,
                requests=5,
            ),
            key_row(seconds(60), "c", "Primary", 10, "disabled", disabled_reason="auth"),  # stale
            key_row(seconds(60), "c", "Backup", 0, "disabled"),  # only seen by the stale instance
            key_row(seconds(3), "a", "Main", 100, provider="openai"),
        ],
    )


def test_latest_key_health_takes_the_worst_live_view(store: sa.Engine) -> None:
    load_snapshots(store)
    view = latest_key_health(store, NOW, heartbeat_interval_s=5)
    keys = view.keys.set_index(["provider", "key_label"])
    assert list(keys.index) == [("anthropic", "Primary"), ("openai", "Main")]
    primary = keys.loc[("anthropic", "Primary")]
    assert primary["score"] == 60 and primary["status"] == "cooldown"
    assert primary["cooldown_until"] == pd.Timestamp(NOW + timedelta(seconds=30))
    assert primary["consecutive_failures"] == 3 and primary["requests"] == 15 and primary["instances"] == 2
    assert primary["disabled_reason"] is None
    assert view.stale_instances["instance_id"].tolist() == ["c"]
    assert latest_key_health(store, NOW, provider="openai").keys["key_label"].tolist() == ["Main"]
    # with a longer heartbeat interval, c is live again and its disabled view wins
    relaxed = latest_key_health(store, NOW, heartbeat_interval_s=30).keys.set_index(["provider", "key_label"])
    assert relaxed.loc[("anthropic", "Primary"), "status"] == "disabled"
    assert relaxed.loc[("anthropic", "Backup"), "score"] == 0
    assert latest_key_health(store, NOW, heartbeat_interval_s=30).stale_instances.empty


def test_current_queue_sums_live_instances_only(store: sa.Engine) -> None:
    load_snapshots(store)
    instances = latest_instances(store, NOW, heartbeat_interval_s=5)
    assert instances[["instance_id", "provider", "stale"]].values.tolist() == [
        ["a", "anthropic", False],
        ["a", "openai", False],
        ["b", "anthropic", False],
        ["c", "anthropic", True],
    ]
    queues = current_queues(instances).set_index("provider")
    assert queues.loc["anthropic", ["queue_depth", "requests_used", "requests_remaining", "instances"]].tolist() == [
        7,
        20,
        80,
        2,
    ]
    assert queues.loc["anthropic", "oldest_wait_ms"] == 90.0
    assert queues.loc["openai", "queue_depth"] == 1


def test_queue_depth_and_key_health_series(store: sa.Engine) -> None:
    load_snapshots(store)
    queue = queue_depth_series(store, HOUR)
    assert tuple(queue.columns) == QUEUE_COLUMNS
    assert len(queue) == 120  # 60 steps × 2 providers
    last = queue[queue["bucket"] == pd.Timestamp(at(1))].set_index("provider")
    # each instance's peak in the minute, summed: a max(9, 3), b 4, c 100 (it reported at 11:59:00)
    assert last.loc["anthropic", ["queue_depth", "instances"]].tolist() == [113, 3]
    assert last.loc["openai", "queue_depth"] == 1
    before = queue[queue["bucket"] == pd.Timestamp(at(2))].set_index("provider")
    assert before.loc["anthropic", "queue_depth"] == 0 and before.loc["anthropic", "instances"] == 0
    assert len(queue_depth_series(store, QueryFilter.last(timedelta(hours=1), NOW, provider="openai"))) == 60

    health = key_health_series(store, HOUR)
    assert tuple(health.columns) == KEY_HEALTH_COLUMNS
    assert len(health) == 3 * 60
    last = health[health["bucket"] == pd.Timestamp(at(1))].set_index(["provider", "key_label"])
    assert last.loc[("anthropic", "Primary"), "score"] == 10
    assert last.loc[("anthropic", "Primary"), "status"] == "disabled"
    assert last.loc[("openai", "Main"), "status"] == "healthy"
    gaps = health[health["bucket"] == pd.Timestamp(at(30))]
    assert gaps["score"].isna().all() and gaps["status"].isna().all() and (gaps["instances"] == 0).all()


# --- attempts ---------------------------------------------------------------------------------------------------


def load_attempts(store: sa.Engine) -> list[dict]:
    rows = [
        attempt_row(at(1)),
        attempt_row(at(2), provider="openai", model="gpt-y", key_label="Main"),
        attempt_row(at(3), outcome="error", error_class="rate_limited", http_status=429),
        attempt_row(at(3), source="probe"),  # same ts as the previous one: the id breaks the tie
        attempt_row(at(4), outcome="error", error_class="timeout"),
        attempt_row(at(5), key_label="Backup"),
        attempt_row(at(6)),
        attempt_row(at(90)),  # outside the hour
    ]
    insert_attempts(store, rows)
    return rows


def test_recent_attempts_newest_first_with_filters(store: sa.Engine) -> None:
    rows = load_attempts(store)
    frame = recent_attempts(store, HOUR)
    assert tuple(frame.columns) == ATTEMPT_COLUMNS
    assert len(frame) == 7
    assert frame["ts"].is_monotonic_decreasing
    assert frame["id"].iloc[0] == rows[0]["id"]
    assert len(recent_attempts(store, QueryFilter.last(timedelta(hours=1), NOW, provider="openai"))) == 1
    assert len(recent_attempts(store, QueryFilter.last(timedelta(hours=1), NOW, source="probe"))) == 1
    assert len(recent_attempts(store, QueryFilter.last(timedelta(hours=1), NOW, key_label="Backup"))) == 1
    assert len(recent_attempts(store, HOUR, outcome="error")) == 2
    errors = recent_attempts(store, HOUR, error_class="rate_limited")
    assert errors["http_status"].tolist() == [429]
    assert len(recent_attempts(store, QueryFilter.last(timedelta(hours=2), NOW))) == 8


def test_recent_attempts_pagination(store: sa.Engine) -> None:
    load_attempts(store)
    everything = recent_attempts(store, HOUR, limit=100)["id"].tolist()
    by_offset = [i for offset in (0, 3, 6) for i in recent_attempts(store, HOUR, limit=3, offset=offset)["id"]]
    assert by_offset == everything
    by_keyset: list = []
    before = None
    while True:
        page = recent_attempts(store, HOUR, limit=3, before=before)
        if page.empty:
            break
        by_keyset += page["id"].tolist()
        last = page.iloc[-1]
        before = (last["ts"].to_pydatetime(), last["id"])
    assert by_keyset == everything and len(set(everything)) == 7


def test_recent_attempts_carry_user_ids_only_when_asked(store: sa.Engine) -> None:
    insert_attempts(store, [attempt_row(at(1), user_id="user-7"), attempt_row(at(2), user_id=None)])
    assert "user_id" not in recent_attempts(store, HOUR).columns
    assert recent_attempts(store, HOUR, include_user_id=True)["user_id"].tolist() == ["user-7", None]
    assert "user_id" in recent_attempts(store, QueryFilter.last(timedelta(minutes=1), NOW - timedelta(hours=5)),
                                        include_user_id=True).columns  # fmt: skip


def test_recent_attempts_widen_past_sparse_recent_windows(store: sa.Engine) -> None:
    """Rows 30 s, 10 min, 3 h, 3 d and 6 d old: pages that the first windows cannot fill come out the same as a
    scan of the whole range would give them, in order, across window edges."""
    ages = [timedelta(seconds=30), timedelta(minutes=10), timedelta(hours=3), timedelta(days=3), timedelta(days=6)]
    rows = [attempt_row(NOW - age, request_id=f"r{i}") for i, age in enumerate(ages)]
    insert_attempts(store, rows)
    week = QueryFilter.last(timedelta(days=7), NOW)
    assert recent_attempts(store, week, limit=1)["request_id"].tolist() == ["r0"]
    assert recent_attempts(store, week, limit=3)["request_id"].tolist() == ["r0", "r1", "r2"]
    assert recent_attempts(store, week, limit=10)["request_id"].tolist() == ["r0", "r1", "r2", "r3", "r4"]
    assert recent_attempts(store, week, limit=2, offset=3)["request_id"].tolist() == ["r3", "r4"]
    last = rows[1]
    after = recent_attempts(store, week, limit=2, before=(last["ts"], last["id"]))
    assert after["request_id"].tolist() == ["r2", "r3"]
    assert recent_attempts(store, QueryFilter.last(timedelta(days=4), NOW), limit=9)["request_id"].tolist() == [
        "r0",
        "r1",
        "r2",
        "r3",
    ]


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"limit": 5000}, {"offset": -1}, {"outcome": "meh"}, {"error_class": "x' OR 1=1"}],
)
def test_recent_attempts_rejects_bad_arguments(store: sa.Engine, kwargs: dict) -> None:
    with pytest.raises(QueryFilterError):
        recent_attempts(store, HOUR, **kwargs)


# --- empty store ------------------------------------------------------------------------------------------------


def test_empty_store_gives_empty_frames_with_the_right_columns(store: sa.Engine) -> None:
    traffic = traffic_series(store, HOUR)
    assert tuple(traffic.columns) == TRAFFIC_COLUMNS and len(traffic) == 60 and traffic["calls"].sum() == 0
    assert traffic["p95_ms"].isna().all()
    queue = queue_depth_series(store, HOUR)
    assert tuple(queue.columns) == QUEUE_COLUMNS and queue["queue_depth"].sum() == 0
    health = key_health_series(store, HOUR)
    assert tuple(health.columns) == KEY_HEALTH_COLUMNS and health.empty
    kpis = kpi_summary(store, HOUR)
    assert kpis.loc["requests"].tolist()[:3] == [0, 0, 0]
    view = latest_key_health(store, NOW)
    assert view.keys.empty and view.stale_instances.empty
    assert "score" in view.keys.columns and "instance_id" in view.stale_instances.columns
    instances = latest_instances(store, NOW)
    assert instances.empty and current_queues(instances).empty
    attempts = recent_attempts(store, HOUR)
    assert tuple(attempts.columns) == ATTEMPT_COLUMNS and attempts.empty


def test_kpis_read_whole_hours_from_the_hour_tier_and_the_edges_from_the_minute_tier(store: sa.Engine) -> None:
    insert_minutes(store, [rollup_row(at(80), [100] * 2), rollup_row(at(40), [100] * 1000)])  # 10:40, 11:20
    insert_hours(store, [rollup_row(at(60), [100] * 3)])  # 11:00-12:00 (the writer would have 11:20's too)
    flt = QueryFilter(at(90), NOW)  # 10:30 → 12:00: minutes 10:30-11:00, then the 11:00 hour
    assert kpi_summary(store, flt).loc["requests", "current"] == 5
    assert kpi_summary(store, QueryFilter(at(90), at(50))).loc["requests", "current"] == 2  # no whole hour
