"""Fixtures for the worker API: settings with a token and keys, the app on a real store, an in-process client.

The app is driven in-process through httpx's ASGI transport (fast) and, in ``test_server.py``, through a real
uvicorn server on a loopback port. Rows are written the way production writes them: attempts through the
recorder's :class:`BatchWriter` (raw rows and both rollup tiers in one transaction), snapshots through
:meth:`Heartbeat.write_snapshot`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette

from pulsegate.core.clock import ManualClock
from pulsegate.core.ops.heartbeat import Heartbeat
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.recording.batch_writer import BatchWriter
from pulsegate.core.settings import Settings, load_settings
from pulsegate.jobs.service.api import build_app

TOKEN = "adm-" + "T0k3n" * 6
ANTHROPIC_SECRETS = ("sk-ant-api03-" + "a1" * 20, "sk-ant-api03-" + "b2" * 20)
OPENAI_SECRET = "sk-proj-" + "c3" * 24
SECRETS = (TOKEN, *ANTHROPIC_SECRETS, OPENAI_SECRET)
#: 12:20:30 — the worker "started" in the 12:00 hour; metrics counters sum the hour tier from 12:00.
NOW = datetime(2026, 3, 10, 12, 20, 30, tzinfo=UTC)
STATUS: dict[str, Any] = {
    "role": "leader",
    "instance_id": "worker-1",
    "leader": {"instance_id": "worker-1", "silent": False},
    "jobs": {
        "probes:anthropic:Primary": {
            "last_run": datetime(2026, 3, 10, 12, 15, tzinfo=UTC),
            "last_ok": True,
            "last_error": None,
            "next_run": "2026-03-10T12:25:00+00:00",
            "runs": 4,
            "failures": 1,
        },
        "retention": {"last_run": None, "last_ok": None, "last_error": None, "next_run": None},
    },
    "recorder": {"spool_pending": 3, "buffered": 5, "lost": 2, "written": 40, "write_failures": 1},
}


def make_settings(**env: str) -> Settings:
    values = {
        "ADMIN_TOKEN": TOKEN,
        "ANTHROPIC_API_KEY": ANTHROPIC_SECRETS[0],
        "ANTHROPIC_API_KEY_2": ANTHROPIC_SECRETS[1],
        "OPENAI_API_KEY": OPENAI_SECRET,
    }
    values.update(env)
    return load_settings({k: v for k, v in values.items() if v}, env_file=None)


def auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def app(store: sa.Engine, settings: Settings, clock: ManualClock) -> Starlette:
    return build_app(engine=store, settings=settings, clock=clock, status=lambda: STATUS)


def asgi_client(app: Starlette) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx2.AsyncClient(transport=transport, base_url="http://worker.test")


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx2.AsyncClient]:
    async with asgi_client(app) as http:
        yield http


def attempt(
    ts: datetime,
    latency_ms: float,
    *,
    provider: str = "anthropic",
    model: str = "claude-haiku-4-5",
    key_label: str | None = "Primary",
    source: str = "live",
    error_class: str | None = None,
    **values: Any,
) -> AttemptRecord:
    from pulsegate.core.errors import ErrorClass

    return AttemptRecord(
        ts=ts,
        call_id=uuid.uuid4(),
        attempt=1,
        provider=provider,
        model=model,
        outcome="error" if error_class else "success",
        latency_ms=latency_ms,
        instance_id="app-1",
        is_final=True,
        source=source,
        key_label=key_label,
        error_class=ErrorClass(error_class) if error_class else None,
        **values,
    )


def record(engine: sa.Engine, attempts: list[AttemptRecord]) -> None:
    """Through the recorder's writer: raw rows plus both rollup tiers, as in production."""
    assert BatchWriter(engine.dialect).write(engine, attempts, replay=False) == len(attempts)


def provider_state(
    depth: int = 0,
    *,
    used: int = 0,
    remaining: int = 50,
    limit: int = 50,
    breaker: str = "closed",
    oldest_wait_s: float | None = None,
    keys: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "queue": {"depth": depth, "oldest_wait_s": oldest_wait_s},
        "limits": {"rpm": {"used": used, "remaining": remaining, "limit": limit}},
        "breaker": {"state": breaker},
        "keys": keys or [],
    }


def key_state(label: str, score: float, status: str = "healthy", **values: Any) -> dict[str, Any]:
    return {
        "label": label,
        "fingerprint": "fp-" + label[:8],
        "masked": "sk-…" + label[:4],
        "score": score,
        "status": status,
        **values,
    }


def beat(
    engine: sa.Engine, instance_id: str, at: datetime, providers: dict[str, Any], recorder: dict[str, int] | None = None
) -> None:
    """One heartbeat's snapshot rows for ``instance_id`` at ``at``."""
    state: dict[str, Any] = {"providers": providers}
    if recorder is not None:
        state["recorder"] = recorder
    heartbeat = Heartbeat(lambda: state, lambda c: "ok", engine, instance_id, host="h-" + instance_id, pid=1)
    heartbeat.write_snapshot(state, at)


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


ClientFactory = Callable[..., httpx2.AsyncClient]
