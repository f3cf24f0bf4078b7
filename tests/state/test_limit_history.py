"""The heartbeat stores the limit-change history once per change and the Redis status blocks in the details."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate.core.ops.heartbeat import Heartbeat
from pulsegate.core.store.tables import instance_snapshots, limit_changes

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DEGRADED = {"backend": "redis", "degraded": True, "degraded_since": NOW.isoformat(), "outages": 1, "local_share": 0.5}


def _change(seq: int, after: float, key_label: str | None = None) -> dict[str, Any]:
    return {
        "seq": seq,
        "ts": (NOW + timedelta(seconds=seq)).isoformat(),
        "provider": "openai",
        "key_label": key_label,
        "kind": "rpm",
        "configured": None if key_label else 100.0,
        "before": 100.0,
        "after": after,
        "reason": f"change {seq}",
    }


def _state(changes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "providers": {"openai": {"queue": {"depth": 0}, "limits": {}, "breaker": {"state": "closed"}, "keys": []}},
        "limiter": DEGRADED,
        "shared_state": {"backend": "local"},
        "limit_changes": changes,
    }


def _stored(store: sa.Engine) -> list[tuple[int, str | None, float | None, float, str]]:
    with store.connect() as connection:
        rows = connection.execute(sa.select(limit_changes).order_by(limit_changes.c.seq)).mappings()
        return [(r["seq"], r["key_label"], r["configured"], r["effective_after"], r["reason"]) for r in rows]


def test_changes_are_stored_once_and_the_redis_blocks_go_into_the_details(store: sa.Engine) -> None:
    changes = [_change(1, 50.0), _change(2, 25.0, "Primary")]
    heartbeat = Heartbeat(lambda: _state(changes), lambda command: "", store, "app-1", started_at=NOW)
    heartbeat.write_snapshot(_state(changes), NOW)
    heartbeat.write_snapshot(_state(changes), NOW + timedelta(seconds=5))
    assert _stored(store) == [(1, None, 100.0, 50.0, "change 1"), (2, "Primary", None, 25.0, "change 2")]
    assert heartbeat.limit_seq == 2

    heartbeat.limit_seq = 0  # a round whose commit was lost: sending everything again duplicates nothing
    changes.append(_change(3, 75.0))
    heartbeat.write_snapshot(_state(changes), NOW + timedelta(seconds=10))
    assert [row[0] for row in _stored(store)] == [1, 2, 3]
    with store.connect() as connection:
        details = connection.execute(sa.select(instance_snapshots.c.details)).scalars().all()
        first_ts = connection.execute(sa.select(sa.func.min(limit_changes.c.ts))).scalar_one()
    assert all(d["limiter"] == DEGRADED and d["shared_state"] == {"backend": "local"} for d in details)
    assert first_ts.replace(tzinfo=UTC) == NOW + timedelta(seconds=1)
