"""Writing the history of self-tuned limits: ``state["limit_changes"]`` events into ``limit_changes``.

Each instance numbers its changes (``seq``); the heartbeat sends only those newer than the last it stored and the
insert skips any ``(instance_id, seq)`` already there, so a round retried after a failure never duplicates a row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pulsegate.core.store.tables import limit_changes


def limit_change_rows(instance_id: str, events: Iterable[Mapping[str, Any]], after_seq: int) -> list[dict[str, Any]]:
    """Rows for the events numbered above ``after_seq``."""
    rows = []
    for event in events:
        seq = int(event["seq"])
        if seq <= after_seq:
            continue
        configured = event.get("configured")
        rows.append(
            {
                "ts": datetime.fromisoformat(str(event["ts"])),
                "instance_id": instance_id,
                "seq": seq,
                "provider": str(event["provider"]),
                "key_label": event.get("key_label"),
                "kind": str(event["kind"]),
                "configured": None if configured is None else float(configured),
                "effective_before": float(event["before"]),
                "effective_after": float(event["after"]),
                "reason": str(event["reason"])[:200],
            }
        )
    return rows


def insert_limit_changes(connection: sa.Connection, rows: list[dict[str, Any]]) -> None:
    """Insert, skipping rows already stored (idempotent)."""
    if not rows:
        return
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    connection.execute(insert(limit_changes).on_conflict_do_nothing(index_elements=["instance_id", "seq"]), rows)
