"""What the soak reads back: calls and alert notifications from the demo's store, and the messages the webhook sink
received (polled from its ``GET /messages``, which keeps only the newest 500, every few seconds).

A notification is judged on what the channel received: each message the sink logged is matched, in order, to the
outbox row (``alert_notifications``) that was delivered to that channel — the row holds the message's JSON (rule
ids, labels, values, thresholds, episode ids) that the Slack and Discord renderings only show as text.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from soak_judge import Notice, NoticeAlert

from pulsegate.core.clock import as_utc
from pulsegate.core.queries.alerts import MAX_LIMIT, alert_episodes_frame
from pulsegate.core.store.tables import alert_episodes, alert_notifications, api_usage_metrics

#: Sink format (its URL path) → the alert channel that posts there in the demo.
CHANNEL_OF_FORMAT = {"slack": "default", "discord": "discord"}


def calls(engine: sa.Engine) -> list[tuple[datetime, bool]]:
    """Every live call as (when its first attempt started, whether its final attempt succeeded)."""
    m = api_usage_metrics
    answered = sa.func.max(sa.case((sa.and_(m.c.is_final, m.c.outcome == "success"), 1), else_=0))
    query = sa.select(sa.func.min(m.c.ts), answered).where(m.c.source == "live").group_by(m.c.call_id)
    with engine.connect() as connection:
        return [(as_utc(ts), bool(ok)) for ts, ok in connection.execute(query)]


def episode_starts(engine: sa.Engine) -> dict[int, datetime]:
    e = alert_episodes
    with engine.connect() as connection:
        return {int(i): as_utc(t) for i, t in connection.execute(sa.select(e.c.id, e.c.pending_since))}


def episodes_in_range(engine: sa.Engine, now: datetime, minutes: int = 15) -> int:
    """Alert episodes the Overview's range marks (open now, or begun or resolved in the last ``minutes``)."""
    return len(alert_episodes_frame(engine, now - timedelta(minutes=minutes), now, limit=MAX_LIMIT))


@dataclass(frozen=True, slots=True)
class OutboxRow:
    channel: str
    status: str
    created_at: datetime
    delivered_at: datetime | None
    message: dict[str, Any]

    def notice(self) -> Notice:
        alerts = tuple(
            NoticeAlert(
                rule_id=str(a["rule_id"]),
                labels=dict(a.get("labels") or {}),
                state=str(a["state"]),
                summary=str(a.get("summary") or ""),
                value=a.get("value"),
                threshold=a.get("threshold"),
                episode_id=int(a["episode_id"]),
            )
            for a in self.message.get("alerts") or ()
        )
        return Notice(self.channel, str(self.message["transition"]), self.created_at, self.message["title"], alerts)


def outbox(engine: sa.Engine) -> list[OutboxRow]:
    n = alert_notifications
    query = sa.select(n.c.channel, n.c.status, n.c.created_at, n.c.delivered_at, n.c.message).order_by(n.c.id)
    with engine.connect() as connection:
        return [
            OutboxRow(
                channel,
                status,
                as_utc(created),
                as_utc(delivered) if delivered else None,
                message if isinstance(message, dict) else json.loads(message),
            )
            for channel, status, created, delivered, message in connection.execute(query)
        ]


def received_notices(
    rows: Sequence[OutboxRow], sink_messages: Sequence[dict[str, Any]]
) -> tuple[list[Notice], list[str]]:
    """The notices the sink received, each with its outbox row's JSON; and the mismatches found on the way.

    Per channel, delivered rows in delivery order are paired with the sink's messages of that format in arrival
    order (a channel sends one message at a time); a title that differs is reported.
    """
    problems: list[str] = []
    notices: list[Notice] = []
    for fmt, channel in CHANNEL_OF_FORMAT.items():
        delivered = sorted(
            (r for r in rows if r.channel == channel and r.status == "delivered"),
            key=lambda r: r.delivered_at or r.created_at,
        )
        received = [m for m in sink_messages if m.get("format") == fmt]
        if len(delivered) != len(received):
            problems.append(
                f"channel {channel}: {len(delivered)} messages delivered by the worker, {len(received)} received by "
                f"the sink ({fmt})"
            )
        for row, message in zip(delivered, received, strict=False):
            if row.message.get("title") != message.get("title"):
                problems.append(
                    f"channel {channel}: the sink received {message.get('title')!r} where the outbox delivered "
                    f"{row.message.get('title')!r}"
                )
            notices.append(row.notice())
    undelivered = [r for r in rows if r.status != "delivered"]
    if undelivered:
        shown = ", ".join(f"{r.channel} {r.status} {r.message.get('title')!r}" for r in undelivered[:5])
        problems.append(f"{len(undelivered)} notifications not delivered: {shown}")
    return notices, problems


class SinkPoller:
    """Collects the sink's messages by id from a thread, so none is lost to its 500-message window."""

    def __init__(self, sink_url: str, every_s: float = 5.0) -> None:
        self.url = f"{sink_url}/messages"
        self.every_s = every_s
        self.messages: dict[int, dict[str, Any]] = {}
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-sink-poller", daemon=True)
        self._thread.start()

    def poll(self) -> None:
        try:
            with urllib.request.urlopen(self.url, timeout=5) as response:
                body = json.load(response)
        except OSError:
            self.errors += 1
            return
        for message in body.get("messages", []):
            self.messages.setdefault(int(message["id"]), message)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.poll()

    def stop(self) -> list[dict[str, Any]]:
        """Stop polling after one last poll; every message received, oldest first."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.poll()
        return [self.messages[i] for i in sorted(self.messages)]
