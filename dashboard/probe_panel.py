""" "Run probe": queue a probe request for the worker and show its result on the page within seconds.

The dashboard never calls a provider itself: it inserts a ``probe_requests`` row
(``pulsegate.core.ops.probe_requests``), the worker claims it within about a second and runs the probe, and a fragment
polls the row every second until it is done — then the page shows each key's result.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pulsegate.core.ops.probe import ProbeError, probe_model
from pulsegate.dashboard import data, tables
from pulsegate.dashboard.tables import Col
from pulsegate.dashboard.ui import Context

POLL_S = 1
#: A request no worker has claimed after this long gets a hint on the page.
UNCLAIMED_HINT_S = 10
RESULT_COLUMNS = {
    "provider": Col("Provider"),
    "key_label": Col("Key"),
    "model": Col("Model"),
    "ok": Col("Passed", "flag"),
    "http_status": Col("HTTP", "count"),
    "latency_ms": Col("Latency (ms)", "ms"),
    "output_tokens": Col("Out tokens", "count"),
    "message": Col("Message", width="large"),
}


def _choices(ctx: Context) -> dict[str, list[str]]:
    """provider → key labels, from the settings and the keys live instances report."""
    found: dict[str, set[str]] = {"anthropic": set(), "openai": set()}
    for provider, keys in (("anthropic", ctx.settings.anthropic_keys), ("openai", ctx.settings.openai_keys)):
        found[provider].update(k.label for k in keys)
    try:
        frame = data.keys_now(ctx.url, ctx.at, ctx.heartbeat_s)
        for row in frame.itertuples(index=False):
            found.setdefault(str(row.provider), set()).add(str(row.key_label))
    except data.StoreDown:
        pass
    return {provider: sorted(labels) for provider, labels in found.items()}


def panel(ctx: Context, *, prefix: str, compact: bool = False) -> None:
    """The probe form and, once a request is queued, its live result."""
    ss = st.session_state
    req_key, done_key = f"{prefix}_request", f"{prefix}_done"
    choices = _choices(ctx)
    if compact:
        provider = key_label = model = None
    else:
        cols = st.columns(3)
        provider = cols[0].selectbox("Provider", ["all", *choices], key=f"{prefix}_provider")
        labels = sorted({label for p, ls in choices.items() if provider in ("all", p) for label in ls})
        key_label = cols[1].selectbox("Key", ["all", *labels], key=f"{prefix}_key")
        default_model = ""
        if provider in ("anthropic", "openai"):
            from pulsegate.core.provider import Provider

            default_model = probe_model(ctx.settings, Provider(provider))
        model = cols[2].text_input("Model", key=f"{prefix}_model", placeholder=default_model or "probe model")
        provider = None if provider == "all" else provider
        key_label = None if key_label == "all" else key_label
        model = (model or "").strip() or None
    if st.button("Run probe", key=f"{prefix}_run", type="primary", icon=":material/radar:"):
        try:
            ss[req_key] = data.probe(
                ctx.url, provider=provider, key_label=key_label, model=model, now=ctx.refreshed().now
            )
            ss[done_key] = False
        except ProbeError as exc:
            st.error(f"Cannot queue the probe: {exc}")
        except data.StoreDown as exc:
            st.error(str(exc))
    request_id = ss.get(req_key)
    if request_id is None:
        st.caption("Queues a probe for the worker (one tiny real request per key); the result shows here.")
        return
    finished = bool(ss.get(done_key))

    @st.fragment(run_every=None if finished else POLL_S)
    def poll() -> None:
        try:
            status = data.probe_status(ctx.url, request_id)
        except data.StoreDown as exc:
            st.error(str(exc))
            return
        if status is None:
            st.warning(f"Probe request #{request_id} is gone.")
            return
        show(status, ctx)
        if status["status"] in ("done", "failed") and not finished:
            ss[done_key] = True
            data.clear()
            st.rerun()

    poll()


def show(status: dict, ctx: Context) -> None:
    request_id = status["id"]
    state = status["status"]
    if state == "pending":
        waited = (ctx.refreshed().now - pd.Timestamp(status["created_at"])).total_seconds()
        st.info(f"Probe #{request_id} queued — waiting for the worker to pick it up…", icon=":material/hourglass:")
        if waited > UNCLAIMED_HINT_S:
            st.caption("No worker has claimed it yet: is `pulsegate worker` running against this database?")
        return
    if state == "running":
        st.info(f"Probe #{request_id} running on {status['claimed_by']}…", icon=":material/sync:")
        return
    if state == "failed":
        st.error(f"Probe #{request_id} failed: {status['error']}")
        return
    results = status["results"]
    passed = sum(1 for r in results if r["ok"])
    text = f"Probe #{request_id}: {passed}/{len(results)} passed"
    if results and passed == len(results):
        st.success(text, icon=":material/check_circle:")
    else:
        st.error(text, icon=":material/error:")
    if results:
        frame = pd.DataFrame(results)
        tables.show(frame, {name: col for name, col in RESULT_COLUMNS.items() if name in frame})
