"""The whole loop with the real engine: a dead webhook makes the dispatcher mark its channel broken, the engine's
``channel_failing`` rule fires and is sent to the *other* channel (once), and a successful test to the repaired
channel resolves it."""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.alerts.channel_health import channel_health
from pulsegate.core.alerts.config import AlertConfig
from pulsegate.core.alerts.delivery import Dispatcher
from pulsegate.core.alerts.evaluator import AlertEvaluator
from pulsegate.core.alerts.rules import DEFAULT_RULES
from pulsegate.core.alerts.sample_alert import send_sample_alert
from pulsegate.core.clock import ManualClock
from tests.alerts.channels.conftest import T0, discord_config, enqueue, message, outbox, slack_config
from tests.alerts.channels.receivers import SLACK_NO_SERVICE, SLACK_OK, Receiver, discord_ok


async def test_a_broken_channel_alerts_on_the_other_channel_and_clears(store: sa.Engine, receiver: Receiver) -> None:
    slack_state = {"reply": SLACK_NO_SERVICE}
    receiver.default = lambda request: discord_ok(request) if request.query else slack_state["reply"]
    slack, discord = slack_config(receiver), discord_config(receiver)
    rule = next(r for r in DEFAULT_RULES if r.id == "channel_failing")
    config = AlertConfig(rules=(rule,), channels=(slack, discord), group_wait_s=0, repeat_interval_s=3600)
    clock = ManualClock(T0)
    dispatcher = Dispatcher(store, config.channels, clock)
    enqueue(store, slack.name, message())

    await dispatcher.run_once(clock.now())
    assert channel_health(store, clock.now())[slack.name].state == "broken"

    for _ in range(3):  # evaluations after the first add nothing: one notification per transition
        clock.advance(30)
        AlertEvaluator(store, config, clock).evaluate()
        await dispatcher.run_once(clock.now())
    alerts_out = [r for r in outbox(store) if r["message"]["alerts"][0]["rule_id"] == "channel_failing"]
    assert [(r["channel"], r["transition"], r["status"]) for r in alerts_out] == [
        ("ops-discord", "firing", "delivered")
    ]
    (alert,) = alerts_out[0]["message"]["alerts"]
    assert alert["labels"] == {"channel": "ops-slack"}
    assert "broken: HTTP 404 no_service" in alert["summary"]
    discord_posts = [r.json() for r in receiver.requests if r.query]
    assert len(discord_posts) == 1
    assert discord_posts[0]["embeds"][0]["color"] == 0xD73A49

    slack_state["reply"] = SLACK_OK  # the webhook is repaired; a test proves it
    (outcome,) = await send_sample_alert(store, config.channels, channel=slack.name, clock=clock)
    assert outcome.delivered
    clock.advance(30)
    AlertEvaluator(store, config, clock).evaluate()
    await dispatcher.run_once(clock.now())
    assert len([r for r in outbox(store) if r["message"]["alerts"][0]["rule_id"] == "channel_failing"]) == 1
    clock.advance(rule.keep_firing_for_s)  # ok for keep_firing_for: resolved
    AlertEvaluator(store, config, clock).evaluate()
    await dispatcher.run_once(clock.now())
    alerts_out = [r for r in outbox(store) if r["message"]["alerts"][0]["rule_id"] == "channel_failing"]
    assert [(r["channel"], r["transition"], r["status"]) for r in alerts_out] == [
        ("ops-discord", "firing", "delivered"),
        ("ops-discord", "resolved", "delivered"),
    ]
    resolved = [r.json() for r in receiver.requests if r.query][-1]
    assert resolved["embeds"][0]["color"] == 0x28A745
    assert resolved["embeds"][0]["title"] == "✅ notification channel 'ops-slack' is ok"
