"""Channel health: whether each alert channel is ``ok``, ``failing``, ``broken`` or ``unknown``.

Read from the latest ``alert_deliveries`` rows alone: the dispatcher (:mod:`pulsegate.core.alerts.delivery`) starts each
stored error with its outcome kind (``retry:``, ``rejected:``, ``broken:``), so a dead webhook can be told from a
flaky one without another column.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from pulsegate.core.store.tables import alert_deliveries

#: Consecutive failed attempts after which a channel counts as failing (a dead webhook is broken at once).
FAILING_AFTER = 3
HEALTH_LOOKBACK = 20

HealthState = Literal["ok", "failing", "broken", "unknown"]


@dataclass(frozen=True, slots=True)
class ChannelHealth:
    """How a channel has been doing, from its latest ``alert_deliveries`` rows."""

    channel: str
    state: HealthState
    consecutive_failures: int
    last_attempt_at: datetime | None
    last_delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "state": self.state,
            "consecutive_failures": self.consecutive_failures,
            "last_attempt_at": None if self.last_attempt_at is None else self.last_attempt_at.isoformat(),
            "last_delivered_at": None if self.last_delivered_at is None else self.last_delivered_at.isoformat(),
            "last_status_code": self.last_status_code,
            "last_error": self.last_error,
        }


def channel_health(
    engine: sa.Engine,
    now: datetime,
    *,
    channels: Iterable[str] = (),
    lookback: int = HEALTH_LOOKBACK,
) -> dict[str, ChannelHealth]:
    """Per channel: ``broken`` if its latest attempt found the webhook dead, ``failing`` after
    :data:`FAILING_AFTER` failed attempts in a row, ``ok`` if its latest attempt (or one since) delivered,
    ``unknown`` for a named channel never tried. Reads only the last ``lookback`` attempts of each channel."""
    d = alert_deliveries
    health: dict[str, ChannelHealth] = {}
    with engine.connect() as connection:
        names = set(connection.execute(sa.select(d.c.channel).where(d.c.ts <= now).distinct()).scalars())
        for name in sorted(names):
            rows = connection.execute(
                sa.select(d.c.ts, d.c.delivered, d.c.status_code, d.c.error)
                .where(d.c.channel == name, d.c.ts <= now)
                .order_by(d.c.ts.desc(), d.c.id.desc())
                .limit(lookback)
            ).all()
            failures = 0
            for row in rows:
                if row.delivered:
                    break
                failures += 1
            delivered_at = next((row.ts for row in rows if row.delivered), None)
            if delivered_at is None:
                delivered_at = connection.execute(
                    sa.select(sa.func.max(d.c.ts)).where(d.c.channel == name, d.c.delivered.is_(True))
                ).scalar()
            latest = rows[0]
            state: HealthState
            if latest.delivered:
                state = "ok"
            elif (latest.error or "").startswith("broken:"):
                state = "broken"
            elif failures >= FAILING_AFTER:
                state = "failing"
            else:
                state = "ok"
            health[name] = ChannelHealth(
                channel=name,
                state=state,
                consecutive_failures=failures,
                last_attempt_at=latest.ts,
                last_delivered_at=delivered_at,
                last_status_code=latest.status_code,
                last_error=None if latest.delivered else latest.error,
            )
    for name in channels:
        health.setdefault(name, ChannelHealth(name, "unknown", 0, None, None, None, None))
    return health
