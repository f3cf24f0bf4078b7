"""Keys: every key's health, cooldown, success rate, p95 and last probe; a health timeline; admin actions."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import streamlit as st

from core.queries.kpis import kpis_from_totals
from dashboard import actions, charts, data, ui


def key_table(ctx: ui.Context) -> pd.DataFrame:
    keys = data.keys_now(ctx.url, ctx.at, ctx.heartbeat_s)
    flt = ctx.flt
    if flt.provider:
        keys = keys[keys["provider"] == flt.provider]
    if flt.key_label:
        keys = keys[keys["key_label"] == flt.key_label]
    window = max(900, min(int(flt.duration.total_seconds()), 86400))
    report = data.health(ctx.url, ctx.at, window, ctx.heartbeat_s)
    probes = {
        (provider, k["key"]): k.get("lastProbe") for provider, rows in report["details"]["keys"].items() for k in rows
    }
    rows = []
    for row in keys.itertuples(index=False):
        per_key = replace(flt, provider=row.provider, key_label=row.key_label)
        stats = kpis_from_totals(data.totals(ctx.url, data.key_of(per_key)))
        probe = probes.get((row.provider, row.key_label))
        rows.append(
            {
                "provider": row.provider,
                "key": row.key_label,
                "masked": row.key_masked,
                "status": row.status,
                "health": float(row.score),
                "cooldown": ui.until(row.cooldown_until, ctx.now),
                "success rate": stats["success_rate"],
                "p95 ms": stats["p95_ms"],
                "requests": stats["requests"],
                "last probe": "" if not probe else f"{'ok' if probe['ok'] else 'FAILED'} {probe['at'][11:16]}",
                "disabled reason": row.disabled_reason or "",
                "instances": int(row.instances),
            }
        )
    return pd.DataFrame(rows)


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    table = key_table(ctx)
    if table.empty:
        st.info("No live instance reports any key yet. " + ui.EMPTY_NOTICE)
    else:
        st.dataframe(
            table,
            hide_index=True,
            column_config={
                "health": st.column_config.ProgressColumn("health", min_value=0, max_value=100, format="%.0f"),
                "success rate": st.column_config.NumberColumn("success rate", format="percent"),
                "p95 ms": st.column_config.NumberColumn("p95 ms", format="%.0f"),
            },
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
