"""Probes: run a probe now on a chosen provider / key / model, and each key's probe history."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from pulsegate.dashboard import charts, data, probe_panel, tables, ui
from pulsegate.dashboard.tables import Col

HISTORY = 300
COLUMNS = {
    "ts": Col("Time (UTC)", "time"),
    "provider": Col("Provider"),
    "key_label": Col("Key"),
    "model": Col("Model"),
    "outcome": Col("Outcome"),
    "error_class": Col("Error"),
    "http_status": Col("HTTP", "count"),
    "latency_ms": Col("Latency (ms)", "ms"),
}


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    flt = replace(ctx.flt, source="probe")
    probes = data.attempts(ctx.url, data.key_of(flt), HISTORY, 0, None, None)
    if probes.empty:
        st.info("No probe in this range. Probes run on the worker's schedule (PROBE_INTERVAL_S) and on demand above.")
    st.plotly_chart(charts.heartbeat_bar(probes), config={"displaylogo": False})
    if not probes.empty:
        tables.show(probes, COLUMNS)


st.title("Probes")
with st.container(border=True):
    st.markdown("**Run a probe now**")
    probe_panel.panel(ui.context(), prefix="probes_probe")
st.subheader("Probe history")
ui.live(render, key="probes")
