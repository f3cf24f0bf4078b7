"""Alerts: firing / pending / resolved episodes, the delivery log, silences, a test alert, the rules in force."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pandas as pd
import streamlit as st

from pulsegate.core.alerts import config as config_mod
from pulsegate.core.alerts import sample_alert, silences
from pulsegate.dashboard import alert_tables, data, tables, ui

SILENCE_FOR = {"30 min": 30, "1 h": 60, "2 h": 120, "4 h": 240, "1 day": 1440, "7 days": 10080}


def render(ctx: ui.Context) -> None:
    ui.caption_range(ctx)
    flt = ctx.flt
    episodes = data.episodes(ctx.url, flt.start, flt.end)
    tabs = st.tabs(["Firing", "Pending", "Resolved", "Delivery log"])
    specs = (alert_tables.FIRING, alert_tables.PENDING, alert_tables.RESOLVED)
    for tab, state, columns in zip(tabs[:3], ("firing", "pending", "resolved"), specs, strict=True):
        with tab:
            rows = episodes[episodes["state"] == state]
            if rows.empty:
                st.caption(f"No {state} alert in this range.")
                continue
            tables.show(rows, columns)
    with tabs[3]:
        log = data.deliveries(ctx.url, flt.start, flt.end)
        if log.empty:
            st.caption("No notification was sent in this range.")
        else:
            tables.show(log, alert_tables.DELIVERIES)


def silences_panel(ctx: ui.Context, silences) -> None:
    engine = data.engine(ctx.url)
    now = ctx.refreshed().now
    with st.form("silence_form", clear_on_submit=False):
        st.markdown("**New silence**")
        matchers = st.text_input(
            "Matchers", key="silence_matchers", placeholder="provider=anthropic, rule_id=breaker_open"
        )
        cols = st.columns([1, 3])
        duration = cols[0].selectbox("For", list(SILENCE_FOR), index=1, key="silence_for")
        comment = cols[1].text_input("Comment", key="silence_comment", max_chars=500)
        create = st.form_submit_button("Create silence")
    if create:
        try:
            silence_id = silences.create_silence(
                engine,
                silences.parse_matchers(silences.split_matchers(matchers or "")),
                ends_at=now + timedelta(minutes=SILENCE_FOR[duration]),
                created_by="dashboard",
                comment=comment or None,
                now=now,
            )
            st.success(
                f"Silence #{silence_id} created until {now + timedelta(minutes=SILENCE_FOR[duration]):%H:%M} UTC"
            )
        except (ValueError, silences.SilenceError) as exc:
            st.error(f"Cannot create the silence: {exc}")
    try:
        listed = silences.list_silences(engine, now)
    except Exception as exc:
        st.error(f"Cannot read silences: {str(exc).splitlines()[0]}")
        return
    if not listed:
        st.caption("No silence active, pending or ended in the last 7 days.")
        return
    frame = pd.DataFrame(
        [
            {
                "id": s.id,
                "state": s.state(now),
                "matchers": dict(s.matchers),
                "starts": s.starts_at,
                "ends": s.ends_at,
                "expired": s.expired_at,
                "by": s.created_by,
                "comment": s.comment,
            }
            for s in listed
        ]
    )
    tables.show(frame, alert_tables.SILENCES)
    live = [s.id for s in listed if s.state(now) != "expired"]
    if live:
        cols = st.columns([1, 1, 4])
        chosen = cols[0].selectbox("Silence", live, key="silence_expire_id")
        if cols[1].button("Expire now", key="silence_expire"):
            try:
                silences.expire_silence(engine, int(chosen), now)
            except Exception as exc:
                st.error(f"Cannot expire silence #{chosen}: {str(exc).splitlines()[0]}")
            else:
                st.rerun()


def sample_panel(ctx: ui.Context, config_mod, sample_alert) -> None:
    try:
        config = config_mod.load_alert_config(ctx.settings)
    except Exception as exc:
        st.error(f"The alert configuration cannot be used: {exc}")
        return None
    names = [c.name for c in config.channels]
    if not names:
        st.info(
            "No notification channel is configured: set MONITORING_WEBHOOK_URL or add [[channels]] to ALERT_RULES_FILE."
        )
    else:
        cols = st.columns([2, 1, 3])
        channel = cols[0].selectbox("Channel", ["all", *names], key="test_channel")
        if cols[1].button("Send test alert", key="test_send"):
            now = ctx.refreshed().now
            try:
                outcomes = asyncio.run(
                    sample_alert.send_sample_alert(
                        data.engine(ctx.url),
                        config.channels,
                        channel=None if channel == "all" else channel,
                        now=now,
                        dashboard_url=ctx.settings.dashboard_url,
                    )
                )
            except Exception as exc:
                st.error(f"Test alert failed: {str(exc).splitlines()[0]}")
            else:
                for outcome in outcomes:
                    text = f"{outcome.channel} ({outcome.format}, {outcome.masked_url}): "
                    if outcome.delivered:
                        st.success(text + f"delivered (HTTP {outcome.status_code})")
                    else:
                        st.error(text + f"not delivered: {outcome.error}")
    return config


def rules_panel(config) -> None:
    from pulsegate.core.alerts.rule_fields import format_duration

    rows = [
        {
            "id": r.id,
            "title": r.display_title,
            "kind": r.kind,
            "severity": r.severity,
            "threshold": r.threshold,
            "unit": r.spec.unit,
            "window": format_duration(r.window_s),
            "for": format_duration(r.for_s),
            "scope": r.scope,
            "source": r.source,
        }
        for r in config.rules
    ]
    st.caption(
        f"{len(rows)} rules in force from {config.source}"
        + (f"; turned off: {', '.join(config.disabled_rules)}" if config.disabled_rules else "")
    )
    tables.show(pd.DataFrame(rows, columns=list(alert_tables.RULES)), alert_tables.RULES)


st.title("Alerts")
ui.live(render, key="alerts")
ctx = ui.context()
st.subheader("Silences")
silences_panel(ctx, silences)
st.subheader("Test alert")
config = sample_panel(ctx, config_mod, sample_alert)
if config is not None:
    st.subheader("Rules in force")
    rules_panel(config)
