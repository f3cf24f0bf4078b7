"""Turning episodes into outbox rows: one :class:`~pulsegate.core.alerts.model.Message` per group and channel, titled by
its transition (``[FIRING]``, ``[RESOLVED]``, ``[REPEAT]``), written in the evaluator's transaction."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.episode import Episode
from pulsegate.core.alerts.model import AlertState, AlertView, Message, Transition
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.store.tables import alert_notifications

#: The tag each transition's title starts with (one word: receivers and the demo's inbox read it back).
TITLE_TAGS: dict[str, str] = {"firing": "FIRING", "resolved": "RESOLVED", "repeat": "REPEAT", "test": "TEST"}


def view(episode: Episode, rule: Rule | None, state: AlertState, *, now: datetime) -> AlertView:
    """An episode as a message shows it (``state`` firing or resolved; a resolved episode carries the text and
    value that resolved it — ``None`` when nothing was left to measure, never the last firing value)."""
    return AlertView(
        rule_id=episode.rule_id,
        fingerprint=episode.fingerprint,
        labels=dict(episode.labels),
        severity=episode.severity,
        state=state,
        summary=episode.summary or "",
        value=episode.value,
        threshold=episode.threshold,
        window_s=rule.window_s if rule is not None else None,
        started_at=episode.started_at,
        resolved_at=now if state == "resolved" else None,
        episode_id=episode.row_id,
        resolve_threshold=rule.resolve_threshold if rule is not None else None,
    )


def title(transition: str, rule: Rule | None, views: list[AlertView]) -> str:
    """``[FIRING] Success rate low · anthropic``, ``[REPEAT] Key unhealthy · anthropic · 3 alerts``."""
    name = rule.display_title if rule is not None else views[0].rule_id
    parts = [f"[{TITLE_TAGS[transition]}] {name}"]
    provider = views[0].labels.get("provider")
    if provider:
        parts.append(provider)
    if len(views) > 1:
        parts.append(f"{len(views)} alerts")
    return " · ".join(parts)


def write_message(
    connection: sa.Connection,
    channels: tuple[ChannelConfig, ...],
    dashboard_url: str | None,
    transition: Transition,
    key: str,
    rule: Rule | None,
    views: list[AlertView],
    now: datetime,
) -> tuple[int, list[tuple[str, str, str]]]:
    """One outbox row per channel that takes at least one of these alerts (severity routing; a channel is never
    told about its own failure). Returns (rows, [(transition, group_key, channel)])."""
    rows = []
    messages = []
    for channel in channels:
        chosen = [v for v in views if channel.accepts(v.severity) and v.labels.get("channel") != channel.name]
        if not chosen:
            continue
        message = Message(
            transition=transition,
            group_key=key,
            title=title(transition, rule, chosen),
            alerts=tuple(chosen),
            dashboard_url=dashboard_url,
            created_at=now,
        )
        rows.append(
            {
                "created_at": now,
                "channel": channel.name,
                "transition": transition,
                "group_key": key[:200],
                "episode_ids": [v.episode_id for v in chosen],
                "message": message.to_json(),
                "next_attempt_at": now,
            }
        )
        messages.append((transition, key, channel.name))
    if rows:
        connection.execute(alert_notifications.insert(), rows)
    return len(rows), messages
