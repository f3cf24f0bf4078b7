"""Leader election among worker replicas: exactly one worker schedules jobs at a time.

PostgreSQL: a session-level advisory lock on a dedicated connection (the server frees it the moment that session
ends), plus the ``worker_leases`` row so every replica can see who leads. SQLite: the ``worker_leases`` row is the
lease itself (taken with one conditional ``UPDATE``, renewed every third of the lease).
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.jobs.service.leadership.base import LEADER_LEASE_NAME, LeaderInfo, Leadership
from pulsegate.jobs.service.leadership.election import Election
from pulsegate.jobs.service.leadership.lease import LeaseLeadership, claim_period, last_claims
from pulsegate.jobs.service.leadership.postgres import PostgresLeadership

__all__ = [
    "LEADER_LEASE_NAME",
    "Election",
    "LeaderInfo",
    "Leadership",
    "LeaseLeadership",
    "PostgresLeadership",
    "claim_period",
    "last_claims",
    "leadership_for",
]


def leadership_for(engine: sa.Engine, instance_id: str, lease_s: float) -> Leadership:
    """The election that fits the store: the advisory lock on PostgreSQL, the lease row elsewhere."""
    if engine.dialect.name == "postgresql":
        return PostgresLeadership(engine, instance_id, lease_s)
    return LeaseLeadership(engine, instance_id, lease_s)
