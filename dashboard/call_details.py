"""A Calls row in full, for the details under the table: every stored field, ids in full (the table shows their
last digits), times to the microsecond."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pulsegate.dashboard import tables

#: A selected row's details: every stored field, ids in full.
DETAILS: dict[str, str] = {
    "ts": "Time (UTC)",
    "id": "Attempt id",
    "call_id": "Call id",
    "attempt": "Attempt",
    "is_final": "Final attempt of the call",
    "source": "Source",
    "provider": "Provider",
    "model": "Model",
    "key_label": "Key",
    "outcome": "Outcome",
    "error_class": "Error class",
    "http_status": "HTTP status",
    "request_id": "Provider request id",
    "latency_ms": "Latency (ms)",
    "ttft_ms": "First token (ms)",
    "queue_wait_ms": "Queue wait (ms)",
    "input_tokens": "Input tokens",
    "output_tokens": "Output tokens",
    "cost_usd": "Cost (USD)",
    "priority": "Priority",
    "streamed": "Streamed",
    "fell_back_from": "Fell back from",
    "feature": "Feature",
    "user_id": "User",
    "instance_id": "Instance",
}


def _shown(value: object, name: str) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return tables.MISSING
    if name in ("id", "call_id"):
        return tables.full_id(value) or tables.MISSING
    if name == "ts":
        return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S.%f")
    if name in ("latency_ms", "ttft_ms", "queue_wait_ms"):
        return f"{float(value):,.1f}"
    if name == "cost_usd":
        return f"${float(value):.6f}"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    return str(value)


def call_details(row: pd.Series) -> pd.DataFrame:
    """One stored attempt as (field, value) rows, ids in full (``user_id`` only when the row carries it)."""
    fields = [(label, _shown(row[name], name)) for name, label in DETAILS.items() if name in row.index]
    return pd.DataFrame(fields, columns=["field", "value"])
