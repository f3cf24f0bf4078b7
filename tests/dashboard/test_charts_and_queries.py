"""The data behind the charts: the Overview figure built from query frames, annotations, and the incident reads
(``core.queries.alerts``) on both databases."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import sqlalchemy as sa

from core.queries import QueryFilter, queue_depth_series, traffic_series
from core.queries.alerts import alert_deliveries_frame, alert_episodes_frame, breaker_open_spans
from core.store.tables import alert_deliveries, alert_episodes
from dashboard import charts, filters
from tests.queries.data import NOW, insert, insert_instances, insert_tiers, instance_row, rollup_row


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


def test_overview_figure_has_every_panel_on_one_time_axis(store: sa.Engine) -> None:
    insert_tiers(
        store,
        [rollup_row(NOW - timedelta(minutes=m), [100.0, 300.0], errors={"timeout": 1}) for m in range(1, 4)],
    )
    flt = QueryFilter(NOW - timedelta(hours=1), NOW)
    traffic, queues = traffic_series(store, flt), queue_depth_series(store, flt)
    notes = charts.Annotations(
        marks=((NOW - timedelta(minutes=30), "▲ breaker_open", "start"), (NOW - timedelta(minutes=10), "✓ x", "end")),
        spans=((NOW - timedelta(minutes=40), NOW - timedelta(minutes=35), "anthropic breaker open"),),
    )
    fig = charts.overview(traffic, queues, notes)
    titles = [a.text for a in fig.layout.annotations if a.yref == "paper"]
    assert [t.split("</b>")[0].removeprefix("<b>") for t in titles] == list(charts.PANELS)
    assert "■ p95" in titles[1] and "■ timeout" in titles[5]
    by_axis: dict[str, list[str]] = {}
    for trace in fig.data:
        by_axis.setdefault(trace.xaxis, []).append(trace.name)
    assert by_axis["x"] == ["success rate"]
    assert by_axis["x2"] == ["p50", "p95", "p99"]
    assert by_axis["x6"] == ["timeout"]  # only classes seen
    assert by_axis["x7"] == ["live", "probe", "user-facing", "admin", "background", "fallbacks"]
    user_facing = next(trace for trace in fig.data if trace.name == "user-facing")
    assert list(user_facing.y[-3:]) == [2, 2, 2]  # every call user-facing
    success = fig.data[0]
    assert list(success.y[-3:]) == [0.5, 0.5, 0.5]  # 1 of 2 calls failed in each of the last three minutes
    axes = [name for name in fig.layout.to_plotly_json() if name.startswith("xaxis") and name != "xaxis"]
    assert len(axes) == len(charts.PANELS) - 1 and all(fig.layout[name].matches == "x" for name in axes)
    kinds = [(shape.type, shape.x0) for shape in fig.layout.shapes]
    assert kinds.count(("rect", NOW - timedelta(minutes=40))) == len(charts.PANELS)  # on every panel
    assert kinds.count(("line", NOW - timedelta(minutes=30))) == len(charts.PANELS)
    labels = [a.text for a in fig.layout.annotations if a.yref == "y domain"]
    assert labels == ["anthropic breaker open", "▲ breaker_open", "✓ x"]


def test_an_empty_store_still_gives_every_panel() -> None:
    flt = filters.Filters(range="15m").query_filter(NOW)
    grid = pd.date_range(flt.start, flt.end, freq="1min", inclusive="left", tz="UTC")
    empty = pd.DataFrame({"bucket": grid}).assign(
        **{c: 0.0 for c in ("input_tokens", "output_tokens", "cost_usd", "live_calls", "probe_calls", "fallbacks")},
        **{c: float("nan") for c in ("success_rate", "p50_ms", "p95_ms", "p99_ms")},
    )
    queues = pd.DataFrame(columns=["bucket", "provider", "queue_depth", "oldest_wait_ms", "instances"])
    fig = charts.overview(empty, queues)
    assert len({trace.xaxis for trace in fig.data}) == len(charts.PANELS)


def test_annotations_from_episodes_and_breakers() -> None:
    episodes = pd.DataFrame(
        [
            {"rule_id": "a", "pending_since": NOW - timedelta(hours=3), "fired_at": pd.NaT, "resolved_at": pd.NaT},
            {
                "rule_id": "b",
                "pending_since": NOW - timedelta(minutes=20),
                "fired_at": NOW - timedelta(minutes=15),
                "resolved_at": NOW - timedelta(minutes=5),
            },
        ]
    ).astype({"pending_since": "datetime64[ns, UTC]", "fired_at": "datetime64[ns, UTC]"})
    breakers = pd.DataFrame(
        [{"provider": "openai", "start": NOW - timedelta(minutes=9), "end": NOW - timedelta(minutes=8), "instances": 1}]
    )
    notes = charts.Annotations.build(episodes, breakers, NOW - timedelta(hours=1))
    assert notes.marks == (
        (NOW - timedelta(minutes=15), "▲ b", "start"),
        (NOW - timedelta(minutes=5), "✓ b", "end"),
    )  # "a" began before the range
    assert notes.spans == ((NOW - timedelta(minutes=9), NOW - timedelta(minutes=8), "openai breaker open"),)


def test_sparkline_svg_scales_into_its_box() -> None:
    svg = charts.sparkline_svg([0.0, 5.0, float("nan"), 10.0], width=30, height=12)
    assert 'points="0.0,10.0 10.0,6.0 20.0,10.0 30.0,2.0"' in svg
    assert "no data" in charts.sparkline_svg([float("nan"), 1.0])


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
