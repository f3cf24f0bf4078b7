"""Webhook URLs and the HMAC secret are credentials: after every kind of outcome they appear in no log line (ours
or httpx2's, at DEBUG), no outbox or delivery row, no report, repr or error message — only masked forms."""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from pulsegate.core.alerts.channel_health import channel_health
from pulsegate.core.alerts.channels import ChannelConfig, parse_channels
from pulsegate.core.alerts.channels.config import ChannelConfigError
from pulsegate.core.alerts.delivery import Dispatcher
from pulsegate.core.alerts.redaction import redact
from pulsegate.core.alerts.sample_alert import send_sample_alert
from pulsegate.core.clock import ManualClock
from pulsegate.core.settings import load_settings
from tests.alerts.channels.conftest import (
    T0,
    deliveries,
    discord_config,
    enqueue,
    generic_config,
    message,
    outbox,
    slack_config,
)
from tests.alerts.channels.receivers import (
    DISCORD_TOKEN,
    DISCORD_UNKNOWN_WEBHOOK,
    GENERIC_TOKEN,
    HMAC_SECRET,
    SLACK_500,
    SLACK_NO_SERVICE,
    SLACK_OK,
    SLACK_TOKEN,
    Receiver,
    Reply,
    discord_429,
    discord_ok,
    slack_429,
)

SECRETS = (SLACK_TOKEN, DISCORD_TOKEN, GENERIC_TOKEN, HMAC_SECRET)


def _scan(*texts: object) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), f"{secret!r} leaked into {str(text)[:300]!r}"


async def test_no_secret_in_logs_rows_reports_or_errors(
    store: sa.Engine, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    clock = ManualClock(T0)
    channels = [slack_config(receiver), discord_config(receiver), generic_config(receiver, timeout_s=0.2)]

    def reply(request):
        if "/services/" in request.path:
            return script["slack"].pop(0) if script["slack"] else SLACK_OK
        if "/api/webhooks/" in request.path:
            item = script["discord"].pop(0) if script["discord"] else discord_ok
            return item(request) if callable(item) else item
        return script["generic"].pop(0) if script["generic"] else Reply(204)

    script = {
        "slack": [slack_429("1"), SLACK_500, SLACK_NO_SERVICE],
        "discord": [discord_429(0.5), DISCORD_UNKNOWN_WEBHOOK],
        "generic": [Reply(200, b"", delay_s=1.0), Reply(401, f"bad signature {HMAC_SECRET}".encode())],
    }
    receiver.default = reply
    for config in channels:
        for n in range(3):
            enqueue(store, config.name, message(title=f"{config.name} {n}"))
    dispatcher = Dispatcher(store, channels, clock, backoff_base_s=1, backoff_max_s=1)
    reports = []
    for _ in range(6):
        reports.append(await dispatcher.run_once(clock.now()))
        clock.advance(2)
    receiver.stop()  # connection refused for what is left
    reports.append(await dispatcher.run_once(clock.now()))
    receiver.start()
    outcomes = await send_sample_alert(store, channels, now=clock.now(), clock=clock)

    errors = {row["error"] for row in deliveries(store) if row["error"]}
    assert "broken: HTTP 401" in errors  # the receiver's sentence (quoting the secret) was not kept
    assert any("timeout after 0.2s" in e for e in errors)
    assert "HTTP Request: POST" in caplog.text  # httpx2 did log each request: with the URL masked
    assert f"http://127.0.0.1:{receiver.port}/…" in caplog.text
    _scan(
        caplog.text,
        *(r.getMessage() for r in caplog.records),
        *outbox(store),
        *deliveries(store),
        *(repr(r) for r in reports),
        *(repr(o) for o in outcomes),
        *(o.to_json() for o in outcomes),
        *channels,
        *(h.to_json() for h in channel_health(store, clock.now()).values()),
    )


def test_config_errors_and_reprs_mask_urls() -> None:
    settings = load_settings({"MONITORING_WEBHOOK_URL": f"https://hooks.slack.com/services/T/B/{SLACK_TOKEN}"}, None)
    (default,) = parse_channels([], settings, environ={})
    _scan(repr(default), str(default), repr(settings), settings.describe())
    with pytest.raises(ChannelConfigError) as caught:
        parse_channels(
            [{"name": "x", "url": f"hxxp://discord.com/api/webhooks/1/{DISCORD_TOKEN}"}],
            settings,
            environ={},
        )
    _scan(str(caught.value), repr(caught.value))


def test_redact_replaces_url_path_and_secret() -> None:
    config = ChannelConfig(
        name="g",
        format="generic",
        url=SecretStr(f"https://in.example.com/hooks/{GENERIC_TOKEN}?team=1"),
        secret=SecretStr(HMAC_SECRET),
    )
    text = f"POST https://in.example.com/hooks/{GENERIC_TOKEN}?team=1 path /hooks/{GENERIC_TOKEN} sig {HMAC_SECRET}"
    assert redact(text, [config]) == "POST https://in.example.com/… path /… sig …cdef"
    by_query = ChannelConfig(
        name="q", format="generic", url=SecretStr(f"https://in.example.com/in?token={SLACK_TOKEN}")
    )
    assert redact(f"GET /in?token={SLACK_TOKEN} token={SLACK_TOKEN}", [by_query]) == "GET /in?… …"
