"""The global filters: time range, provider, model, key and source — kept in the URL so a view can be shared.

Pure functions (no Streamlit) turn query-string values into a :class:`Filters` and back; ``pulsegate.dashboard.sidebar``
draws the widgets. "Now" is the wall clock, unless ``PULSEGATE_DASHBOARD_NOW`` (or the ``now`` query parameter)
fixes it to an ISO 8601 instant — for looking at a past incident, and for benchmarks on a kept database.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pulsegate.core.clock import as_utc
from pulsegate.core.errors import PulsegateError
from pulsegate.core.queries import QueryFilter

NOW_ENV = "PULSEGATE_DASHBOARD_NOW"
RANGES: dict[str, timedelta | None] = {
    "15m": timedelta(minutes=15),
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "custom": None,
}
DEFAULT_RANGE = "1h"
PROVIDERS = ("anthropic", "openai")
SOURCES = ("live", "probe")
#: Auto-refresh choices (label → seconds; None = paused).
REFRESH: dict[str, int | None] = {"5s": 5, "10s": 10, "30s": 30, "1m": 60, "paused": None}
DEFAULT_REFRESH = "10s"
#: The range end is rounded up to this, so reruns within it share cached query results.
QUANTUM_S = 5
ALL = "all"
MAX_TEXT = 128
#: The longest custom range (the hour tier's retention): a longer one is clamped to end at its end.
MAX_SPAN = timedelta(days=400)
#: Instants outside these years are refused: the range arithmetic around them would leave the calendar.
MIN_YEAR, MAX_YEAR = 1970, 9000


class BadNow(PulsegateError, ValueError):
    """``PULSEGATE_DASHBOARD_NOW`` / ``now=`` is not an ISO 8601 instant."""


def parse_instant(text: str) -> datetime:
    shown = repr(text) if len(text) <= 40 else f"a {len(text)}-character value"
    try:
        moment = as_utc(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadNow(f"{shown} is not an ISO 8601 time such as 2025-06-02T12:00:00Z") from None
    except OverflowError:  # a time zone offset pushed it off the calendar
        moment = None
    if moment is None or not MIN_YEAR <= moment.year < MAX_YEAR:
        raise BadNow(f"{shown} is not a time between {MIN_YEAR} and {MAX_YEAR} (UTC)") from None
    return moment


def current_now(params: Mapping[str, str], environ: Mapping[str, str] | None = None) -> datetime:
    """The dashboard's "now": the ``now`` query parameter, else ``PULSEGATE_DASHBOARD_NOW``, else the clock."""
    env = os.environ if environ is None else environ
    fixed = params.get("now") or env.get(NOW_ENV)
    return parse_instant(fixed) if fixed else datetime.now(UTC)


def state_time(now: datetime, quantum_s: int = QUANTUM_S) -> datetime:
    """``now`` rounded *down* to the quantum: the moment "current state" queries (keys, instances, health) are
    asked about — never in the future, where every heartbeat would look stale."""
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % quantum_s, UTC)


def quantised_end(now: datetime, quantum_s: int = QUANTUM_S) -> datetime:
    seconds = int(now.timestamp())
    return datetime.fromtimestamp(seconds - seconds % quantum_s + quantum_s, UTC)


@dataclass(frozen=True, slots=True)
class Filters:
    range: str = DEFAULT_RANGE
    start: datetime | None = None  # custom range only
    end: datetime | None = None
    provider: str | None = None
    model: str | None = None
    key_label: str | None = None
    source: str | None = None

    def query_filter(self, now: datetime) -> QueryFilter:
        """The :class:`QueryFilter` for this view at ``now`` (the end rounded up to :data:`QUANTUM_S`)."""
        if self.range == "custom" and self.start is not None and self.end is not None:
            start, end = max(self.start, self.end - MAX_SPAN), self.end
        else:
            end = quantised_end(now)
            start = end - (RANGES.get(self.range) or RANGES[DEFAULT_RANGE])  # type: ignore[operator]
        return QueryFilter(
            start, end, provider=self.provider, model=self.model, key_label=self.key_label, source=self.source
        )

    def to_params(self) -> dict[str, str]:
        """Query-string values, defaults left out."""
        params: dict[str, str] = {}
        if self.range != DEFAULT_RANGE:
            params["range"] = self.range
        if self.range == "custom" and self.start is not None and self.end is not None:
            params["from"] = self.start.isoformat(timespec="minutes")
            params["to"] = self.end.isoformat(timespec="minutes")
        for name, value in (
            ("provider", self.provider),
            ("model", self.model),
            ("key", self.key_label),
            ("source", self.source),
        ):
            if value:
                params[name] = value
        return params


def _choice(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def clean_text(value: str | None) -> str | None:
    """A model or key label filter: printable text of at most MAX_TEXT characters, else no filter (a NUL or a lone
    surrogate could not even be bound as a parameter on PostgreSQL)."""
    if not value or not value.strip() or len(value) > MAX_TEXT or not value.strip().isprintable():
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return value.strip()


def from_params(params: Mapping[str, str]) -> Filters:
    """A :class:`Filters` from query-string values; anything unusable falls back to its default (a shared link
    with a typo still opens)."""
    range_name = params.get("range", DEFAULT_RANGE)
    if range_name not in RANGES:
        range_name = DEFAULT_RANGE
    start = end = None
    if range_name == "custom":
        try:
            start, end = parse_instant(params.get("from", "")), parse_instant(params.get("to", ""))
        except BadNow:
            start = end = None
        if start is None or end is None or end <= start:
            range_name, start, end = DEFAULT_RANGE, None, None
    return Filters(
        range=range_name,
        start=start,
        end=end,
        provider=_choice(params.get("provider"), PROVIDERS),
        model=clean_text(params.get("model")),
        key_label=clean_text(params.get("key")),
        source=_choice(params.get("source"), SOURCES),
    )


def refresh_seconds(params: Mapping[str, str]) -> int | None:
    return REFRESH.get(params.get("refresh", DEFAULT_REFRESH), REFRESH[DEFAULT_REFRESH])
