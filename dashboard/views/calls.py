"""Calls: recent attempts, filterable and paginated, with a CSV download. User ids only for a signed-in operator."""

from __future__ import annotations

import streamlit as st

from core.errors import ErrorClass
from dashboard import data, ui

PAGE_SIZES = (25, 50, 100, 250)


def render(ctx: ui.Context) -> None:
    ss = st.session_state
    ui.caption_range(ctx)
    size = int(ss.get("calls_size", 50))
    page = int(ss.get("calls_page", 1))
    outcome = ss.get("calls_outcome", "all")
    error_class = ss.get("calls_error", "all")
    frame = data.attempts(
        ctx.url,
        ctx.key,
        size,
        (page - 1) * size,
        None if outcome == "all" else outcome,
        None if error_class == "all" else error_class,
    )
    if "user_id" in frame.columns and not ctx.authenticated:
        frame = frame.drop(columns=["user_id"])
    if frame.empty:
        st.info("No call matches these filters on this page." if page > 1 else "No call in this range.")
        return
    st.caption(f"Page {page}: rows {(page - 1) * size + 1}–{(page - 1) * size + len(frame)}, newest first")
    st.dataframe(frame, hide_index=True)
    st.download_button(
        "Download CSV",
        frame.to_csv(index=False).encode("utf-8"),
        file_name=f"pulsegate-calls-page{page}.csv",
        mime="text/csv",
        key="calls_csv",
        on_click="ignore",
    )


st.title("Calls")
cols = st.columns(4)
cols[0].selectbox("Outcome", ["all", "success", "error"], key="calls_outcome")
cols[1].selectbox("Error class", ["all", *(e.value for e in ErrorClass)], key="calls_error")
cols[2].selectbox("Rows per page", PAGE_SIZES, index=1, key="calls_size")
cols[3].number_input("Page", min_value=1, step=1, key="calls_page")
if not ui.context().authenticated:
    st.caption("User ids are shown only to an operator signed in with DASHBOARD_PASSWORD.")
ui.live(render, key="calls")
