"""Every route with the right token: exact answers, the rows they write, and bad input named, never a 500."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import httpx2
import pytest
import sqlalchemy as sa

from pulsegate.core.clock import ManualClock
from pulsegate.core.ops.health_report import health_report
from pulsegate.core.ops.heartbeat import Heartbeat
from pulsegate.core.ops.probe import ProbeResult
from pulsegate.core.ops.probe_requests import claim_probe_requests, finish_probe_request
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import control_commands, probe_requests
from pulsegate.jobs.service.api import build_app
from tests.worker_api.conftest import (
    NOW,
    SECRETS,
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

H = auth()


def rows(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as connection:
        return [dict(r._mapping) for r in connection.execute(sa.select(table).order_by(table.c.id))]


def fleet(store: sa.Engine) -> None:
    """One live app server with both providers' keys, traffic in the last two hours."""
    keys = [key_state("Primary", 92.5), key_state("Backup 1", 40, "cooldown", cooldown_remaining_s=30)]
    beat(
        store,
        "app-1",
        ago(2),
        {
            "anthropic": provider_state(3, used=7, remaining=43, keys=keys),
            "openai": provider_state(0, keys=[key_state("Primary", 100)]),
        },
    )
    record(store, [attempt(ago(3600 + i), 200.0 + i) for i in range(30)])
    record(store, [attempt(ago(60), 900.0, error_class="overloaded")])


# --- ai-health ------------------------------------------------------------------------------------------------------


async def test_ai_health_is_the_health_report_with_its_status_code(
    store: sa.Engine, client: httpx2.AsyncClient
) -> None:
    fleet(store)
    response = await client.get("/api/admin/ai-health", headers=H)
    expected = json.loads(json.dumps(health_report(store, NOW, heartbeat_interval_s=5.0), default=str))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == expected
    assert response.json()["statistics"] == {"totalRequests": 31, "successRate": 96.8, "avgResponseTime": 237}
    assert response.json()["status"] == "degraded"  # Backup 1 cooling down

    short = await client.get("/api/admin/ai-health", params={"window": "30m"}, headers=H)
    assert short.json()["statistics"] == {"totalRequests": 1, "successRate": 0.0, "avgResponseTime": 900}
    assert short.json()["details"]["windowSeconds"] == 1800
    for value, seconds in (("7200", 7200), ("2h", 7200), ("90s", 90), ("1d", 86400), (" 5m ", 300)):
        answer = await client.get("/api/admin/ai-health", params={"window": value}, headers=H)
        assert answer.json()["details"]["windowSeconds"] == seconds, value


async def test_ai_health_answers_503_when_every_provider_is_down(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    beat(store, "app-1", ago(1), {"anthropic": provider_state(keys=[key_state("Primary", 0, "disabled")])})
    response = await client.get("/api/admin/ai-health", headers=H)
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["details"]["statusReasons"] == ["anthropic is down"]


@pytest.mark.parametrize("window", ["", "abc", "24x", "-5", "1.5h", "0", "59s", "401d", "9" * 30, "\u0663h"])
async def test_a_bad_window_is_named(client: httpx2.AsyncClient, window: str) -> None:
    response = await client.get("/api/admin/ai-health", params={"window": window}, headers=H)
    assert response.status_code == 422
    data = response.json()
    assert data["field"] == "window" and data["error"].startswith("window: expected")


# --- probes -----------------------------------------------------------------------------------------------------------


async def test_probe_request_is_queued_and_its_results_become_visible(
    store: sa.Engine, client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    response = await client.post("/api/admin/probe", json={"provider": "anthropic", "key": "Backup 1"}, headers=H)
    assert response.status_code == 202
    data = response.json()
    request_id = data["id"]
    assert data == {
        "id": request_id,
        "status": "pending",
        "targets": [{"provider": "anthropic", "key": "Backup 1", "model": "claude-haiku-4-5"}],
        "status_url": f"/api/admin/probe/{request_id}",
    }
    assert response.headers["location"] == data["status_url"]
    [row] = rows(store, probe_requests)
    assert (row["requested_by"], row["provider"], row["key_label"], row["model"], row["status"]) == (
        "api",
        "anthropic",
        "Backup 1",
        None,
        "pending",
    )

    pending = (await client.get(data["status_url"], headers=H)).json()
    assert (pending["status"], pending["results"], pending["created_at"]) == ("pending", [], NOW.isoformat())

    # the worker's side: claim, probe, finish
    [claimed] = claim_probe_requests(store, "worker-1", NOW + timedelta(seconds=1))
    result = ProbeResult(
        "anthropic",
        "Backup 1",
        "claude-haiku-4-5",
        True,
        "success",
        None,
        200,
        412.5,
        8,
        1,
        0.00001,
        "ok",
        "7b0f6f4e-0000-4000-8000-000000000001",
        NOW + timedelta(seconds=1),
    )
    assert finish_probe_request(store, claimed.id, [result], NOW + timedelta(seconds=2))
    done = (await client.get(data["status_url"], headers=H)).json()
    assert done["status"] == "done"
    assert done["claimed_by"] == "worker-1"
    assert done["results"] == [result.to_json()]
    assert done["error"] is None


async def test_probe_bodies(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    everything = await client.post("/api/admin/probe", headers=H)
    assert everything.status_code == 202
    assert [(t["provider"], t["key"]) for t in everything.json()["targets"]] == [
        ("anthropic", "Primary"),
        ("anthropic", "Backup 1"),
        ("openai", "Primary"),
    ]
    model = await client.post("/api/admin/probe", json={"provider": "openai", "model": "gpt-4.1-nano"}, headers=H)
    assert model.json()["targets"] == [{"provider": "openai", "key": "Primary", "model": "gpt-4.1-nano"}]
    both = await client.post("/api/admin/probe", json={"key": "Primary"}, headers=H)
    assert [t["provider"] for t in both.json()["targets"]] == ["anthropic", "openai"]
    assert [r["key_label"] for r in rows(store, probe_requests)] == [None, None, "Primary"]


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b"{not json", 400, "body", "body: not valid JSON (JSONDecodeError: "),
        (b'{"key": "\xc3\x28"}', 400, "body", "body: not valid JSON (UnicodeDecodeError: "),
        (b"[1, 2]", 422, "body", "body: expected a JSON object, got list"),
        (b'"anthropic"', 422, "body", "body: expected a JSON object, got str"),
        (b'{"provider": "mistral"}', 422, "provider", "provider: unknown provider 'mistral'; expected one of"),
        (b'{"provider": 7}', 422, "provider", "provider: unknown provider 7; expected one of"),
        (b'{"key": "Backup 9"}', 422, "key", "key: no key labelled 'Backup 9' is configured (keys: anthropic"),
        (b'{"provider": "openai", "key": "Backup 1"}', 422, "key", "key: no openai key labelled 'Backup 1'"),
        (b'{"key": ""}', 422, "key", "key: expected a non-empty string"),
        (b'{"model": ["x"]}', 422, "model", "model: expected a non-empty string"),
        (b'{"model": "' + b"m" * 200 + b'"}', 422, "model", "model: at most 128 characters, got 200"),
        (b'{"providr": "openai"}', 422, "providr", "body: unknown field 'providr'; expected provider, key, model"),
    ],
)
async def test_bad_probe_bodies_are_named(
    store: sa.Engine, client: httpx2.AsyncClient, body: bytes, status: int, field: str, message: str
) -> None:
    response = await client.post("/api/admin/probe", content=body, headers=H)
    assert response.status_code == status, response.text
    data = response.json()
    assert data["field"] == field
    assert data["error"].startswith(message), data["error"]
    assert rows(store, probe_requests) == []


async def test_oversized_and_pathological_bodies_are_refused(client: httpx2.AsyncClient) -> None:
    response = await client.post("/api/admin/probe", content=b" " * (64 * 1024 + 1), headers=H)
    assert response.status_code == 413
    assert response.json()["error"] == "body: at most 65536 bytes, got 65537"

    async def endless():  # no Content-Length: cut off once past the limit
        for _ in range(100):
            yield b" " * 4096

    chunked = await client.post("/api/admin/queue/clear", content=endless(), headers=H)
    assert (chunked.status_code, chunked.json()["error"]) == (413, "body: at most 65536 bytes")
    nested = await client.post("/api/admin/probe", content=b"[" * 60_000, headers=H)
    assert (nested.status_code, nested.json()["field"]) == (400, "body")


async def test_probe_with_no_keys_configured(store: sa.Engine, clock: ManualClock) -> None:
    settings = make_settings(ANTHROPIC_API_KEY="", ANTHROPIC_API_KEY_2="", OPENAI_API_KEY="")
    app = build_app(engine=store, settings=settings, clock=clock, status=lambda: STATUS)
    async with asgi_client(app) as client:
        response = await client.post("/api/admin/probe", headers=H)
        one = await client.post("/api/admin/probe", json={"provider": "openai"}, headers=H)
    assert response.status_code == 422
    assert response.json()["error"].startswith("provider: no keys are configured on the worker")
    assert one.json()["error"] == "provider: no openai keys are configured (set OPENAI_API_KEY)"


async def test_unknown_and_malformed_probe_ids(client: httpx2.AsyncClient) -> None:
    unknown = await client.get("/api/admin/probe/999", headers=H)
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "id: no probe request 999", "status": 404, "field": "id"},
    )
    for bad in ("abc", "-1", "0", "1.5", "99999999999999999999", "9223372036854775808", "\u00b2", "\u0663"):
        response = await client.get(f"/api/admin/probe/{bad}", headers=H)
        assert response.status_code == 422, bad
        assert response.json()["error"].startswith("id: expected a positive integer"), bad
    newline = await client.get("/api/admin/probe/1%0A", headers=H)  # the router itself does not match it
    assert (newline.status_code, newline.json()["status"]) == (404, 404)


# --- control commands ------------------------------------------------------------------------------------------------


async def test_queue_clear_issues_a_command_and_its_acks_show(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    everything = await client.post("/api/admin/queue/clear", headers=H)
    one = await client.post("/api/admin/queue/clear", json={"provider": "openai"}, headers=H)
    assert everything.status_code == one.status_code == 202
    first = everything.json()
    assert first == {
        "id": first["id"],
        "command": "clear_queue",
        "provider": None,
        "key": None,
        "expires_at": (NOW + timedelta(minutes=5)).isoformat(),
        "status_url": f"/api/admin/commands/{first['id']}",
    }
    stored = rows(store, control_commands)
    assert [(r["command"], r["provider"], r["key_label"], r["requested_by"]) for r in stored] == [
        ("clear_queue", None, None, "api"),
        ("clear_queue", "openai", None, "api"),
    ]

    # an instance applies and acknowledges it on its heartbeat
    heartbeat = Heartbeat(
        lambda: {"providers": {}},
        lambda c: f"2 requests cancelled ({c.provider or 'all'})",
        store,
        "app-1",
        started_at=ago(60),
    )
    heartbeat.beat(NOW + timedelta(seconds=1))
    status = await client.get(first["status_url"], headers=H)
    assert status.status_code == 200
    data = status.json()
    assert (data["command"], data["acked"], data["failed"], data["expired"]) == ("clear_queue", 1, 0, False)
    assert data["acks"] == [
        {
            "instance_id": "app-1",
            "acked_at": (NOW + timedelta(seconds=1)).isoformat(),
            "ok": True,
            "result": "2 requests cancelled (all)",
        }
    ]

    bad = await client.post("/api/admin/queue/clear", json={"provider": "azure"}, headers=H)
    extra = await client.post("/api/admin/queue/clear", json={"key": "Primary"}, headers=H)
    assert (bad.status_code, bad.json()["field"]) == (422, "provider")
    assert (extra.status_code, extra.json()["error"]) == (422, "body: unknown field 'key'; expected provider")


async def test_key_commands_by_provider_and_label(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    calls = [
        ("/api/admin/keys/anthropic/Primary/reset", None, ("reset_key", "anthropic", "Primary")),
        ("/api/admin/keys/openai/Primary/disable", None, ("disable_key", "openai", "Primary")),
        ("/api/admin/keys/Backup%201/enable", None, ("enable_key", "anthropic", "Backup 1")),
        ("/api/admin/keys/Primary/reset?provider=openai", None, ("reset_key", "openai", "Primary")),
        ("/api/admin/keys/Primary/disable", {"provider": "anthropic"}, ("disable_key", "anthropic", "Primary")),
    ]
    for path, body, (command, provider, label) in calls:
        response = await client.post(path, json=body, headers=H)
        assert response.status_code == 202, (path, response.text)
        data = response.json()
        assert (data["command"], data["provider"], data["key"]) == (command, provider, label)
        assert data["status_url"] == f"/api/admin/commands/{data['id']}"
    stored = [(r["command"], r["provider"], r["key_label"], r["requested_by"]) for r in rows(store, control_commands)]
    assert stored == [(c, p, k, "api") for _, _, (c, p, k) in calls]


async def test_a_label_only_a_live_instance_reports_is_accepted(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    beat(store, "app-2", ago(30), {"openai": provider_state(keys=[key_state("Backup 7", 55, "degraded")])})
    response = await client.post("/api/admin/keys/Backup%207/reset", headers=H)
    assert response.status_code == 202
    assert (response.json()["provider"], response.json()["key"]) == ("openai", "Backup 7")


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "message"),
    [
        (
            "/api/admin/keys/Primary/reset",
            None,
            400,
            "provider",
            "provider: key label 'Primary' exists for both anthropic and openai; add ?provider=anthropic",
        ),
        ("/api/admin/keys/Nope/reset", None, 404, "label", "label: no key labelled 'Nope' (anthropic: 'Backup 1', "),
        ("/api/admin/keys/openai/Backup%201/disable", None, 404, "label", "label: no openai key labelled 'Backup 1'"),
        ("/api/admin/keys/mistral/Primary/reset", None, 404, "provider", "provider: unknown provider 'mistral'"),
        ("/api/admin/keys/Primary/explode", None, 404, "action", "action: unknown key action 'explode'; expected"),
        ("/api/admin/keys/anthropic/Primary/Reset", None, 404, "action", "action: unknown key action 'Reset'"),
        ("/api/admin/keys/Primary/reset?provider=gcp", None, 422, "provider", "provider: unknown provider 'gcp'"),
        ("/api/admin/keys/Primary/reset", {"provider": ""}, 422, "provider", "provider: unknown provider ''"),
        (
            "/api/admin/keys/anthropic/Primary/reset",
            {"provider": "openai"},
            422,
            "provider",
            "provider: 'openai' does not match the path's 'anthropic'",
        ),
        ("/api/admin/keys/Primary/reset", {"label": "x"}, 422, "label", "body: unknown field 'label'"),
    ],
)
async def test_bad_key_commands_are_named(
    store: sa.Engine, client: httpx2.AsyncClient, path: str, body: dict | None, status: int, field: str, message: str
) -> None:
    response = await client.post(path, json=body, headers=H)
    assert response.status_code == status, response.text
    data = response.json()
    assert data["field"] == field
    assert data["error"].startswith(message), data["error"]
    assert rows(store, control_commands) == []


async def test_unknown_and_malformed_command_ids(client: httpx2.AsyncClient) -> None:
    unknown = await client.get("/api/admin/commands/41", headers=H)
    assert (unknown.status_code, unknown.json()["error"]) == (404, "id: no control command 41")
    malformed = await client.get("/api/admin/commands/x1", headers=H)
    assert (malformed.status_code, malformed.json()["field"]) == (422, "id")


# --- unknown routes, methods, a failing store ------------------------------------------------------------------------


async def test_unknown_routes_and_methods_answer_json(client: httpx2.AsyncClient) -> None:
    missing = await client.get("/api/admin/nothing", headers=H)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "no such route; the routes are listed at /openapi.json", "status": 404},
    )
    outside = await client.get("/nothing")
    assert outside.status_code == 404 and outside.json()["status"] == 404
    wrong = await client.get("/api/admin/probe", headers=H)
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "method GET is not allowed here; allowed: POST"
    assert wrong.headers["allow"] == "POST"
    post_metrics = await client.post("/metrics")
    assert post_metrics.status_code == 405


async def test_an_unreachable_store_answers_503_not_500(tmp_path, clock: ManualClock) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path}/missing/folder/store.db")
    app = build_app(engine=engine, settings=make_settings(), clock=clock, status=lambda: STATUS)
    try:
        async with asgi_client(app) as client:
            for method, path in (
                ("GET", "/api/admin/ai-health"),
                ("POST", "/api/admin/queue/clear"),
                ("POST", "/api/admin/keys/anthropic/Primary/reset"),
                ("GET", "/api/admin/commands/1"),
                ("GET", "/api/admin/probe/1"),
                ("POST", "/api/admin/probe"),
            ):
                response = await client.request(method, path, headers=H)
                assert response.status_code == 503, (path, response.text)
                assert response.json() == {
                    "error": "the store is unreachable or failed; see the worker's log",
                    "status": 503,
                }
            metrics = await client.get("/metrics")
            health = await client.get("/healthz")
    finally:
        engine.dispose()
    assert metrics.status_code == 200
    assert "pulsegate_store_up 0.0" in metrics.text
    assert health.status_code == 200


# --- healthz ----------------------------------------------------------------------------------------------------------


async def test_healthz_returns_the_injected_status(client: httpx2.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(STATUS, default=lambda v: v.isoformat()))


async def test_healthz_answers_503_when_status_fails(store: sa.Engine, clock: ManualClock) -> None:
    def broken() -> dict:
        raise RuntimeError("scheduler gone")

    app = build_app(engine=store, settings=make_settings(), clock=clock, status=broken)
    async with asgi_client(app) as client:
        response = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert (response.status_code, response.json()) == (
        503,
        {"error": "the worker cannot report its status", "status": 503},
    )
    assert metrics.status_code == 200


# --- secrets ----------------------------------------------------------------------------------------------------------


async def test_no_response_or_log_line_ever_contains_the_token_or_a_key(
    store: sa.Engine, client: httpx2.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fleet(store)
    requests: list[tuple[str, str, dict, object]] = [
        ("GET", "/healthz", {}, None),
        ("GET", "/metrics", {}, None),
        ("GET", "/openapi.json", {}, None),
        ("GET", "/docs", {}, None),
        ("GET", "/api/admin/ai-health", H, None),
        ("GET", "/api/admin/ai-health?window=7d", H, None),
        ("POST", "/api/admin/probe", H, {}),
        ("GET", "/api/admin/probe/1", H, None),
        ("POST", "/api/admin/queue/clear", H, {}),
        ("POST", "/api/admin/keys/anthropic/Primary/reset", H, None),
        ("GET", "/api/admin/commands/1", H, None),
    ]
    for secret in SECRETS:  # pasted where a label, provider or model goes; or sent as a wrong token
        requests += [
            ("POST", "/api/admin/probe", H, {"key": secret}),
            ("POST", "/api/admin/probe", H, {"model": secret}),
            ("POST", "/api/admin/probe", H, {"provider": secret}),
            ("POST", "/api/admin/probe", H, {secret: 1}),
            ("POST", "/api/admin/queue/clear", H, {"provider": secret}),
            ("POST", f"/api/admin/keys/{secret}/reset", H, None),
            ("POST", f"/api/admin/keys/anthropic/{secret}/reset", H, None),
            ("POST", f"/api/admin/keys/{secret}/Primary/reset", H, None),
            ("GET", f"/api/admin/ai-health?window={secret}", H, None),
            ("GET", f"/api/admin/probe/{secret}", H, None),
            ("GET", "/api/admin/ai-health", auth(secret + "x"), None),
            ("GET", f"/{secret}", {}, None),
        ]
    for method, path, headers, body in requests:
        response = await client.request(method, path, headers=headers, json=body)
        assert response.status_code < 500, (method, path, response.text)
        shown = response.text + json.dumps(dict(response.headers))
        for secret in SECRETS:
            assert secret not in shown, (method, path)
            assert secret[:24] not in shown, (method, path)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("pulsegate.jobs", "pulsegate.core")))
    assert "refused (401)" in ours
    for secret in SECRETS:
        assert secret[:24] not in ours
