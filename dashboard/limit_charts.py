"""Plotly figures of the Limits page: effective vs configured limits over time, and user-rate-limited refusals.

Pure functions of ``core.queries.limits`` frames, like :mod:`dashboard.charts`, so their data is unit-tested
without a browser.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.charts import COLORS, ERROR_COLORS, _frame

UNITS = {"rpm": "requests per period", "tpm": "tokens per period"}


def limit_history(steps: pd.DataFrame, kind: str) -> go.Figure:
    """One step line per series (provider or key) of the effective limit, its configured ceiling dashed in the same
    colour, and a marker at each change whose hover names the reason."""
    fig = _frame(f"Effective vs configured limit ({kind})", UNITS.get(kind, ""))
    fig.update_layout(hovermode="closest")
    frame = steps[steps["kind"] == kind] if not steps.empty else steps
    if frame.empty:
        fig.add_trace(go.Scatter(x=[], y=[], name="effective"))
        return fig
    for index, (name, series) in enumerate(frame.groupby("series", sort=True)):
        provider = str(series["provider"].iloc[0])
        color = COLORS[provider] if series["key_label"].iloc[0] is None else ERROR_COLORS[index % len(ERROR_COLORS)]
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
        if series["configured"].notna().any():
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
    fig.add_trace(
        go.Bar(
            x=traffic["bucket"], y=traffic["err_user_rate_limited"], name="user_rate_limited", marker_color="#b279a2"
        )
    )
    return fig
