"""Inbox (``pulsegate demo`` only): the Slack- and Discord-format alert messages the local webhook sink received.

Shown only when ``PULSEGATE_DEMO_SINK_URL`` names the sink; it reads the sink's ``GET /messages`` JSON (loopback),
so you can watch alerts being sent without a Slack or Discord workspace.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pandas as pd
import streamlit as st

from pulsegate.dashboard import tables, ui
from pulsegate.dashboard.tables import Col

SINK_URL_ENV = "PULSEGATE_DEMO_SINK_URL"
MESSAGES: dict[str, Col] = {
    "received_at": Col("Received (UTC)", "time"),
    "format": Col("Format"),
    "transition": Col("Message"),
    "title": Col("Title", width="medium"),
    "alerts": Col("Alerts", width="large"),
}


def fetch_messages(sink_url: str, timeout_s: float = 3.0) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{sink_url.rstrip('/')}/messages", timeout=timeout_s) as response:  # noqa: S310
        return list(json.load(response)["messages"])


def render(ctx: ui.Context) -> None:
    sink_url = os.environ.get(SINK_URL_ENV, "")
    try:
        messages = fetch_messages(sink_url)
    except (OSError, ValueError, KeyError) as exc:
        st.warning(f"The webhook sink at {sink_url} did not answer: {exc}")
        return
    if not messages:
        st.info("No webhook received yet. Alerts are sent a few seconds after they fire.")
        return
    frame = pd.DataFrame(messages[::-1])  # newest first
    counts = frame["format"].value_counts()
    cols = st.columns(3)
    cols[0].metric("Messages", len(frame))
    cols[1].metric("Slack format", int(counts.get("slack", 0)))
    cols[2].metric("Discord format", int(counts.get("discord", 0)))
    frame["alerts"] = frame["alerts"].map(lambda lines: "\n".join(lines) if isinstance(lines, list) else "")
    tables.show(frame, MESSAGES)


st.title("Inbox")
st.caption(
    f"Webhook messages received by the demo's local sink ({os.environ.get(SINK_URL_ENV, 'not set')}): the same "
    "alerts a Slack channel and a Discord channel would show."
)
ui.live(render, key="inbox")
