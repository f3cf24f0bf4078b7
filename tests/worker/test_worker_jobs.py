"""The worker's job functions against the emulator (real SDKs over HTTP) and the real stores."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa

from pulsegate import AIClient
from pulsegate.core.clock import SYSTEM_CLOCK, ManualClock
from pulsegate.core.ops.probe import ProbeTarget
from pulsegate.core.ops.probe_requests import probe_request_status, request_probe
from pulsegate.core.store.tables import api_usage_metrics
from pulsegate.emulator import EmulatorServer
from pulsegate.jobs.service.worker_jobs import (
    JobContext,
    evaluate_alerts,
    poll_probe_requests,
    probe_key,
    prune_old_rows,
)
from tests.client.conftest import requests_by_key


def context(client: AIClient, store: sa.Engine, clock: object = SYSTEM_CLOCK) -> JobContext:
    return JobContext(store, client.settings, clock, client.instance_id, client, asyncio.Semaphore(2))  # type: ignore[arg-type]


def probe_rows(store: sa.Engine) -> list[tuple[str, str, str, str, int]]:
    m = api_usage_metrics
    query = sa.select(m.c.source, m.c.provider, m.c.key_label, m.c.outcome, m.c.output_tokens).order_by(m.c.ts)
    with store.connect() as connection:
        return [tuple(row) for row in connection.execute(query)]


async def test_a_scheduled_probe_is_one_request_on_its_key_recorded_as_a_probe(
    store: sa.Engine, emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    client = make_client(anthropic=2, openai=1, store=store)
    summary = await probe_key(context(client, store), ProbeTarget("anthropic", "Backup 1", "claude-haiku-4-5"))
    assert summary.startswith("ok 200 in ") and summary.endswith(" ms")
    await client.aclose()  # flushes the recorder
    assert probe_rows(store) == [("probe", "anthropic", "Backup 1", "success", 1)]
    assert list(requests_by_key(emu).values()) == [{200: 1}]


async def test_requested_probes_are_claimed_run_and_answered(
    store: sa.Engine, emu: EmulatorServer, make_client: Callable[..., AIClient]
) -> None:
    client = make_client(anthropic=1, openai=1, store=store)
    now = SYSTEM_CLOCK.now()
    wanted = request_probe(store, requested_by="api", now=now, provider="openai")
    unknown = request_probe(store, requested_by="dashboard", now=now, key_label="Backup 7")
    summary = await poll_probe_requests(context(client, store))
    assert summary is not None and summary.startswith(f"#{wanted} 1/1 passed; #{unknown} failed: key: ")
    done = probe_request_status(store, wanted)
    assert done is not None and done["status"] == "done" and done["claimed_by"] == client.instance_id
    assert [(r["provider"], r["key_label"], r["ok"]) for r in done["results"]] == [("openai", "Primary", True)]
    failed = probe_request_status(store, unknown)
    assert failed is not None and failed["status"] == "failed" and failed["results"] == []
    assert "'Backup 7'" in failed["error"]
    assert await poll_probe_requests(context(client, store)) is None  # nothing left to claim
    await client.aclose()
    assert probe_rows(store) == [("probe", "openai", "Primary", "success", 1)]


async def test_retention_and_an_alert_evaluation_on_a_quiet_store(
    store: sa.Engine, make_client: Callable[..., AIClient], clock: ManualClock
) -> None:
    client = make_client(anthropic=1, openai=0)
    request_probe(store, requested_by="api", now=clock.now() - timedelta(days=31))
    request_probe(store, requested_by="api", now=clock.now() - timedelta(days=29))
    assert await prune_old_rows(context(client, store, clock)) == "1 rows pruned"
    line = await evaluate_alerts(context(client, store, clock))
    assert line.startswith(f"alerts at {clock.now().isoformat(timespec='seconds')}: ")
    assert ", 0 pending, 0 fired, 0 resolved, 0 notifications," in line
