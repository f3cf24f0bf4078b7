"""The incident reads behind the Overview and Alerts pages (``pulsegate.core.queries.alerts``) on both databases, the
KPI sparklines and the filters' query string."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa

from pulsegate.core.queries import QueryFilter
from pulsegate.core.queries.alerts import (
    alert_deliveries_frame,
    alert_episode_count,
    alert_episodes_frame,
    breaker_open_spans,
)
from pulsegate.core.store.tables import alert_deliveries, alert_episodes
from pulsegate.dashboard import charts, filters, ui
from tests.queries.data import NOW, insert, insert_instances, instance_row


def episode(rule: str, state: str, pending: timedelta, **values) -> dict:
    return {
        "rule_id": rule,
        "fingerprint": rule + state,
        "labels": {"provider": "anthropic"},
        "severity": "critical",
        "state": state,
        "pending_since": NOW - pending,
        "fired_at": None,
        "resolved_at": None,
        **values,
    }


def test_breaker_spans_merge_consecutive_open_minutes(store: sa.Engine) -> None:
    beats = []
    for minute in range(10):
        state = "open" if minute in (2, 3, 4, 7) else "closed"
        ts = NOW - timedelta(minutes=10 - minute)
        beats.append(instance_row(ts, "c1", breaker_state=state))
        beats.append(instance_row(ts + timedelta(seconds=5), "c2", breaker_state="open" if minute == 3 else "closed"))
    insert_instances(store, beats)
    flt = QueryFilter(NOW - timedelta(hours=1), NOW)
    spans = breaker_open_spans(store, flt)
    assert [(r.provider, r.start, r.end, r.instances) for r in spans.itertuples(index=False)] == [
        ("anthropic", pd.Timestamp(NOW - timedelta(minutes=8)), pd.Timestamp(NOW - timedelta(minutes=5)), 2),
        ("anthropic", pd.Timestamp(NOW - timedelta(minutes=3)), pd.Timestamp(NOW - timedelta(minutes=2)), 1),
    ]
    assert breaker_open_spans(store, QueryFilter(flt.start, flt.end, provider="openai")).empty


def test_episodes_open_or_touching_the_range_newest_first(store: sa.Engine) -> None:
    insert(
        store,
        alert_episodes,
        [
            episode("old_resolved", "resolved", timedelta(days=3), resolved_at=NOW - timedelta(days=2)),
            episode("old_but_firing", "firing", timedelta(days=3), fired_at=NOW - timedelta(days=3)),
            episode("recent_resolved", "resolved", timedelta(minutes=50), resolved_at=NOW - timedelta(minutes=20)),
            episode("pending", "pending", timedelta(minutes=1)),
            episode("future", "pending", -timedelta(minutes=5)),
        ],
    )
    frame = alert_episodes_frame(store, NOW - timedelta(hours=1), NOW)
    assert list(frame["rule_id"]) == ["pending", "recent_resolved", "old_but_firing"]
    assert frame.loc[0, "labels"] == {"provider": "anthropic"}
    assert str(frame["pending_since"].dt.tz) == "UTC"
    firing = alert_episodes_frame(store, NOW - timedelta(hours=1), NOW, states=("firing",))
    assert list(firing["rule_id"]) == ["old_but_firing"]


def test_deliveries_in_range_newest_first(store: sa.Engine) -> None:
    rows = [
        {"ts": NOW - timedelta(minutes=m), "channel": "ops", "transition": "firing", "attempt": 1, "delivered": ok}
        | {"status_code": 200 if ok else 429, "error": None if ok else "rate_limited: retry after 2 s"}
        for m, ok in ((30, False), (29, True), (90, True))
    ]
    insert(store, alert_deliveries, rows)
    frame = alert_deliveries_frame(store, NOW - timedelta(hours=1), NOW)
    assert list(frame["status_code"]) == [200, 429]
    assert list(frame["error"]) == [None, "rate_limited: retry after 2 s"]


def test_sparkline_svg_scales_into_its_box() -> None:
    svg = charts.sparkline_svg([0.0, 5.0, float("nan"), 10.0], width=30, height=12)
    assert 'points="0.0,10.0 10.0,6.0 20.0,10.0 30.0,2.0"' in svg
    assert "no data" in charts.sparkline_svg([float("nan"), 1.0])


def test_kpi_numbers_are_shortened_without_changing_their_value() -> None:
    assert [ui.compact(v) for v in (1234, 9999, 25521, 999_499, 1_428_000, 2.5e9, -25521)] == [
        "1,234",
        "9,999",
        "25.5 k",  # was "2.55 k": ten times too small
        "999 k",
        "1.43 M",
        "2.5 B",
        "-25.5 k",
    ]


def test_filters_round_trip_through_the_query_string() -> None:
    view = filters.Filters(range="6h", provider="openai", model="gpt-4.1", key_label="Backup 1", source="probe")
    assert filters.from_params(view.to_params()) == view
    assert filters.Filters().to_params() == {}
    custom = filters.from_params({"range": "custom", "from": "2026-03-10T10:00", "to": "2026-03-10T11:30"})
    flt = custom.query_filter(NOW)
    assert (flt.start.hour, flt.end.hour, flt.end.minute) == (10, 11, 30)
    backwards = filters.from_params({"range": "custom", "from": "2026-03-10T11:00", "to": "2026-03-10T10:00"})
    assert backwards.range == filters.DEFAULT_RANGE
    assert filters.current_now({"now": "2025-06-02T12:00:00Z"}, {}).isoformat() == "2025-06-02T12:00:00+00:00"
    assert filters.quantised_end(NOW + timedelta(seconds=7)) == NOW + timedelta(seconds=10)


def test_an_episode_outlasting_a_past_range_is_in_it_and_counted(store: sa.Engine) -> None:
    insert(
        store,
        alert_episodes,
        [
            episode("spans_it", "resolved", timedelta(hours=3), fired_at=NOW - timedelta(hours=3), resolved_at=NOW),
            episode("before_it", "resolved", timedelta(hours=5), resolved_at=NOW - timedelta(hours=4)),
            episode("after_it", "firing", timedelta(minutes=30), fired_at=NOW - timedelta(minutes=29)),
        ],
    )
    start, end = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    assert list(alert_episodes_frame(store, start, end)["rule_id"]) == ["spans_it"]
    assert alert_episode_count(store, start, end) == 1
    assert alert_episode_count(store, start, NOW) == 2
