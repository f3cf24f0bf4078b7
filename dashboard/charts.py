"""Plotly figures from ``core`` query frames: pure functions, so their data is unit-tested without a browser.

Every time chart takes the same :class:`Annotations` — alert episodes (start and end lines) and breaker-open
spans (shaded) — so an incident lines up across charts. Empty frames still give a chart with its axes and title
(an empty store draws frames, not blanks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go

from core.errors import ErrorClass

HEIGHT = 260
COLORS = {
    "anthropic": "#d97757",
    "openai": "#10a37f",
    "ok": "#2eb886",
    "fail": "#e01e5a",
    "p50": "#4c78a8",
    "p95": "#f58518",
    "p99": "#e45756",
    "live": "#4c78a8",
    "probe": "#9d755d",
    "alert": "#e01e5a",
    "resolved": "#2eb886",
    "breaker": "rgba(224, 30, 90, 0.12)",
}
ERROR_COLORS = ("#e45756", "#f58518", "#b279a2", "#4c78a8", "#54a24b", "#9d755d", "#eeca3b", "#bab0ac", "#72b7b2")
#: Series with fewer points than this get markers too (a lone minute of traffic between empty steps stays
#: visible); denser ones are plain lines — thousands of SVG markers would slow the page down for nothing.
SPARSE_POINTS = 60


def _points(values: pd.Series) -> dict:
    if int(values.notna().sum()) < SPARSE_POINTS:
        return {"mode": "lines+markers", "marker": {"size": 4}}
    return {"mode": "lines"}


@dataclass(frozen=True, slots=True)
class Annotations:
    """Alert starts/ends (time, text, kind "start" | "end") and breaker spans (start, end, text)."""

    marks: tuple[tuple[datetime, str, str], ...] = ()
    spans: tuple[tuple[datetime, datetime, str], ...] = field(default_factory=tuple)

    @classmethod
    def build(cls, episodes: pd.DataFrame | None, breakers: pd.DataFrame | None, start: datetime) -> Annotations:
        marks: list[tuple[datetime, str, str]] = []
        if episodes is not None and not episodes.empty:
            for row in episodes.itertuples(index=False):
                begun = row.fired_at if pd.notna(row.fired_at) else row.pending_since
                if pd.notna(begun) and begun >= start:
                    marks.append((begun, f"▲ {row.rule_id}", "start"))
                if pd.notna(row.resolved_at) and row.resolved_at >= start:
                    marks.append((row.resolved_at, f"✓ {row.rule_id}", "end"))
        spans: list[tuple[datetime, datetime, str]] = []
        if breakers is not None and not breakers.empty:
            for row in breakers.itertuples(index=False):
                spans.append((row.start, row.end, f"{row.provider} breaker open"))
        return cls(tuple(marks), tuple(spans))


def _frame(title: str, y_title: str, *, percent: bool = False) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=HEIGHT,
        margin={"l": 40, "r": 10, "t": 36, "b": 30},
        legend={"orientation": "h", "y": 1.0, "x": 1.0, "xanchor": "right", "yanchor": "bottom", "font_size": 10},
        hovermode="x unified",
        yaxis_title=y_title,
        uirevision="keep",  # auto-refresh keeps the user's zoom
    )
    if percent:
        fig.update_yaxes(tickformat=".0%", rangemode="tozero")
    return fig


def _x(traffic: pd.DataFrame) -> pd.Series:
    return traffic["bucket"]


# --- the Overview: one figure, eight panels on one shared time axis ------------------------------------------------
#
# One Plotly figure with subplots, not eight charts: the browser lays out one plot instead of eight (measured: the
# Overview's load time is dominated by Plotly's work in the page), and zooming or panning one panel moves them all,
# so an incident lines up across success rate, latency, queues and errors.

PANELS: tuple[str, ...] = (
    "Success rate",
    "Latency (ms)",
    "Tokens",
    "Cost (USD)",
    "Queue depth per provider",
    "Errors by class",
    "Calls: source, priority, fallbacks",
    "Oldest queued wait (s)",
)
PANEL_HEIGHT = 230
#: Panels whose series are named even when there is only one (which error class, which provider).
KEYED = frozenset({"Queue depth per provider", "Errors by class", "Oldest queued wait (s)"})


def _success(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    values = traffic["success_rate"]
    return [go.Scatter(x=_x(traffic), y=values, name="success rate", line_color=COLORS["ok"], **_points(values))]


def _latency(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [
        go.Scatter(x=_x(traffic), y=traffic[column], name=name, line_color=COLORS[name], **_points(traffic[column]))
        for column, name in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99"))
    ]


def _tokens(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [
        go.Scatter(x=_x(traffic), y=traffic[column], name=name, stackgroup="tokens", line_color=color)
        for column, name, color in (("input_tokens", "input", "#4c78a8"), ("output_tokens", "output", "#72b7b2"))
    ]


def _cost(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    return [go.Scatter(x=_x(traffic), y=traffic["cost_usd"], name="cost", line_color="#72b7b2", fill="tozeroy")]


def _queues(queues: pd.DataFrame, column: str, scale: float = 1.0) -> list[go.BaseTraceType]:
    traces: list[go.BaseTraceType] = [
        go.Scatter(
            x=rows["bucket"],
            y=rows[column] * scale,
            name=str(provider),
            line={"color": COLORS.get(str(provider)), "shape": "hv"},
        )
        for provider, rows in queues.groupby("provider", sort=True)
    ]
    return traces or [go.Scatter(x=[], y=[], name="none", showlegend=False)]


def _errors(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    """Stacked areas (one SVG path per class, not one bar per step); only classes seen in the range get a trace
    (none → an empty frame)."""
    traces: list[go.BaseTraceType] = []
    for error_class in ErrorClass:
        column = f"err_{error_class.value}"
        if column in traffic and traffic[column].sum() > 0:
            color = ERROR_COLORS[len(traces) % len(ERROR_COLORS)]
            traces.append(
                go.Scatter(
                    x=_x(traffic), y=traffic[column], name=error_class.value, stackgroup="errors", line_color=color
                )
            )
    return traces or [go.Scatter(x=_x(traffic), y=[0] * len(traffic), name="none", showlegend=False)]


PRIORITY_COLORS = {"user_facing": "#54a24b", "admin": "#b279a2", "background": "#bab0ac"}


def _sources(traffic: pd.DataFrame) -> list[go.BaseTraceType]:
    """Live and probe calls stacked; each priority class (user-facing, admin, background) and fallbacks as a
    dotted line over them."""
    x = _x(traffic)
    priorities = [
        go.Scatter(
            x=x,
            y=traffic[f"calls_{name}"],
            name=name.replace("_", "-"),
            line={"color": color, "dash": "dot"},
        )
        for name, color in PRIORITY_COLORS.items()
        if f"calls_{name}" in traffic
    ]
    return [
        go.Scatter(x=x, y=traffic["live_calls"], name="live", line_color=COLORS["live"], stackgroup="calls"),
        go.Scatter(x=x, y=traffic["probe_calls"], name="probe", line_color=COLORS["probe"], stackgroup="calls"),
        *priorities,
        go.Scatter(x=x, y=traffic["fallbacks"], name="fallbacks", line_color=COLORS["fail"]),
    ]


def _color(trace: go.BaseTraceType) -> str | None:
    line = getattr(trace, "line", None)
    return getattr(line, "color", None) if line is not None else None


def _title(name: str, traces: list[go.BaseTraceType]) -> str:
    """A panel title that is also its legend: each series' name in its colour (no Plotly legend to lay out)."""
    keys = [f'<span style="color:{_color(t) or "#888"}">■ {t.name}</span>' for t in traces if t.showlegend is not False]
    if len(keys) < 2 and name not in KEYED:
        return f"<b>{name}</b>"
    return f"<b>{name}</b>   " + "  ".join(keys)


def overview(traffic: pd.DataFrame, queues: pd.DataFrame, notes: Annotations = Annotations()) -> go.Figure:
    """The Overview's time series (:data:`PANELS`, two per row) on one shared time axis, with alert and breaker
    annotations on every panel. Each panel's title names its series in their colours."""
    from plotly.subplots import make_subplots

    panels = [
        _success(traffic),
        _latency(traffic),
        _tokens(traffic),
        _cost(traffic),
        _queues(queues, "queue_depth"),
        _errors(traffic),
        _sources(traffic),
        _queues(queues, "oldest_wait_ms", 0.001),
    ]
    rows = (len(PANELS) + 1) // 2
    fig = make_subplots(
        rows=rows,
        cols=2,
        shared_xaxes=True,
        subplot_titles=[_title(name, traces) for name, traces in zip(PANELS, panels, strict=True)],
        vertical_spacing=0.08,
        horizontal_spacing=0.07,
    )
    for index, traces in enumerate(panels):
        for trace in traces:
            fig.add_trace(trace, row=index // 2 + 1, col=index % 2 + 1)
    fig.update_layout(
        height=PANEL_HEIGHT * rows,
        margin={"l": 50, "r": 10, "t": 30, "b": 30},
        showlegend=False,
        hovermode="x unified",
        uirevision="keep",  # auto-refresh keeps the user's zoom
    )
    fig.update_xaxes(matches="x", showticklabels=False)
    fig.update_xaxes(showticklabels=True, row=rows)  # time labels once, under the bottom row
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", row=1, col=1)
    for annotation in fig.layout.annotations:  # the subplot titles: left-aligned over their panel
        annotation.update(x=annotation.x - 0.2325, xanchor="left", font={"size": 12})
    return annotate_all(fig, notes)


def annotate_all(fig: go.Figure, notes: Annotations) -> go.Figure:
    """Breaker spans shaded and alert lines on every panel; their labels once, on the first panel."""
    for start, end, text in notes.spans:
        fig.add_vrect(x0=start, x1=end, row="all", col="all", fillcolor=COLORS["breaker"], line_width=0)
        fig.add_annotation(
            x=start, y=1, xref="x", yref="y domain", text=text, showarrow=False, xanchor="left", font_size=9
        )
    for moment, text, kind in notes.marks:
        color = COLORS["alert"] if kind == "start" else COLORS["resolved"]
        fig.add_vline(x=moment, row="all", col="all", line={"color": color, "dash": "dot", "width": 1})
        fig.add_annotation(
            x=moment,
            y=1,
            xref="x",
            yref="y domain",
            text=text,
            showarrow=False,
            yanchor="bottom",
            font={"size": 9, "color": color},
        )
    return fig


def key_health_strip(series: pd.DataFrame) -> go.Figure:
    """A heat strip: one row per key, one cell per step, coloured by health score (0 red … 100 green)."""
    fig = _frame("Key health over time", "")
    fig.update_layout(height=max(140, 40 + 34 * max(1, series[["provider", "key_label"]].drop_duplicates().shape[0])))
    if series.empty:
        fig.add_trace(go.Heatmap(x=[], y=[], z=[], colorscale="RdYlGn", zmin=0, zmax=100))
        return fig
    frame = series.assign(key=series["provider"] + " · " + series["key_label"])
    pivot = frame.pivot_table(index="key", columns="bucket", values="score", aggfunc="min", dropna=False)
    statuses = frame.pivot_table(index="key", columns="bucket", values="status", aggfunc="first", dropna=False)
    statuses = statuses.reindex(index=pivot.index, columns=pivot.columns)
    fig.add_trace(
        go.Heatmap(
            x=list(pivot.columns),
            y=list(pivot.index),
            z=pivot.to_numpy(),
            customdata=statuses.to_numpy(),
            colorscale="RdYlGn",
            zmin=0,
            zmax=100,
            hovertemplate="%{y}<br>%{x}<br>score %{z:.0f} (%{customdata})<extra></extra>",
            colorbar={"title": "score", "thickness": 10},
        )
    )
    return fig


def heartbeat_bar(probes: pd.DataFrame) -> go.Figure:
    """Recent probes per key as squares: green passed, red failed (newest right)."""
    fig = _frame("Probe heartbeat", "")
    if probes.empty:
        fig.add_trace(go.Scatter(x=[], y=[], mode="markers"))
        return fig
    frame = probes.assign(
        key=probes["provider"] + " · " + probes["key_label"].fillna(""),
        ok=probes["outcome"] == "success",
    )
    fig.update_layout(height=max(140, 60 + 30 * frame["key"].nunique()), hovermode="closest")
    for ok, rows in frame.groupby("ok"):
        fig.add_trace(
            go.Scatter(
                x=rows["ts"],
                y=rows["key"],
                mode="markers",
                name="passed" if ok else "failed",
                marker={"symbol": "square", "size": 12, "color": COLORS["ok"] if ok else COLORS["fail"]},
                customdata=rows[["latency_ms", "error_class"]].to_numpy(),
                hovertemplate="%{y}<br>%{x}<br>%{customdata[0]:.0f} ms %{customdata[1]}<extra></extra>",
            )
        )
    return fig


def sparkline_svg(values: list[float], color: str = "#4c78a8", width: int = 160, height: int = 32) -> str:
    """A tiny inline SVG polyline (no JavaScript: KPI tiles must not wait for a chart library to load).
    Missing values (NaN) break nothing: they are drawn as the series' minimum."""
    finite = [v for v in values if v == v]  # NaN is the value unequal to itself
    if len(finite) < 2:
        return f'<svg width="{width}" height="{height}" role="img" aria-label="no data"></svg>'
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = width / (len(values) - 1)
    points = " ".join(
        f"{i * step:.1f},{height - 2 - ((v if v == v else low) - low) / span * (height - 4):.1f}"
        for i, v in enumerate(values)
    )
    return (
        f'<svg width="100%" height="{height}" viewBox="0 0 {width} {height}" preserveAspectRatio="none" '
        f'role="img" aria-label="sparkline"><polyline fill="none" stroke="{color}" stroke-width="1.5" '
        f'vector-effect="non-scaling-stroke" points="{points}"/></svg>'
    )
