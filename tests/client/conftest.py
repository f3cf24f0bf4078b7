"""Fixtures for the call wrapper: one real emulator over HTTP, clients built on it, and time that tests move.

Every test here drives the real ``anthropic`` and ``openai`` SDKs through ``AIClient`` against the emulator; the
emulator's own per-key stats are the ground truth of what reached "the provider".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient
from pulsegate.core.clock import ManualClock
from pulsegate.core.masking import fingerprint
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.settings import Settings, load_settings
from pulsegate.core.store.tables import api_usage_metrics
from pulsegate.emulator import EmulatorServer

ANTHROPIC_KEYS = [f"sk-ant-test-{name}-{'x' * 24}" for name in ("primary", "backup1", "backup2", "backup3")]
OPENAI_KEYS = [f"sk-test-openai-{name}-{'y' * 24}" for name in ("primary", "backup1", "backup2")]
HIGH_RPM = "100000"


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer() as server:
        yield server


@pytest.fixture
def emu(emulator_server: EmulatorServer) -> EmulatorServer:
    """The shared emulator with the default scenario and empty stats."""
    emulator_server.set_scenario({})
    emulator_server.reset()
    return emulator_server


def settings_for(emu: EmulatorServer, anthropic: int = 3, openai: int = 1, **env: str) -> Settings:
    values = {"ANTHROPIC_BASE_URL": emu.url, "OPENAI_BASE_URL": emu.openai_base_url}
    values["ANTHROPIC_RPM"] = values["OPENAI_RPM"] = HIGH_RPM
    for index, key in enumerate(ANTHROPIC_KEYS[:anthropic]):
        values["ANTHROPIC_API_KEY" if index == 0 else f"ANTHROPIC_API_KEY_{index + 1}"] = key
    for index, key in enumerate(OPENAI_KEYS[:openai]):
        values["OPENAI_API_KEY" if index == 0 else f"OPENAI_API_KEY_{index + 1}"] = key
    values.update(env)
    return load_settings(values, env_file=None)


#: For tests whose rows are the same on either store (tests/recording covers that): one is enough.
sqlite_only = pytest.mark.parametrize("store", ["sqlite"], indirect=True)


def requests_by_key(emu: EmulatorServer, route: str = "anthropic.messages") -> dict[str, dict[int, int]]:
    """{key value: {status: count}} for the test keys, from the emulator's stats."""
    names = {fingerprint(k): k for k in ANTHROPIC_KEYS + OPENAI_KEYS}
    result: dict[str, dict[int, int]] = {}
    for row in emu.stats()["counts"]:
        if row["route"] == route and row["key"] in names:
            result.setdefault(names[row["key"]], {})[int(row["status"])] = row["count"]
    return result


def total_requests(emu: EmulatorServer) -> int:
    return int(emu.stats()["total"])


@pytest.fixture
async def make_client(emu: EmulatorServer) -> AsyncIterator[Callable[..., AIClient]]:
    """Build clients on the emulator; closed after the test. ``store=`` an engine records to it."""
    clients: list[AIClient] = []

    def factory(
        anthropic: int = 3,
        openai: int = 1,
        store: sa.Engine | None = None,
        env: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> AIClient:
        kwargs.setdefault("heartbeat", False)  # its sleeps would show up in drive(); tests/state covers it
        if store is not None:
            kwargs["recorder"] = SqlRecorder(store, interval_s=0.05)
        client = AIClient(settings_for(emu, anthropic, openai, **(env or {})), **kwargs)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.aclose()


def rows(store: sa.Engine) -> list[dict[str, Any]]:
    """Every attempt row, in (ts, attempt) order."""
    with store.connect() as connection:
        result = connection.execute(
            sa.select(api_usage_metrics).order_by(api_usage_metrics.c.ts, api_usage_metrics.c.attempt)
        )
        return [dict(row) for row in result.mappings()]


async def drive(clock: ManualClock, task: asyncio.Future[Any], *, max_advance_s: float = 3600.0) -> list[float]:
    """Run ``task`` to completion, moving the manual clock exactly to each sleeper's wake-up; return the steps.

    Real I/O (the emulator) happens in between, so the loop also yields real time while nobody sleeps.
    """
    steps: list[float] = []
    advanced = 0.0
    while not task.done():
        await asyncio.sleep(0.002)
        wait = clock.next_wake_in()
        if wait is not None and not task.done():
            await asyncio.sleep(0.01)  # let real I/O that is in flight land before time jumps
            wait = clock.next_wake_in()
            if wait is None:
                continue
            advanced += wait
            if advanced > max_advance_s:
                raise AssertionError(f"drove the clock past {max_advance_s} s: steps {steps}")
            steps.append(round(wait, 6))
            clock.advance(wait)
    return steps
