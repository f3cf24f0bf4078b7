"""The Calls page's CSV export: the whole filtered set, streamed by the dashboard server's export route, on SQLite
and PostgreSQL; counted on click and refused over the cap; links that work once."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.testclient import TestClient

from pulsegate.core.queries.attempt_export import EXPORT_COLUMNS, stream_attempts
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.dashboard import export
from tests.dashboard.conftest import app, texts
from tests.queries.data import NOW, attempt_row, insert_attempts


def client() -> TestClient:
    return TestClient(Starlette(routes=export.routes()))


def read_csv(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


def url_of(engine: sa.Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def seed_mixed(engine: sa.Engine) -> list[dict]:
    """40 rows in the last hour (every 4th an error, every 5th on openai), 2 outside it."""
    rows = []
    for i in range(40):
        error = i % 4 == 0
        rows.append(
            attempt_row(
                NOW - timedelta(seconds=60 * i + 7),
                provider="openai" if i % 5 == 0 else "anthropic",
                outcome="error" if error else "success",
                error_class="timeout" if error else None,
                http_status=None if error else 200,
                latency_ms=100.0 + i + 0.25,
                ttft_ms=None,
                input_tokens=i,
                cost_usd=0.000125 * i if i % 3 else None,
                user_id=f"user-{i}",
                feature='chat, "quoted"',
                request_id=f"req_{i}",
            )
        )
    insert_attempts(engine, rows)
    insert_attempts(engine, [attempt_row(NOW - timedelta(hours=2)), attempt_row(NOW + timedelta(seconds=1))])
    return rows


def test_export_route_streams_exactly_the_filtered_rows_newest_first(store: sa.Engine) -> None:
    rows = seed_mixed(store)
    flt = QueryFilter(NOW - timedelta(hours=1), NOW, provider="anthropic")
    token = export.register(export.ExportRequest(url_of(store), flt, "error", None, False, 8, "calls.csv"))
    response = client().get(export.link(token))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="calls.csv"'
    assert response.headers["content-encoding"] == "gzip"  # the test client accepts gzip, like a browser
    lines = response.text.splitlines()
    assert lines[0] == ",".join(EXPORT_COLUMNS)  # no user_id: the export was not asked by a signed-in operator
    found = read_csv(response.text)
    expected = [r for r in rows[:40] if r["outcome"] == "error" and r["provider"] == "anthropic"]
    assert [f["id"] for f in found] == [str(r["id"]) for r in expected]  # newest first, all of them
    assert len(found) == 8
    first, source = found[0], expected[0]
    assert first["ts"] == str(source["ts"]) == "2026-03-10 11:55:53+00:00"
    assert (first["call_id"], first["latency_ms"], first["input_tokens"]) == (str(source["call_id"]), "104.25", "4")
    assert (first["http_status"], first["ttft_ms"], first["error_class"]) == ("", "", "timeout")
    assert first["cost_usd"] == str(0.000125 * 4)
    assert first["feature"] == 'chat, "quoted"' and first["request_id"] == "req_4"
    assert first["is_final"] == "True" and first["source"] == "live"


def test_export_carries_user_ids_only_for_a_signed_in_operator(store: sa.Engine) -> None:
    seed_mixed(store)
    flt = QueryFilter(NOW - timedelta(hours=1), NOW)
    token = export.register(export.ExportRequest(url_of(store), flt, None, None, True, 40, "calls.csv"))
    found = read_csv(client().get(export.link(token), headers={"Accept-Encoding": "identity"}).text)
    assert len(found) == 40
    assert [f["user_id"] for f in found[:3]] == ["user-0", "user-1", "user-2"]


def test_an_export_link_works_once() -> None:
    token = export.register(
        export.ExportRequest("sqlite://", QueryFilter(NOW - timedelta(hours=1), NOW), None, None, False, 1, "c.csv")
    )
    assert export.claim(token) is not None
    response = client().get(export.link(token))
    assert response.status_code == 410
    assert "used already or expired" in response.text
    assert client().get(export.link("made-up")).status_code == 410


def test_an_export_link_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    request = export.ExportRequest("sqlite://", QueryFilter(NOW - timedelta(hours=1), NOW), None, None, False, 1, "c")
    token = export.register(request, now=1000.0)
    assert export.claim(token, now=1000.0 + export.TOKEN_TTL_S + 1) is None


def test_rows_come_from_the_cursor_a_chunk_at_a_time(store: sa.Engine) -> None:
    seed_mixed(store)
    chunks = list(stream_attempts(store, QueryFilter(NOW - timedelta(hours=1), NOW), chunk_rows=7))
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 7, 5]
    assert all(isinstance(c[0][1], uuid.UUID) for c in chunks)  # id, second column


# --- the page --------------------------------------------------------------------------------------------------------


def test_calls_page_exports_every_page_of_the_view_not_only_the_one_shown(dash_store: sa.Engine) -> None:
    insert_attempts(dash_store, [attempt_row(NOW - timedelta(seconds=10 * i), latency_ms=float(i)) for i in range(120)])
    client()  # this process now serves the export route, as `pulsegate dashboard` does
    at = app("calls").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 50  # one page shown
    at.button(key="calls_export").click().run()
    assert not at.exception
    [button] = at.get("link_button")
    assert button.proto.label == "Download CSV (120 calls)"
    response = client().get(button.proto.url)
    found = read_csv(response.text)
    assert len(found) == 120
    assert [float(f["latency_ms"]) for f in found[:3]] == [0.0, 1.0, 2.0]
    assert "user_id" not in found[0]


def test_calls_page_refuses_an_export_over_the_cap_with_the_count(
    dash_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pulsegate.core.queries.attempt_export as attempt_export

    monkeypatch.setattr(attempt_export, "MAX_EXPORT_ROWS", 10)
    insert_attempts(dash_store, [attempt_row(NOW - timedelta(seconds=10 * i)) for i in range(12)])
    client()
    at = app("calls").run()
    at.button(key="calls_export").click().run()
    assert not at.exception
    assert not at.get("link_button")
    [error] = at.error
    assert error.value.startswith("12 calls match this view (")
    assert "an export holds at most 10. Narrow the filter" in error.value
    at.selectbox(key="calls_outcome").select("error").run()  # another view: the refusal was about the last one
    assert not at.error
    assert "up to 10 rows, as CSV" in texts(at)


def test_at_most_two_exports_run_at_once_and_each_frees_its_slot(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_mixed(store)
    request = export.ExportRequest(
        url_of(store), QueryFilter(NOW - timedelta(hours=1), NOW), None, None, False, 40, "c"
    )
    monkeypatch.setattr(export, "_running", export.MAX_RUNNING)
    busy = client().get(export.link(export.register(request)))
    assert (busy.status_code, busy.text) == (429, "2 exports are running already: try again when one has finished.")
    monkeypatch.setattr(export, "_running", 0)
    assert len(read_csv(client().get(export.link(export.register(request))).text)) == 40
    assert export._running == 0
