"""Silences: time-boxed label matchers that keep matching alerts from being notified (they still change state, and
show as silenced). Created from the CLI or the dashboard; expire on their own at ``ends_at`` or early by hand.

A matcher is ``label → exact value``; ``rule_id`` matches the rule and ``severity`` the alert's severity, any other
name an alert label (``provider``, ``key_label``, ``model``, ``channel``, ``instance_kind`` or a rule's own labels).
An alert is silenced when every matcher of an active silence matches it. Matchers are written ``name=value``
(the CLI's ``--match``, the dashboard's comma-separated field): :func:`parse_matchers` is the one grammar for both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.clock import require_aware
from pulsegate.core.errors import PulsegateError
from pulsegate.core.store.tables import alert_silences

MAX_DURATION = timedelta(days=90)
#: Ended silences stay listed this long (for the dashboard's history).
LIST_ENDED_FOR = timedelta(days=7)


class SilenceError(PulsegateError, ValueError):
    """A silence that cannot be created; ``field`` names the bad argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class MatcherError(SilenceError):
    """One ``name=value`` that is not one; ``part`` is the text as given (each front end quotes it its own way)."""

    def __init__(self, part: str) -> None:
        self.part = part
        self.reason = "expected NAME=VALUE, e.g. provider=anthropic"
        super().__init__("matchers", f"{part!r}: {self.reason}")


def parse_matcher(text: str) -> tuple[str, str]:
    """``provider=anthropic`` → ``("provider", "anthropic")``, both trimmed; :class:`MatcherError` when either side
    is empty or there is no ``=``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise MatcherError(text)
    return name.strip(), value.strip()


def parse_matchers(parts: Iterable[str]) -> dict[str, str]:
    """Every ``name=value`` of ``parts`` (a later one for the same name wins). Empty is allowed here:
    :func:`create_silence` says a silence needs at least one."""
    return dict(parse_matcher(part) for part in parts)


def split_matchers(text: str) -> list[str]:
    """One text field's matchers: ``provider=anthropic, rule_id=breaker_open`` (commas or line breaks between)."""
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class Silence:
    id: int
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    expired_at: datetime | None
    created_at: datetime
    created_by: str
    comment: str | None

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at and (self.expired_at is None or self.expired_at > now)

    def state(self, now: datetime) -> str:
        """``active``, ``pending`` (starts later) or ``expired``."""
        if self.active(now):
            return "active"
        return "pending" if now < self.starts_at and self.expired_at is None else "expired"

    def matches(self, rule_id: str, labels: Mapping[str, str], severity: str | None = None) -> bool:
        subject = {**labels, "rule_id": rule_id}
        if severity is not None:
            subject["severity"] = severity
        return all(subject.get(name) == value for name, value in self.matchers.items())

    def to_json(self, now: datetime | None = None) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "matchers": dict(self.matchers),
            "starts_at": self.starts_at.isoformat(),
            "ends_at": self.ends_at.isoformat(),
            "expired_at": None if self.expired_at is None else self.expired_at.isoformat(),
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "comment": self.comment,
        }
        if now is not None:
            data["state"] = self.state(now)
        return data

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Silence:
        return cls(
            id=int(row["id"]),
            matchers={str(k): str(v) for k, v in dict(row["matchers"]).items()},
            starts_at=row["starts_at"],
            ends_at=row["ends_at"],
            expired_at=row["expired_at"],
            created_at=row["created_at"],
            created_by=row["created_by"],
            comment=row["comment"],
        )


def _aware(field: str, value: object) -> datetime:
    return require_aware(value, functools.partial(SilenceError, field))


def _storable(text: str, *, line_breaks: bool = False) -> bool:
    """No NUL, no lone surrogate (neither can be stored on PostgreSQL), no other control character (line breaks
    and tabs allowed where ``line_breaks``)."""
    allowed = "\n\r\t" if line_breaks else ""
    return not any(
        (ord(ch) < 32 and ch not in allowed) or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) <= 0xDFFF for ch in text
    )


def validate_matchers(matchers: object) -> dict[str, str]:
    if not isinstance(matchers, Mapping) or not matchers:
        raise SilenceError("matchers", "expected at least one label=value, e.g. provider=anthropic")
    checked: dict[str, str] = {}
    for name, value in matchers.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise SilenceError("matchers", f"label names are non-empty strings of at most 64 characters: {name!r}")
        if not isinstance(value, str) or not value or len(value) > 128:
            raise SilenceError("matchers", f"{name}: expected a non-empty value of at most 128 characters")
        if not _storable(name) or not _storable(value):
            raise SilenceError("matchers", f"{name.strip()[:64]!r}: expected text without control characters")
        checked[name.strip()] = value
    return checked


def create_silence(
    engine: sa.Engine,
    matchers: Mapping[str, str],
    *,
    ends_at: datetime,
    created_by: str,
    comment: str | None = None,
    now: datetime,
    starts_at: datetime | None = None,
) -> int:
    """Store a silence; returns its id. ``starts_at`` defaults to ``now``; it lasts at most 90 days."""
    checked = validate_matchers(matchers)
    now = _aware("now", now)
    start = _aware("starts_at", starts_at) if starts_at is not None else now
    end = _aware("ends_at", ends_at)
    if end <= max(start, now):
        raise SilenceError("ends_at", f"must be in the future and after starts_at, got {end.isoformat()}")
    if end - start > MAX_DURATION:
        raise SilenceError("ends_at", f"a silence lasts at most {MAX_DURATION.days} days")
    if not isinstance(created_by, str) or not created_by.strip() or len(created_by) > 64:
        raise SilenceError("created_by", "expected who created it, e.g. 'cli' or 'dashboard' (≤ 64 characters)")
    if comment is not None and (not isinstance(comment, str) or len(comment) > 500):
        raise SilenceError("comment", "expected text of at most 500 characters")
    if comment is not None and not _storable(comment, line_breaks=True):
        raise SilenceError("comment", "expected text without control characters")
    row = {
        "created_at": now,
        "created_by": created_by,
        "matchers": checked,
        "starts_at": start,
        "ends_at": end,
        "comment": comment,
    }
    with engine.begin() as connection:
        return int(
            connection.execute(alert_silences.insert().values(**row).returning(alert_silences.c.id)).scalar_one()
        )


def expire_silence(engine: sa.Engine, silence_id: int, now: datetime) -> bool:
    """End a silence now; True if it was active or pending, False if it had already ended. KeyError if unknown."""
    s = alert_silences
    with engine.begin() as connection:
        row = connection.execute(sa.select(s).where(s.c.id == silence_id)).mappings().one_or_none()
        if row is None:
            raise KeyError(f"no silence with id {silence_id}")
        silence = Silence.from_row(row)
        if silence.state(now) == "expired":
            return False
        connection.execute(s.update().where(s.c.id == silence_id).values(expired_at=now))
        return True


def active_silences(engine: sa.Engine, now: datetime) -> list[Silence]:
    """Silences in force at ``now``, oldest first."""
    s = alert_silences
    query = (
        sa.select(s)
        .where(s.c.starts_at <= now, s.c.ends_at > now, sa.or_(s.c.expired_at.is_(None), s.c.expired_at > now))
        .order_by(s.c.id)
    )
    with engine.connect() as connection:
        return [Silence.from_row(row) for row in connection.execute(query).mappings()]


def list_silences(engine: sa.Engine, now: datetime) -> list[Silence]:
    """Active and pending silences, and those ended in the last 7 days, newest first (``Silence.state(now)``)."""
    s = alert_silences
    query = sa.select(s).where(s.c.ends_at > now - LIST_ENDED_FOR).order_by(s.c.id.desc())
    with engine.connect() as connection:
        return [Silence.from_row(row) for row in connection.execute(query).mappings()]


def silenced_by(silences: list[Silence], rule_id: str, labels: Mapping[str, str], severity: str) -> list[int]:
    """Ids of the silences muting this alert."""
    return [s.id for s in silences if s.matches(rule_id, labels, severity)]
