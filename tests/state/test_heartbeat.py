"""Heartbeats of real clients: snapshots with the clients' exact state, commands applied and acknowledged once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, ModelConfig
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from pulsegate.core.ops.control import command_status, issue_command
from pulsegate.core.ops.heartbeat import Heartbeat, instance_heartbeat, live_instances, stale_instances
from pulsegate.core.provider import Provider
from pulsegate.core.store.tables import control_acks, instance_snapshots, key_health_snapshots
from tests.client.conftest import settings_for

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)


def _client(emu: Any, clock: ManualClock, instance_id: str, **env: str) -> AIClient:
    return AIClient(settings_for(emu, anthropic=3, openai=1, **env), clock=clock, instance_id=instance_id)


def _rows(store: sa.Engine, table: sa.Table, *order: str) -> list[dict[str, Any]]:
    with store.connect() as connection:
        query = sa.select(table).order_by(*(table.c[name] for name in order))
        return [dict(row) for row in connection.execute(query).mappings()]


def _acks(store: sa.Engine) -> list[tuple[int, str, bool, str]]:
    return [
        (a["command_id"], a["instance_id"], a["ok"], a["result"])
        for a in _rows(store, control_acks, "command_id", "instance_id")
    ]


def test_snapshot_rows_carry_the_clients_exact_state(emu, store, clock: ManualClock) -> None:
    client = AIClient(
        settings_for(emu, anthropic=3, openai=1, OPENAI_TPM="90000"),
        clock=clock,
        instance_id="app-1",
        breaker={"min_calls": 1},
    )
    pool = client.pools[Provider.ANTHROPIC]
    backup1, backup2 = pool.by_label("Backup 1"), pool.by_label("Backup 2")
    assert backup1 is not None and backup2 is not None
    pool.state(backup1).record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, retry_after=30.0)
    pool.state(backup2).disable("auth: the provider refused this key", ErrorClass.AUTH)
    pool.state(pool.by_label("Primary")).record_failure(clock.monotonic(), ErrorClass.SERVER_ERROR)  # type: ignore[arg-type]
    breaker = client.breakers[Provider.OPENAI]
    permit = breaker.acquire()
    assert permit is not None
    breaker.record(permit, False)

    heartbeat = instance_heartbeat(client.instance, store, interval_s=5.0)
    now = clock.now()
    heartbeat.beat(now)
    state = client.snapshot()

    instances = {row["provider"]: row for row in _rows(store, instance_snapshots, "provider")}
    assert set(instances) == {"anthropic", "openai"}
    for provider, row in instances.items():
        entry = state["providers"][provider]
        assert row["ts"] == now
        assert (row["instance_id"], row["kind"], row["pid"]) == ("app-1", "client", heartbeat.pid)
        assert row["host"] == heartbeat.host
        assert row["queue_depth"] == entry["queue"]["depth"] == 0
        assert row["oldest_wait_ms"] is None
        assert row["breaker_state"] == entry["breaker"]["state"]
        assert row["requests_limit"] == round(entry["limits"]["rpm"]["limit"]) == 100_000
        assert row["requests_remaining"] == round(entry["limits"]["rpm"]["remaining"])
        assert row["requests_used"] == round(entry["limits"]["rpm"]["used"])
        assert row["requests_limit_configured"] == 100_000
        assert row["details"]["breaker"] == entry["breaker"]
    assert instances["openai"]["breaker_state"] == "open"
    assert instances["anthropic"]["breaker_state"] == "closed"
    assert instances["openai"]["tokens_limit"] == instances["openai"]["tokens_limit_configured"] == 90_000
    assert instances["anthropic"]["tokens_limit"] is None

    keys = {(row["provider"], row["key_label"]): row for row in _rows(store, key_health_snapshots, "id")}
    expected_keys = [(p, k["label"]) for p, e in state["providers"].items() for k in e["keys"]]
    assert sorted(keys) == sorted(expected_keys) and len(keys) == 4
    for provider, entry in state["providers"].items():
        for key in entry["keys"]:
            row = keys[(provider, key["label"])]
            assert row["ts"] == now and row["instance_id"] == "app-1"
            assert row["score"] == key["score"]
            assert row["status"] == key["status"]
            assert row["consecutive_failures"] == key["consecutive_failures"]
            assert row["disabled_reason"] == key["disabled_reason"]
            assert (row["key_fingerprint"], row["key_masked"]) == (key["fingerprint"], key["masked"])
    b1 = keys[("anthropic", "Backup 1")]
    assert b1["status"] == "cooldown"
    assert b1["cooldown_until"] == now + timedelta(seconds=30)
    assert keys[("anthropic", "Backup 2")]["status"] == "disabled"
    assert keys[("anthropic", "Backup 2")]["disabled_reason"] == "auth: the provider refused this key"
    assert keys[("anthropic", "Primary")]["score"] == 50.0
    assert keys[("anthropic", "Primary")]["status"] == "degraded"
    assert keys[("anthropic", "Primary")]["cooldown_until"] is None


async def test_queue_depth_snapshot_and_clear_queue_command(emu, store, clock: ManualClock) -> None:
    client = _client(emu, clock, "app-1", ANTHROPIC_RPM="1")
    heartbeat = instance_heartbeat(client.instance, store, interval_s=5.0)
    try:
        first = await client.generate_response(SONNET, HELLO)  # takes the one request of this minute
        assert first.text
        waiting = [asyncio.create_task(client.generate_response(SONNET, HELLO)) for _ in range(3)]
        for _ in range(200):
            await asyncio.sleep(0.005)
            if client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == 3:
                break
        clock.advance(2.0)
        await asyncio.sleep(0.01)
        state = client.snapshot()["providers"]["anthropic"]["queue"]
        assert state["depth"] == 3

        heartbeat.beat(clock.now())
        (row,) = [r for r in _rows(store, instance_snapshots, "id") if r["provider"] == "anthropic"]
        assert row["queue_depth"] == 3
        assert row["oldest_wait_ms"] == pytest.approx(state["oldest_wait_s"] * 1000.0)
        assert row["oldest_wait_ms"] >= 2000.0

        command_id = issue_command(store, "clear_queue", provider="anthropic", requested_by="test", now=clock.now())
        clock.advance(5.0)
        acks = heartbeat.beat(clock.now())
        assert [(a.command.id, a.ok, a.result) for a in acks] == [
            (command_id, True, "3 requests cancelled (anthropic queue)")
        ]
        results = await asyncio.gather(*waiting, return_exceptions=True)
        assert all(isinstance(r, Exception) and "cleared" in str(r) for r in results), results
        assert client.snapshot()["providers"]["anthropic"]["queue"]["depth"] == 0
    finally:
        await client.aclose()


def test_command_to_all_reaches_both_instances_once(emu, store, clock: ManualClock) -> None:
    one, two = _client(emu, clock, "app-1"), _client(emu, clock, "app-2")
    hb1, hb2 = (
        instance_heartbeat(one.instance, store, interval_s=5.0),
        instance_heartbeat(two.instance, store, interval_s=5.0),
    )
    clock.advance(1.0)
    disable = issue_command(
        store, "disable_key", provider="anthropic", key_label="Backup 1", requested_by="dashboard", now=clock.now()
    )
    clear = issue_command(store, "clear_queue", requested_by="cli", now=clock.now())
    clock.advance(5.0)

    acks1, acks2 = hb1.beat(clock.now()), hb2.beat(clock.now())
    expected = [(disable, True, "key 'Backup 1' disabled"), (clear, True, "0 requests cancelled (all queues)")]
    assert [(a.command.id, a.ok, a.result) for a in acks1] == expected
    assert [(a.command.id, a.ok, a.result) for a in acks2] == expected
    for client in (one, two):
        pool = client.pools[Provider.ANTHROPIC]
        health = pool.state(pool.by_label("Backup 1"))  # type: ignore[arg-type]
        assert health.disabled_reason == f"disabled by dashboard (command {disable})"
    assert _acks(store) == [
        (disable, "app-1", True, "key 'Backup 1' disabled"),
        (disable, "app-2", True, "key 'Backup 1' disabled"),
        (clear, "app-1", True, "0 requests cancelled (all queues)"),
        (clear, "app-2", True, "0 requests cancelled (all queues)"),
    ]
    status = command_status(store, disable, now=clock.now())
    assert [(a["instance_id"], a["ok"]) for a in status["acks"]] == [("app-1", True), ("app-2", True)]
    assert (status["acked"], status["failed"], status["expired"]) == (2, 0, False)

    # an already-acknowledged command is not applied again: re-enable by hand, beat, the key stays enabled
    pool = one.pools[Provider.ANTHROPIC]
    pool.state(pool.by_label("Backup 1")).enable()  # type: ignore[arg-type]
    clock.advance(5.0)
    assert hb1.beat(clock.now()) == [] and hb2.beat(clock.now()) == []
    assert pool.state(pool.by_label("Backup 1")).disabled_reason is None  # type: ignore[arg-type]
    assert len(_acks(store)) == 4

    # and the re-enable command goes through on both
    enable = issue_command(
        store, "enable_key", provider="anthropic", key_label="Backup 1", requested_by="api", now=clock.now()
    )
    clock.advance(5.0)
    assert [a.result for a in hb1.beat(clock.now())] == ["key 'Backup 1' enabled"]
    assert [a.result for a in hb2.beat(clock.now())] == ["key 'Backup 1' enabled"]
    pool2 = two.pools[Provider.ANTHROPIC]
    assert pool2.state(pool2.by_label("Backup 1")).disabled_reason is None  # type: ignore[arg-type]
    assert command_status(store, enable)["acked"] == 2


def test_targeted_command_applies_only_on_its_instance(emu, store, clock: ManualClock) -> None:
    one, two = _client(emu, clock, "app-1"), _client(emu, clock, "app-2")
    hb1, hb2 = instance_heartbeat(one.instance, store), instance_heartbeat(two.instance, store)
    for client in (one, two):
        pool = client.pools[Provider.ANTHROPIC]
        pool.state(pool.by_label("Primary")).record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, 60.0)  # type: ignore[arg-type]
    command_id = issue_command(
        store,
        "reset_key",
        provider="anthropic",
        key_label="Primary",
        target_instance="app-2",
        requested_by="cli",
        now=clock.now(),
    )
    clock.advance(5.0)
    assert hb1.beat(clock.now()) == []
    assert [(a.command.id, a.ok, a.result) for a in hb2.beat(clock.now())] == [
        (command_id, True, "key 'Primary' cooldown reset")
    ]
    now = clock.monotonic()
    p1, p2 = one.pools[Provider.ANTHROPIC], two.pools[Provider.ANTHROPIC]
    assert p1.state(p1.by_label("Primary")).status(now).value == "cooldown"  # type: ignore[arg-type]
    assert p2.state(p2.by_label("Primary")).status(now).value != "cooldown"  # type: ignore[arg-type]
    assert _acks(store) == [(command_id, "app-2", True, "key 'Primary' cooldown reset")]


def test_expired_and_old_commands_are_ignored_unknown_key_fails(emu, store, clock: ManualClock) -> None:
    before = issue_command(store, "clear_queue", requested_by="cli", now=clock.now())  # before the instance started
    clock.advance(1.0)
    client = _client(emu, clock, "app-1")
    heartbeat = instance_heartbeat(client.instance, store)
    expired = issue_command(
        store, "disable_key", provider="anthropic", key_label="Primary", requested_by="cli", now=clock.now(), ttl=4
    )
    unknown = issue_command(
        store, "disable_key", provider="openai", key_label="Backup 9", requested_by="cli", now=clock.now(), ttl=60
    )
    clock.advance(5.0)
    acks = heartbeat.beat(clock.now())
    assert [(a.command.id, a.ok, a.result) for a in acks] == [
        (unknown, False, "no openai key labelled 'Backup 9' here (keys: 'Primary')")
    ]
    pool = client.pools[Provider.ANTHROPIC]
    assert pool.state(pool.by_label("Primary")).disabled_reason is None  # type: ignore[arg-type]
    assert _acks(store) == [(unknown, "app-1", False, "no openai key labelled 'Backup 9' here (keys: 'Primary')")]
    assert command_status(store, expired, now=clock.now())["expired"] is True
    assert command_status(store, before)["acks"] == []


def test_acks_that_could_not_be_written_are_retried_not_reapplied(store, clock: ManualClock) -> None:
    applied: list[int] = []

    def apply(command: Any) -> str:
        applied.append(command.id)
        return "done"

    state = {"instance_id": "w-1", "providers": {}}
    heartbeat = Heartbeat(lambda: state, apply, store, "w-1", kind="worker", clock=clock)
    command_id = issue_command(store, "clear_queue", requested_by="cli", now=clock.now())
    real_write = heartbeat.write_acks
    heartbeat.write_acks = lambda: (_ for _ in ()).throw(sa.exc.OperationalError("x", {}, Exception("down")))  # type: ignore[method-assign]
    with pytest.raises(sa.exc.OperationalError):
        heartbeat.beat(clock.now())
    assert applied == [command_id] and _acks(store) == []
    heartbeat.write_acks = real_write  # type: ignore[method-assign]
    clock.advance(5.0)
    assert heartbeat.beat(clock.now()) == []
    assert applied == [command_id]
    assert _acks(store) == [(command_id, "w-1", True, "done")]


def test_live_and_stale_instances(store, clock: ManualClock) -> None:
    state = {"instance_id": "x", "providers": {"anthropic": {"queue": {"depth": 2}, "keys": []}}}
    beats = {
        name: Heartbeat(lambda: state, lambda c: "", store, name, interval_s=5.0, clock=clock)
        for name in ("a", "b", "c")
    }
    start = clock.now()
    beats["a"].beat(start)
    beats["b"].beat(start + timedelta(seconds=5))
    beats["c"].beat(start + timedelta(seconds=12))
    now = start + timedelta(seconds=20)
    # three missed intervals (15 s) = stale: a (20 s silent) is stale, b (15 s) just live, c live
    assert live_instances(store, now, 5.0) == ["b", "c"]
    assert stale_instances(store, now, 5.0) == {"a": start}
    assert live_instances(store, now + timedelta(seconds=1), 5.0) == ["c"]


async def test_run_loop_beats_on_the_clock_and_stops(emu, store, clock: ManualClock) -> None:
    client = _client(emu, clock, "app-1")
    heartbeat = instance_heartbeat(client.instance, store, interval_s=5.0)
    task = heartbeat.start()
    for _ in range(3):
        for _ in range(400):
            await asyncio.sleep(0.005)
            if clock.sleepers:
                break
        clock.advance(5.0)
    for _ in range(400):
        await asyncio.sleep(0.005)
        if heartbeat.beats >= 4:
            break
    await heartbeat.stop()
    assert task.done()
    assert heartbeat.beats >= 4 and heartbeat.failures == 0
    with store.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(instance_snapshots)).scalar_one()
    assert count == 2 * heartbeat.beats
    await client.aclose()
