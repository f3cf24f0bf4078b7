"""Redis goes away under multi-process load (issue 10, Faults): four real app-server processes
(``tests/hardening/redis_app.py``, each an ``AIClient`` wired as ``REDIS_URL`` wires it) share limits, key cooldowns
and the breaker through a TCP proxy (a fifth process) in front of the real Redis; the test cuts the proxy (every
connection reset, new ones reset at once) and restores it.

While Redis is away no call fails: every process goes on under its local share of the limit (paced by it), with its
own key state. When Redis answers again, the shared limit and state resume — including what a process learnt alone
(a key's 429) reaching every other process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from pulsegate.emulator import EmulatorServer
from tests.client.conftest import ANTHROPIC_KEYS, requests_by_key
from tests.limits.conftest import delete_prefix, unique_prefix
from tests.support.processes import ROOT, LineProcess, clean_env

pytestmark = [pytest.mark.redis, pytest.mark.slow]

PROCESSES = 4
RPM = 40  # per PERIOD_S, shared by the four processes
PERIOD_S = 2.0
LOCAL_SHARE = 0.25  # each process's part of the limit while Redis is away: 10 per 2 s, refilled at 5 per second
PROBE_INTERVAL_S = 2.0  # RedisLink: while degraded, Redis is tried again at most this often


class ProxyProcess:
    """The TCP proxy in front of Redis, in a process of its own: cut() resets every connection, restore() ends it."""

    def __init__(self, host: str, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.hardening.proxy_process", host, str(port)],
            cwd=ROOT,
            env=clean_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def _say(self, command: str) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline().strip() == "ok"

    def cut(self) -> None:
        self._say("cut")

    def restore(self) -> None:
        self._say("restore")

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class App(LineProcess):
    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__("tests.hardening.redis_app", json.dumps(config))

    def send(self, **command: Any) -> None:
        self.send_line(json.dumps(command))

    def ask(self, **command: Any) -> dict[str, Any]:
        self.send(**command)
        return self.read()


def bursts(apps: list[App], n: int) -> list[dict[str, Any]]:
    """Every process makes ``n`` calls at once, all processes at the same time."""
    for app in apps:
        app.send(op="burst", n=n)
    return [app.read() for app in apps]


def test_redis_cut_under_four_processes_calls_go_on_under_local_limits_and_shared_state_resumes(
    emu: EmulatorServer, redis_url: str
) -> None:
    parts = urlsplit(redis_url)
    proxy = ProxyProcess(parts.hostname or "127.0.0.1", parts.port or 6379)
    prefix = unique_prefix().replace("limit", "outage")
    config = {
        "emulator": emu.url,
        "redis": f"redis://127.0.0.1:{proxy.port}{parts.path}",
        "prefix": prefix,
        "keys": ANTHROPIC_KEYS[:2],
        "rpm": RPM,
        "period_s": PERIOD_S,
        "local_share": LOCAL_SHARE,
    }
    apps = [App(config) for _ in range(PROCESSES)]
    try:
        for app in apps:
            assert app.read() == {"ready": True}

        # Redis up: the four share one bucket of 40. A first call each connects and loads the scripts — with four
        # processes still starting on a small machine that may miss the 50 ms timeout (a false outage); the next
        # probe, one interval later, ends it
        assert [a["ok"] for a in bursts(apps, 1)] == [1] * PROCESSES
        time.sleep(PROBE_INTERVAL_S + 0.2)
        assert [a["ok"] for a in bursts(apps, 1)] == [1] * PROCESSES
        answers = bursts(apps, 5)
        assert [(a["ok"], a["errors"]) for a in answers] == [(5, {})] * PROCESSES
        for app in apps:
            state = app.ask(op="state")
            assert (state["limiter_degraded"], state["shared_degraded"], state["rpm_capacity"]) == (False, False, RPM)

        proxy.cut()
        # every process at once, 14 calls each: none fails; each is paced by its own local bucket of 10 (refilled at
        # 5 per second), so the last 4 wait about 0.8 s — the four together stay within the provider's limit
        answers = bursts(apps, 14)
        assert [(a["ok"], a["errors"]) for a in answers] == [(14, {})] * PROCESSES, answers
        for answer in answers:
            assert answer["seconds"] >= (14 - RPM * LOCAL_SHARE) / (RPM * LOCAL_SHARE / PERIOD_S) - 0.1, answer
        for app in apps:
            state = app.ask(op="state")
            assert (state["limiter_degraded"], state["shared_degraded"]) == (True, True)
            assert state["rpm_capacity"] == RPM * LOCAL_SHARE

        # alone: the first process meets a 429 on Primary (two calls at once: one is sent on Primary, answered 429,
        # and moves on to Backup 1); the others cannot be told while Redis is away
        emu.reset()
        emu.add_fault({"kind": "rate_limit", "count": 1, "key": ANTHROPIC_KEYS[0], "retry_after": 60})
        answer = apps[0].ask(op="burst", n=2)
        assert (answer["ok"], answer["keys"]) == (2, {"Backup 1": 2})
        assert requests_by_key(emu)[ANTHROPIC_KEYS[0]] == {429: 1}
        assert apps[0].ask(op="state")["keys"] == {"Primary": "cooldown", "Backup 1": "healthy"}
        assert apps[1].ask(op="state")["keys"] == {"Primary": "healthy", "Backup 1": "healthy"}

        proxy.restore()
        time.sleep(PROBE_INTERVAL_S + 0.2)  # the next probe of Redis is due in every process
        assert apps[0].ask(op="burst", n=1)["ok"] == 1  # ends its outage and tells the shared state what it learnt
        answers = [app.ask(op="burst", n=1) for app in apps[1:]]
        assert [(a["ok"], a["keys"]) for a in answers] == [(1, {"Backup 1": 1})] * (PROCESSES - 1)
        for index, app in enumerate(apps):
            state = app.ask(op="state")
            assert (state["limiter_degraded"], state["shared_degraded"]) == (False, False)
            # the shared limit again, no longer scaled to the local share (the first process halved its own after
            # the 429: self-tuning limits are each process's own)
            assert state["rpm_capacity"] == (RPM / 2 if index == 0 else RPM), (index, state)
            assert state["keys"] == {"Primary": "cooldown", "Backup 1": "healthy"}
        assert requests_by_key(emu)[ANTHROPIC_KEYS[0]] == {429: 1}  # nobody tried Primary again
    finally:
        for app in apps:
            app.stop()
        proxy.close()
        delete_prefix(redis_url, prefix)
