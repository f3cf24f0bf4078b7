"""Tables a person can read, on every page (through AppTest): short ids (never Arrow's byte dicts), human headers
with units, rounded numbers, an en dash for a missing value."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pandas as pd
import pytest
import sqlalchemy as sa

from pulsegate.core.store.tables import alert_episodes, limit_changes
from tests.dashboard.conftest import app
from tests.dashboard.test_pages import seed
from tests.queries.data import NOW, attempt_row, episode_row, insert, insert_attempts, limit_change_row

CALL = uuid.UUID("01a24d20-7f3c-7000-8000-0000c0ffee42")


def config(element) -> dict[str, dict]:
    return json.loads(element.proto.columns)


def test_the_calls_table_shows_short_ids_human_headers_and_rounded_numbers(dash_store: sa.Engine) -> None:
    insert_attempts(
        dash_store,
        [attempt_row(NOW - timedelta(seconds=5), call_id=CALL, latency_ms=172.2438, ttft_ms=None, cost_usd=None)],
    )
    at = app("calls").run()
    assert not at.exception
    [grid, *_] = at.dataframe
    row = grid.value.iloc[0]
    assert row["call_id"] == "…c0ffee42"
    assert row["latency_ms"] == 172
    assert pd.isna(row["cost_usd"])
    assert "id" not in grid.value.columns  # the attempt id is in the row's details and the CSV, not the grid
    headers = {name: entry.get("label") for name, entry in config(grid).items()}
    assert headers["latency_ms"] == "Latency (ms)" and headers["ts"] == "Time (UTC)" and headers["call_id"] == "Call"
    assert grid.proto.placeholder == "–"


def seed_every_table(engine: sa.Engine) -> None:
    seed(engine)
    insert_attempts(
        engine,
        [
            attempt_row(NOW - timedelta(minutes=5), source="probe", latency_ms=12.345),
            attempt_row(NOW - timedelta(minutes=1), latency_ms=172.2438, cost_usd=None),
        ],
    )
    insert(
        engine,
        alert_episodes,
        [episode_row("breaker_open", "openai", fingerprint="f1", summary="openai breaker open")],
    )
    insert(engine, limit_changes, [limit_change_row(10, 1, 50.0, reason="429 on key 'Primary'")])


@pytest.mark.parametrize("page", [None, "keys", "probes", "alerts", "calls", "limits"])
def test_every_table_on_every_page_has_human_headers_and_no_none_cells(dash_store: sa.Engine, page) -> None:
    seed_every_table(dash_store)
    at = app(page).run()
    assert not at.exception
    assert at.dataframe or at.table, page
    for table in at.table:  # static tables (the Overview's active alerts): headers are the labels themselves
        assert all("_" not in label for label in table.value.columns), f"{page}: {list(table.value.columns)}"
        cells = [str(v) for v in table.value.to_numpy().ravel()]
        assert "None" not in cells and "nan" not in cells and "NaT" not in cells, f"{page}: {cells}"
    for grid in at.dataframe:
        columns = config(grid)
        assert grid.proto.placeholder == "–", page
        for name in grid.value.columns:
            label = columns.get(name, {}).get("label")
            assert label, f"{page}: column {name!r} has no header"
            assert "_" not in label, f"{page}: header {label!r} looks like a column name"
        for name, values in grid.value.items():
            assert not any(isinstance(v, bytes | dict | uuid.UUID) for v in values), f"{page}: raw {name!r}"
            floats = [v for v in values if isinstance(v, float) and not pd.isna(v)]
            assert all(round(v, 4) == v for v in floats), f"{page}: {name!r} not rounded: {floats}"


def test_health_bars_are_green_when_healthy_and_red_only_when_unhealthy(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("keys").run()
    health = config(at.dataframe[0])["health"]
    options = health["type_config"]
    assert options["type"] == "progress" and options["color"] == "auto"  # green above the scale's middle
    low, high = options["min_value"], options["max_value"]
    middle = (low + high) / 2
    assert 49.9 < middle < 50.0  # unhealthy under 50: 50.0 is green, 49.9 red


def test_the_inbox_shows_the_sinks_messages_newest_first_with_human_headers(
    dash_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The demo's Inbox reads the real webhook sink (loopback) and draws its messages like every other table."""
    import urllib.request

    from pulsegate.jobs.cli.demo.sink import WebhookSink

    sink = WebhookSink()
    try:
        for path, body in (
            ("/slack", {"text": "[FIRING] Circuit breaker open · anthropic\n🔴 anthropic breaker open"}),
            ("/discord?wait=true", {"content": "[RESOLVED] Circuit breaker open · anthropic", "embeds": []}),
        ):
            request = urllib.request.Request(sink.url(path), data=json.dumps(body).encode(), method="POST")
            urllib.request.urlopen(request, timeout=5).close()
        monkeypatch.setenv("PULSEGATE_DEMO_SINK_URL", sink.url(""))
        at = app("inbox").run()
    finally:
        sink.stop()
    assert not at.exception
    [grid] = at.dataframe
    assert list(grid.value["transition"]) == ["resolved", "firing"]
    alerts = list(grid.value["alerts"])
    assert pd.isna(alerts[0]) and alerts[1] == "🔴 anthropic breaker open"  # no alert line: an en dash
    assert isinstance(grid.value["received_at"].dtype, pd.DatetimeTZDtype)
    assert list(grid.value.columns) == ["received_at", "format", "transition", "title", "alerts"]
    headers = {name: entry.get("label") for name, entry in config(grid).items()}
    assert [headers[name] for name in grid.value.columns] == ["Received (UTC)", "Format", "Message", "Title", "Alerts"]
    assert grid.proto.placeholder == "–"
