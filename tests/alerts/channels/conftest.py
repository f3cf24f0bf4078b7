"""Fixtures for channel and delivery tests: loopback receivers, sample messages, outbox rows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from pulsegate.core.alerts.channels import ChannelConfig
from pulsegate.core.alerts.model import AlertView, Message
from pulsegate.core.store.tables import alert_deliveries, alert_episodes, alert_notifications
from tests.alerts.channels.receivers import DISCORD_TOKEN, GENERIC_TOKEN, HMAC_SECRET, SLACK_TOKEN, Receiver

T0 = datetime.fromisoformat("2026-01-01T00:00:00+00:00")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.stop()


def slack_config(receiver: Receiver, name: str = "ops-slack", **extra: Any) -> ChannelConfig:
    return ChannelConfig(
        name=name, format="slack", url=SecretStr(receiver.url(f"/services/T0A1/B0B2/{SLACK_TOKEN}")), **extra
    )


def discord_config(receiver: Receiver, name: str = "ops-discord", **extra: Any) -> ChannelConfig:
    return ChannelConfig(
        name=name, format="discord", url=SecretStr(receiver.url(f"/api/webhooks/42/{DISCORD_TOKEN}")), **extra
    )


def generic_config(receiver: Receiver, name: str = "hook", *, signed: bool = True, **extra: Any) -> ChannelConfig:
    return ChannelConfig(
        name=name,
        format="generic",
        url=SecretStr(receiver.url(f"/hooks/{GENERIC_TOKEN}")),
        secret=SecretStr(HMAC_SECRET) if signed else None,
        **extra,
    )


def alert(
    *,
    rule_id: str = "success_rate_low",
    state: str = "firing",
    severity: str = "critical",
    labels: dict[str, str] | None = None,
    summary: str = "anthropic success rate 71.2 % < 95 % over 15m",
    value: float | None = 71.2,
    threshold: float | None = 95.0,
    window_s: float | None = 900.0,
    episode_id: int = 1,
    started_at: datetime = T0,
    resolved_at: datetime | None = None,
) -> AlertView:
    return AlertView(
        rule_id=rule_id,
        fingerprint=f"fp-{rule_id}-{episode_id}",
        labels={"provider": "anthropic"} if labels is None else labels,
        severity=severity,  # type: ignore[arg-type]
        state=state,  # type: ignore[arg-type]
        summary=summary,
        value=value,
        threshold=threshold,
        window_s=window_s,
        started_at=started_at,
        resolved_at=resolved_at,
        episode_id=episode_id,
    )


def message(
    alerts: Sequence[AlertView] | None = None,
    *,
    transition: str = "firing",
    title: str = "Success rate low",
    dashboard_url: str | None = "https://pulse.example.com",
    created_at: datetime = T0,
) -> Message:
    return Message(
        transition=transition,  # type: ignore[arg-type]
        group_key="success_rate_low|provider=anthropic",
        title=title,
        alerts=tuple(alerts if alerts is not None else [alert()]),
        dashboard_url=dashboard_url,
        created_at=created_at,
    )


def add_episode(engine: sa.Engine, *, rule_id: str = "success_rate_low", state: str = "firing", fp: str = "fp") -> int:
    with engine.begin() as connection:
        return int(
            connection.execute(
                alert_episodes.insert()
                .values(
                    rule_id=rule_id,
                    fingerprint=fp,
                    labels={"provider": "anthropic"},
                    severity="critical",
                    state=state,
                    pending_since=T0 - timedelta(minutes=5),
                    fired_at=T0,
                    value=71.2,
                    threshold=95.0,
                    summary="anthropic success rate 71.2 % < 95 % over 15m",
                )
                .returning(alert_episodes.c.id)
            ).scalar_one()
        )


def enqueue(
    engine: sa.Engine,
    channel: str,
    msg: Message,
    *,
    now: datetime = T0,
    episode_ids: Sequence[int] = (),
) -> int:
    """One outbox row, as the engine writes it."""
    with engine.begin() as connection:
        return int(
            connection.execute(
                alert_notifications.insert()
                .values(
                    created_at=now,
                    channel=channel,
                    transition=msg.transition,
                    group_key=msg.group_key,
                    episode_ids=list(episode_ids),
                    message=msg.to_json(),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
                .returning(alert_notifications.c.id)
            ).scalar_one()
        )


def outbox(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(alert_notifications).order_by(alert_notifications.c.id)).mappings()
        return [dict(r) for r in rows]


def deliveries(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(sa.select(alert_deliveries).order_by(alert_deliveries.c.id)).mappings()
        return [dict(r) for r in rows]
