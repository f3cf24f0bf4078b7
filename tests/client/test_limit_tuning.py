"""Self-tuning limits end to end: a real 429 from the emulator halves the effective limit, time brings it back,
and the snapshot, the heartbeat's rows and the ``limit_changes`` table all say so, with the reason."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.clock import ManualClock
from pulsegate.core.limits.tuning import TuningPolicy
from pulsegate.core.ops.heartbeat import instance_heartbeat
from pulsegate.core.store.tables import instance_snapshots, limit_changes
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, drive, requests_by_key, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)
REASON = "429s on 1 of 2 usable keys within 30 s, the last on key 'Primary' (retry-after 2 s)"
KEY_REASON = "429 on key 'Primary' (retry-after 2 s)"
QUICK = TuningPolicy(recover_hold_s=5.0, recover_every_s=5.0, recover_within_s=10.0)
HALF_WAY = "recovering: 5 s since the last pushback"
BACK = "back at the configured ceiling: 10 s since the last pushback"


def _rpm(client: AIClient) -> dict[str, object]:
    return client.snapshot()["providers"]["anthropic"]["limits"]["rpm"]


def _provider_changes(client: AIClient) -> list[tuple[float, float, str]]:
    return [(c["before"], c["after"], c["reason"]) for c in client.snapshot()["limit_changes"] if not c["key_label"]]


async def test_a_429_on_one_of_two_keys_halves_the_limit_and_time_brings_it_back(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock, store: sa.Engine
) -> None:
    emu.set_scenario(
        {
            "defaults": {"requests": 1000, "tokens": 1_000_000},
            "faults": [{"kind": "rate_limit", "count": 1, "retry_after": 2, "key": ANTHROPIC_KEYS[0]}],
        }
    )
    client = make_client(anthropic=2, clock=clock, env={"ANTHROPIC_RPM": "100"})
    client.tuner.policy = QUICK
    response = await client.generate_response(SONNET, HELLO)
    assert (response.attempts, response.key_label) == (2, "Backup 1")  # the 429 moved the call to the next key
    assert total_requests(emu) == 2

    rpm = _rpm(client)
    assert (rpm["limit"], rpm["configured"], rpm["reason"]) == (50.0, 100.0, REASON)
    assert rpm["changed_at"] == clock.now().isoformat()
    snapshot = client.snapshot()
    anthropic = snapshot["providers"]["anthropic"]
    assert anthropic["limit_reason"] == REASON
    assert snapshot["configured_limits"]["anthropic"] == {"rpm": 100.0, "tpm": None}
    primary = next(k for k in anthropic["keys"] if k["label"] == "Primary")
    # the key's own limits were learned from the 429's headers (1000 requests, 1 M tokens) and halved too
    assert primary["limits"] == {
        "rpm": {"effective": 500.0, "configured": None, "reason": KEY_REASON},
        "tpm": {"effective": 500_000.0, "configured": None, "reason": KEY_REASON},
    }
    assert [(c["seq"], c["key_label"], c["kind"], c["after"]) for c in snapshot["limit_changes"]] == [
        (1, "Primary", "rpm", 500.0),
        (2, "Primary", "tpm", 500_000.0),
        (3, None, "rpm", 50.0),
    ]

    heartbeat = instance_heartbeat(client.instance, store, interval_s=5.0)
    heartbeat.beat(clock.now())
    heartbeat.beat(clock.now())  # a second round stores nothing twice

    # recovery: on the line from 50 to the ceiling 10 s after the 429, in 5 s steps, whatever the traffic
    await client.generate_response(SONNET, HELLO)
    clock.advance(4.999)
    assert _rpm(client)["limit"] == 50.0
    clock.advance(0.001)
    assert _rpm(client)["limit"] == 75.0
    clock.advance(5.0)
    assert _rpm(client)["limit"] == 100.0
    assert _provider_changes(client) == [(100.0, 50.0, REASON), (50.0, 75.0, HALF_WAY), (75.0, 100.0, BACK)]
    heartbeat.beat(clock.now())

    with store.connect() as connection:
        stored = connection.execute(
            sa.select(limit_changes).where(limit_changes.c.key_label.is_(None)).order_by(limit_changes.c.seq)
        ).mappings()
        history = [
            (r["instance_id"], r["provider"], r["kind"], r["configured"], r["effective_after"], r["reason"])
            for r in stored
        ]
        total = connection.execute(sa.select(sa.func.count()).select_from(limit_changes)).scalar_one()
        snapshots = connection.execute(
            sa.select(instance_snapshots.c.requests_limit, instance_snapshots.c.limit_reason)
            .where(instance_snapshots.c.provider == "anthropic")
            .order_by(instance_snapshots.c.id)
        ).all()
    me = client.instance_id
    assert history == [
        (me, "anthropic", "rpm", 100.0, 50.0, REASON),
        (me, "anthropic", "rpm", 100.0, 75.0, HALF_WAY),
        (me, "anthropic", "rpm", 100.0, 100.0, BACK),
    ]
    assert total == len(client.snapshot()["limit_changes"])
    assert [tuple(s) for s in snapshots] == [(50, REASON), (50, REASON), (100, BACK)]


async def test_a_tuned_limit_paces_the_next_calls(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    emu.set_scenario({"faults": [{"kind": "rate_limit", "count": 1, "retry_after": 1, "key": ANTHROPIC_KEYS[0]}]})
    client = make_client(anthropic=2, clock=clock, env={"ANTHROPIC_RPM": "4"})
    await client.generate_response(SONNET, HELLO)
    rpm = _rpm(client)
    assert (rpm["limit"], rpm["configured"]) == (2.0, 4.0)
    # the 429's request cost a quarter of the bucket (15 s of 60), the retry on Backup 1 half of the halved one
    assert rpm["remaining"] == pytest.approx(0.5)
    call = asyncio.ensure_future(client.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=600)))
    # paced at 2 per minute (the missing half request would take 15 s) until the limit steps up 10 s after the 429:
    # at 2⅓ per minute the rest takes 0.714 s more
    assert await drive(clock, call) == [10.0, 0.714286]
    assert total_requests(emu) == 3


async def test_limit_tuning_off_keeps_the_configured_limit(
    make_client: Callable[..., AIClient], emu: EmulatorServer, clock: ManualClock
) -> None:
    emu.set_scenario({"faults": [{"kind": "rate_limit", "count": 1, "key": ANTHROPIC_KEYS[0]}]})
    client = make_client(anthropic=2, clock=clock, env={"ANTHROPIC_RPM": "100", "LIMIT_TUNING": "off"})
    await client.generate_response(SONNET, HELLO)
    rpm = _rpm(client)
    assert (rpm["limit"], rpm["configured"], rpm["reason"], rpm["changed_at"]) == (100.0, 100.0, None, None)
    assert client.snapshot()["limit_changes"] == []


def test_a_bad_limit_tuning_value_names_the_variable(emu: EmulatorServer) -> None:
    from pulsegate.core.errors import ConfigError
    from tests.client.conftest import settings_for

    with pytest.raises(ConfigError) as caught:
        settings_for(emu, LIMIT_TUNING="sometimes")
    assert "LIMIT_TUNING='sometimes': expected on or off" in str(caught.value)


async def test_a_burst_this_client_admitted_is_not_pushback(
    make_client: Callable[..., AIClient], emu: EmulatorServer
) -> None:
    emu.set_scenario({"defaults": {"requests": 20}})  # the key takes 20 requests a minute, as does our limit
    client = make_client(anthropic=1, env={"ANTHROPIC_RPM": "20"})
    await asyncio.gather(*(client.generate_response(SONNET, HELLO) for _ in range(20)))
    # the last answers said 1 and 0 requests left: all 20 used were this client's own, admitted by its limiter
    assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {200: 20}}
    assert _rpm(client)["limit"] == 20.0
    primary = client.snapshot()["providers"]["anthropic"]["keys"][0]
    assert primary["limits"]["rpm"] == {"effective": 20.0, "configured": None, "reason": None}
    assert client.snapshot()["limit_changes"] == []
