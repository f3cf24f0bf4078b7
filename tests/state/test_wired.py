"""An AIClient recording to a store runs its heartbeat: it writes snapshots and obeys control commands."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from pulsegate import AIClient, ModelConfig
from pulsegate.core.keys import KeyStatus
from pulsegate.core.ops.control import command_status, issue_command
from pulsegate.core.provider import Provider
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.store.tables import instance_snapshots, key_health_snapshots
from tests.client.conftest import settings_for

HELLO = [{"role": "user", "content": "hi"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=16)


async def _until(predicate, timeout_s: float = 5.0) -> None:
    for _ in range(int(timeout_s / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_a_client_beats_and_applies_a_disable_command(emu, store: sa.Engine, clock) -> None:
    client = AIClient(
        settings_for(emu, anthropic=2, HEARTBEAT_INTERVAL_S="5"),
        clock=clock,
        recorder=SqlRecorder(store, interval_s=0.05),
        instance_id="app-1",
    )
    await client.generate_response(SONNET, HELLO)  # first use starts the heartbeat on this loop
    await _until(lambda: client._heartbeat.beats >= 1 and clock.sleepers > 0)
    command = issue_command(
        store, "disable_key", provider="anthropic", key_label="Primary", requested_by="test", now=clock.now()
    )
    clock.advance(5)
    await _until(lambda: client._heartbeat.beats >= 2)
    pool = client.pools[Provider.ANTHROPIC]
    assert pool.state(pool.keys[0]).status(clock.monotonic()) is KeyStatus.DISABLED
    assert [(a["instance_id"], a["ok"], a["result"]) for a in command_status(store, command)["acks"]] == [
        ("app-1", True, "key 'Primary' disabled")
    ]
    await client.aclose()
    with store.connect() as connection:
        providers = connection.execute(sa.select(instance_snapshots.c.provider)).scalars().all()
        keys = connection.execute(sa.select(key_health_snapshots.c.key_label)).scalars().all()
    assert sorted(providers) == ["anthropic", "anthropic", "openai", "openai"]  # two beats × two providers
    # per beat: Anthropic Primary and Backup 1, OpenAI Primary
    assert sorted(keys) == ["Backup 1", "Backup 1", "Primary", "Primary", "Primary", "Primary"]


def test_the_sync_twin_starts_the_heartbeat_too(emu, store: sa.Engine) -> None:
    client = AIClient(settings_for(emu), recorder=SqlRecorder(store, interval_s=0.05), instance_id="app-2")
    client.generate_response_sync(SONNET, HELLO)
    client.close()
    with store.connect() as connection:
        instances = connection.execute(sa.select(instance_snapshots.c.instance_id).distinct()).scalars().all()
    assert instances == ["app-2"]
