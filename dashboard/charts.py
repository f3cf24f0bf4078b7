"""Plotly figures from ``core`` query frames: pure functions, so their data is unit-tested without a browser.

The colours every chart shares, the Keys and Probes pages' figures and the KPI tiles' sparklines; the Overview's
figure is :mod:`pulsegate.dashboard.overview_chart`. Empty frames still give a chart with its axes and title (an empty
store draws frames, not blanks).
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

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
    "cancelled": "#8c8c8c",
    "alert": "#e01e5a",
    "resolved": "#2eb886",
    "breaker": "rgba(224, 30, 90, 0.12)",
}
ERROR_COLORS = ("#e45756", "#f58518", "#b279a2", "#4c78a8", "#54a24b", "#9d755d", "#eeca3b", "#bab0ac", "#72b7b2")


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
