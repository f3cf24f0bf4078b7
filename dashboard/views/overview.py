"""Overview: provider status, KPI tiles with deltas and sparklines, the charts over time, active alerts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pulsegate.dashboard import alert_tables, charts, data, filters, overview_chart, probe_panel, tables, ui
from pulsegate.dashboard.incidents import Incidents

#: The status banner is about now: the last hour's success rate, whatever range the charts show.
STATUS_WINDOW_S = 3600
STATUS_STYLE = {"ok": st.success, "degraded": st.warning, "down": st.error}
#: The incident lane reads the newest this many episodes of the range (the query's most); older ones are counted.
LANE_EPISODES = 1000
#: Active alerts listed here (the newest); the Alerts page has them all. Each row costs the page's draw time.
ACTIVE_SHOWN = 10
RANGE_NAMES = {"15m": "15 min", "1h": "hour", "6h": "6 h", "24h": "24 h", "7d": "7 days", "30d": "30 days"}


def range_label(view: filters.Filters) -> str:
    """'last 24 h', or 'custom range' — the window the KPI tiles and charts cover."""
    name = RANGE_NAMES.get(view.range)
    return f"last {name}" if name else "custom range"


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
    stats = report["statistics"]
    window = (
        "**Provider status now** (from keys, breakers and firing alerts) · **last hour** (whatever the range "
        f"below): {stats['totalRequests']:,} live calls"
    )
    if stats["successRate"] is not None:
        window += f", {stats['successRate']:.1f} % succeeded"
    reasons = report["details"]["statusReasons"]
    st.caption(window + (" · overall " + report["status"] + ": " + "; ".join(reasons) if reasons else ""))


TILES = (
    # label, kpi, formatter, sparkline column, delta colour ("off": a change is neither good nor bad)
    ("Requests", "requests", ui.fmt_int, "calls", "off"),
    ("Success rate", "success_rate", ui.fmt_pct, "success_rate", "normal"),
    ("p95 latency", "p95_ms", ui.fmt_ms, "p95_ms", "inverse"),
    ("Tokens", "tokens", ui.fmt_int, None, "off"),
    ("Cost", "cost_usd", ui.fmt_usd, "cost_usd", "inverse"),
    ("Fallbacks", "fallbacks", ui.fmt_int, "fallbacks", "inverse"),
)


SPARK_COLOURS = {"success_rate": "#2eb886", "p95_ms": "#f58518", "cost_usd": "#72b7b2", "fallbacks": "#e01e5a"}


#: How each tile's change is written (format, scale); the others are whole numbers.
DELTA_FORMATS = {"success_rate": ("{:+.1f} pp", 100.0), "cost_usd": ("{:+,.4f}", 1.0), "p95_ms": ("{:+,.0f} ms", 1.0)}


def delta_text(name: str, row: pd.Series) -> tuple[str | None, bool]:
    """The change against the previous period as shown, and whether it shows as zero — then it is written
    ``±0`` and drawn without colour or arrow (``+0`` in red said "worse" about no change at all)."""
    delta = row["delta"]
    if pd.isna(delta) or pd.isna(row["previous"]):
        return None, False
    fmt, scale = DELTA_FORMATS.get(name, ("{:+,.0f}", 1.0))
    text = fmt.format(delta * scale)
    if not any(digit in text for digit in "123456789"):
        return fmt.format(0.0).replace("+", "±"), True
    return text, False


def kpi_tiles(kpis: pd.DataFrame, traffic: pd.DataFrame, ctx: ui.Context) -> None:
    """Value, delta against the previous period of the same length, and an inline-SVG sparkline per tile, under
    a line naming their window (the selected range — not the status line's last hour)."""
    flt = ctx.flt
    window = range_label(ctx.filters)
    st.caption(
        f"**Selected range, {window}** ({flt.start:%Y-%m-%d %H:%M} → {flt.end:%Y-%m-%d %H:%M} UTC) · "
        f"each change is against the {(flt.end - flt.start) / pd.Timedelta(minutes=1):,.0f} minutes before"
    )
    cols = st.columns(len(TILES))
    for col, (label, name, fmt, spark, colour) in zip(cols, TILES, strict=True):
        row = kpis.loc[name]
        if spark is not None:
            series = traffic[spark].astype("float64").tolist()
        else:
            series = (traffic["input_tokens"] + traffic["output_tokens"]).astype("float64").tolist()
        delta, zero = delta_text(name, row)
        with col.container(border=True):
            st.metric(
                label,
                fmt(row["current"]),
                delta,
                delta_color="off" if zero else colour,
                delta_arrow="off" if zero else "auto",
                help=f"{window}; previous period: {fmt(row['previous'])}",
            )
            st.markdown(charts.sparkline_svg(series, SPARK_COLOURS.get(name, "#4c78a8")), unsafe_allow_html=True)


def incidents(ctx: ui.Context) -> Incidents:
    """The range's alert episodes (the newest :data:`LANE_EPISODES`, the rest counted) and breaker openings."""
    flt = ctx.flt
    episodes = data.episodes(ctx.url, flt.start, flt.end, limit=LANE_EPISODES)
    total = data.episode_count(ctx.url, flt.start, flt.end) if len(episodes) >= LANE_EPISODES else len(episodes)
    breakers = data.breaker_spans(ctx.url, ctx.key)
    unread = max(0, total - len(episodes))
    return Incidents.build(episodes, breakers, flt.start, flt.end, unread=unread, provider=flt.provider)


def render(ctx: ui.Context) -> None:
    """Top to bottom: range, provider status, KPI tiles, charts, active alerts. The chart is *sent* first (into
    its slot below the tiles): the browser fetches Plotly's 4.7 MB bundle when it meets the first chart, so an
    early chart lets that download and parse overlap the rest of the page instead of following it."""
    ui.caption_range(ctx)
    flt = ctx.flt
    header, tiles, charts_slot = st.container(), st.container(), st.container()
    traffic = data.traffic(ctx.url, ctx.key)
    queues = data.queues(ctx.url, ctx.key)
    with charts_slot:
        st.plotly_chart(overview_chart.overview(traffic, queues, incidents(ctx)), config={"displaylogo": False})
    kpis = data.kpis(ctx.url, ctx.key)
    active = data.episodes(ctx.url, flt.start, flt.end, states=("pending", "firing"))
    with header:
        status_banner(ctx, active[active["state"] == "firing"])
        if kpis.loc["requests", "current"] == 0 and data.instances(ctx.url, ctx.at, ctx.heartbeat_s).empty:
            st.info(ui.EMPTY_NOTICE, icon=":material/info:")
    with tiles:
        kpi_tiles(kpis, traffic, ctx)
    st.subheader("Active alerts")
    if active.empty:
        st.caption("No alert is firing or pending.")
    else:
        tables.show_static(active.head(ACTIVE_SHOWN), alert_tables.ACTIVE)
        if len(active) > ACTIVE_SHOWN:
            st.caption(f"{len(active) - ACTIVE_SHOWN} more firing or pending: see the Alerts page.")


st.title("Overview")
ui.live(render, key="overview")
with st.expander("Run probe", expanded=True, icon=":material/radar:"):
    probe_panel.panel(ui.context(), prefix="overview_probe", compact=True)
