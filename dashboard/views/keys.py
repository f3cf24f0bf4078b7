"""Keys: every key's health, cooldown, success rate, p95 and last probe; a health timeline; admin actions."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from pulsegate.dashboard import actions, charts, data, key_table, tables, ui

#: Recent probe rows read for each key's last probe (the same query as the Probes page's history: one cache entry).
PROBE_ROWS = 300


def key_frame(ctx: ui.Context) -> pd.DataFrame:
    keys = data.keys_now(ctx.url, ctx.at, ctx.heartbeat_s)
    flt = ctx.flt
    if flt.provider:
        keys = keys[keys["provider"] == flt.provider]
    if flt.key_label:
        keys = keys[keys["key_label"] == flt.key_label]
    probes = data.attempts(ctx.url, data.key_of(replace(flt, source="probe")), PROBE_ROWS, 0, None, None)

    def totals_of(provider: str, key_label: str) -> dict[str, float]:
        return data.totals(ctx.url, data.key_of(replace(flt, provider=provider, key_label=key_label)))

    return key_table.key_rows(keys, totals_of, probes, ctx.now, ui.until)


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    table = key_frame(ctx)
    if table.empty:
        st.info("No live instance reports any key yet. " + ui.EMPTY_NOTICE)
    else:
        tables.show(table, key_table.COLUMNS)
        explained = key_table.notes(table)
        if explained:
            st.markdown("\n".join(f"- {line}" for line in explained))
        st.caption(
            "Status and health count only the key's own failures (429, auth, quota, server errors, timeouts): an "
            "overloaded provider fails every key alike, so its 529s are counted under *Other failures*. Success, "
            "failures, p95 and calls are over the selected range; health weighs the last few minutes."
        )
    st.plotly_chart(charts.key_health_strip(data.key_health_timeline(ctx.url, ctx.key)), config={"displaylogo": False})


st.title("Keys")
ui.live(render, key="keys")
st.subheader("Actions")
ctx = ui.context()
try:
    frame = data.keys_now(ctx.url, ctx.at, ctx.heartbeat_s)
    known = sorted({(str(r.provider), str(r.key_label)) for r in frame.itertuples(index=False)})
except data.StoreDown:
    known = []
for provider, keys in (("anthropic", ctx.settings.anthropic_keys), ("openai", ctx.settings.openai_keys)):
    known = sorted(set(known) | {(provider, k.label) for k in keys})
actions.panel(ctx, known)
