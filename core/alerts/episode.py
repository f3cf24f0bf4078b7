"""An alert episode — one rule × label set from its first breach to its resolution — as a typed value.

One :class:`Episode` is one ``alert_episodes`` row. Episodes are never changed in place: the transition function
(:mod:`pulsegate.core.alerts.transitions`) returns a new one, and the store (:mod:`pulsegate.core.alerts.episode_store`)
writes the difference, conditional on the state it was decided from. Keeping the row typed here is what lets the state
machine be read (and tested) without a database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal, cast

from pulsegate.core.alerts.model import Severity

EpisodeState = Literal["pending", "firing", "resolved"]
OPEN_STATES: tuple[EpisodeState, ...] = ("pending", "firing")
#: The longest summary an episode (and so a message) carries: the column's width.
SUMMARY_MAX = 500


def fingerprint(rule_id: str, labels: Mapping[str, str]) -> str:
    """Stable id of one rule × label set (hex, 32 characters)."""
    text = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def group_key(rule_id: str, labels: Mapping[str, str]) -> str:
    """Alerts of one rule on one provider go out together: ``key_unhealthy/provider=anthropic``."""
    provider = labels.get("provider")
    return f"{rule_id}/provider={provider}" if provider else rule_id


@dataclass(frozen=True, slots=True)
class Episode:
    """One ``alert_episodes`` row. ``id`` is None until the row is inserted; ``clear_since`` is set while a firing
    episode's value is back past the resolve threshold but has not stayed there for ``keep_firing_for`` yet."""

    rule_id: str
    fingerprint: str
    labels: dict[str, str]
    severity: Severity
    state: EpisodeState
    pending_since: datetime
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_notified_at: datetime | None = None
    clear_since: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    summary: str | None = None
    id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Episode:
        return cls(
            rule_id=str(row["rule_id"]),
            fingerprint=str(row["fingerprint"]),
            labels={str(k): str(v) for k, v in dict(row["labels"] or {}).items()},
            severity=cast(Severity, row["severity"]),
            state=cast(EpisodeState, row["state"]),
            pending_since=row["pending_since"],
            fired_at=row["fired_at"],
            resolved_at=row["resolved_at"],
            last_notified_at=row["last_notified_at"],
            clear_since=row["clear_since"],
            value=row["value"],
            threshold=row["threshold"],
            summary=row["summary"],
            id=None if row["id"] is None else int(row["id"]),
        )

    @property
    def row_id(self) -> int:
        """The row's id; only a stored episode (one loaded, not one just opened) has one."""
        assert self.id is not None, f"episode {self.fingerprint} is not stored yet"
        return self.id

    @property
    def started_at(self) -> datetime:
        """When the alert started, as a message states it: when it fired, else when it became pending."""
        return self.fired_at or self.pending_since

    def changes_from(self, before: Episode) -> dict[str, Any]:
        """The columns whose value differs from ``before`` (the id aside): what an update has to write."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "id" and getattr(self, f.name) != getattr(before, f.name)
        }
