"""What every dashboard / API query is asked for: a time range and optional provider, model, key and source.

Values are only ever bound as SQL parameters; validation here exists to give a clear error early, not to make
strings safe (they already are).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pulsegate.core.errors import PulsegateError
from pulsegate.core.store.tables import PROVIDERS, SOURCES

#: (longest range, rollup tier in seconds): a range reads the finest tier that keeps a series to a few hundred
#: rollup rows; longer ranges read the hour tier. Rows scanned, not points drawn, set a chart's query time.
TIERS_BY_RANGE: tuple[tuple[timedelta, int], ...] = ((timedelta(hours=3), 60), (timedelta(days=2), 600))
HOUR_TIER_S = 3600
#: Bucket steps a time series may use, smallest first (seconds); the first giving ≤ MAX_POINTS wins.
STEPS_S: tuple[int, ...] = (60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)
MAX_POINTS = 300
_MAX_TEXT = 128


class QueryFilterError(PulsegateError, ValueError):
    """A filter that cannot be used, with the reason."""


def _checked_utc(name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise QueryFilterError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None:
        raise QueryFilterError(f"{name}={value.isoformat()} is naive; pass a timezone-aware (UTC) datetime")
    return value.astimezone(UTC)


def _text(name: str, value: object, allowed: tuple[str, ...] | None = None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise QueryFilterError(f"{name} must be a string or None, got {type(value).__name__}")
    if allowed is not None and value not in allowed:
        raise QueryFilterError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    if len(value) > _MAX_TEXT:
        raise QueryFilterError(f"{name} is longer than {_MAX_TEXT} characters")
    return value


@dataclass(frozen=True, slots=True)
class QueryFilter:
    """A half-open time range ``[start, end)`` plus optional equality filters (``None`` means "all")."""

    start: datetime
    end: datetime
    provider: str | None = None
    model: str | None = None
    key_label: str | None = None
    source: str | None = None

    def __post_init__(self) -> None:
        start = _checked_utc("start", self.start)
        end = _checked_utc("end", self.end)
        if end <= start:
            raise QueryFilterError(f"end ({end.isoformat()}) must be after start ({start.isoformat()})")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        object.__setattr__(self, "provider", _text("provider", self.provider, PROVIDERS))
        object.__setattr__(self, "model", _text("model", self.model))
        object.__setattr__(self, "key_label", _text("key_label", self.key_label))
        object.__setattr__(self, "source", _text("source", self.source, SOURCES))

    @classmethod
    def last(cls, duration: timedelta, now: datetime, **filters: str | None) -> QueryFilter:
        """The range ``[now - duration, now)``."""
        return cls(now - duration, now, **filters)

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def tier_s(self) -> int:
        """The rollup tier (seconds) this range reads: 60, 600 or 3600."""
        for longest, tier in TIERS_BY_RANGE:
            if self.duration <= longest:
                return tier
        return HOUR_TIER_S

    @property
    def uses_hour_tier(self) -> bool:
        return self.tier_s == HOUR_TIER_S

    @property
    def step_s(self) -> int:
        """The series step: the smallest of :data:`STEPS_S` giving at most :data:`MAX_POINTS` points, and no
        finer than the tier read (its rows cannot be split)."""
        seconds = self.duration.total_seconds()
        floor = self.tier_s
        for step in STEPS_S:
            if step >= floor and seconds / step <= MAX_POINTS:
                return step
        return STEPS_S[-1]

    def previous(self) -> QueryFilter:
        """The period of the same length just before this one, with the same filters."""
        return QueryFilter(
            self.start - self.duration, self.start, self.provider, self.model, self.key_label, self.source
        )

    def conditions(
        self, table: sa.Table, *, time_column: str = "ts", dimensions: bool = True
    ) -> list[sa.ColumnElement]:
        """WHERE terms for ``table`` (bound parameters only). Columns the table lacks are skipped."""
        column = table.c[time_column]
        terms: list[sa.ColumnElement] = [column >= self.start, column < self.end]
        if dimensions:
            for name in ("provider", "model", "key_label", "source"):
                value = getattr(self, name)
                if value is not None and name in table.c:
                    terms.append(table.c[name] == value)
        return terms
