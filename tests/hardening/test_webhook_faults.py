"""A webhook receiver that is down, then slow, then answers 429, then 500, then recovers — and later answers 404
(issue 10, Faults). The real outbox dispatcher talks HTTP to a real loopback receiver on both stores; time between
retries is a manual clock (the slow receiver's delay is real).

After recovery every alert transition was accepted exactly once (one completed 2xx per ``event_id``, one delivered
attempt per outbox row); every retry carried the same ``event_id`` and the same bytes, so the one request a slow
receiver took but answered too late is a duplicate the receiver can drop. The channel shows ``failing`` during the
streak and ``ok`` after; a 404 marks it ``broken`` at once, is never retried, and the next good delivery clears it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.channel_health import channel_health
from pulsegate.core.alerts.delivery import Dispatcher
from pulsegate.core.clock import ManualClock
from pulsegate.core.store.tables import alert_notifications
from tests.alerts.channels.conftest import T0, alert, deliveries, enqueue, generic_config, message, outbox
from tests.alerts.channels.receivers import Receiver, Recorded, Reply

TIMEOUT_S = 0.2
MODES = {
    "slow": Reply(200, b"ok", delay_s=TIMEOUT_S + 0.3),  # takes it, answers after the dispatcher gave up
    "429": Reply(429, b"slow down", (("Retry-After", "7"),)),
    "500": Reply(500, b"oops"),
    "ok": Reply(200, b"ok"),
    "404": Reply(404, b"not found"),
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def next_due_in(engine: sa.Engine, clock: ManualClock) -> float:
    with engine.connect() as connection:
        due = connection.execute(
            sa.select(sa.func.min(alert_notifications.c.next_attempt_at)).where(
                alert_notifications.c.status == "pending"
            )
        ).scalar_one()
    return 0.0 if due is None else max(0.0, (due - clock.now()).total_seconds())


async def test_down_slow_429_500_then_recovery_delivers_each_transition_once_and_404_breaks_the_channel(
    store: sa.Engine, clock: ManualClock
) -> None:
    receiver = Receiver()
    log: list[tuple[str, str, bytes]] = []  # (event_id, mode, body) of every request the receiver took
    mode = {"now": "down"}

    def answer(request: Recorded) -> Reply:
        log.append((request.headers["x-pulsegate-event"], mode["now"], request.body))
        return MODES[mode["now"]]

    receiver.default = answer
    config = generic_config(receiver, timeout_s=TIMEOUT_S)
    transitions = [
        message([alert(episode_id=1)], transition="firing", title="one fires"),
        message([alert(episode_id=2, rule_id="latency_high")], transition="firing", title="two fires"),
        message([alert(episode_id=1, state="resolved", resolved_at=T0)], transition="resolved", title="one clears"),
        message([alert(episode_id=2, rule_id="latency_high")], transition="repeat", title="two still fires"),
    ]
    ids = [enqueue(store, config.name, m, now=T0 + timedelta(seconds=n)) for n, m in enumerate(transitions)]
    dispatcher = Dispatcher(store, [config], clock, backoff_base_s=1, backoff_max_s=4)
    try:
        clock.advance(4)
        health = []
        receiver.stop()  # down: connection refused
        for phase in ("down", "down", "slow", "429", "500", "500"):
            if phase != "down" and mode["now"] == "down":
                receiver.start()  # the same port opens again
            mode["now"] = phase
            await dispatcher.run_once(clock.now())
            health.append(channel_health(store, clock.now())[config.name].state)
            clock.advance(next_due_in(store, clock))
        mode["now"] = "ok"
        for _ in range(len(transitions) + 1):  # recovered: whatever is due goes out
            await dispatcher.run_once(clock.now())
            clock.advance(next_due_in(store, clock))
        assert health == ["ok", "ok", "failing", "failing", "failing", "failing"]  # 3 failed attempts in a row
        assert channel_health(store, clock.now())[config.name].state == "ok"

        rows = outbox(store)
        assert [(r["id"], r["status"]) for r in rows] == [(i, "delivered") for i in ids]
        accepted = Counter(event for event, how, _ in log if how == "ok")
        assert sorted(accepted.values()) == [1] * len(transitions)  # one completed 2xx per transition
        bodies: dict[str, set[bytes]] = defaultdict(set)
        for event, _, body in log:
            bodies[event].add(body)
        assert len(bodies) == len(transitions) and all(len(b) == 1 for b in bodies.values())  # retries: same bytes
        by_row = defaultdict(list)
        for attempt in deliveries(store):
            by_row[attempt["notification_id"]].append(attempt)
        for row in rows:
            attempts = by_row[row["id"]]
            assert sum(a["delivered"] for a in attempts) == 1 and attempts[-1]["delivered"], attempts
            assert row["attempts"] == len(attempts)
        assert {how for _, how, _ in log} == {"slow", "429", "500", "ok"}

        # a dead webhook: failed at once, the channel broken, never retried; the next good delivery clears it
        mode["now"] = "404"
        dead = enqueue(store, config.name, message(transition="firing", title="three fires"), now=clock.now())
        report = await dispatcher.run_once(clock.now())
        assert (report.failed, report.broken_channels) == (1, (config.name,))
        assert channel_health(store, clock.now())[config.name].state == "broken"
        taken = len(log)
        clock.advance(86_400)
        mode["now"] = "ok"
        await dispatcher.run_once(clock.now())
        assert len(log) == taken  # the 404'd message is not sent again
        assert outbox(store)[-1]["id"] == dead and outbox(store)[-1]["status"] == "failed"
        enqueue(store, config.name, message(transition="resolved", title="three clears"), now=clock.now())
        assert (await dispatcher.run_once(clock.now())).delivered == 1
        assert channel_health(store, clock.now())[config.name].state == "ok"
    finally:
        receiver.stop()
