"""The Overview's incident lane: alert episodes and breaker openings as a few bars that never overlap.

Drawing one vertical line per alert start and end on every panel does not scale: Plotly validates each added shape
against all earlier ones (quadratic), dozens of lines turn a panel into a barcode and their labels pile into a
smear. Instead every episode becomes a span ``[fired, resolved)`` on a *lane* — one row per rule and provider, one
per provider's breaker — and, per lane, spans that overlap or nearly touch (closer than :data:`MERGE_FRACTION` of
the range, less than a few pixels apart) are merged into one bar that says how many incidents it holds. The bars
are capped (:data:`MAX_BARS`, newest kept) and the lanes too (:data:`MAX_LANES`; the rest share one "other
alerts" lane); whatever is not drawn is counted in a "+N more" note, never silently dropped. Breaker openings
are also shaded on every panel (:data:`MAX_SHADES` at most, newest kept).

Pure functions of the query frames: no Plotly here (``pulsegate.dashboard.charts`` draws them), so they are unit-tested
on their numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

#: Spans of one lane closer than this share of the range are one bar (at 700 px wide, 0.5 % ≈ 3 px).
MERGE_FRACTION = 0.005
#: The panels shade breaker openings (a provider refusing calls), merged harder: a hint, the lane has the detail.
SHADE_MERGE_FRACTION = 0.01
#: The shortest bar drawn, as a share of the range (a 2-second episode stays visible on a 24 h chart).
MIN_WIDTH_FRACTION = 0.002
MAX_LANES = 8
MAX_BARS = 150
MAX_SHADES = 20
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
OTHER_LANE = "other alerts"


@dataclass(frozen=True, slots=True)
class Span:
    """One bar: ``count`` incidents of one lane merged into ``[start, end)``."""

    lane: str
    start: pd.Timestamp
    end: pd.Timestamp
    kind: str  # "firing" (an alert fired), "pending" (pending only), "breaker" (a breaker was open)
    count: int = 1
    ongoing: bool = False
    severity: str = "warning"
    #: the lanes merged into this bar (several only in the "other alerts" lane)
    rules: tuple[str, ...] = ()

    def merged(self, other: Span) -> Span:
        kinds = {self.kind, other.kind}
        return replace(
            self,
            end=max(self.end, other.end),
            kind="firing" if "firing" in kinds else self.kind,
            count=self.count + other.count,
            ongoing=self.ongoing or other.ongoing,
            severity=min(self.severity, other.severity, key=lambda s: SEVERITY_RANK.get(s, 9)),
            rules=tuple(dict.fromkeys(self.rules + other.rules)),
        )

    def hover(self) -> str:
        """What the bar says on hover: what, how many, when (UTC), and whether it is still going on."""
        what = {"breaker": "breaker opening", "pending": "pending alert", "firing": "alert episode"}[self.kind]
        head = f"<b>{self.lane}</b><br>{self.count} {what}{'s' if self.count != 1 else ''}"
        if self.lane == OTHER_LANE:
            head += f" ({', '.join(self.rules)})"
        fmt = "%H:%M:%S" if self.start.date() == self.end.date() else "%m-%d %H:%M"
        tail = "still going on" if self.ongoing else f"until {self.end:{fmt}}"
        return f"{head}<br>from {self.start:{fmt}} UTC, {tail}"


@dataclass(frozen=True, slots=True)
class Incidents:
    """What the lane draws (``bars``, on ``lanes`` top to bottom), what the panels shade, and what was left out."""

    lanes: tuple[str, ...] = ()
    bars: tuple[Span, ...] = ()
    shades: tuple[tuple[pd.Timestamp, pd.Timestamp], ...] = ()
    #: incidents in the range that no bar shows: older than the newest :data:`MAX_BARS` bars, or never read
    hidden: int = 0
    #: all incidents in the range (alert episodes and breaker openings), drawn or not
    total: int = 0
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    @property
    def note(self) -> str:
        """The lane's caption: how many incidents it shows, and "+N more" for those it does not."""
        if self.total == 0:
            return "none in this range"
        text = f"{self.total - self.hidden:,} in range"
        if self.hidden:
            text = f"{self.total - self.hidden:,} shown · +{self.hidden:,} more (older)"
        return text

    @classmethod
    def build(
        cls,
        episodes: pd.DataFrame | None,
        breakers: pd.DataFrame | None,
        start: datetime,
        end: datetime,
        *,
        unread: int = 0,
        provider: str | None = None,
    ) -> Incidents:
        """From :func:`pulsegate.core.queries.alerts.alert_episodes_frame` and ``breaker_open_spans`` frames over
        ``[start, end)``. ``unread``: episodes in the range the frame did not hold (past its row limit).
        ``provider``: the view's provider filter — episodes labelled with another provider are left out."""
        low, high = _utc(start), _utc(end)
        width = high - low
        raw = [*_episode_spans(episodes, low, high, provider), *_breaker_spans(breakers, low, high)]
        lanes = _lane_order(raw)
        if len(lanes) > MAX_LANES:
            folded = set(lanes[MAX_LANES - 1 :])
            raw = [replace(s, lane=OTHER_LANE) if s.lane in folded else s for s in raw]
            lanes = [*lanes[: MAX_LANES - 1], OTHER_LANE]
        merged = [bar for lane in lanes for bar in merge([s for s in raw if s.lane == lane], width * MERGE_FRACTION)]
        newest = sorted(merged, key=lambda s: (s.end, s.start), reverse=True)
        kept, dropped = newest[:MAX_BARS], newest[MAX_BARS:]
        minimum = width * MIN_WIDTH_FRACTION
        bars = tuple(
            replace(s, end=max(s.end, s.start + minimum)) for s in sorted(kept, key=lambda s: (s.lane, s.start))
        )
        union = merge([replace(s, lane="") for s in kept if s.kind == "breaker"], width * SHADE_MERGE_FRACTION)
        shades = tuple((s.start, s.end) for s in sorted(union, key=lambda s: s.end, reverse=True)[:MAX_SHADES])
        hidden = sum(s.count for s in dropped) + unread
        return cls(
            lanes=tuple(lanes),
            bars=bars,
            shades=tuple(sorted(shades)),
            hidden=hidden,
            total=len(raw) + unread,
            start=low,
            end=high,
        )


def merge(spans: list[Span], gap: pd.Timedelta) -> list[Span]:
    """Spans (of one lane) sorted by start, those overlapping or closer than ``gap`` merged into one."""
    out: list[Span] = []
    for span in sorted(spans, key=lambda s: (s.start, s.end)):
        if out and span.start <= out[-1].end + gap:
            out[-1] = out[-1].merged(span)
        else:
            out.append(span)
    return out


def _utc(moment: datetime | pd.Timestamp) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _lane_name(rule_id: str, labels: object) -> str:
    provider = labels.get("provider") if isinstance(labels, dict) else None
    return f"{rule_id} · {provider}" if provider else str(rule_id)


def _episode_spans(
    episodes: pd.DataFrame | None, low: pd.Timestamp, high: pd.Timestamp, provider: str | None
) -> list[Span]:
    """Each episode from when it fired (or, never fired, went pending) until it resolved — or the range's end
    while it is still open — clipped to the range; episodes wholly outside it, or about another provider than
    ``provider``, are left out."""
    if episodes is None or episodes.empty:
        return []
    spans = []
    for row in episodes.itertuples(index=False):
        labelled = row.labels.get("provider") if isinstance(row.labels, dict) else None
        if provider is not None and labelled not in (None, provider):
            continue
        fired = pd.notna(row.fired_at)
        begun = row.fired_at if fired else row.pending_since
        if pd.isna(begun):
            continue
        resolved = pd.notna(row.resolved_at)
        begun, finish = _utc(begun), (_utc(row.resolved_at) if resolved else high)
        if finish < low or begun >= high:
            continue
        lane = _lane_name(row.rule_id, row.labels)
        spans.append(
            Span(
                lane=lane,
                start=max(begun, low),
                end=min(max(finish, begun), high),
                kind="firing" if fired else "pending",
                ongoing=not resolved,
                severity=str(getattr(row, "severity", "warning") or "warning"),
                rules=(lane,),
            )
        )
    return spans


def _breaker_spans(breakers: pd.DataFrame | None, low: pd.Timestamp, high: pd.Timestamp) -> list[Span]:
    if breakers is None or breakers.empty:
        return []
    return [
        Span(
            lane=f"{row.provider} breaker open",
            start=max(_utc(row.start), low),
            end=min(_utc(row.end), high),
            kind="breaker",
            ongoing=_utc(row.end) >= high,
            severity="critical",
            rules=(f"{row.provider} breaker open",),
        )
        for row in breakers.itertuples(index=False)
        if _utc(row.end) > low and _utc(row.start) < high
    ]


def _lane_order(spans: list[Span]) -> list[str]:
    """Breakers first, then alert lanes by severity, then the most recently active, then by name."""
    latest: dict[str, pd.Timestamp] = {}
    rank: dict[str, int] = {}
    for s in spans:
        latest[s.lane] = max(latest.get(s.lane, s.end), s.end)
        rank[s.lane] = min(rank.get(s.lane, 9), -1 if s.kind == "breaker" else SEVERITY_RANK.get(s.severity, 9))
    return sorted(latest, key=lambda lane: (rank[lane], -latest[lane].value, lane))
