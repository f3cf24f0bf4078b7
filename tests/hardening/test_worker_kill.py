"""Worker ``kill -9`` with an alert firing, leader failover and a restart (issue 10, Faults).

Two real ``pulsegate worker`` processes on one store; a probe finds a key the provider refuses and the leader's
alert loop sends ONE firing message to a loopback webhook. The leader is killed with SIGKILL once the message is
stored as delivered; the standby takes over and a third worker is started in the killed one's place. The new leader
must not notify the firing alert again; when the key comes back, ONE resolved message follows. The probe of each key
— a job with a period — never runs twice in one period and is never skipped for longer than the handover, across
the kill and the restart (as in tests/worker/test_worker_process.py, now with the alert loop running and a restart).
"""

from __future__ import annotations

import itertools
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate.core.store.tables import alert_notifications
from pulsegate.emulator import EmulatorServer
from tests.alerts.channels.receivers import Receiver
from tests.support.processes import BackgroundProcess
from tests.worker.test_worker_alerts import _messages, refused_key_env
from tests.worker.test_worker_process import (
    CLAIM_S,
    LEASE_S,
    PROBE_INTERVAL_S,
    engine,
    healthz,
    probe_rows,
    processes,
    start_worker,
    store_url,
    wait_for,
)

__all__ = ["engine", "processes", "store_url"]  # fixtures


def delivered(engine: sa.Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.select(alert_notifications.c.status)).scalars())


@pytest.mark.slow
def test_kill_9_with_an_alert_firing_then_restart_notifies_once_and_skips_no_period(
    store_url: str,
    engine: sa.Engine,
    emu: EmulatorServer,
    tmp_path: Path,
    processes: list[BackgroundProcess],
) -> None:
    receiver = Receiver()
    env = refused_key_env(store_url, emu, tmp_path, receiver)
    try:
        (one, port_one), (two, port_two) = (
            start_worker(processes, env, tmp_path),
            start_worker(processes, env, tmp_path),
        )
        for worker in (one, two):
            worker.wait_for_output("worker started on", timeout=60)
        roles = {port: healthz(port)["role"] for port in (port_one, port_two)}
        assert sorted(roles.values()) == ["leader", "standby"]
        (leader, _), (standby, standby_port) = sorted(
            [(one, port_one), (two, port_two)], key=lambda pair: roles[pair[1]] != "leader"
        )

        wait_for("the firing message", lambda: _messages(receiver, "key_unhealthy"), timeout=40)
        wait_for("the outbox stored as delivered", lambda: set(delivered(engine)) == {"delivered"}, timeout=10)
        leader.process.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        assert leader.stop() == -signal.SIGKILL
        wait_for("the standby to lead", lambda: healthz(standby_port)["role"] == "leader", timeout=4 * LEASE_S)
        third, third_port = start_worker(processes, env, tmp_path)  # the killed worker, restarted
        third.wait_for_output("worker started on", timeout=60)
        assert healthz(third_port)["role"] == "standby"

        time.sleep(PROBE_INTERVAL_S + 1)  # the new leader probes the refused key again and evaluates every second
        assert _messages(receiver, "key_unhealthy") == [("firing", ["Backup 1"])]  # not notified again

        emu.set_scenario({})  # the key is taken again: the next probe passes, the alert resolves
        wait_for("the resolved message", lambda: len(_messages(receiver, "key_unhealthy")) == 2, timeout=40)
        time.sleep(2)  # a few more evaluations
        assert _messages(receiver, "key_unhealthy") == [("firing", ["Backup 1"]), ("resolved", ["Backup 1"])]
        # the default probe_failures rule (3 failed probes in a row, counted from the attempt rows across leaders)
        # fired and resolved at most once each — on a slow machine the key may be taken again before its third
        # failed probe, and then it never fires; nothing else was sent
        probe_failures = _messages(receiver, "probe_failures")
        assert probe_failures in (
            [],
            [("firing", ["Backup 1"])],  # its resolution a few evaluations behind
            [("firing", ["Backup 1"]), ("resolved", ["Backup 1"])],
        ), probe_failures
        assert len(receiver.requests) == 2 + len(probe_failures)
        assert delivered(engine) == ["delivered"] * (2 + len(probe_failures))
        assert standby.stop(signal.SIGTERM) == 0
        assert third.stop(signal.SIGTERM) == 0
    finally:
        receiver.stop()

    rows = probe_rows(engine)
    for key in (("anthropic", "Primary"), ("anthropic", "Backup 1"), ("openai", "Primary")):
        runs = [ts for provider, label, ts, _ in rows if (provider, label) == key]
        assert len(runs) >= 2, (key, runs)  # OpenAI's first probe is spread 15 s after the start
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(runs)]
        # never twice in one period; never skipped for more than the handover (at most one period lost to it)
        assert all(CLAIM_S <= gap <= PROBE_INTERVAL_S + 2 * LEASE_S + 1.0 for gap in gaps), (key, gaps)
