"""One attempt as recorded: the row of ``api_usage_metrics``, built on the call path as cheaply as possible."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from pulsegate.core.errors import ErrorClass
from pulsegate.core.ids import uuid7


def new_instance_id() -> str:
    """``host-pid-xxxx``: tells app servers and restarts apart in snapshots and rows."""
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


@dataclass(slots=True)
class AttemptRecord:
    ts: datetime
    call_id: uuid.UUID
    attempt: int
    provider: str
    model: str
    outcome: str  # "success" | "error" | "cancelled"
    latency_ms: float
    instance_id: str
    is_final: bool = False
    source: str = "live"
    key_label: str | None = None
    key_fingerprint: str | None = None
    error_class: ErrorClass | None = None
    http_status: int | None = None
    request_id: str | None = None
    ttft_ms: float | None = None
    queue_wait_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    unpriced: bool = False
    usage_estimated: bool = False
    priority: int = 5
    streamed: bool = False
    user_id: str | None = None
    feature: str | None = None
    fell_back_from: str | None = None
    app: str | None = None
    id: uuid.UUID | None = None

    def as_row(self) -> dict[str, object]:
        """The table row (enum as its string); called off the call path. The id is fixed on first use, so the
        spool and the database always see the same row."""
        if self.id is None:
            self.id = uuid7(int(self.ts.timestamp() * 1000))
        row = {f.name: getattr(self, f.name) for f in _FIELDS}
        if self.error_class is not None:
            row["error_class"] = self.error_class.value
        return row


_FIELDS = fields(AttemptRecord)
