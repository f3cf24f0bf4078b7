"""Limits: the limits in force, how self-tuning moved them (effective vs configured, with the reason of each
change), and per-user usage with the calls refused by per-user / per-feature limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.queries.limits import USER_RANGE_MAX, limit_steps, limits_now
from dashboard import data, limit_charts, ui

RECENT = 50
CHANGE_TABLE = ("ts", "instance_id", "provider", "key_label", "kind", "before", "after", "configured", "reason")
TOP_USERS = 20


def _now_table(ctx: ui.Context) -> None:
    current = limits_now(data.instances(ctx.url, ctx.at, ctx.heartbeat_s))
    if ctx.flt.provider:
        current = current[current["provider"] == ctx.flt.provider]
    st.subheader("In force now")
    if current.empty:
        st.info("No live instance reports its limits yet. " + ui.EMPTY_NOTICE)
        return
    current = current.assign(
        share=[
            e / c if pd.notna(e) and pd.notna(c) and c else float("nan")
            for e, c in zip(current["effective"], current["configured"], strict=True)
        ],
        reason=current["reason"].fillna("at the configured ceiling"),
    )
    st.dataframe(
        current[["instance_id", "provider", "kind", "effective", "configured", "share", "reason", "changed_at"]],
        hide_index=True,
        column_config={
            "effective": st.column_config.NumberColumn("effective", format="%.4g"),
            "configured": st.column_config.NumberColumn("configured", format="%.4g"),
            "share": st.column_config.ProgressColumn("of configured", min_value=0, max_value=1, format="percent"),
        },
    )


def _history(ctx: ui.Context) -> None:
    st.subheader("Effective vs configured over time")
    changes = data.limit_history(ctx.url, ctx.key)
    if changes.empty:
        st.info("No limit changed in this range: every effective limit stayed where it was.")
        return
    steps = limit_steps(changes, ctx.flt.start, ctx.flt.end)
    for kind in ("rpm", "tpm"):
        if (steps["kind"] == kind).any():
            st.plotly_chart(limit_charts.limit_history(steps, kind), config={"displaylogo": False}, key=f"lim_{kind}")
    recent = changes.iloc[::-1].head(RECENT)
    recent = recent.assign(key_label=recent["key_label"].fillna("(provider)"))
    recent = recent.rename(columns={"effective_before": "before", "effective_after": "after"})
    st.caption(f"Recent changes (newest first, up to {RECENT})")
    st.dataframe(recent[list(CHANGE_TABLE)], hide_index=True)


def _users(ctx: ui.Context) -> None:
    st.subheader("Per-user usage")
    hours = int(USER_RANGE_MAX.total_seconds() // 3600)
    st.caption(
        f"Top {TOP_USERS} users by calls over the last {hours} h of the range at most (ids as stored: hashed when "
        "HASH_USER_IDS is set)."
    )
    users = data.users(ctx.url, ctx.key, TOP_USERS)
    if users.empty:
        st.info("No call with a user_id in this range.")
    else:
        if not ctx.authenticated:
            users = users.assign(user_id=[f"user #{i}" for i in range(1, len(users) + 1)])
            st.caption("User ids are shown only to an operator signed in with DASHBOARD_PASSWORD.")
        st.dataframe(users, hide_index=True, column_config={"cost_usd": st.column_config.NumberColumn(format="$%.4f")})
    traffic = data.traffic(ctx.url, ctx.key)
    refused = int(traffic["err_user_rate_limited"].sum()) if not traffic.empty else 0
    st.caption(f"{refused} call(s) refused by per-user or per-feature limits in this range")
    st.plotly_chart(limit_charts.user_rate_limited(traffic), config={"displaylogo": False}, key="lim_users")


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    _now_table(ctx)
    _history(ctx)
    _users(ctx)


st.title("Limits")
ui.live(render, key="limits")
