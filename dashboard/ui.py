"""The frame every page shares: settings, the password gate, the sidebar filters, navigation and the live body.

``main()`` runs on every rerun of the entrypoint. Pages call :func:`context` for the view in force and
:func:`live` to draw their data panels in an auto-refreshing fragment that survives a database outage: the
panel shows a banner instead of a traceback, keeps retrying, and fills in again once the store answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from pulsegate.core.clock import as_utc
from pulsegate.core.errors import PulsegateError
from pulsegate.core.queries import QueryFilter
from pulsegate.core.settings import Settings, load_settings
from pulsegate.dashboard import auth, data, pacing
from pulsegate.dashboard import filters as flt_mod

HERE = Path(__file__).resolve().parent
DOWN_RETRY_S = 5
_CTX = "_pulsegate_context"
_DOWN = "_pulsegate_store_down"
EMPTY_NOTICE = (
    "No data yet. Start the worker with `pulsegate worker` and send calls through `AIClient` "
    "(or run `make demo`); charts fill in within a few seconds."
)


@dataclass(frozen=True, slots=True)
class Context:
    """The view in force for one run: where the store is, which filters, and "now"."""

    settings: Settings
    url: str
    filters: flt_mod.Filters
    refresh_s: int | None
    authenticated: bool
    now: datetime

    @property
    def flt(self) -> QueryFilter:
        return self.filters.query_filter(self.now)

    @property
    def key(self) -> data.FilterKey:
        return data.key_of(self.flt)

    @property
    def end(self) -> datetime:
        """The quantised range end: pass this (not ``now``) to cached range queries."""
        return self.flt.end

    @property
    def at(self) -> datetime:
        """``now`` rounded down to a few seconds: pass this to cached current-state queries."""
        return flt_mod.state_time(self.now)

    @property
    def heartbeat_s(self) -> float:
        return self.settings.heartbeat_interval_s

    def refreshed(self) -> Context:
        """The same view at the current time (a fragment rerun)."""
        return replace(self, now=flt_mod.current_now(st.query_params.to_dict()))


def context() -> Context:
    return st.session_state[_CTX]


# --- the frame ----------------------------------------------------------------------------------------------------


def _settings() -> Settings:
    try:
        return load_settings()
    except PulsegateError as exc:
        st.title("Pulsegate")
        st.error(f"Pulsegate cannot start: {exc}")
        st.stop()
        raise  # not reached


def _init_widgets(params: dict[str, str]) -> None:
    """Seed the sidebar widgets from the query string on a session's first run (a shared link opens as sent)."""
    ss = st.session_state
    if ss.get("_filters_seeded"):
        return
    initial = flt_mod.from_params(params)
    ss["f_range"] = initial.range
    ss["f_provider"] = initial.provider or flt_mod.ALL
    ss["f_model"] = initial.model or ""
    ss["f_key"] = initial.key_label or flt_mod.ALL
    ss["f_source"] = initial.source or flt_mod.ALL
    refresh = params.get("refresh", flt_mod.DEFAULT_REFRESH)
    ss["f_refresh"] = refresh if refresh in flt_mod.REFRESH else flt_mod.DEFAULT_REFRESH
    end = initial.end or datetime.now(UTC)
    start = initial.start or end - timedelta(hours=1)
    ss["f_from"] = start.replace(tzinfo=None, second=0, microsecond=0)
    ss["f_to"] = end.replace(tzinfo=None, second=0, microsecond=0)
    ss["_filters_seeded"] = True


def _key_options(url: str, now: datetime, heartbeat_s: float, settings: Settings) -> list[str]:
    labels: set[str] = set()
    for keys in (settings.anthropic_keys, settings.openai_keys):
        labels.update(k.label for k in keys)
    try:
        frame = data.keys_now(url, flt_mod.state_time(now), heartbeat_s)
        labels.update(str(v) for v in frame["key_label"])
    except data.StoreDown:
        pass
    return [flt_mod.ALL, *sorted(labels)]


def _as_utc(value: object) -> datetime | None:
    """A From/To widget's value (naive, meant as UTC) as an aware UTC datetime; None while it holds none."""
    return as_utc(value) if isinstance(value, datetime) else None


def filters_from_state() -> tuple[flt_mod.Filters, int | None, str | None]:
    """The filters in force, from the sidebar widgets' session state (seeded from the URL on a session's first
    run; a widget changed in the browser is in session state before the rerun starts). Also a warning, if any."""
    ss = st.session_state
    range_name = ss.get("f_range", flt_mod.DEFAULT_RANGE)
    if range_name not in flt_mod.RANGES:
        range_name = flt_mod.DEFAULT_RANGE
    start = end = None
    warning = None
    if range_name == "custom":
        start, end = _as_utc(ss.get("f_from")), _as_utc(ss.get("f_to"))
        if start is None or end is None or end <= start:
            warning = "Custom range: 'To' must be after 'From'; showing the last hour."
            start = end = None

    def pick(name: str) -> str | None:
        value = ss.get(name)
        return None if value in (None, "", flt_mod.ALL) else flt_mod.clean_text(str(value).strip()[: flt_mod.MAX_TEXT])

    provider, source = pick("f_provider"), pick("f_source")
    filters = flt_mod.Filters(
        range=range_name if start is not None or range_name != "custom" else flt_mod.DEFAULT_RANGE,
        start=start,
        end=end,
        provider=provider if provider in flt_mod.PROVIDERS else None,
        model=pick("f_model"),
        key_label=pick("f_key"),
        source=source if source in flt_mod.SOURCES else None,
    )
    refresh = ss.get("f_refresh", flt_mod.DEFAULT_REFRESH)
    return filters, flt_mod.REFRESH.get(refresh, flt_mod.REFRESH[flt_mod.DEFAULT_REFRESH]), warning


def sync_query_params(filters: flt_mod.Filters) -> None:
    """Keep the URL in step with the filters, so the address bar is always a shareable link to this view."""
    params = st.query_params.to_dict()
    wanted = filters.to_params()
    refresh = st.session_state.get("f_refresh", flt_mod.DEFAULT_REFRESH)
    if refresh != flt_mod.DEFAULT_REFRESH:
        wanted["refresh"] = refresh
    if "now" in params:
        wanted["now"] = params["now"]
    if wanted != params:
        st.query_params.from_dict(wanted)


def sidebar(settings: Settings, url: str, now: datetime, warning: str | None) -> None:
    """The filter widgets. Drawn *after* the page: their values are read from session state at the start of the
    run, and drawing them last lets the browser meet the page's charts (and fetch Plotly) first."""
    ss = st.session_state
    bar = st.sidebar
    bar.selectbox("Time range", list(flt_mod.RANGES), key="f_range")
    if ss["f_range"] == "custom":
        for name, default in (("f_from", now - timedelta(hours=1)), ("f_to", now)):
            if not isinstance(ss.get(name), datetime):
                ss[name] = default.replace(tzinfo=None, second=0, microsecond=0)
        bar.datetime_input("From (UTC)", key="f_from", step=timedelta(minutes=5))
        bar.datetime_input("To (UTC)", key="f_to", step=timedelta(minutes=5))
        if warning:
            bar.warning(warning)
    bar.selectbox("Provider", [flt_mod.ALL, *flt_mod.PROVIDERS], key="f_provider")
    bar.text_input("Model", key="f_model", placeholder="all models", max_chars=flt_mod.MAX_TEXT)
    options = _key_options(url, now, settings.heartbeat_interval_s, settings)
    if ss.get("f_key") not in options:
        options.append(ss["f_key"])
    bar.selectbox("Key", options, key="f_key")
    bar.selectbox("Source", [flt_mod.ALL, *flt_mod.SOURCES], key="f_source")
    bar.selectbox("Auto-refresh", list(flt_mod.REFRESH), key="f_refresh", help="'paused' stops auto-refresh")


PAGES = (
    ("views/overview.py", "Overview", ":material/monitoring:", "overview"),
    ("views/keys.py", "Keys", ":material/key:", "keys"),
    ("views/probes.py", "Probes", ":material/radar:", "probes"),
    ("views/alerts.py", "Alerts", ":material/notifications:", "alerts"),
    ("views/calls.py", "Calls", ":material/list:", "calls"),
    ("views/limits.py", "Limits", ":material/speed:", "limits"),
)
#: Only with ``pulsegate demo``: the alert messages its local webhook sink received.
DEMO_PAGES = (("views/inbox.py", "Inbox", ":material/inbox:", "inbox"),)
DEMO_SINK_ENV = "PULSEGATE_DEMO_SINK_URL"


def page_specs() -> tuple[tuple[str, str, str, str], ...]:
    return PAGES + (DEMO_PAGES if os.environ.get(DEMO_SINK_ENV) else ())


def main() -> None:
    settings = _settings()
    password = settings.dashboard_password.get_secret_value() if settings.dashboard_password else None
    pages = [
        st.Page(str(HERE / path), title=title, icon=icon, url_path=slug, default=(slug == "overview"))
        for path, title, icon, slug in page_specs()
    ]
    # navigation first, hidden until signed in: the page a link asked for (/keys) is the one shown after sign-in
    signed_in = password is None or auth.authenticated()
    page = st.navigation(pages, position="sidebar" if signed_in else "hidden")
    authenticated = auth.gate(password)  # stops this run unless signed in (or no password is set)
    try:
        now = flt_mod.current_now(st.query_params.to_dict())
    except flt_mod.BadNow as exc:
        st.error(f"{flt_mod.NOW_ENV} / now=: {exc}")
        st.stop()
        raise
    url = settings.database_url
    _init_widgets(st.query_params.to_dict())
    filters, refresh_s, warning = filters_from_state()
    sync_query_params(filters)
    st.session_state[_CTX] = Context(settings, url, filters, refresh_s, authenticated, now)
    page.run()
    sidebar(settings, url, now, warning)


# --- page helpers -------------------------------------------------------------------------------------------------


def store_banner(problem: str) -> None:
    st.error(
        f"**The store is unreachable.** {problem}\n\n"
        f"The dashboard retries every {DOWN_RETRY_S} s and fills in again by itself once the database answers.",
        icon=":material/cloud_off:",
    )


def redis_banner(ctx: Context) -> None:
    """A warning on every page while any live instance reports Redis degraded (limits or shared key state)."""
    degraded = data.redis_status(ctx.url, ctx.at, ctx.heartbeat_s)
    if not degraded:
        return
    what = {"limiter": "rate limits", "shared_state": "key and breaker state"}
    lines = []
    for entry in degraded:
        share = entry.get("local_share")
        scaled = f", each limit scaled to {share:.0%} locally" if isinstance(share, int | float) else ""
        since = f" since {str(entry['since'])[:19].replace('T', ' ')} UTC" if entry.get("since") else ""
        lines.append(f"- `{entry['instance_id']}`: {what[entry['block']]} are local{since}{scaled}")
    st.warning(
        "**Redis is degraded.** These instances run on local state until Redis answers again:\n" + "\n".join(lines),
        icon=":material/sync_problem:",
    )


def live(render: Callable[[Context], None], *, key: str) -> None:
    """Draw ``render`` in a fragment rerun every refresh interval (and every few seconds while the store is down,
    even when auto-refresh is paused). Database failures become a banner. A refresh that comes too soon after the
    last fresh render (it queued behind it) redraws that render's view from the cache
    (:mod:`pulsegate.dashboard.pacing`)."""
    base = context()
    down = bool(st.session_state.get(_DOWN))
    every: int | None = base.refresh_s
    if down:
        every = min(every or DOWN_RETRY_S, DOWN_RETRY_S)
    paced = pacing.pace(st.session_state, key)
    first_call = [True]  # the call below, in this full run; the fragment's own reruns come later

    def mark(is_down: bool) -> None:
        if is_down != down:
            st.session_state[_DOWN] = is_down
            if (base.refresh_s is None) or is_down:
                st.rerun()  # a full run, so the fragment's interval follows the store's state

    @st.fragment(run_every=every)
    def body() -> None:
        full_run, first_call[0] = first_call[0], False
        ctx = base.refreshed()
        view, redraw = paced.choose(ctx.now, base.refresh_s, full_run=full_run)
        ctx = replace(ctx, now=view)
        reachable, revision, description, problem = data.status(ctx.url)
        if not reachable:
            store_banner(problem or description)
            mark(True)
            return
        if revision is None:
            st.warning(f"The store ({description}) has no tables yet: run `pulsegate migrate`.")
            return
        started = paced.begin()
        try:
            redis_banner(ctx)
            render(ctx)
        except data.StoreDown as exc:
            store_banner(str(exc))
            mark(True)
            return
        if not redraw:
            paced.rendered(view, started)
        mark(False)

    body()


def caption_range(ctx: Context) -> None:
    f = ctx.flt
    parts = [f"{f.start:%Y-%m-%d %H:%M} → {f.end:%Y-%m-%d %H:%M} UTC", f"step {f.step_s // 60 or 1} min"]
    for name, value in (("provider", f.provider), ("model", f.model), ("key", f.key_label), ("source", f.source)):
        if value:
            parts.append(f"{name} {value}")
    parts.append(f"refresh {'paused' if ctx.refresh_s is None else f'every {ctx.refresh_s} s'}")
    parts.append(f"as of {ctx.now:%H:%M:%S} UTC")
    st.caption(" · ".join(parts))


def compact(value: float) -> str:
    """1234 → '1,234'; 25521 → '25.5 k'; 1428000 → '1.43 M' (KPI tiles are narrow)."""
    for threshold, unit, suffix in ((1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "k")):
        if abs(value) >= threshold:
            return f"{value / unit:.3g} {suffix}"
    return f"{value:,.0f}"


def fmt_int(value: float) -> str:
    return "–" if pd.isna(value) else compact(value)


def fmt_pct(value: float) -> str:
    return "–" if pd.isna(value) else f"{value * 100:.1f} %"


def fmt_ms(value: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value / 1000:.2f} s" if value >= 1000 else f"{value:.0f} ms"


def fmt_usd(value: float) -> str:
    if pd.isna(value):
        return "–"
    if abs(value) >= 1e4:
        return f"${compact(value)}"
    return f"${value:,.2f}" if abs(value) >= 100 else f"${value:,.4f}"


def until(value: object, now: datetime) -> str:
    """'4 m 10 s' until a time, '' when past or missing."""
    if value is None or pd.isna(value):
        return ""
    moment = pd.Timestamp(value)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
    seconds = int((moment - pd.Timestamp(now)).total_seconds())
    if seconds <= 0:
        return ""
    return f"{seconds // 60} m {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"
