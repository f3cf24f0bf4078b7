"""What an evaluation reports (for the worker's log line) and how an open alert is shown (dashboard, CLI, tests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class EvaluationReport:
    """What one evaluation did (fingerprints per transition; outbox rows written)."""

    now: datetime
    readings: int = 0
    pending: list[str] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    notifications: int = 0
    messages: list[tuple[str, str, str]] = field(default_factory=list)  # (transition, group_key, channel)
    silenced: list[str] = field(default_factory=list)
    inhibited: list[str] = field(default_factory=list)
    conflicts: int = 0
    commands: list[int] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)

    def record(self, event: str, fingerprint: str) -> None:
        """Note one state change (``pending``, ``firing`` or ``resolved``) of the episode ``fingerprint``."""
        if event == "pending":
            self.pending.append(fingerprint)
        elif event == "firing":
            self.fired.append(fingerprint)
        elif event == "resolved":
            self.resolved.append(fingerprint)
        else:
            raise ValueError(f"unknown alert event {event!r}")

    def line(self) -> str:
        """One log line."""
        return (
            f"alerts at {self.now.isoformat(timespec='seconds')}: {self.readings} readings, "
            f"{len(self.pending)} pending, {len(self.fired)} fired, {len(self.resolved)} resolved, "
            f"{self.notifications} notifications, {len(self.silenced)} silenced, {len(self.inhibited)} inhibited"
            + (f", {len(self.errors)} rule errors" if self.errors else "")
        )


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """An open episode as the dashboard and CLI show it, with why it is not being notified, if it is not."""

    episode_id: int
    rule_id: str
    fingerprint: str
    labels: dict[str, str]
    severity: str
    state: str
    summary: str | None
    value: float | None
    threshold: float | None
    pending_since: datetime
    fired_at: datetime | None
    last_notified_at: datetime | None
    silenced_by: tuple[int, ...]
    inhibited_by: str | None  # fingerprint of the provider-wide alert muting it
