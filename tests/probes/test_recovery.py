"""A successful probe returns a key to service through a control command — exactly when it should.

The live instances' state comes from real heartbeats of real clients (key health snapshots in the store); the
commands are read back from the store and applied by the next heartbeat, as in production.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pulsegate import AIClient
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from pulsegate.core.keys.health import KeyStatus
from pulsegate.core.ops.control import ControlCommand, apply_command, issue_command
from pulsegate.core.ops.heartbeat import Heartbeat, instance_heartbeat
from pulsegate.core.ops.probe import ProbeResult, ProbeTarget, run_probes
from pulsegate.core.ops.probe_history import consecutive_probe_failures, recovery_command, restore_recovered_keys
from pulsegate.core.provider import Provider
from pulsegate.core.store.tables import control_commands
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, settings_for

HAIKU = "claude-haiku-4-5"
INTERVAL_S = 5.0


def _result(provider: str, label: str, ok: bool, clock: ManualClock) -> ProbeResult:
    return ProbeResult(
        provider=provider,
        key_label=label,
        model=HAIKU,
        ok=ok,
        outcome="success" if ok else "error",
        error_class=None if ok else "server_error",
        http_status=200 if ok else 500,
        latency_ms=12.0,
        input_tokens=1 if ok else 0,
        output_tokens=1 if ok else 0,
        cost_usd=6e-06 if ok else 0.0,
        message="ok" if ok else "anthropic key: 500 server_error: boom",
        call_id=str(uuid.uuid4()),
        ts=clock.now(),
    )


def _commands(store: sa.Engine) -> list[tuple[str, str, str, str]]:
    with store.connect() as connection:
        rows = connection.execute(sa.select(control_commands).order_by(control_commands.c.id)).mappings().all()
    return [(r["command"], r["provider"], r["key_label"], r["requested_by"]) for r in rows]


def _app(emu: EmulatorServer, store: sa.Engine, clock: ManualClock, name: str) -> tuple[AIClient, Heartbeat]:
    client = AIClient(settings_for(emu, anthropic=4, openai=1), clock=clock, instance_id=name, heartbeat=False)
    return client, instance_heartbeat(client.instance, store, interval_s=INTERVAL_S)


def _health(client: AIClient, label: str) -> Any:
    pool = client.pools[Provider.ANTHROPIC]
    return pool.state(pool.by_label(label))  # type: ignore[arg-type]


def test_working_keys_are_reset_or_enabled_and_operator_disabled_keys_stay_off(
    emu: EmulatorServer, store: sa.Engine, clock: ManualClock
) -> None:
    app, heartbeat = _app(emu, store, clock, "app-1")
    now_mono = clock.monotonic()
    _health(app, "Primary").record_failure(now_mono, ErrorClass.RATE_LIMITED, retry_after=120.0)
    _health(app, "Backup 1").record_failure(now_mono, ErrorClass.AUTH)
    apply_command(
        app.instance,
        ControlCommand(7, "disable_key", "anthropic", "Backup 2", None, "dashboard", clock.now(), clock.now()),
    )
    heartbeat.beat(clock.now())
    clock.advance(1.0)
    labels = ("Primary", "Backup 1", "Backup 2", "Backup 3")
    results = [_result("anthropic", label, True, clock) for label in labels] + [
        _result("openai", "Primary", True, clock)
    ]

    ids = restore_recovered_keys(store, results, clock.now(), heartbeat_interval_s=INTERVAL_S)

    assert _commands(store) == [
        ("enable_key", "anthropic", "Backup 1", "probe"),
        ("reset_key", "anthropic", "Primary", "probe"),
    ]
    assert len(ids) == 2
    clock.advance(1.0)
    acks = heartbeat.beat(clock.now())  # the instance applies them on its next heartbeat
    assert sorted(ack.result for ack in acks) == ["key 'Backup 1' enabled", "key 'Primary' cooldown reset"]
    mono = clock.monotonic()
    assert _health(app, "Primary").status(mono) is not KeyStatus.COOLDOWN
    assert _health(app, "Backup 1").status(mono) is not KeyStatus.DISABLED
    assert _health(app, "Backup 2").status(mono) is KeyStatus.DISABLED
    assert _health(app, "Backup 2").disabled_reason == "disabled by dashboard (command 7)"


def test_failed_probes_healthy_keys_and_stale_instances_issue_nothing(
    emu: EmulatorServer, store: sa.Engine, clock: ManualClock
) -> None:
    app, heartbeat = _app(emu, store, clock, "app-1")
    _health(app, "Primary").record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, retry_after=600.0)
    _health(app, "Backup 1").record_failure(clock.monotonic(), ErrorClass.QUOTA)
    heartbeat.beat(clock.now())

    failed = [_result("anthropic", "Primary", False, clock), _result("anthropic", "Backup 1", False, clock)]
    assert restore_recovered_keys(store, failed, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    healthy = [_result("anthropic", "Backup 3", True, clock)]
    assert restore_recovered_keys(store, healthy, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    assert restore_recovered_keys(store, [], clock.now(), heartbeat_interval_s=INTERVAL_S) == []

    clock.advance(3 * INTERVAL_S + 0.001)  # the instance went silent: its view no longer counts
    working = [_result("anthropic", "Primary", True, clock), _result("anthropic", "Backup 1", True, clock)]
    assert restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    assert _commands(store) == []


def test_an_operator_disable_on_any_instance_wins_over_a_provider_refusal_on_another(
    emu: EmulatorServer, store: sa.Engine, clock: ManualClock
) -> None:
    app1, beat1 = _app(emu, store, clock, "app-1")
    app2, beat2 = _app(emu, store, clock, "app-2")
    _health(app1, "Backup 1").record_failure(clock.monotonic(), ErrorClass.AUTH)
    _health(app2, "Backup 1").disable("disabled by api (command 4)")
    _health(app2, "Primary").record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, retry_after=30.0)
    beat1.beat(clock.now())
    beat2.beat(clock.now())

    results = [_result("anthropic", "Backup 1", True, clock), _result("anthropic", "Primary", True, clock)]
    restore_recovered_keys(store, results, clock.now(), heartbeat_interval_s=INTERVAL_S)

    # Primary cools on app-2 only: one reset for every instance; Backup 1 is left to the operator
    assert _commands(store) == [("reset_key", "anthropic", "Primary", "probe")]


def test_recovery_command_rules() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 1, 1, tzinfo=UTC)
    cooling = {"status": "cooldown", "cooldown_until": now + timedelta(seconds=5), "disabled_reason": None}
    refused = {"status": "disabled", "cooldown_until": None, "disabled_reason": "quota: the provider refused this key"}
    operator = {"status": "disabled", "cooldown_until": None, "disabled_reason": "disabled by cli (command 1)"}
    healthy = {"status": "healthy", "cooldown_until": None, "disabled_reason": None}
    expired = {"status": "degraded", "cooldown_until": now - timedelta(seconds=1), "disabled_reason": None}
    assert recovery_command([cooling], now) == "reset_key"
    assert recovery_command([refused], now) == "enable_key"
    assert recovery_command([refused, cooling], now) == "enable_key"  # enabling also clears the cooldown
    assert recovery_command([operator], now) is None
    assert recovery_command([operator, refused, cooling], now) is None
    assert recovery_command([healthy, expired], now) is None
    assert recovery_command([], now) is None


async def test_consecutive_probe_failures_count_since_the_last_success(
    emu: EmulatorServer, store: sa.Engine, make_client: Callable[..., AIClient]
) -> None:
    client = make_client(anthropic=3, openai=0, store=store)
    primary = ProbeTarget("anthropic", "Primary", HAIKU)
    backup1 = ProbeTarget("anthropic", "Backup 1", HAIKU)
    backup2 = ProbeTarget("anthropic", "Backup 2", HAIKU)
    await run_probes(client.probe, [primary, backup1, backup2], concurrency=1)  # all pass
    emu.add_fault({"kind": "server_error", "key": ANTHROPIC_KEYS[0], "count": 3})
    emu.add_fault({"kind": "error", "status": 529, "key": ANTHROPIC_KEYS[1], "count": 1})
    for _ in range(3):
        await run_probes(client.probe, [primary], concurrency=1)
    await run_probes(client.probe, [backup1], concurrency=1)  # fails
    await run_probes(client.probe, [backup1], concurrency=1)  # passes again
    assert client.recorder.flush()

    counts = consecutive_probe_failures(store, client.clock.now() + timedelta(seconds=1))

    assert counts == {("anthropic", "Primary"): 3, ("anthropic", "Backup 1"): 0, ("anthropic", "Backup 2"): 0}
    later = client.clock.now() + timedelta(days=2)  # nothing probed within the lookback: nothing to report
    assert consecutive_probe_failures(store, later) == {}


def test_a_command_on_its_way_is_not_issued_twice(emu: EmulatorServer, store: sa.Engine, clock: ManualClock) -> None:
    app, heartbeat = _app(emu, store, clock, "app-1")
    _health(app, "Primary").record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, retry_after=600.0)
    heartbeat.beat(clock.now())
    working = [_result("anthropic", "Primary", True, clock)]
    assert len(restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S)) == 1
    clock.advance(1.0)
    assert restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    clock.advance(INTERVAL_S - 1.0)
    heartbeat.beat(clock.now())  # snapshot first (still cooling), then the reset is applied
    assert restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    _health(app, "Primary").record_failure(clock.monotonic(), ErrorClass.RATE_LIMITED, retry_after=600.0)
    clock.advance(INTERVAL_S)
    heartbeat.beat(clock.now())  # cooling again, one interval after the reset: that is new trouble
    assert len(restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S)) == 1
    assert _commands(store) == [("reset_key", "anthropic", "Primary", "probe")] * 2


def test_a_recent_disable_command_stands_until_an_enable_follows(
    emu: EmulatorServer, store: sa.Engine, clock: ManualClock
) -> None:
    app, heartbeat = _app(emu, store, clock, "app-1")
    _health(app, "Backup 1").record_failure(clock.monotonic(), ErrorClass.AUTH)
    heartbeat.beat(clock.now())  # the snapshot says: refused by the provider
    clock.advance(1.0)
    issue_command(store, "disable_key", provider="anthropic", key_label="Backup 1", requested_by="api", now=clock.now())
    clock.advance(1.0)
    working = [_result("anthropic", "Backup 1", True, clock)]
    assert restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    issue_command(store, "enable_key", provider="anthropic", key_label="Backup 1", requested_by="api", now=clock.now())
    clock.advance(1.0)
    # the operator enabled it again: that enable_key is on its way, nothing to add
    assert restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S) == []
    assert [c[0] for c in _commands(store)] == ["disable_key", "enable_key"]
    clock.advance(INTERVAL_S)
    heartbeat.beat(clock.now())  # applies both (the disable, then the enable); the snapshot predates them
    clock.advance(INTERVAL_S)
    _health(app, "Backup 1").record_failure(clock.monotonic(), ErrorClass.AUTH)  # refused again
    heartbeat.beat(clock.now())
    assert len(restore_recovered_keys(store, working, clock.now(), heartbeat_interval_s=INTERVAL_S)) == 1
    assert _commands(store)[-1] == ("enable_key", "anthropic", "Backup 1", "probe")


async def _until(condition: Callable[[], bool]) -> None:
    """Let the heartbeat's task (and its database thread) run until ``condition`` holds (at most 10 s real time)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the heartbeat did not get there")


async def test_a_passing_probe_restores_a_key_within_one_heartbeat_not_at_once(
    emu: EmulatorServer, store: sa.Engine, clock: ManualClock
) -> None:
    """What the docs say: a key a probe found working is back on every instance at that instance's next heartbeat
    — within ``HEARTBEAT_INTERVAL_S`` (5 s by default) of the probe — and not before."""
    client = AIClient(settings_for(emu, anthropic=2, openai=1), clock=clock, instance_id="app-1", heartbeat=False)
    heartbeat = instance_heartbeat(client.instance, store)
    assert heartbeat.interval_s == 5.0  # the default HEARTBEAT_INTERVAL_S
    _health(client, "Backup 1").record_failure(clock.monotonic(), ErrorClass.AUTH)
    task = heartbeat.start()
    try:
        await _until(lambda: heartbeat.beats == 1 and clock.sleepers == 1)  # beat at t0, asleep until t0 + 5 s
        clock.advance(1.0)
        probe = [_result("anthropic", "Backup 1", True, clock)]
        assert len(restore_recovered_keys(store, probe, clock.now(), heartbeat_interval_s=5.0)) == 1

        assert _health(client, "Backup 1").status(clock.monotonic()) is KeyStatus.DISABLED  # not at once
        clock.advance(3.999)
        await asyncio.sleep(0.05)
        assert heartbeat.beats == 1
        assert _health(client, "Backup 1").status(clock.monotonic()) is KeyStatus.DISABLED

        clock.advance(0.001)  # the next heartbeat, 4 s after the probe's command
        await _until(lambda: heartbeat.beats == 2)
        assert _health(client, "Backup 1").status(clock.monotonic()) is not KeyStatus.DISABLED
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
