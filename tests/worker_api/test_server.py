"""The app behind a real uvicorn server on a loopback port (as the worker serves it), and its OpenAPI document."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from pulsegate.core.clock import ManualClock
from pulsegate.core.settings import Settings
from pulsegate.core.store.tables import control_commands
from pulsegate.jobs.service.api import build_app
from tests.support.processes import free_port
from tests.worker_api.conftest import SECRETS, STATUS, TOKEN, ago, attempt, beat, key_state, provider_state, record


@pytest.fixture
def server(store: sa.Engine, settings: Settings, clock: ManualClock) -> Iterator[str]:
    """uvicorn in a thread on a free loopback port; yields its base URL."""
    app = build_app(engine=store, settings=settings, clock=clock, status=lambda: STATUS)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn-test", daemon=True)
    thread.start()
    try:
        for _ in range(200):
            if uv.started:
                break
            thread.join(0.05)
        assert uv.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


def call(url: str, method: str = "GET", token: str | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_every_kind_of_route_over_real_http(store: sa.Engine, server: str) -> None:
    beat(store, "app-1", ago(1), {"anthropic": provider_state(2, keys=[key_state("Primary", 97)])})
    record(store, [attempt(ago(30), 250.0, input_tokens=4, output_tokens=2)])
    answers = []

    status, headers, text = call(f"{server}/healthz")
    answers.append(text)
    assert (status, json.loads(text)["role"]) == (200, "leader")

    status, headers, text = call(f"{server}/metrics")
    answers.append(text)
    assert status == 200
    families = {family.name: family for family in text_string_to_metric_families(text)}
    calls = {(s.labels["outcome"], s.labels["key"]): s.value for s in families["pulsegate_calls"].samples}
    assert calls == {("success", "Primary"): 1.0, ("error", "Primary"): 0.0, ("cancelled", "Primary"): 0.0}
    assert [s.value for s in families["pulsegate_queue_depth"].samples] == [2.0]

    status, headers, text = call(f"{server}/api/admin/ai-health")
    answers.append(text)
    assert status == 401
    assert headers["www-authenticate"] == 'Bearer realm="pulsegate"'
    status, headers, text = call(f"{server}/api/admin/ai-health", token="wrong-token-wrong-token")
    answers.append(text)
    assert status == 401

    status, headers, text = call(f"{server}/api/admin/ai-health?window=1h", token=TOKEN)
    answers.append(text)
    report = json.loads(text)
    assert (status, report["status"], report["statistics"]["totalRequests"]) == (200, "ok", 1)

    status, headers, text = call(f"{server}/api/admin/keys/Backup%201/disable", "POST", TOKEN)
    answers.append(text)
    assert status == 202
    command_id = json.loads(text)["id"]
    status, headers, text = call(f"{server}/api/admin/commands/{command_id}", token=TOKEN)
    answers.append(text)
    assert (status, json.loads(text)["command"], json.loads(text)["key_label"]) == (200, "disable_key", "Backup 1")

    status, headers, text = call(f"{server}/api/admin/probe", "POST", TOKEN, b'{"provider": "openai"}')
    answers.append(text)
    assert status == 202
    status, headers, text = call(f"{server}/api/admin/probe/{json.loads(text)['id']}", token=TOKEN)
    answers.append(text)
    assert (status, json.loads(text)["status"]) == (200, "pending")

    status, headers, text = call(f"{server}/api/admin/queue/clear", "POST", TOKEN, b"{oops")
    answers.append(text)
    assert (status, json.loads(text)["field"]) == (400, "body")

    with store.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(control_commands)).scalar_one() == 1
    for text in answers:
        assert not any(secret in text for secret in SECRETS)


def app_routes(app: Starlette) -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def walk(routes, prefix: str) -> None:
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes, prefix + route.path)
            elif isinstance(route, Route):
                found.update(
                    (prefix + route.path, method.lower()) for method in route.methods or () if method != "HEAD"
                )

    walk(app.routes, "")
    return found


def test_openapi_lists_every_route_and_its_path_parameters(store: sa.Engine, settings: Settings, server: str) -> None:
    status, headers, text = call(f"{server}/openapi.json")
    assert status == 200 and headers["content-type"] == "application/json"
    spec = json.loads(text)
    assert spec["openapi"] == "3.1.0"
    documented = {(path, method) for path, methods in spec["paths"].items() for method in methods}
    app = build_app(engine=store, settings=settings, clock=ManualClock(), status=dict)
    assert documented == app_routes(app)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            in_path = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert in_path == set(re.findall(r"{(\w+)}", path)), (path, method)
            assert operation["responses"], (path, method)
            secured = path.startswith("/api/admin/")
            assert bool(operation.get("security")) == secured, (path, method)
            if secured:
                assert {"401", "503"} <= set(operation["responses"]), (path, method)
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media.get("schema", {}).get("$ref")
                    if ref:
                        assert ref.removeprefix("#/components/schemas/") in spec["components"]["schemas"], ref

    status, headers, page = call(f"{server}/docs")
    assert status == 200 and headers["content-type"].startswith("text/html")
    for path in spec["paths"]:
        assert path in page
