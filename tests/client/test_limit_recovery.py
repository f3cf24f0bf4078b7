"""After a real 429 the limits climb back to the configured value within 60 s — and the climb causes no new 429.

Another application empties the only key's bucket on the emulator (15 requests a minute); this client then sends 15
calls a minute for two minutes. The emulator runs on a manual clock moved in lockstep with the client's, so the
provider's bucket and the client's limits see the same time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pulsegate import AIClient, CallOptions, ModelConfig
from pulsegate.core.clock import ManualClock
from pulsegate.emulator import EmulatorServer
from pulsegate.emulator.clock import ManualClock as EmulatorClock
from tests.client.conftest import ANTHROPIC_KEYS, requests_by_key, settings_for

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)


async def _drive_both(
    clock: ManualClock, emulator_clock: EmulatorClock, client: AIClient, task: asyncio.Future[Any]
) -> None:
    """Run ``task``, moving both clocks together to each sleeper's wake-up — only once no request is in flight, so
    every request reaches the emulator at the time it was sent (tests/client/conftest.py's ``drive``, stricter)."""
    while not task.done():
        await asyncio.sleep(0.002)
        if clock.next_wake_in() is None or task.done():
            continue
        await asyncio.sleep(0.01)
        keys = client.snapshot()["providers"]["anthropic"]["keys"]
        wait = clock.next_wake_in()
        if wait is not None and not any(key["in_flight"] for key in keys):
            emulator_clock.advance(wait)
            clock.advance(wait)


async def test_after_a_429_the_limit_is_back_in_60_s_and_the_climb_causes_no_new_429(clock: ManualClock) -> None:
    emulator_clock = EmulatorClock(wall_start=clock.now().timestamp())
    with EmulatorServer(scenario={"defaults": {"requests": 15}}, clock=emulator_clock) as server:
        other = AIClient(settings_for(server, anthropic=1, openai=0, LIMIT_TUNING="off"), heartbeat=False)
        await asyncio.gather(*(other.generate_response(SONNET, HELLO) for _ in range(15)))  # the key's bucket: empty
        await other.aclose()
        ours = AIClient(settings_for(server, anthropic=1, openai=0, ANTHROPIC_RPM="15"), clock=clock, heartbeat=False)

        async def call_at(seconds: float) -> str:
            await clock.sleep(seconds)
            response = await ours.generate_response(SONNET, HELLO, options=CallOptions(timeout_s=3600))
            return response.provider

        calls = [asyncio.ensure_future(call_at(4.0 * n)) for n in range(30)]  # 15 a minute for two minutes
        await _drive_both(clock, emulator_clock, ours, asyncio.gather(*calls))
        assert [call.result() for call in calls] == ["anthropic"] * 30
        # 15 by the other application, 30 answered here, and the one 429 that told this client about it
        assert requests_by_key(server) == {ANTHROPIC_KEYS[0]: {200: 45, 429: 1}}
        provider = [(c["ts"][11:19], c["after"], c["reason"]) for c in ours.snapshot()["limit_changes"]
                    if c["key_label"] is None]  # fmt: skip
        await ours.aclose()
    assert provider == [
        ("00:00:00", 7.5, "429s on 1 of 1 usable keys within 30 s, the last on key 'Primary' (retry-after 4 s)"),
        ("00:00:10", 8.75, "recovering: 10 s since the last pushback"),
        ("00:00:20", 10.0, "recovering: 20 s since the last pushback"),
        ("00:00:30", 11.25, "recovering: 30 s since the last pushback"),
        ("00:00:40", 12.5, "recovering: 40 s since the last pushback"),
        ("00:00:50", 13.75, "recovering: 50 s since the last pushback"),
        ("00:01:00", 15.0, "back at the configured ceiling: 60 s since the last pushback"),
    ]
