"""Admin actions through the control channel: reset a key's cooldown, disable / enable a key, clear a queue.

Each action asks for confirmation, then issues one ``control_commands`` row
(``pulsegate.core.ops.control.issue_command``, ``requested_by='dashboard'``); live instances apply it on their next
heartbeat and acknowledge it, and the page shows each acknowledgement as it arrives (a small fragment polls
``command_status`` until every live instance has answered or the command expired).
"""

from __future__ import annotations

import streamlit as st

from pulsegate.core.ops.control import ControlCommandError
from pulsegate.dashboard import data
from pulsegate.dashboard.ui import Context

PENDING = "_action_pending"
ISSUED = "_action_issued"
POLL_S = 2
LABELS = {
    "reset_key": "Reset cooldown",
    "disable_key": "Disable key",
    "enable_key": "Enable key",
    "clear_queue": "Clear queue",
}


def describe(command: str, provider: str | None, key_label: str | None) -> str:
    if command == "clear_queue":
        return f"clear the {provider} queue (queued requests are cancelled)" if provider else "clear every queue"
    verb = {"reset_key": "reset the cooldown of", "disable_key": "disable", "enable_key": "enable"}[command]
    return f"{verb} {provider} key {key_label!r} on every live instance"


def panel(ctx: Context, keys: list[tuple[str, str]]) -> None:
    """Key and queue actions, the confirmation step and the acknowledgements of commands issued."""
    ss = st.session_state
    left, right = st.columns([3, 2])
    with left:
        st.markdown("**Key actions**")
        options = [f"{p} · {k}" for p, k in keys]
        chosen = st.selectbox("Key", options, key="action_key", disabled=not options)
        cols = st.columns(3)
        for col, command in zip(cols, ("reset_key", "disable_key", "enable_key"), strict=True):
            if col.button(LABELS[command], key=f"action_{command}", disabled=not chosen):
                provider, label = chosen.split(" · ", 1)
                ss[PENDING] = (command, provider, label)
    with right:
        st.markdown("**Queue actions**")
        provider = st.selectbox("Provider", ["anthropic", "openai"], key="action_queue_provider")
        if st.button(LABELS["clear_queue"], key="action_clear_queue"):
            ss[PENDING] = ("clear_queue", provider, None)
    pending = ss.get(PENDING)
    if pending:
        command, provider, label = pending
        with st.container(border=True):
            st.warning(f"Confirm: {describe(command, provider, label)}?", icon=":material/warning:")
            yes, no, _ = st.columns([1, 1, 4])
            if yes.button("Confirm", key="action_confirm", type="primary"):
                try:
                    command_id = data.issue(
                        ctx.url, command, provider=provider, key_label=label, now=ctx.refreshed().now
                    )
                    ss.setdefault(ISSUED, []).insert(0, command_id)
                    ss[PENDING] = None
                    data.clear()
                    st.rerun()
                except ControlCommandError as exc:
                    st.error(f"Cannot issue the command: {exc}")
                except data.StoreDown as exc:
                    st.error(str(exc))
            if no.button("Cancel", key="action_cancel"):
                ss[PENDING] = None
                st.rerun()
    issued = ss.get(ISSUED) or []
    if issued:
        acknowledgements(ctx, issued[:5])


def acknowledgements(ctx: Context, command_ids: list[int]) -> None:
    def statuses() -> tuple[list[dict], int]:
        now = ctx.refreshed().now
        found = [data.command(ctx.url, cid, now) for cid in command_ids]
        live = data.instances(ctx.url, ctx.refreshed().at, ctx.heartbeat_s)
        live_count = 0 if live.empty else live.loc[~live["stale"].astype(bool), "instance_id"].nunique()
        return found, int(live_count)

    try:
        found, live_count = statuses()
    except data.StoreDown as exc:
        st.error(str(exc))
        return
    open_commands = any(not s["expired"] and s["acked"] < max(1, live_count) for s in found)

    @st.fragment(run_every=POLL_S if open_commands else None)
    def show() -> None:
        try:
            current, live_now = statuses()
        except data.StoreDown as exc:
            st.error(str(exc))
            return
        st.markdown("**Commands issued from this page**")
        for status in current:
            what = describe(status["command"], status["provider"], status["key_label"])
            acks = status["acks"]
            head = f"#{status['id']} {what}: acknowledged by {status['acked']} of {live_now} live instance(s)"
            if status["failed"]:
                head += f", {status['failed']} failed"
            if status["expired"] and status["acked"] == 0:
                head += " — expired with no acknowledgement"
            st.write(head)
            for ack in acks:
                mark = "✅" if ack["ok"] else "❌"
                st.caption(f"{mark} {ack['instance_id']} at {ack['acked_at']:%H:%M:%S}: {ack['result'] or ''}")

    show()
