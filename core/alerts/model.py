"""What an alert notification carries: the data shared by the engine (writer) and the channels (renderers).

One outbox row (``alert_notifications.message``) holds ``Message.to_json()``; a channel turns it back with
:meth:`Message.from_json` and renders it. Nothing here is secret: labels, values and summaries only.

JSON keys are stable (snake_case, times as ISO-8601 with offset) and documented in the README::

    message = {"transition", "group_key", "title", "severity", "alerts": [alert, ...], "dashboard_url", "created_at"}
    alert   = {"rule_id", "fingerprint", "labels", "severity", "state", "summary", "value", "threshold",
               "window_s", "started_at", "resolved_at", "episode_id", "resolve_threshold"}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

Severity = Literal["info", "warning", "critical"]
AlertState = Literal["firing", "resolved"]
Transition = Literal["firing", "resolved", "repeat", "test"]

SEVERITIES: tuple[Severity, ...] = get_args(Severity)
#: Higher is worse; used to pick a message's overall severity and to compare rules.
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
TRANSITIONS: tuple[Transition, ...] = get_args(Transition)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert inside a message: an episode of one rule for one label set, as a channel shows it."""

    rule_id: str
    fingerprint: str
    labels: dict[str, str]
    severity: Severity
    state: AlertState
    summary: str
    value: float | None
    threshold: float | None
    window_s: float | None
    started_at: datetime
    resolved_at: datetime | None
    episode_id: int
    resolve_threshold: float | None = None  # the rule's, when it has one apart from its threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "fingerprint": self.fingerprint,
            "labels": dict(sorted(self.labels.items())),
            "severity": self.severity,
            "state": self.state,
            "summary": self.summary,
            "value": self.value,
            "threshold": self.threshold,
            "window_s": self.window_s,
            "started_at": _iso(self.started_at),
            "resolved_at": _iso(self.resolved_at),
            "episode_id": self.episode_id,
            "resolve_threshold": self.resolve_threshold,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AlertView:
        started = _parse_time(data["started_at"])
        assert started is not None
        return cls(
            rule_id=str(data["rule_id"]),
            fingerprint=str(data["fingerprint"]),
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            severity=cast(Severity, data["severity"]),
            state=cast(AlertState, data["state"]),
            summary=str(data["summary"]),
            value=_opt_float(data.get("value")),
            threshold=_opt_float(data.get("threshold")),
            window_s=_opt_float(data.get("window_s")),
            started_at=started,
            resolved_at=_parse_time(data.get("resolved_at")),
            episode_id=int(data["episode_id"]),
            resolve_threshold=_opt_float(data.get("resolve_threshold")),
        )


@dataclass(frozen=True, slots=True)
class Message:
    """What one outbox row carries to one channel: one transition of one group of alerts."""

    transition: Transition
    group_key: str
    title: str
    alerts: tuple[AlertView, ...]
    dashboard_url: str | None
    created_at: datetime
    # Not part of the constructor contract: derived, so a renderer never recomputes it differently.
    severity: Severity = field(init=False)

    def __post_init__(self) -> None:
        worst: Severity = "info"
        for alert in self.alerts:
            if SEVERITY_RANK[alert.severity] > SEVERITY_RANK[worst]:
                worst = alert.severity
        object.__setattr__(self, "severity", worst)

    @property
    def firing(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if a.state == "firing")

    @property
    def resolved(self) -> tuple[AlertView, ...]:
        return tuple(a for a in self.alerts if a.state == "resolved")

    def to_json(self) -> dict[str, Any]:
        return {
            "transition": self.transition,
            "group_key": self.group_key,
            "title": self.title,
            "severity": self.severity,
            "alerts": [alert.to_json() for alert in self.alerts],
            "dashboard_url": self.dashboard_url,
            "created_at": _iso(self.created_at),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Message:
        created = _parse_time(data["created_at"])
        assert created is not None
        return cls(
            transition=cast(Transition, data["transition"]),
            group_key=str(data["group_key"]),
            title=str(data["title"]),
            alerts=tuple(AlertView.from_json(a) for a in data.get("alerts") or ()),
            dashboard_url=data.get("dashboard_url"),
            created_at=created,
        )
