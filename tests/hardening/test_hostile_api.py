"""Hostile admin API requests (hypothesis) — always a 4xx with a JSON error naming what is wrong, never a 5xx — and
SQL-injection strings through every user-controlled value that reaches a query: API paths, bodies and query
strings, AIClient's model / user id / feature, and the dashboard's query filters. The tables survive and every
value round-trips literally (parameterised SQL only).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulsegate import AIClient
from pulsegate.core.clock import ManualClock
from pulsegate.core.queries import QueryFilter, kpi_summary, latest_key_health, recent_attempts, traffic_series
from pulsegate.core.store.tables import ALL_TABLES
from pulsegate.jobs.service.api import build_app
from tests.client.conftest import emu, emulator_server, make_client, rows  # noqa: F401
from tests.worker_api.conftest import (
    NOW,
    STATUS,
    ago,
    asgi_client,
    attempt,
    auth,
    beat,
    key_state,
    make_settings,
    provider_state,
    record,
)

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
INJECTIONS = [
    "'; DROP TABLE api_usage_metrics; --",
    '" OR 1=1 --',
    "' OR '1'='1",
    "Primary'); DELETE FROM control_commands; --",
    "1; TRUNCATE alert_episodes",
    "%' OR key_label LIKE '%",
    "\\'; SELECT pg_sleep(5); --",
]
SEGMENT = st.one_of(
    st.text(min_size=1, max_size=30),
    st.sampled_from([*INJECTIONS, "Primary", "Backup 1", "..", "%00", "9" * 40, "-1", "0", "anthropic", "é☃"]),
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30) | st.sampled_from(INJECTIONS),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
BODY = st.one_of(
    st.binary(max_size=60),
    JSON_VALUE.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["provider", "key", "model", "label", "x"]), JSON_VALUE | st.sampled_from(INJECTIONS)
    ).map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"[" * 5000, b'{"provider": "anthropic"', b"\xff\xfe", b'{"a": NaN}', b'{"provider": "\\ud800"}']),
)
ROUTES = [
    ("GET", "/api/admin/ai-health"),
    ("POST", "/api/admin/probe"),
    ("GET", "/api/admin/probe/{id}"),
    ("POST", "/api/admin/queue/clear"),
    ("POST", "/api/admin/keys/{label}/{action}"),
    ("POST", "/api/admin/keys/{provider}/{label}/{action}"),
    ("GET", "/api/admin/commands/{id}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
]


@pytest.fixture
def app(store: sa.Engine) -> Any:
    return build_app(engine=store, settings=make_settings(), clock=ManualClock(start=NOW), status=lambda: STATUS)


def _check_answer(response: Any) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        data = response.json()
        assert data["status"] == response.status_code and data["error"], data
        assert "Traceback" not in response.text


def _tables_intact(engine: sa.Engine) -> None:
    names = set(sa.inspect(engine).get_table_names())
    assert {t.name for t in ALL_TABLES} <= names


@FAST
@given(
    route=st.sampled_from(ROUTES),
    segments=st.fixed_dictionaries({"id": SEGMENT, "label": SEGMENT, "action": SEGMENT, "provider": SEGMENT}),
    query=st.lists(st.tuples(st.sampled_from(["window", "provider", "x"]), SEGMENT), max_size=3),
    body=BODY,
)
async def test_any_admin_request_is_answered_with_json_and_never_a_5xx(
    app, store: sa.Engine, route: tuple[str, str], segments: dict[str, str], query: list, body: bytes
) -> None:
    method, template = route
    path = template.format(**{k: quote(v, safe="") for k, v in segments.items()})
    async with asgi_client(app) as client:
        response = await client.request(method, path, params=query, content=body, headers=auth())
    _check_answer(response)
    _tables_intact(store)


@pytest.mark.parametrize("value", INJECTIONS)
async def test_injection_strings_in_api_values_round_trip_literally(app, store: sa.Engine, value: str) -> None:
    # a live instance reports a key with this label: the API may then issue commands for it
    beat(store, "app-1", ago(5), {"anthropic": provider_state(keys=[key_state(value, 90.0)])})
    async with asgi_client(app) as client:
        for path in (
            f"/api/admin/keys/anthropic/{quote(value, safe='')}/disable",
            f"/api/admin/keys/{quote(value, safe='')}/reset",
        ):
            answer = await client.post(path, headers=auth())
            assert answer.status_code == 202, answer.text
            assert answer.json()["key"] == value
            status = await client.get(answer.json()["status_url"], headers=auth())
            assert status.status_code == 200 and status.json()["key_label"] == value, status.text
        probe = await client.post("/api/admin/probe", json={"provider": "anthropic", "model": value}, headers=auth())
        assert probe.status_code == 202, probe.text
        assert {t["model"] for t in probe.json()["targets"]} == {value}
        for params in ({"window": value}, {"provider": value}):
            _check_answer(await client.get("/api/admin/ai-health", params=params, headers=auth()))
        _check_answer(await client.post("/api/admin/queue/clear", json={"provider": value}, headers=auth()))
    _tables_intact(store)
    with store.connect() as connection:
        commands = connection.execute(sa.text("SELECT key_label FROM control_commands")).scalars().all()
        probes = connection.execute(sa.text("SELECT model FROM probe_requests")).scalars().all()
        health = connection.execute(sa.text("SELECT key_label FROM key_health_snapshots")).scalars().all()
    assert commands == [value, value] and probes == [value] and health == [value]


@pytest.mark.parametrize("value", INJECTIONS[:3])
async def test_injection_strings_in_calls_and_dashboard_filters_round_trip_literally(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    store: sa.Engine,
    value: str,
) -> None:
    client: AIClient = make_client(anthropic=1, openai=0, store=store)
    options = {"user_id": value, "feature": value[:64]}
    await client.generate_response(
        {"model": value, "max_tokens": 8}, [{"role": "user", "content": value}], None, options
    )
    assert client.recorder.flush()
    (row,) = rows(store)
    assert (row["model"], row["user_id"], row["feature"]) == (value, value, value[:64])
    _tables_intact(store)
    # the dashboard's queries, filtered by the same strings: bound parameters, so they match exactly this row
    ts = row["ts"]
    flt = QueryFilter(ts.replace(minute=0, second=0, microsecond=0), ts.replace(minute=59, second=59), model=value)
    assert recent_attempts(store, flt, include_user_id=True)["user_id"].tolist() == [value]
    assert recent_attempts(store, QueryFilter(flt.start, flt.end, model=value + "x")).empty
    assert kpi_summary(store, flt) is not None and traffic_series(store, flt) is not None
    assert latest_key_health(store, NOW, key_label=value).keys.empty
    _tables_intact(store)


def test_record_helper_still_writes_after_the_injections(store: sa.Engine) -> None:
    record(store, [attempt(ago(60), 120.0, key_label=INJECTIONS[0], model=INJECTIONS[1])])
    with store.connect() as connection:
        stored = connection.execute(sa.text("SELECT key_label, model FROM api_usage_metrics")).all()
    assert [tuple(r) for r in stored] == [(INJECTIONS[0], INJECTIONS[1])]
    _tables_intact(store)


@pytest.mark.parametrize("model", ["gpt\\u0000-4", "\\ud800", "claude\\u001b[31m", "\\u0000"])
async def test_a_probe_model_with_control_characters_is_a_422_naming_the_field(
    app, store: sa.Engine, model: str
) -> None:
    body = ('{"provider": "anthropic", "model": "' + model + '"}').encode("utf-8", "surrogatepass")
    async with asgi_client(app) as client:
        response = await client.post("/api/admin/probe", content=body, headers=auth())
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "model"
    assert "control characters" in response.json()["error"]
    with store.connect() as connection:
        assert connection.execute(sa.text("SELECT COUNT(*) FROM probe_requests")).scalar() == 0


SILENCE_TEXT = st.one_of(st.text(max_size=12), st.sampled_from([*INJECTIONS, "a\x00b", "\ud800", "\x1b[2J", "ok"]))


@FAST
@given(
    matchers=st.dictionaries(SILENCE_TEXT, SILENCE_TEXT, max_size=3),
    comment=st.none() | SILENCE_TEXT,
)
def test_a_hostile_silence_is_stored_literally_or_refused_naming_the_field(
    store: sa.Engine, matchers: dict[str, str], comment: str | None
) -> None:
    from pulsegate.core.alerts.silences import SilenceError, create_silence, list_silences

    try:
        silence_id = create_silence(
            store, matchers, ends_at=NOW + timedelta(hours=1), created_by="dashboard", comment=comment, now=NOW
        )
    except SilenceError as exc:
        assert exc.field in ("matchers", "comment"), exc
        return
    (stored,) = [s for s in list_silences(store, NOW) if s.id == silence_id]
    assert stored.comment == comment
    assert stored.matchers == {k.strip(): v for k, v in matchers.items()}
    _tables_intact(store)


@FAST
@given(label=SILENCE_TEXT, instance=st.none() | SILENCE_TEXT)
def test_a_hostile_control_command_is_stored_literally_or_refused_naming_the_field(
    store: sa.Engine, label: str, instance: str | None
) -> None:
    from pulsegate.core.ops.control import ControlCommandError, command_status, issue_command

    try:
        command_id = issue_command(
            store, "disable_key", provider="anthropic", key_label=label, target_instance=instance,
            requested_by="cli", now=NOW,
        )  # fmt: skip
    except ControlCommandError as exc:
        assert exc.field in ("key_label", "target_instance"), exc
        return
    status = command_status(store, command_id)
    assert (status["key_label"], status["target_instance"]) == (label, instance)
    _tables_intact(store)
