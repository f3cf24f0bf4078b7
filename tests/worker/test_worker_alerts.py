"""The whole alert loop through a real ``pulsegate worker`` process: a probe finds a key the provider refuses, the
worker's heartbeat reports it disabled, the rule fires and ONE firing message reaches a webhook receiver on
loopback; the key comes back, a probe passes, the key is returned to service and ONE resolved message follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulsegate.emulator import EmulatorServer
from tests.alerts.channels.receivers import Receiver
from tests.client.conftest import ANTHROPIC_KEYS
from tests.support.processes import BackgroundProcess
from tests.worker.test_worker_process import wait_for, worker_env

RULES = """
group_wait = "0s"

[[rules]]                   # at once both ways (the shipped rule waits 2 minutes each way)
id = "key_unhealthy"
for = "0s"
keep_firing_for = "0s"
"""


def refused_key_env(store_url: str, emu: EmulatorServer, tmp_path: Path, receiver: Receiver) -> dict[str, str]:
    """A worker's environment with a second Anthropic key the emulator refuses, the rules above evaluated every
    second, and generic webhook messages to ``receiver``."""
    rules = tmp_path / "alerts.toml"
    rules.write_text(RULES)
    emu.set_scenario({"keys": {ANTHROPIC_KEYS[1]: {"behaviour": "invalid"}}})
    return worker_env(
        store_url,
        emu,
        tmp_path,
        ANTHROPIC_API_KEY_2=ANTHROPIC_KEYS[1],
        ALERT_RULES_FILE=str(rules),
        ALERT_INTERVAL_S="1",
        MONITORING_WEBHOOK_URL=receiver.url("/hook"),
        MONITORING_WEBHOOK_FORMAT="generic",
    )


def _messages(receiver: Receiver, rule_id: str) -> list[tuple[str, list[str]]]:
    """(transition, [key labels]) of every message about ``rule_id``, in arrival order."""
    out = []
    for request in receiver.requests:
        body = request.json()
        alerts = [a for a in body["alerts"] if a["rule_id"] == rule_id]
        if alerts:
            out.append((body["transition"], sorted(a["labels"]["key_label"] for a in alerts)))
    return out


@pytest.mark.slow
def test_a_refused_key_fires_once_and_resolves_once_through_the_webhook(emu: EmulatorServer, tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    from pulsegate import migrations

    migrations.upgrade(store_url)
    receiver = Receiver()  # listening from here
    env = refused_key_env(store_url, emu, tmp_path, receiver)
    try:
        with BackgroundProcess(["worker", "--port", "0"], cwd=tmp_path, env=env) as worker:
            worker.wait_for_output("worker started on", timeout=60)
            wait_for("the firing message", lambda: _messages(receiver, "key_unhealthy"), timeout=40)
            assert _messages(receiver, "key_unhealthy") == [("firing", ["Backup 1"])]

            emu.set_scenario({})  # the provider takes the key again: the next probe passes
            wait_for("the resolved message", lambda: len(_messages(receiver, "key_unhealthy")) == 2, timeout=40)
            assert _messages(receiver, "key_unhealthy") == [("firing", ["Backup 1"]), ("resolved", ["Backup 1"])]
            assert worker.stop() == 0
        assert ANTHROPIC_KEYS[1] not in worker.output
        assert receiver.url("/hook") not in worker.output
    finally:
        receiver.stop()
