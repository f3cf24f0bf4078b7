"""Plotly figures of the Limits page: effective vs configured limits over time, and user-rate-limited refusals.

Pure functions of ``pulsegate.core.queries.limits`` frames, like :mod:`pulsegate.dashboard.charts`, so their data is
unit-tested without a browser.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from pulsegate.dashboard.charts import COLORS, ERROR_COLORS, _frame

UNITS = {"rpm": "requests", "tpm": "tokens"}


def window_label(period_s: float) -> str:
    """'minute' for 60 s, else '30 s' — the window every limit is counted over (``RATE_LIMIT_PERIOD_S``)."""
    return "minute" if period_s == 60 else f"{period_s:g} s"


def drawable(steps: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """(the step points of series with a configured ceiling, the names of those left out).

    A key limit learned from the provider's headers has no configured ceiling, and what the provider states may be
    a stand-in for "no limit" (the emulator states 100,000 requests a minute): drawn beside a provider limit of a
    few hundred it would flatten every real line to the axis. Those series are listed, not drawn."""
    if steps.empty:
        return steps, []
    known = steps.groupby("series")["configured"].transform(lambda s: s.notna().any())
    learned = sorted(steps.loc[~known, "series"].unique())
    return steps[known], learned


def limit_history(steps: pd.DataFrame, kind: str, period_s: float = 60.0) -> go.Figure:
    """One step line per series (provider or key, per instance) of the effective limit, its configured ceiling
    dashed in the same colour, and a marker at each change whose hover names the reason. Each line spans its
    instance's life (see :func:`pulsegate.core.queries.limits.limit_steps`); the y-axis runs from 0 to what is drawn."""
    unit = f"{UNITS.get(kind, kind)} per {window_label(period_s)}"
    fig = _frame(f"Effective vs configured limit · {unit} ({kind})", unit)
    fig.update_layout(
        hovermode="closest",
        height=340,
        legend={"orientation": "h", "y": -0.3, "x": 0, "xanchor": "left", "yanchor": "top", "font_size": 10},
        margin={"l": 50, "r": 10, "t": 36, "b": 40},
    )
    fig.update_yaxes(rangemode="tozero")
    frame = steps[steps["kind"] == kind] if not steps.empty else steps
    if frame.empty:
        fig.add_trace(go.Scatter(x=[], y=[], name="effective"))
        return fig
    for index, (name, series) in enumerate(frame.groupby("series", sort=True)):
        provider = str(series["provider"].iloc[0])
        color = COLORS[provider] if series["key_label"].iloc[0] is None else ERROR_COLORS[index % len(ERROR_COLORS)]
        if frame["instance_id"].nunique() > 1:
            color = ERROR_COLORS[index % len(ERROR_COLORS)]
        fig.add_trace(
            go.Scatter(
                x=series["ts"],
                y=series["effective"],
                name=f"{name} effective",
                line={"shape": "hv", "color": color},
                mode="lines",
                hoverinfo="skip",
            )
        )
        changes = series.iloc[1:-1]
        fig.add_trace(
            go.Scatter(
                x=changes["ts"],
                y=changes["effective"],
                name=f"{name} changes",
                mode="markers",
                marker={"size": 7, "color": color},
                customdata=changes[["reason"]].to_numpy(),
                hovertemplate=f"{name}<br>%{{x}}<br>effective %{{y:,.4g}}<br>%{{customdata[0]}}<extra></extra>",
                showlegend=False,
            )
        )
        fig.add_trace(
            go.Scatter(
                x=series["ts"],
                y=series["configured"],
                name=f"{name} configured",
                line={"shape": "hv", "color": color, "dash": "dash", "width": 1},
                mode="lines",
                hovertemplate=f"{name}<br>configured %{{y:,.4g}}<extra></extra>",
            )
        )
    return fig


def user_rate_limited(traffic: pd.DataFrame) -> go.Figure:
    """Calls refused by a per-user (or per-feature) limit, per step."""
    fig = _frame("User-rate-limited calls", "calls")
    if traffic.empty or not traffic["err_user_rate_limited"].any():
        fig.update_yaxes(range=[0, 1], dtick=1)  # none refused: an axis at 0, not −1…1 around nothing
    fig.add_trace(
        go.Bar(
            x=traffic["bucket"], y=traffic["err_user_rate_limited"], name="user_rate_limited", marker_color="#b279a2"
        )
    )
    return fig
