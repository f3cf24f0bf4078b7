"""Limits: the limits in force, how self-tuning moved them (effective vs configured, with the reason of each
change), and per-user usage with the calls refused by per-user / per-feature limits."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pulsegate.core.queries import QueryFilter
from pulsegate.core.queries.limits import USER_RANGE_MAX, limit_steps, limits_now, user_window
from pulsegate.dashboard import data, limit_charts, tables, ui
from pulsegate.dashboard.tables import Col

RECENT = 50
TOP_USERS = 20
KIND_LABEL = {"rpm": "requests", "tpm": "tokens"}
NOW_COLUMNS = {
    "instance_id": Col("Instance"),
    "provider": Col("Provider"),
    "kind": Col("Limit"),
    "effective": Col("Effective", "number"),
    "configured": Col("Configured", "number"),
    "share": Col("Of configured", "share"),
    "reason": Col("Why (last change)"),
    "changed_at": Col("Changed (UTC)", "time"),
}
CHANGE_COLUMNS = {
    "ts": Col("Time (UTC)", "time"),
    "instance_id": Col("Instance"),
    "provider": Col("Provider"),
    "key_label": Col("Key"),
    "kind": Col("Limit"),
    "effective_before": Col("Before", "number"),
    "effective_after": Col("After", "number"),
    "configured": Col("Configured", "number", help="Empty: a key limit learned from the provider's headers."),
    "reason": Col("Reason"),
}
USER_COLUMNS = {
    "user_id": Col("User"),
    "calls": Col("Calls", "count"),
    "errors": Col("Errors", "count"),
    "user_rate_limited": Col("Refused by user limits", "count"),
    "input_tokens": Col("In tokens", "count"),
    "output_tokens": Col("Out tokens", "count"),
    "cost_usd": Col("Cost (USD)", "usd"),
}


def _kind(kind: object, window: str) -> str:
    return f"{KIND_LABEL.get(str(kind), kind)} per {window} ({kind})"


def _now_table(ctx: ui.Context, window: str) -> None:
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
        kind=[_kind(k, window) for k in current["kind"]],
    )
    tables.show(current, NOW_COLUMNS)


def _history(ctx: ui.Context, window: str) -> None:
    st.subheader("Effective vs configured over time")
    changes = data.limit_history(ctx.url, ctx.key)
    if changes.empty:
        st.info("No limit changed in this range: every effective limit stayed where it was.")
        return
    lifetimes = data.instance_lifetimes(ctx.url, tuple(sorted(changes["instance_id"].unique())))
    steps, learned = limit_charts.drawable(limit_steps(changes, ctx.flt.start, ctx.flt.end, lifetimes))
    for kind in ("rpm", "tpm"):
        if (steps["kind"] == kind).any():
            figure = limit_charts.limit_history(steps, kind, ctx.settings.rate_limit_period_s)
            st.plotly_chart(figure, config={"displaylogo": False}, key=f"lim_{kind}")
    st.caption(
        "Each line covers its instance's life in the range (first to latest heartbeat); the dashed line is the "
        f"configured ceiling. Limits are counted per {window}."
        + (
            f" Not drawn — key limits learned from the provider's headers, with no configured ceiling: "
            f"{', '.join(learned)} (their changes are listed below)."
            if learned
            else ""
        )
    )
    recent = changes.iloc[::-1].head(RECENT)
    recent = recent.assign(
        key_label=recent["key_label"].fillna("(provider)"), kind=[_kind(k, window) for k in recent["kind"]]
    )
    st.caption(f"Recent changes (newest first, up to {RECENT})")
    tables.show(recent, CHANGE_COLUMNS)


def _users(ctx: ui.Context) -> None:
    st.subheader("Per-user usage")
    flt = ctx.flt
    start, end = user_window(flt)
    until = "now" if end >= ctx.now else f"{end:%Y-%m-%d %H:%M}"
    filtered = [name for name in ("provider", "model", "key_label", "source") if getattr(flt, name) is not None]
    hours = f"{USER_RANGE_MAX.total_seconds() / 3600:g}"
    st.caption(
        f"Top {TOP_USERS} users by calls from {start:%Y-%m-%d %H:%M} UTC to {until}: the whole hours touching the "
        f"range's last {hours} h, across every provider, model and key (as the per-user limits count)"
        + (" — the range's filters do not apply here" if filtered else "")
        + ". Ids as stored: hashed when HASH_USER_IDS is set."
    )
    users = data.users(ctx.url, data.key_of(QueryFilter(flt.start, flt.end)), TOP_USERS)
    if users.empty:
        st.info("No call with a user_id in this range.")
    else:
        if not ctx.authenticated:
            users = users.assign(user_id=[f"user #{i}" for i in range(1, len(users) + 1)])
            st.caption("User ids are shown only to an operator signed in with DASHBOARD_PASSWORD.")
        tables.show(users, USER_COLUMNS)
    traffic = data.traffic(ctx.url, ctx.key)
    refused = int(traffic["err_user_rate_limited"].sum()) if not traffic.empty else 0
    st.caption(f"{refused} call(s) refused by per-user or per-feature limits in this range")
    st.plotly_chart(limit_charts.user_rate_limited(traffic), config={"displaylogo": False}, key="lim_users")


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    window = limit_charts.window_label(ctx.settings.rate_limit_period_s)
    _now_table(ctx, window)
    _history(ctx, window)
    _users(ctx)


st.title("Limits")
ui.live(render, key="limits")
