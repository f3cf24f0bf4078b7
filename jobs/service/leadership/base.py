"""What every election backend offers, and the ``worker_leases`` row they all keep up to date for visibility."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pulsegate.core.store.tables import worker_leases

#: The ``worker_leases`` row of the scheduler's leader.
LEADER_LEASE_NAME = "scheduler"


@dataclass(frozen=True, slots=True)
class LeaderInfo:
    """Who leads, as the lease row says. ``silent``: the holder let its lease run out (dead, or cut off from
    the store) — a standby reports that before and while it takes over."""

    holder: str | None
    acquired_at: datetime | None
    renewed_at: datetime | None
    expires_at: datetime | None
    silent: bool

    @classmethod
    def none(cls) -> LeaderInfo:
        return cls(None, None, None, None, silent=False)

    def to_json(self, instance_id: str | None = None) -> dict[str, Any]:
        def iso(value: datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "holder": self.holder,
            "is_self": self.holder is not None and self.holder == instance_id,
            "acquired_at": iso(self.acquired_at),
            "renewed_at": iso(self.renewed_at),
            "expires_at": iso(self.expires_at),
            "silent": self.silent,
        }


class Leadership(ABC):
    """One worker's side of the election. Store calls are blocking and run in a thread; ``acquire_or_renew``
    answers True (we lead until ``now + lease_s``), False (someone else leads, or our hold is definitely gone) or
    raises when the store could not say (the caller keeps leading only until its safety deadline)."""

    def __init__(self, engine: sa.Engine, instance_id: str, lease_s: float, name: str = LEADER_LEASE_NAME) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s: expected a positive number of seconds, got {lease_s!r}")
        if not instance_id or len(instance_id) > 64:
            raise ValueError(f"instance_id: expected 1–64 characters, got {instance_id!r}")
        self.engine = engine
        self.instance_id = instance_id
        self.lease_s = float(lease_s)
        self.name = name

    @abstractmethod
    async def acquire_or_renew(self, now: datetime) -> bool: ...

    @abstractmethod
    async def release(self, now: datetime) -> None:
        """Give leadership up now (shutdown), so a standby takes over at its next try instead of after expiry."""

    async def holder(self, now: datetime) -> LeaderInfo:
        return await asyncio.to_thread(read_lease, self.engine, self.name, now)

    async def close(self) -> None:  # noqa: B027 — most backends hold nothing to free
        """Free what the backend holds (connections); after :meth:`release` on shutdown."""


def read_lease(engine: sa.Engine, name: str, now: datetime) -> LeaderInfo:
    """Blocking: the lease row ``name`` as a :class:`LeaderInfo` (``LeaderInfo.none()`` when nobody holds it)."""
    query = sa.select(worker_leases).where(worker_leases.c.name == name)
    with engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    if row is None:
        return LeaderInfo.none()
    return LeaderInfo(
        holder=row["holder"],
        acquired_at=row["acquired_at"],
        renewed_at=row["renewed_at"],
        expires_at=row["expires_at"],
        silent=row["expires_at"] <= now,
    )
