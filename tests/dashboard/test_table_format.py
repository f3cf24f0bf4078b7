"""``pulsegate.dashboard.tables``: how a query frame becomes display values."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from pulsegate.dashboard import tables
from pulsegate.dashboard.tables import Col

CALL = uuid.UUID("01a24d20-7f3c-7000-8000-0000c0ffee42")


def test_prepare_shortens_ids_rounds_numbers_flattens_labels_and_keeps_missing_values_missing() -> None:
    frame = pd.DataFrame(
        {
            "call_id": [CALL, None],
            "latency_ms": [172.2438, None],
            "share": [0.98765, float("nan")],
            "cost_usd": [0.000123456, None],
            "labels": [{"provider": "anthropic", "key": "Primary"}, None],
            "ts": [datetime(2026, 3, 10, 12, 0, 1, 500000, tzinfo=UTC), None],
            "note": ["", "text"],
        }
    )
    shown = tables.prepare(
        frame,
        {
            "call_id": Col("Call", "id"),
            "latency_ms": Col("Latency (ms)", "ms"),
            "share": Col("Success (%)", "percent"),
            "cost_usd": Col("Cost (USD)", "usd"),
            "labels": Col("Labels"),
            "ts": Col("Time (UTC)", "time"),
            "note": Col("Note"),
        },
    )
    assert shown["call_id"].tolist() == ["…c0ffee42", None]  # the random end of a time-ordered id
    assert shown["latency_ms"].tolist() == [172, pd.NA]
    assert shown["share"].tolist()[0] == 98.8 and pd.isna(shown["share"].tolist()[1])
    assert shown["cost_usd"].tolist()[0] == 0.00012
    assert shown["labels"].tolist() == ["provider=anthropic, key=Primary", None]
    assert str(shown["ts"].dtype) == "datetime64[us, UTC]" or str(shown["ts"].dtype).endswith(", UTC]")
    assert shown["note"].tolist() == [None, "text"]  # an empty text is missing too: one dash, not a blank


def test_a_table_names_a_column_it_cannot_find() -> None:
    with pytest.raises(KeyError, match=r"table columns \['latency_ms'\] are not in the frame"):
        tables.prepare(pd.DataFrame({"ts": []}), {"latency_ms": Col("Latency (ms)", "ms")})


def test_a_calls_row_in_full_has_every_field_and_full_ids() -> None:
    from pulsegate.dashboard.call_details import call_details

    row = pd.Series(
        {
            "ts": pd.Timestamp("2026-03-10 12:00:01.5", tz="UTC"),
            "id": CALL,
            "call_id": CALL,
            "attempt": 2,
            "is_final": np.True_,
            "latency_ms": 1234.56,
            "cost_usd": 0.0000421,
            "http_status": None,
            "streamed": False,
        }
    )
    details = dict(call_details(row).itertuples(index=False))
    assert details == {
        "Time (UTC)": "2026-03-10 12:00:01.500000",
        "Attempt id": "01a24d20-7f3c-7000-8000-0000c0ffee42",
        "Call id": "01a24d20-7f3c-7000-8000-0000c0ffee42",
        "Attempt": "2",
        "Final attempt of the call": "yes",
        "HTTP status": "–",
        "Latency (ms)": "1,234.6",
        "Cost (USD)": "$0.000042",
        "Streamed": "no",
    }
