"""Send a sample ("test") notification to one channel or all: proves the URL, format and receiver work end to end.

Named ``sample_alert`` rather than ``test_*`` so neither a reader nor pytest takes this product code for a test.

The test goes through the same outbox and dispatcher as real alerts (so it exercises rendering, signing and
recording too), but is tried once, at once: the caller wants an answer now, not a retry in an hour. The attempt
is recorded in ``alert_deliveries``, so a test that finds a dead webhook marks the channel broken, and one that
succeeds clears it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx2
import sqlalchemy as sa

from pulsegate.core.alerts.channels import ChannelConfig
from pulsegate.core.alerts.delivery import Dispatcher
from pulsegate.core.alerts.model import AlertView, Message
from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.errors import PulsegateError
from pulsegate.core.store.tables import alert_notifications

SAMPLE_GROUP_KEY = "test"


class UnknownChannelError(PulsegateError):
    """``--channel NAME`` names no configured channel."""


@dataclass(frozen=True, slots=True)
class SampleOutcome:
    """The result of one test send (secret-free: the URL only masked)."""

    channel: str
    format: str
    masked_url: str
    delivered: bool
    status_code: int | None
    error: str | None
    notification_id: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "format": self.format,
            "url": self.masked_url,
            "delivered": self.delivered,
            "status_code": self.status_code,
            "error": self.error,
            "notification_id": self.notification_id,
        }


def sample_message(config: ChannelConfig, now: datetime, dashboard_url: str | None = None) -> Message:
    """The message a test sends: one sample alert, so the receiver sees the full layout."""
    alert = AlertView(
        rule_id="test",
        fingerprint="test",
        labels={"channel": config.name},
        severity="info",
        state="firing",
        summary=f"Test notification for channel {config.name!r}: if you can read this, alerts reach you.",
        value=None,
        threshold=None,
        window_s=None,
        started_at=now,
        resolved_at=None,
        episode_id=0,
    )
    return Message(
        transition="test",
        group_key=SAMPLE_GROUP_KEY,
        title="Pulsegate test notification",
        alerts=(alert,),
        dashboard_url=dashboard_url,
        created_at=now,
    )


async def send_sample_alert(
    engine: sa.Engine,
    channels: Sequence[ChannelConfig],
    *,
    channel: str | None = None,
    now: datetime | None = None,
    dashboard_url: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
    http: httpx2.AsyncClient | None = None,
) -> list[SampleOutcome]:
    """Write a ``test`` outbox row per chosen channel and deliver them now (one attempt each)."""
    chosen = [c for c in channels if channel is None or c.name == channel]
    if channel is not None and not chosen:
        known = ", ".join(repr(c.name) for c in channels) or "none"
        raise UnknownChannelError(f"no alert channel named {channel!r} (configured: {known})")
    if not chosen:
        return []
    now = now or clock.now()
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        for config in chosen:
            message = sample_message(config, now, dashboard_url)
            ids[config.name] = connection.execute(
                alert_notifications.insert()
                .values(
                    created_at=now,
                    channel=config.name,
                    transition="test",
                    group_key=SAMPLE_GROUP_KEY,
                    episode_ids=[],
                    message=message.to_json(),
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                )
                .returning(alert_notifications.c.id)
            ).scalar_one()
    dispatcher = Dispatcher(engine, chosen, clock, http=http)
    report = await dispatcher.deliver_ids(list(ids.values()), now, single_shot=True)
    attempts = {a.notification_id: a for a in report.attempts}
    outcomes: list[SampleOutcome] = []
    for config in chosen:
        attempt = attempts.get(ids[config.name])
        outcomes.append(
            SampleOutcome(
                channel=config.name,
                format=config.format,
                masked_url=config.masked_url,
                delivered=attempt is not None and attempt.status == "delivered",
                status_code=None if attempt is None else attempt.status_code,
                error=(report.store_error or "not sent") if attempt is None else attempt.error,
                notification_id=ids[config.name],
            )
        )
    return outcomes
