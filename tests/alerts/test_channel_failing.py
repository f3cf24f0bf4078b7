"""End to end with real receivers on loopback: a Slack webhook that answers ``no_service`` breaks its channel, the
engine raises ``channel_failing`` and routes it to the other channel only; a good delivery to the repaired webhook
resolves it."""

from __future__ import annotations

import asyncio
import json

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.delivery import Dispatcher
from pulsegate.core.alerts.evaluator import AlertEvaluator, fingerprint
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.alerts.sample_alert import send_sample_alert
from pulsegate.core.clock import ManualClock
from tests.alerts.channels.receivers import GENERIC_TOKEN, SLACK_NO_SERVICE, SLACK_OK, SLACK_TOKEN, Receiver
from tests.alerts.support import START, Calls, config, outbox, run, sent


@pytest.fixture
def clock() -> ManualClock:
    """Time starts at :data:`START` (mid-month, on a half minute) in the alert tests."""
    return ManualClock(START)


SUCCESS = Rule(id="success_rate_low", kind="success_rate_below", threshold=95, window_s=300, min_sample=10,
               severity="critical")  # fmt: skip
FAILING = Rule(id="channel_failing", kind="channel_failing", scope="global", severity="critical")


def test_a_broken_channel_raises_channel_failing_on_the_other_channel(store: sa.Engine, clock: ManualClock) -> None:
    slack_receiver, hook_receiver = Receiver(SLACK_OK), Receiver()
    try:
        slack = ChannelConfig(
            name="slack", format="slack", url=SecretStr(slack_receiver.url(f"/services/T0/B0/{SLACK_TOKEN}"))
        )
        hook = ChannelConfig(name="hook", format="generic", url=SecretStr(hook_receiver.url(f"/h/{GENERIC_TOKEN}")))
        channels = (slack, hook)
        engine = AlertEvaluator(store, config(SUCCESS, FAILING, channels=channels, group_wait_s=0), clock)
        dispatcher = Dispatcher(store, channels, clock)
        Calls(store).add(clock.now(), ok=2, failed=18)

        assert run(engine, clock).notifications == 2
        slack_receiver.script(SLACK_NO_SERVICE)
        asyncio.run(dispatcher.run_once(clock.now()))
        assert (len(slack_receiver.requests), len(hook_receiver.requests)) == (1, 1)

        report = run(engine, clock, 10)
        failing_fp = fingerprint("channel_failing", {"channel": "slack"})
        assert report.fired == [failing_fp]
        assert sent(store)[2:] == [("firing", "hook", "channel_failing", [failing_fp])]
        message = outbox(store)[2]["message"]
        assert message["alerts"][0]["labels"] == {"channel": "slack"}
        assert message["alerts"][0]["summary"].startswith("notification channel 'slack' is broken")
        assert SLACK_TOKEN not in json.dumps(message)

        asyncio.run(dispatcher.run_once(clock.now()))
        assert (len(slack_receiver.requests), len(hook_receiver.requests)) == (1, 2)
        assert "channel_failing" in hook_receiver.requests[-1].body.decode()

        # The operator repairs the webhook and sends a test: delivered, so the channel is healthy again.
        clock.advance(60)
        [outcome] = asyncio.run(send_sample_alert(store, channels, channel="slack", now=clock.now(), clock=clock))
        assert (outcome.channel, outcome.delivered, len(slack_receiver.requests)) == ("slack", True, 2)
        report = run(engine, clock, 10)
        assert report.resolved == [failing_fp]
        assert sent(store)[-1] == ("resolved", "hook", "channel_failing", [failing_fp])
    finally:
        slack_receiver.stop()
        hook_receiver.stop()
