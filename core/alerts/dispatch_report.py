"""What the outbox dispatcher did: one :class:`Attempt` per send and the :class:`DispatchReport` of a run.

Kept apart from :mod:`pulsegate.core.alerts.delivery` so the worker, ``pulsegate alert test`` and the tests can read a
run's outcome without the machinery that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pulsegate.core.alerts.channels import DeliveryOutcome


@dataclass(frozen=True, slots=True)
class Attempt:
    """One send of one outbox row, as recorded in ``alert_deliveries``."""

    notification_id: int
    channel: str
    transition: str
    attempt: int
    outcome: DeliveryOutcome
    status_code: int | None
    error: str | None  # secret-free; None when delivered
    next_attempt_at: datetime | None  # when it will be tried again (retry outcome only)
    status: Literal["delivered", "pending", "failed"]


@dataclass(slots=True)
class DispatchReport:
    """What one :meth:`Dispatcher.run_once` did; ``store_error`` is set when the store could not be used."""

    claimed: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    store_error: str | None = None

    @property
    def delivered(self) -> int:
        return sum(a.status == "delivered" for a in self.attempts)

    @property
    def retrying(self) -> int:
        return sum(a.status == "pending" for a in self.attempts)

    @property
    def failed(self) -> int:
        return sum(a.status == "failed" for a in self.attempts)

    @property
    def broken_channels(self) -> tuple[str, ...]:
        return tuple(sorted({a.channel for a in self.attempts if a.outcome.kind == "broken"}))

    def line(self) -> str:
        """One log line for the worker: ``alerts sent: 3 delivered, 1 retrying, 0 failed (broken: ops)``."""
        text = f"alerts sent: {self.delivered} delivered, {self.retrying} retrying, {self.failed} failed"
        if self.broken_channels:
            text += f" (broken: {', '.join(self.broken_channels)})"
        if self.store_error:
            text += f"; store unavailable: {self.store_error}"
        return text
