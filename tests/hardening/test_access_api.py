"""The admin API's bearer token: missing, wrong and timing-attack tokens all get the same 401, through the
in-process app and through path tricks that might slip past the ``/api/admin`` mount."""

from __future__ import annotations

import ast
import inspect
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate.core.clock import ManualClock
from pulsegate.jobs.service import auth as auth_module
from pulsegate.jobs.service.api import build_app
from tests.worker_api.conftest import NOW, STATUS, TOKEN, asgi_client, auth, make_settings


@pytest.fixture
def app(store: sa.Engine) -> Any:
    return build_app(engine=store, settings=make_settings(), clock=ManualClock(start=NOW), status=lambda: STATUS)


def test_jobs_auth_compares_tokens_with_compare_digest_only() -> None:
    source = inspect.getsource(auth_module)
    tree = ast.parse(source)
    calls = {
        f"{node.func.value.id}.{node.func.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name)
    }
    assert "hmac.compare_digest" in calls or "secrets.compare_digest" in calls
    # no == / != / startswith on the token anywhere: the only comparison of secrets is compare_digest
    body = inspect.getsource(auth_module.token_matches) + inspect.getsource(auth_module.check_authorization)
    assert "expected.get_secret_value() ==" not in body and "== expected" not in body
    assert "token ==" not in body and "startswith(token" not in body


async def test_wrong_tokens_of_equal_and_different_length_get_identical_401s(app) -> None:
    wrong = {
        "equal length": "y" * len(TOKEN),
        "equal length, one character off": TOKEN[:-1] + ("A" if TOKEN[-1] != "A" else "B"),
        "shorter": TOKEN[:5],
        "longer": TOKEN + TOKEN,
        "prefix": TOKEN[:-1],
        "very long": "z" * 4000,
    }
    answers = {}
    async with asgi_client(app) as client:
        for case, token in wrong.items():
            response = await client.get("/api/admin/ai-health", headers=auth(token))
            answers[case] = (response.status_code, response.content, response.headers["www-authenticate"])
    assert set(answers.values()) == {
        (
            401,
            b'{"error":"Authorization: the bearer token is not valid","status":401}',
            'Bearer realm="pulsegate", error="invalid_token"',
        )
    }, answers


@pytest.mark.parametrize(
    "path",
    [
        "/api/admin/ai-health",
        "/api/admin/ai-health/",
        "/api/admin//ai-health",
        "//api/admin/ai-health",
        "/api/admin/./ai-health",
        "/api/admin/x/../ai-health",
        "/api/admin/ai-health;x=1",
        "/api/admin/ai-health%00",
        "/api/admin%2Fai-health",
        "/api/admin",
        "/api/admin/",
        "/API/admin/ai-health",
        "/api/Admin/ai-health",
        "/api/admin/ai-health?token=" + TOKEN[:4],
    ],
)
async def test_no_path_trick_reaches_an_admin_route_without_the_token(app, path: str) -> None:
    async with asgi_client(app) as client:
        for headers in ({}, auth("wrong-" + "x" * 20), {"X-Forwarded-User": "admin", "Cookie": "authenticated=1"}):
            response = await client.get(path, headers=headers)
            if response.status_code == 307:  # Starlette's slash redirect: to the mount, which asks for the token
                assert response.headers["location"].endswith("/api/admin/") and response.content == b""
                response = await client.get(response.headers["location"], headers=headers)
            assert response.status_code in (401, 404, 405), (path, response.status_code, response.text)
            data = response.json()
            assert set(data) == {"error", "status"}, data  # an error, never the health report
            assert "successRate" not in response.text and "statistics" not in response.text


async def test_the_token_in_the_query_string_is_not_accepted(app) -> None:
    async with asgi_client(app) as client:
        for params in ({"token": TOKEN}, {"access_token": TOKEN}, {"authorization": f"Bearer {TOKEN}"}):
            response = await client.get("/api/admin/ai-health", params=params)
            assert response.status_code == 401, params
            assert TOKEN not in response.text
