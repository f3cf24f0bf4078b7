"""Overview: provider status, KPI tiles with deltas and sparklines, the charts over time, active alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import alert_tables, charts, data, probe_panel, tables, ui

#: The status banner is about now: the last hour's success rate, whatever range the charts show.
STATUS_WINDOW_S = 3600
STATUS_STYLE = {"ok": st.success, "degraded": st.warning, "down": st.error}


def status_banner(ctx: ui.Context, firing: pd.DataFrame) -> None:
    report = data.health(ctx.url, ctx.at, STATUS_WINDOW_S, ctx.heartbeat_s)
    providers = dict(report["details"]["providerStatus"])
    alerting: dict[str, int] = {}
    for labels in firing.get("labels", pd.Series(dtype=object)):
        provider = (labels or {}).get("provider") if isinstance(labels, dict) else None
        if provider:
            alerting[provider] = alerting.get(provider, 0) + 1
    for provider in alerting:
        if providers.get(provider, "ok") == "ok":
            providers[provider] = "degraded"
    if not providers:
        st.info("No live instance has reported yet: provider status appears once a client or worker runs.")
        return
    cols = st.columns(len(providers))
    for col, (provider, state) in zip(cols, sorted(providers.items()), strict=True):
        note = f" · {alerting[provider]} alert(s) firing" if provider in alerting else ""
        with col:
            STATUS_STYLE.get(state, st.info)(f"**{provider}**: {state}{note}")
    reasons = report["details"]["statusReasons"]
    if reasons:
        st.caption("Overall " + report["status"] + ": " + "; ".join(reasons))


TILES = (
    # label, kpi, formatter, sparkline column, delta colour
    ("Requests", "requests", ui.fmt_int, "calls", "normal"),
    ("Success rate", "success_rate", ui.fmt_pct, "success_rate", "normal"),
    ("p95 latency", "p95_ms", ui.fmt_ms, "p95_ms", "inverse"),
    ("Tokens", "tokens", ui.fmt_int, None, "off"),
    ("Cost", "cost_usd", ui.fmt_usd, "cost_usd", "inverse"),
    ("Fallbacks", "fallbacks", ui.fmt_int, "fallbacks", "inverse"),
)


SPARK_COLOURS = {"success_rate": "#2eb886", "p95_ms": "#f58518", "cost_usd": "#72b7b2", "fallbacks": "#e01e5a"}


def _delta(name: str, row: pd.Series) -> str | None:
    delta = row["delta"]
    if pd.isna(delta) or pd.isna(row["previous"]):
        return None
    if name == "success_rate":
        return f"{delta * 100:+.1f} pp"
    if name == "cost_usd":
        return f"{delta:+,.4f}"
    if name == "p95_ms":
        return f"{delta:+,.0f} ms"
    return f"{delta:+,.0f}"


def kpi_tiles(kpis: pd.DataFrame, traffic: pd.DataFrame) -> None:
    """Value, delta against the previous period of the same length, and an inline-SVG sparkline per tile."""
    cols = st.columns(len(TILES))
    for col, (label, name, fmt, spark, colour) in zip(cols, TILES, strict=True):
        row = kpis.loc[name]
        if spark is not None:
            series = traffic[spark].astype("float64").tolist()
        else:
            series = (traffic["input_tokens"] + traffic["output_tokens"]).astype("float64").tolist()
        with col.container(border=True):
            st.metric(
                label,
                fmt(row["current"]),
                _delta(name, row),
                delta_color=colour,
                help=f"previous period: {fmt(row['previous'])}",
            )
            st.markdown(charts.sparkline_svg(series, SPARK_COLOURS.get(name, "#4c78a8")), unsafe_allow_html=True)


def render(ctx: ui.Context) -> None:
    """Top to bottom: range, provider status, KPI tiles, charts, active alerts. The chart is *sent* first (into
    its slot below the tiles): the browser fetches Plotly's 4.7 MB bundle when it meets the first chart, so an
    early chart lets that download and parse overlap the rest of the page instead of following it."""
    ui.caption_range(ctx)
    flt = ctx.flt
    header, tiles, charts_slot = st.container(), st.container(), st.container()
    traffic = data.traffic(ctx.url, ctx.key)
    queues = data.queues(ctx.url, ctx.key)
    episodes = data.episodes(ctx.url, flt.start, flt.end)
    breakers = data.breaker_spans(ctx.url, ctx.key)
    notes = charts.Annotations.build(episodes, breakers, flt.start)
    with charts_slot:
        st.plotly_chart(charts.overview(traffic, queues, notes), config={"displaylogo": False})
    kpis = data.kpis(ctx.url, ctx.key)
    active = episodes[episodes["state"].isin(["firing", "pending"])]
    with header:
        status_banner(ctx, active[active["state"] == "firing"])
        if kpis.loc["requests", "current"] == 0 and data.instances(ctx.url, ctx.at, ctx.heartbeat_s).empty:
            st.info(ui.EMPTY_NOTICE, icon=":material/info:")
    with tiles:
        kpi_tiles(kpis, traffic)
    st.subheader("Active alerts")
    if active.empty:
        st.caption("No alert is firing or pending.")
    else:
        tables.show(active, alert_tables.ACTIVE)


st.title("Overview")
ui.live(render, key="overview")
with st.expander("Run probe", expanded=True, icon=":material/radar:"):
    probe_panel.panel(ui.context(), prefix="overview_probe", compact=True)
