"""The admin routes' bearer token: 401 without it or with a wrong one, 503 when ADMIN_TOKEN is unset."""

from __future__ import annotations

import hmac

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from pulsegate.core.clock import ManualClock
from pulsegate.jobs.service import auth as auth_module
from pulsegate.jobs.service.api import build_app
from pulsegate.jobs.service.auth import DISABLED_MESSAGE, check_authorization
from tests.worker_api.conftest import STATUS, TOKEN, asgi_client, auth, make_settings

#: Every admin route (method, path) with a body that would be accepted.
ADMIN_ROUTES: list[tuple[str, str, bytes]] = [
    ("GET", "/api/admin/ai-health", b""),
    ("POST", "/api/admin/probe", b"{}"),
    ("GET", "/api/admin/probe/1", b""),
    ("POST", "/api/admin/queue/clear", b"{}"),
    ("POST", "/api/admin/keys/Backup%201/reset", b""),
    ("POST", "/api/admin/keys/anthropic/Primary/disable", b""),
    ("POST", "/api/admin/keys/openai/Primary/enable", b""),
    ("GET", "/api/admin/commands/1", b""),
    ("GET", "/api/admin/no-such-route", b""),  # unknown admin paths are guarded too: nothing is revealed
]
BAD_HEADERS: dict[str, dict[str, str | bytes]] = {
    "missing": {},
    "empty": {"Authorization": ""},
    "wrong token": auth("x" * len(TOKEN)),
    "token prefix": auth(TOKEN[:-1]),
    "token plus a character": auth(TOKEN + "x"),
    "basic scheme": {"Authorization": f"Basic {TOKEN}"},
    "no scheme": {"Authorization": TOKEN},
    "scheme only": {"Authorization": "Bearer"},
    "non-ascii token": {"Authorization": "Bearer t\u00f6ken-\u00e9".encode()},
}


async def test_every_admin_route_answers_401_for_a_missing_wrong_or_malformed_header(app) -> None:
    async with asgi_client(app) as client:
        for method, path, body in ADMIN_ROUTES:
            for case, headers in BAD_HEADERS.items():
                response = await client.request(method, path, content=body, headers=headers)
                assert response.status_code == 401, (method, path, case, response.text)
                data = response.json()
                assert data["status"] == 401 and data["error"].startswith("Authorization:"), (path, case)
                challenge = response.headers["www-authenticate"]
                assert challenge.startswith('Bearer realm="pulsegate"'), (path, case)
                assert TOKEN not in response.text and TOKEN not in str(response.headers)


async def test_the_challenge_says_which_failure_it_was(app) -> None:
    async with asgi_client(app) as client:
        missing = await client.get("/api/admin/ai-health")
        malformed = await client.get("/api/admin/ai-health", headers={"Authorization": f"Basic {TOKEN}"})
        wrong = await client.get("/api/admin/ai-health", headers=auth("nope-nope-nope-nope"))
    assert missing.headers["www-authenticate"] == 'Bearer realm="pulsegate"'
    assert malformed.headers["www-authenticate"] == 'Bearer realm="pulsegate", error="invalid_request"'
    assert wrong.headers["www-authenticate"] == 'Bearer realm="pulsegate", error="invalid_token"'
    assert missing.json()["error"] == "Authorization: missing; send `Authorization: Bearer <ADMIN_TOKEN>`"
    assert wrong.json()["error"] == "Authorization: the bearer token is not valid"


async def test_the_right_token_passes_on_every_admin_route(app) -> None:
    async with asgi_client(app) as client:
        for method, path, body in ADMIN_ROUTES:
            for headers in (auth(), {"Authorization": f"bearer   {TOKEN}  "}):
                response = await client.request(method, path, content=body, headers=headers)
                assert response.status_code not in (401, 403, 500, 503), (method, path, response.text)


async def test_admin_routes_answer_503_with_how_to_enable_them_when_admin_token_is_unset(
    store: sa.Engine, clock: ManualClock
) -> None:
    settings = make_settings(ADMIN_TOKEN="")
    assert settings.admin_token is None
    app = build_app(engine=store, settings=settings, clock=clock, status=lambda: STATUS)
    async with asgi_client(app) as client:
        for method, path, body in ADMIN_ROUTES:
            for headers in ({}, auth()):
                response = await client.request(method, path, content=body, headers=headers)
                assert response.status_code == 503, (method, path)
                assert response.json() == {"error": DISABLED_MESSAGE, "status": 503}
                assert "www-authenticate" not in response.headers
        public = await client.get("/healthz")
    assert public.status_code == 200
    assert "set ADMIN_TOKEN (at least 16 characters" in DISABLED_MESSAGE


def test_the_comparison_is_constant_time_on_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", spy)
    expected = SecretStr(TOKEN)
    assert check_authorization(f"Bearer {TOKEN}".encode(), expected) is None
    assert check_authorization(b"Bearer wrong", expected) is not None
    assert calls == [(TOKEN.encode(), TOKEN.encode()), (b"wrong", TOKEN.encode())]
