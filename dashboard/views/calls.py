"""Calls: recent attempts, filterable and paginated; a row's full details on selection; a CSV of the whole filtered
set (every page, not the one shown). User ids only for a signed-in operator."""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from pulsegate.core.errors import ErrorClass
from pulsegate.core.queries.attempt_export import MAX_EXPORT_ROWS
from pulsegate.core.store.tables import OUTCOMES
from pulsegate.dashboard import data, export, tables, ui
from pulsegate.dashboard.call_details import call_details
from pulsegate.dashboard.filters import Filters
from pulsegate.dashboard.tables import Col

PAGE_SIZES = (25, 50, 100, 250)
#: The table: what an operator scans, narrow enough for the page. The rest of a row (attempt number, full ids,
#: provider, HTTP status, feature, request id, instance…) is in its details and in the CSV.
COLUMNS: dict[str, Col] = {
    "ts": Col("Time (UTC)", "time"),
    "call_id": Col("Call", "id", help="The call id's last 8 hex digits (a call's attempts share it): select the row."),
    "model": Col("Model"),
    "key_label": Col("Key", width=80),
    "result": Col("Result", help="ok, or the error class (HTTP status and provider in the row's details)."),
    "latency_ms": Col("Latency (ms)", "ms"),
    "queue_wait_ms": Col("Queue (ms)", "ms", help="Time waiting for the rate limiter before sending."),
    "input_tokens": Col("Tokens in", "count"),
    "output_tokens": Col("Tokens out", "count"),
    "cost_usd": Col("Cost (USD)", "usd"),
    "fell_back_from": Col("Fallback from", help="The provider this call fell back from."),
}
USER_COLUMN = {"user_id": Col("User", help="As stored: hashed when HASH_USER_IDS is set.")}
FEATURE_COLUMN = {"feature": Col("Feature")}


def _select(key: str) -> None:
    """On a new selection: keep the picked row's details (from the rows the person saw when picking)."""
    ss = st.session_state
    state, shown = ss.get(key), ss.get("calls_shown")
    rows = list(state.selection.rows) if state is not None else []
    if rows and shown is not None and rows[0] < len(shown):
        ss["calls_selected"] = call_details(shown.iloc[rows[0]])


def render(ctx: ui.Context) -> None:
    ss = st.session_state
    ui.caption_range(ctx)
    size = int(ss.get("calls_size", 50))
    page = int(ss.get("calls_page", 1))
    outcome, error_class = _outcome_filters()
    frame = data.attempts(ctx.url, ctx.key, size, (page - 1) * size, outcome, error_class)
    if "user_id" in frame.columns and not ctx.authenticated:
        frame = frame.drop(columns=["user_id"])
    if frame.empty:
        st.info("No call matches these filters on this page." if page > 1 else "No call in this range.")
        return
    st.caption(
        f"Page {page}: rows {(page - 1) * size + 1}–{(page - 1) * size + len(frame)}, newest first · "
        "select a row for its full details"
    )
    columns = COLUMNS | (USER_COLUMN if ctx.authenticated else FEATURE_COLUMN)
    results = ["ok" if o == "success" else e for o, e in zip(frame["outcome"], frame["error_class"], strict=True)]
    # The grid's key follows its rows: new rows (an auto-refresh) make a new grid, so a selection never points at
    # a row that moved; the details of the row picked stay below until another is picked.
    key = f"calls_grid_{page}_{frame['id'].iloc[0]}"
    ss["calls_shown"] = frame
    tables.show(
        frame.assign(result=results), columns, key=key, on_select=lambda: _select(key), selection_mode="single-row"
    )
    details = ss.get("calls_selected")
    if details is not None:
        with st.expander("Selected call", expanded=True, icon=":material/info:"):
            tables.show(details, {"field": Col("Field"), "value": Col("Value")}, height=35 * (len(details) + 1) + 3)


def _outcome_filters() -> tuple[str | None, str | None]:
    ss = st.session_state
    outcome, error_class = ss.get("calls_outcome", "all"), ss.get("calls_error", "all")
    return (None if outcome == "all" else outcome), (None if error_class == "all" else error_class)


@dataclass(frozen=True, slots=True)
class Prepared:
    """The outcome of the last Export click, kept while the view it counted is the one shown."""

    view: tuple[Filters, str | None, str | None, bool]
    rows: int
    token: str | None
    covers: str
    counted_at: str


def export_panel(ctx: ui.Context) -> None:
    """Export CSV: count on click, refuse past :data:`MAX_EXPORT_ROWS`, else a one-time link to the streamed file."""
    ss = st.session_state
    if not export.served():
        st.caption(
            "CSV export is served by the dashboard's own server: start the dashboard with `pulsegate dashboard`."
        )
        return
    outcome, error_class = _outcome_filters()
    view = (ctx.filters, outcome, error_class, ctx.authenticated)
    if st.button("Export CSV", key="calls_export", icon=":material/download:", help="Every call of this view."):
        flt = ctx.refreshed().flt
        try:
            rows = data.calls_count(ctx.url, data.key_of(flt), outcome, error_class)
        except data.StoreDown as exc:
            st.error(str(exc))
            return
        token = None
        if 0 < rows <= MAX_EXPORT_ROWS:
            request = export.ExportRequest(
                ctx.url, flt, outcome, error_class, ctx.authenticated, rows, export.file_name(flt)
            )
            token = export.register(request)
        covers = f"{flt.start:%Y-%m-%d %H:%M:%S} → {flt.end:%Y-%m-%d %H:%M:%S} UTC"
        counted_at = f"{ctx.refreshed().now:%H:%M:%S} UTC"
        ss["calls_export_prepared"] = Prepared(view, rows, token, covers, counted_at)
    prepared: Prepared | None = ss.get("calls_export_prepared")
    if prepared is None or prepared.view != view:
        st.caption(f"Exports every call of this view (all pages), up to {MAX_EXPORT_ROWS:,} rows, as CSV.")
        return
    if prepared.rows > MAX_EXPORT_ROWS:
        st.error(
            f"{prepared.rows:,} calls match this view ({prepared.covers}); an export holds at most "
            f"{MAX_EXPORT_ROWS:,}. Narrow the filter — a shorter time range, or a provider, model, key, source, "
            "outcome or error class — and export again."
        )
    elif prepared.rows == 0:
        st.info(f"No call matches this view ({prepared.covers}): nothing to export.")
    else:
        assert prepared.token is not None
        st.link_button(
            f"Download CSV ({prepared.rows:,} calls)", export.link(prepared.token), icon=":material/file_download:"
        )
        st.caption(
            f"Calls {prepared.covers}, newest first; {prepared.rows:,} when counted at {prepared.counted_at}, and any "
            "recorded in that time since (attempts are written a few seconds after they start). The file is built "
            f"as it downloads; the link works once, within {export.TOKEN_TTL_S / 60:.0f} minutes."
        )


st.title("Calls")
cols = st.columns(4)
cols[0].selectbox("Outcome", ["all", *OUTCOMES], key="calls_outcome")
cols[1].selectbox("Error class", ["all", *(e.value for e in ErrorClass)], key="calls_error")
cols[2].selectbox("Rows per page", PAGE_SIZES, index=1, key="calls_size")
cols[3].number_input("Page", min_value=1, step=1, key="calls_page")
if not ui.context().authenticated:
    st.caption("User ids are shown only to an operator signed in with DASHBOARD_PASSWORD.")
export_panel(ui.context())
ui.live(render, key="calls")
