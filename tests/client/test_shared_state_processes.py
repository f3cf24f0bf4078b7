"""Four real processes — four app servers — share key cooldowns and the circuit breaker through real Redis.

Each process (``tests/client/app_server.py``) has its own ``AIClient`` and makes calls with the real SDK against
the emulator when told to; Redis ``TIME`` is the only clock they share, so the open period here is real time.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, requests_by_key, total_requests
from tests.limits.conftest import delete_prefix, unique_prefix
from tests.support.processes import LineProcess

pytestmark = [pytest.mark.redis, pytest.mark.slow]
OPEN_S = 3.0


class AppServer(LineProcess):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("tests.client.app_server", json.dumps(config))

    def send(self, command: str) -> None:
        self.send_line(command)

    def ask(self, command: str) -> dict[str, Any]:
        self.send_line(command)
        return self.read()


def test_cooldowns_and_the_breaker_reach_every_process_and_one_process_sends_the_trial(
    emu: EmulatorServer, redis_url: str
) -> None:
    prefix = unique_prefix().replace("limit", "state")
    config = {
        "emulator": emu.url,
        "redis": redis_url,
        "prefix": prefix,
        "keys": ANTHROPIC_KEYS[:2],
        "breaker": {"min_calls": 2, "failure_rate": 0.6, "open_s": OPEN_S, "window_s": 60.0},
    }
    servers = [AppServer(config) for _ in range(4)]
    try:
        for server in servers:
            assert server.read() == {"ready": True}

        # a 429 on Primary, seen by the first process only: every other process avoids Primary on its next call
        emu.set_scenario({"faults": [{"kind": "rate_limit", "count": 1, "key": ANTHROPIC_KEYS[0], "retry_after": 30}]})
        for server in servers:
            assert server.ask("call") == {"ok": True, "key": "Backup 1"}
        assert requests_by_key(emu) == {ANTHROPIC_KEYS[0]: {429: 1}, ANTHROPIC_KEYS[1]: {200: 4}}
        assert all(server.ask("state")["keys"]["Primary"] == "cooldown" for server in servers)

        # the second process trips the breaker; the others fail fast on their next call, sending nothing
        emu.set_scenario({"faults": [{"kind": "overloaded", "provider": "anthropic"}]})
        emu.reset()
        tripped = servers[1].ask("call")  # 2 of its 3 calls in the window failed: 67 % ≥ 60 %
        tripped_at = time.monotonic()
        assert (tripped["ok"], tripped["error"]) == (False, "overloaded")
        assert total_requests(emu) == 2  # the 529 and its one retry
        for server in (servers[0], servers[2], servers[3]):
            answer = server.ask("call")
            assert (answer["ok"], answer["error"]) == (False, "circuit_open"), answer
        assert total_requests(emu) == 2

        # the open period ends for all at once: four calls at the same moment, exactly one is the trial
        emu.set_scenario({"latency": {"kind": "fixed", "ms": 1000}})
        emu.reset()
        time.sleep(max(0.0, tripped_at + OPEN_S + 0.2 - time.monotonic()))
        for server in servers:
            server.send("call")
        answers = [server.read() for server in servers]
        assert sorted((a["ok"], a.get("error")) for a in answers) == [
            (False, "circuit_open"),
            (False, "circuit_open"),
            (False, "circuit_open"),
            (True, None),
        ], answers
        assert total_requests(emu) == 1
        # the trial's success closed the breaker for every process
        for server in servers:
            assert server.ask("call")["ok"] is True
            assert server.ask("state")["breaker"] == "closed"
        assert total_requests(emu) == 5
    finally:
        for server in servers:
            server.stop()
        delete_prefix(redis_url, prefix)
