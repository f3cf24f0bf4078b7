"""The Overview's figure built from query frames: panels on one time axis, the incident lane drawn in one go,
axes that start at zero, titles that fit — and a build time that does not grow with the number of alerts."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import time
from collections.abc import Iterator
from datetime import timedelta

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import sqlalchemy as sa

from pulsegate.core.errors import ErrorClass
from pulsegate.core.queries import QueryFilter, queue_depth_series, traffic_series
from pulsegate.dashboard import filters, overview_chart
from pulsegate.dashboard.incidents import MAX_BARS, Incidents
from pulsegate.dashboard.overview_chart import LANES, PANELS
from tests.dashboard.test_incidents import breakers, episodes
from tests.queries.data import NOW, insert_tiers, rollup_row

PANEL_AXES = [f"x{i}" for i in range(LANES + 1, LANES + len(PANELS) + 1)]


def titles(fig) -> list[str]:
    return [a.text for a in fig.layout.annotations if a.yref == "paper"]


def plain(html: str) -> list[str]:
    """A title's lines as text (tags dropped)."""
    return [re.sub(r"<[^>]+>", "", line) for line in html.split("<br>")]


def empty_traffic(range_name: str = "15m") -> pd.DataFrame:
    flt = filters.Filters(range=range_name).query_filter(NOW)
    grid = pd.date_range(flt.start, flt.end, freq="1min", inclusive="left", tz="UTC")
    return pd.DataFrame({"bucket": grid}).assign(
        **{
            c: 0.0
            for c in (
                "input_tokens",
                "output_tokens",
                "cost_usd",
                "live_calls",
                "probe_calls",
                "fallbacks",
                "cancelled",
            )
        },
        **{c: float("nan") for c in ("success_rate", "p50_ms", "p95_ms", "p99_ms")},
    )


def assert_valid(fig: go.Figure) -> None:
    """The figure (built without Plotly's validation) passes it, and validation changes nothing that is sent."""
    sent = json.loads(pio.to_json(fig, validate=False))
    assert json.loads(pio.to_json(go.Figure(fig.to_dict()), validate=False)) == sent


NO_QUEUES = pd.DataFrame(columns=["bucket", "provider", "queue_depth", "oldest_wait_ms", "instances"])


def test_overview_figure_has_a_lane_over_each_column_and_every_panel_on_one_time_axis(store: sa.Engine) -> None:
    insert_tiers(
        store,
        [rollup_row(NOW - timedelta(minutes=m), [100.0, 300.0], errors={"timeout": 1}) for m in range(1, 4)],
    )
    flt = QueryFilter(NOW - timedelta(hours=1), NOW)
    traffic, queues = traffic_series(store, flt), queue_depth_series(store, flt)
    fig = overview_chart.overview(traffic, queues, Incidents.build(None, None, flt.start, flt.end))
    names = titles(fig)
    assert [t.split("</b>")[0].removeprefix("<b>") for t in names] == ["Incidents", *PANELS]
    assert names[0].endswith("none in this range")
    assert "■ p95" in names[2] and "■ timeout" in names[6]
    by_axis: dict[str, list[str]] = {}
    for trace in fig.data:
        by_axis.setdefault(trace.xaxis, []).append(trace.name)
    assert by_axis["x3"] == ["success rate"]
    assert by_axis["x4"] == ["p50", "p95", "p99"]
    assert by_axis["x8"] == ["timeout"]  # only classes seen
    assert by_axis["x9"] == ["live", "probe", "user-facing", "admin", "background", "fallbacks", "cancelled"]
    user_facing = next(trace for trace in fig.data if trace.name == "user-facing")
    assert list(user_facing.y[-3:]) == [2, 2, 2]  # every call user-facing
    success = fig.data[0]
    assert list(success.y[-3:]) == [0.5, 0.5, 0.5]  # 1 of 2 calls failed in each of the last three minutes
    layout = fig.layout.to_plotly_json()
    axes = [name for name in layout if name.startswith("xaxis") and name != "xaxis"]
    assert len(axes) == LANES + len(PANELS) - 1 and all(layout[name]["matches"] == "x" for name in axes)
    assert [pd.Timestamp(v) for v in layout["xaxis"]["range"]] == [flt.start, flt.end]  # exactly the range
    assert not fig.layout.shapes  # no breaker opening: nothing shaded
    assert_valid(fig)


def test_incidents_are_one_trace_per_lane_and_one_list_of_shapes() -> None:
    found = Incidents.build(
        episodes(
            ("success_rate_low", "anthropic", 50, 51, 45),
            ("success_rate_low", "anthropic", 47, 48, 42),
            ("fallback_rate_high", None, 30, 31, None),
        ),
        breakers(("openai", 40, 38), ("openai", 20, 10)),
        NOW - timedelta(hours=1),
        NOW,
    )
    fig = overview_chart.overview(empty_traffic("1h"), NO_QUEUES, found)
    lanes = [trace for trace in fig.data if trace.type == "bar"]
    assert [(t.xaxis, t.yaxis, len(t.base)) for t in lanes] == [("x", "y", 4), ("x2", "y2", 4)]
    assert list(lanes[0].y) == [
        "fallback_rate_high",
        "openai breaker open",
        "openai breaker open",
        "success_rate_low · anthropic",
    ]
    assert list(lanes[0].x) == [30 * 60_000, 2 * 60_000, 10 * 60_000, 8 * 60_000]  # durations in ms
    assert lanes[0].customdata[3].startswith("<b>success_rate_low · anthropic</b><br>2 alert episodes")
    assert list(fig.layout.yaxis.categoryarray) == list(reversed(found.lanes))  # first lane on top
    assert len(fig.layout.shapes) == 2 * len(PANELS)  # each breaker opening shaded on every panel
    assert sorted({s.xref for s in fig.layout.shapes}) == sorted(PANEL_AXES)
    labels = [a.text for a in fig.layout.annotations if a.yref in ("y", "y2")]
    assert labels == list(found.lanes)  # each lane named once (in the left lane), never per episode
    assert titles(fig)[0] == "<b>Incidents</b>   5 in range"
    assert_valid(fig)


def test_the_marks_are_capped_with_a_visible_more() -> None:
    rows = [(f"rule_{lane}", None, i * 2.4 + 0.5, i * 2.4 + 0.5, i * 2.4) for lane in range(8) for i in range(25)]
    found = Incidents.build(episodes(*rows), None, NOW - timedelta(hours=1), NOW)
    fig = overview_chart.overview(empty_traffic("1h"), NO_QUEUES, found)
    assert [len(t.base) for t in fig.data if t.type == "bar"] == [MAX_BARS, MAX_BARS]
    assert titles(fig)[0] == "<b>Incidents</b>   150 shown · +50 more (older)"


@contextlib.contextmanager
def at_most(seconds: int) -> Iterator[None]:
    """Interrupt the block after ``seconds`` of wall time (a quadratic build would otherwise run for hours)."""

    def expired(signum: int, frame: object) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def thousand_episodes(start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """1,000 episodes of 6 rules on two providers, spread over the range, some overlapping, 20 still firing."""
    rng = np.random.default_rng(16)
    span_min = (end - start) / pd.Timedelta(minutes=1)
    rows = []
    for i in range(1000):
        fired = float(rng.uniform(1, span_min))
        resolved = None if i % 50 == 0 else max(0.0, fired - float(rng.exponential(5)))
        rule = ("success_rate_low", "fallback_rate_high", "key_probe_failing", "latency_high", "queue_wait")[i % 5]
        rows.append((rule, ("anthropic", "openai")[i % 2], fired, fired + 0.5, resolved, "critical"))
    return episodes(*rows)


def test_a_thousand_episodes_build_the_figure_in_under_a_second() -> None:
    flt = filters.Filters(range="24h").query_filter(NOW)
    traffic = empty_traffic("24h").assign(success_rate=0.97, p50_ms=100.0, p95_ms=300.0, p99_ms=900.0)
    frame = thousand_episodes(pd.Timestamp(flt.start), pd.Timestamp(flt.end))
    spans = breakers(*[("anthropic", m + 3, m) for m in range(0, 1440, 30)])
    overview_chart.overview(traffic, NO_QUEUES, Incidents.build(frame[:5], spans, flt.start, flt.end))  # warm up
    with at_most(30):
        began = time.process_time()  # CPU time: other work on a shared machine does not count
        found = Incidents.build(frame, spans, flt.start, flt.end)
        fig = overview_chart.overview(traffic, NO_QUEUES, found)
        took = time.process_time() - began
    assert found.total == 1000 + 48
    assert sum(len(t.base) for t in fig.data if t.type == "bar") == 2 * len(found.bars)
    assert took < 1.0, f"{took:.2f} s of CPU for 1,000 episodes"


def test_count_axes_start_at_zero_and_empty_panels_say_why() -> None:
    queues = pd.DataFrame(
        {
            "bucket": pd.date_range(NOW - timedelta(minutes=3), periods=3, freq="1min", tz="UTC"),
            "provider": "anthropic",
            "queue_depth": [2.0, 2.0, 2.0],
            "oldest_wait_ms": [9970.0, 9990.0, 9980.0],  # nearly constant: once drawn as 9.97–9.99 s
            "instances": 1,
        }
    )
    fig = overview_chart.overview(empty_traffic(), queues)
    layout = fig.layout.to_plotly_json()
    axes = {name: layout[f"yaxis{LANES + 1 + i}"] for i, name in enumerate(PANELS)}
    assert axes["Oldest queued wait (s)"]["rangemode"] == "tozero"
    assert axes["Queue depth per provider"]["rangemode"] == "tozero"
    for name in ("Success rate", "Latency (ms)", "Tokens", "Cost (USD)", "Errors by class"):
        assert axes[name]["range"] == [0, 1] and axes[name]["autorange"] is False, name  # never −1…1
    notes = {a.xref: a.text for a in fig.layout.annotations if a.xref and a.xref.endswith(" domain")}
    assert notes == {
        "x3 domain": "no calls in this range",
        "x4 domain": "no calls in this range",
        "x8 domain": "no errors in this range",
    }
    assert_valid(fig)


def test_an_empty_queue_of_live_instances_is_a_zero_wait_not_a_missing_instance() -> None:
    """Live instances report an empty queue with no oldest wait (null in the store): the wait panel draws 0 s for
    those steps and says nothing about missing instances; a step with no instance stays a gap."""
    queues = pd.DataFrame(
        {
            "bucket": pd.date_range(NOW - timedelta(minutes=3), periods=3, freq="1min", tz="UTC"),
            "provider": "openai",
            "queue_depth": [0.0, 0.0, 0.0],
            "oldest_wait_ms": [float("nan"), 1500.0, float("nan")],
            "instances": [2, 2, 0],
        }
    )
    fig = overview_chart.overview(empty_traffic(), queues)
    wait_axis = f"x{LANES + PANELS.index('Oldest queued wait (s)') + 1}"
    (trace,) = [t for t in fig.data if t.xaxis == wait_axis]
    assert list(trace.y[:2]) == [0.0, 1.5] and np.isnan(trace.y[2])
    notes = {a.xref: a.text for a in fig.layout.annotations if a.xref and a.xref.endswith(" domain")}
    assert f"{wait_axis} domain" not in notes
    assert_valid(fig)


def test_panel_titles_fit_their_panel() -> None:
    traffic = empty_traffic().assign(
        **{f"err_{c.value}": 5.0 if c.value == "timeout" else 1.0 for c in ErrorClass},
        **{f"calls_{p}": 1.0 for p in ("user_facing", "admin", "background")},
    )
    fig = overview_chart.overview(traffic, NO_QUEUES)
    for title in titles(fig):
        lines = plain(title)
        assert len(lines) <= 1 + overview_chart.MAX_KEY_LINES, lines
        assert all(len(line) <= overview_chart.TITLE_LINE_CHARS for line in lines), lines
    errors = plain(titles(fig)[PANELS.index("Errors by class") + 1])
    assert errors[1].startswith("■ timeout")  # the largest class first
    shown = sum(line.count("■") for line in errors)
    assert errors[-1].endswith(f"+{len(ErrorClass) - 1 - shown} more")  # cancelled is not an error class here
    calls = plain(titles(fig)[PANELS.index("Calls: source, priority, fallbacks, cancelled") + 1])
    assert [key for line in calls[1:] for key in line.split("  ")] == [
        "■ live",
        "■ probe",
        "■ user-facing",
        "■ admin",
        "■ background",
        "■ fallbacks",
        "■ cancelled",
    ]
