"""The probe-request table: how the dashboard and the API ask the worker for a probe now.

The requester inserts a ``pending`` row (:func:`request_probe`) and polls :func:`probe_request_status`; the worker
claims rows (:func:`claim_probe_requests`: ``pending → running``, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so two
workers never take the same row; one ``UPDATE`` in an immediate transaction on SQLite, which has one writer at a
time), runs the probes and stores the results (:func:`finish_probe_request`). A row left ``running`` by a worker
that died is claimable again after :data:`STALE_CLAIM`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.clock import require_aware
from pulsegate.core.ops.probe import ProbeError, ProbeResult, check_provider, check_text
from pulsegate.core.store.engine import SQLITE_IMMEDIATE
from pulsegate.core.store.tables import probe_requests

#: A claim older than this with no result belongs to a worker that died: the request is handed out again.
STALE_CLAIM = timedelta(minutes=5)
ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    id: int
    requested_by: str
    provider: str | None
    key_label: str | None
    model: str | None
    created_at: datetime
    claimed_by: str | None
    claimed_at: datetime | None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ProbeRequest:
        return cls(
            id=int(row["id"]),
            requested_by=row["requested_by"],
            provider=row["provider"],
            key_label=row["key_label"],
            model=row["model"],
            created_at=row["created_at"],
            claimed_by=row["claimed_by"],
            claimed_at=row["claimed_at"],
        )


def _aware(field: str, now: object) -> datetime:
    return require_aware(now, functools.partial(ProbeError, field))


def request_probe(
    engine: sa.Engine,
    *,
    requested_by: str,
    now: datetime,
    provider: str | None = None,
    key_label: str | None = None,
    model: str | None = None,
) -> int:
    """Queue a probe (every key, or those of ``provider`` / labelled ``key_label``); returns the request id.
    Whether the key exists is checked by the worker against its settings: an unknown one fails the request."""
    row = {
        "created_at": _aware("now", now),
        "requested_by": check_text("requested_by", requested_by, 64, required=True),
        "provider": (p.value if (p := check_provider(provider)) else None),
        "key_label": check_text("key", key_label, 64),
        "model": check_text("model", model, 128),
        "status": "pending",
    }
    with engine.begin() as connection:
        return int(
            connection.execute(probe_requests.insert().values(**row).returning(probe_requests.c.id)).scalar_one()
        )


def claim_probe_requests(
    engine: sa.Engine, worker_id: str, now: datetime, *, limit: int = 10, stale_after: timedelta = STALE_CLAIM
) -> list[ProbeRequest]:
    """Take up to ``limit`` requests, oldest first: every ``pending`` one, and any left ``running`` for longer
    than ``stale_after``. A request is handed to one claimer only."""
    worker = check_text("worker_id", worker_id, 64, required=True)
    _aware("now", now)
    if limit < 1:
        raise ProbeError("limit", f"expected an integer >= 1, got {limit!r}")
    t = probe_requests
    claimable = sa.or_(t.c.status == "pending", sa.and_(t.c.status == "running", t.c.claimed_at < now - stale_after))
    # A materialised CTE picks the rows once. Written as ``id IN (subquery … SKIP LOCKED LIMIT n)`` PostgreSQL
    # claimed every pending row (measured: LIMIT 2 took 5): the subquery was re-run and skipped its own locks.
    chosen = (
        sa.select(t.c.id)
        .where(claimable)
        .order_by(t.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("chosen")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )
    statement = (
        t.update()
        .where(t.c.id == chosen.c.id, claimable)  # re-checked on the row itself: never a request someone just took
        .values(status="running", claimed_by=worker, claimed_at=now)
        .returning(*t.c)
    )
    with engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
        rows = connection.execute(statement).mappings().all()
    return sorted((ProbeRequest.from_row(row) for row in rows), key=lambda request: request.id)


def finish_probe_request(
    engine: sa.Engine,
    request_id: int,
    results: Sequence[ProbeResult],
    now: datetime,
    *,
    error: str | None = None,
    worker_id: str | None = None,
) -> bool:
    """Store the results: ``done`` (each probe passed or failed on its own), or ``failed`` with ``error`` when
    the request could not be run (e.g. an unknown key label). With ``worker_id``, only that worker's claim is
    finished — a worker that lost its claim to a re-claim does not overwrite the newer run. Returns whether the
    row was updated."""
    _aware("now", now)
    t = probe_requests
    result = {"results": [r.to_json() for r in results], "error": error[:ERROR_MAX] if error else None}
    where = [t.c.id == request_id, t.c.status == "running"]
    if worker_id is not None:
        where.append(t.c.claimed_by == worker_id)
    statement = t.update().where(*where).values(status="failed" if error else "done", finished_at=now, result=result)
    with engine.begin() as connection:
        return connection.execute(statement).rowcount == 1


def probe_request_status(engine: sa.Engine, request_id: int) -> dict[str, Any] | None:
    """The request as the API shows it (times ISO 8601, results as :meth:`ProbeResult.to_json`), None if unknown."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(probe_requests).where(probe_requests.c.id == request_id)).mappings().first()
    if row is None:
        return None
    stored = row["result"] or {}
    return {
        "id": int(row["id"]),
        "status": row["status"],
        "requested_by": row["requested_by"],
        "provider": row["provider"],
        "key_label": row["key_label"],
        "model": row["model"],
        "created_at": _iso(row["created_at"]),
        "claimed_by": row["claimed_by"],
        "claimed_at": _iso(row["claimed_at"]),
        "finished_at": _iso(row["finished_at"]),
        "results": list(stored.get("results") or []),
        "error": stored.get("error"),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
