"""Exact payloads per format, the receivers' limits kept by truncation, and how each format reads an answer."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from pydantic import SecretStr

from pulsegate.core.alerts.channels import ChannelConfig, DeliveryOutcome, make_channel
from pulsegate.core.alerts.channels.discord import DiscordChannel, embed_length
from pulsegate.core.alerts.channels.slack import SlackChannel
from pulsegate.core.alerts.channels.webhook import GenericWebhookChannel, event_id, verify
from tests.alerts.channels.conftest import T0, alert, message

URL = "https://hooks.example.com/services/T0/B0/tokentokentoken"
SECRET = "0123456789abcdef-secret"


def _config(fmt: str, *, secret: str | None = None) -> ChannelConfig:
    return ChannelConfig(name="c", format=fmt, url=SecretStr(URL), secret=SecretStr(secret) if secret else None)  # type: ignore[arg-type]


def _render(fmt: str, msg, **kw) -> tuple[dict, dict[str, str]]:
    body, headers = make_channel(_config(fmt, **kw)).render(msg)
    return json.loads(body), headers


SINCE = {"type": "mrkdwn", "text": "*Since*\n2026-01-01 00:00:00 UTC"}


def test_slack_firing_payload_is_exact() -> None:
    payload, headers = _render("slack", message())

    assert headers == {"Content-Type": "application/json; charset=utf-8"}
    assert payload == {
        "text": "[FIRING:1] Success rate low\n🔴 anthropic success rate 71.2 % &lt; 95 % over 15m",
        "attachments": [
            {
                "color": "#d73a49",
                "blocks": [
                    {
                        "type": "header",
                        "text": {"type": "plain_text", "text": "[FIRING:1] Success rate low", "emoji": True},
                    },
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "🔴 *anthropic success rate 71.2 % &lt; 95 % over 15m*\n`success_rate_low`",
                        },
                        "fields": [
                            {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                            {"type": "mrkdwn", "text": "*Scope*\nprovider=anthropic"},
                            {"type": "mrkdwn", "text": "*Value*\n71.2"},
                            {"type": "mrkdwn", "text": "*Threshold*\n95"},
                            {"type": "mrkdwn", "text": "*Window*\n15m"},
                            SINCE,
                        ],
                    },
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "Open dashboard"},
                                "url": "https://pulse.example.com",
                            }
                        ],
                    },
                ],
            }
        ],
    }


def test_slack_colours_follow_state_and_severity_and_resolved_shows_when() -> None:
    resolved = alert(state="resolved", resolved_at=T0 + timedelta(minutes=20))
    payload, _ = _render("slack", message([resolved], transition="resolved", dashboard_url=None))
    attachment = payload["attachments"][0]
    assert attachment["color"] == "#28a745"
    assert payload["text"].startswith("[RESOLVED] Success rate low\n✅ ")
    assert attachment["blocks"][1]["fields"][-2:] == [
        SINCE,
        {"type": "mrkdwn", "text": "*Resolved*\n2026-01-01 00:20:00 UTC"},
    ]
    assert [b["type"] for b in attachment["blocks"]] == ["header", "section"]  # no dashboard: no button
    warning, _ = _render("slack", message([alert(severity="warning")]))
    assert warning["attachments"][0]["color"] == "#dbab09"
    repeat, _ = _render("slack", message(transition="repeat"))
    assert repeat["text"].startswith("[REPEAT:1] Success rate low\n🔁 ")


REPEAT_TITLE = "[REPEAT] Success rate low · anthropic"  # as the engine titles a repeat


def test_a_repeat_is_labelled_as_a_repeat_in_every_format() -> None:
    repeat = message(transition="repeat", title=REPEAT_TITLE)

    slack, _ = _render("slack", repeat)
    assert slack == {
        "text": "[REPEAT] Success rate low · anthropic\n🔁 anthropic success rate 71.2 % &lt; 95 % over 15m",
        "attachments": [
            {
                "color": "#d73a49",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": REPEAT_TITLE, "emoji": True}},
                    {
                        "type": "section",
                        "text": {
                            "type": "mrkdwn",
                            "text": "🔁 *anthropic success rate 71.2 % &lt; 95 % over 15m*\n`success_rate_low`",
                        },
                        "fields": [
                            {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                            {"type": "mrkdwn", "text": "*Scope*\nprovider=anthropic"},
                            {"type": "mrkdwn", "text": "*Value*\n71.2"},
                            {"type": "mrkdwn", "text": "*Threshold*\n95"},
                            {"type": "mrkdwn", "text": "*Window*\n15m"},
                            SINCE,
                        ],
                    },
                    {
                        "type": "actions",
                        "elements": [
                            {
                                "type": "button",
                                "text": {"type": "plain_text", "text": "Open dashboard"},
                                "url": "https://pulse.example.com",
                            }
                        ],
                    },
                ],
            }
        ],
    }

    discord, _ = _render("discord", repeat)
    assert discord == {
        "username": "Pulsegate",
        "content": "[REPEAT] Success rate low · anthropic\n<https://pulse.example.com>",
        "embeds": [
            {
                "title": "🔁 anthropic success rate 71.2 % < 95 % over 15m",
                "description": "Rule `success_rate_low`",
                "color": 0xD73A49,
                "timestamp": "2026-01-01T00:00:00+00:00",
                "fields": [
                    {"name": "Severity", "value": "critical", "inline": True},
                    {"name": "Scope", "value": "provider=anthropic", "inline": True},
                    {"name": "Value", "value": "71.2", "inline": True},
                    {"name": "Threshold", "value": "95", "inline": True},
                    {"name": "Window", "value": "15m", "inline": True},
                    {"name": "Since", "value": "2026-01-01 00:00:00 UTC", "inline": True},
                ],
                "url": "https://pulse.example.com",
            }
        ],
        "allowed_mentions": {"parse": []},
    }

    generic, _ = _render("generic", repeat)
    assert (generic["transition"], generic["status"], generic["title"]) == ("repeat", "firing", REPEAT_TITLE)
    assert [a["state"] for a in generic["alerts"]] == ["firing"]

    # what a receiver keying on the title's tag (the demo's inbox does) reads: a repeat, not a new firing
    from pulsegate.jobs.cli.demo.sink import summarise

    assert [summarise(fmt, payload)["transition"] for fmt, payload in (("slack", slack), ("discord", discord))] == [
        "repeat",
        "repeat",
    ]


def test_slack_limits_are_kept_by_truncation() -> None:
    many = [alert(episode_id=i, summary="x" * 5000, labels={"provider": "p" * 3000}) for i in range(30)]
    payload, _ = _render("slack", message(many, title="T" * 400))
    blocks = payload["attachments"][0]["blocks"]
    assert len(payload["text"]) == 3000 and payload["text"].endswith("…")
    assert blocks[0]["text"]["text"] == "[FIRING:30] " + "T" * 137 + "…"
    assert len(blocks[0]["text"]["text"]) == 150
    sections = [b for b in blocks if b["type"] == "section"]
    assert len(sections) == 20 and len(blocks) <= 50
    assert all(len(s["text"]["text"]) == 3000 for s in sections)
    assert all(len(f["text"]) <= 2000 and len(s["fields"]) <= 10 for s in sections for f in s["fields"])
    assert blocks[-2] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "…and 10 more alerts (see the dashboard)"}],
    }


def test_slack_escapes_mrkdwn_and_never_splits_an_entity() -> None:
    from pulsegate.core.alerts.channels.slack import mrkdwn

    assert mrkdwn("a < b & c > d", 100) == "a &lt; b &amp; c &gt; d"
    assert mrkdwn("abc<<<", 6) == "abc…"  # "abc&l" would be a broken entity


def test_discord_firing_payload_is_exact_and_posted_with_wait_true() -> None:
    channel = DiscordChannel(_config("discord"))
    payload = json.loads(channel.render(message())[0])

    assert channel.request_url() == URL + "?wait=true"
    assert payload == {
        "username": "Pulsegate",
        "content": "[FIRING:1] Success rate low\n<https://pulse.example.com>",
        "embeds": [
            {
                "title": "🔴 anthropic success rate 71.2 % < 95 % over 15m",
                "description": "Rule `success_rate_low`",
                "color": 0xD73A49,
                "timestamp": "2026-01-01T00:00:00+00:00",
                "fields": [
                    {"name": "Severity", "value": "critical", "inline": True},
                    {"name": "Scope", "value": "provider=anthropic", "inline": True},
                    {"name": "Value", "value": "71.2", "inline": True},
                    {"name": "Threshold", "value": "95", "inline": True},
                    {"name": "Window", "value": "15m", "inline": True},
                    {"name": "Since", "value": "2026-01-01 00:00:00 UTC", "inline": True},
                ],
                "url": "https://pulse.example.com",
            }
        ],
        "allowed_mentions": {"parse": []},
    }


def test_discord_keeps_an_existing_query_and_replaces_wait() -> None:
    config = ChannelConfig(
        name="d", format="discord", url=SecretStr("https://d.example/api/webhooks/1/t?thread_id=9&wait=false")
    )
    assert DiscordChannel(config).request_url() == "https://d.example/api/webhooks/1/t?thread_id=9&wait=true"


def test_discord_resolved_is_green_with_the_resolution_time() -> None:
    resolved = alert(state="resolved", resolved_at=T0 + timedelta(minutes=20))
    payload, _ = _render("discord", message([resolved], transition="resolved", dashboard_url=None))
    embed = payload["embeds"][0]
    assert payload["content"] == "[RESOLVED] Success rate low"
    assert (embed["color"], embed["timestamp"]) == (0x28A745, "2026-01-01T00:20:00+00:00")
    assert embed["title"].startswith("✅ ")
    assert "url" not in embed


def test_discord_limits_content_embeds_fields_and_total() -> None:
    many = [alert(episode_id=i, summary="s" * 300, labels={"k": "v" * 2000}) for i in range(15)]
    payload, _ = _render("discord", message(many, title="T" * 2500))
    embeds = payload["embeds"]
    assert len(payload["content"]) == 2000 and payload["content"].endswith("…")
    assert len(embeds) <= 10
    assert sum(embed_length(e) for e in embeds) <= 6000
    for embed in embeds:
        assert len(embed["title"]) == 256 and embed["title"].endswith("…")
        assert len(embed["description"]) <= 4096
        assert len(embed["fields"]) <= 25
        assert all(len(f["value"]) <= 1024 and len(f["name"]) <= 256 for f in embed["fields"])
    # what did not fit is counted, not dropped silently
    shown = len(embeds)
    short, _ = _render("discord", message(many, title="T"))
    assert short["content"].startswith(f"[FIRING:15] T (…and {15 - len(short['embeds'])} more alerts)")
    assert shown == len(short["embeds"])


def test_discord_shrinks_a_single_oversized_embed_to_6000() -> None:
    huge = alert(summary="y" * 5000, labels={f"l{i}": "z" * 1024 for i in range(5)})
    payload, _ = _render("discord", message([huge]))
    (embed,) = payload["embeds"]
    assert embed_length(embed) <= 6000
    assert embed["title"].endswith("…") and len(embed["title"]) == 256


def test_generic_payload_schema_and_signature() -> None:
    msg = message()
    channel = GenericWebhookChannel(_config("generic", secret=SECRET))
    body, headers = channel.render(msg)
    payload = json.loads(body)

    assert payload == {
        "version": "1",
        "event_id": event_id(msg),
        "transition": "firing",
        "status": "firing",
        "group_key": "success_rate_low|provider=anthropic",
        "title": "Success rate low",
        "severity": "critical",
        "created_at": "2026-01-01T00:00:00+00:00",
        "dashboard_url": "https://pulse.example.com",
        "truncated_alerts": 0,
        "alerts": [
            {
                "rule_id": "success_rate_low",
                "fingerprint": "fp-success_rate_low-1",
                "labels": {"provider": "anthropic"},
                "severity": "critical",
                "state": "firing",
                "summary": "anthropic success rate 71.2 % < 95 % over 15m",
                "value": 71.2,
                "threshold": 95.0,
                "window_s": 900.0,
                "started_at": "2026-01-01T00:00:00+00:00",
                "resolved_at": None,
                "episode_id": 1,
                "resolve_threshold": None,
            }
        ],
    }
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers == {
        "Content-Type": "application/json",
        "X-Pulsegate-Event": event_id(msg),
        "X-Pulsegate-Signature": expected,
    }
    assert verify(SECRET, body, headers["X-Pulsegate-Signature"])
    assert not verify(SECRET, body + b" ", headers["X-Pulsegate-Signature"])
    assert len(event_id(msg)) == 32 and event_id(msg) == event_id(message())  # same on every retry


def test_generic_without_secret_is_unsigned_and_caps_alerts() -> None:
    many = [alert(episode_id=i) for i in range(130)]
    body, headers = GenericWebhookChannel(_config("generic")).render(message(many))
    payload = json.loads(body)
    assert "X-Pulsegate-Signature" not in headers
    assert (len(payload["alerts"]), payload["truncated_alerts"]) == (100, 30)


SLACK = SlackChannel(_config("slack"))
DISCORD = DiscordChannel(_config("discord"))
GENERIC = GenericWebhookChannel(_config("generic"))


@pytest.mark.parametrize(
    ("channel", "status", "headers", "body", "expected"),
    [
        (SLACK, 200, {}, b"ok", DeliveryOutcome("delivered", "HTTP 200 ok")),
        (SLACK, 429, {"Retry-After": "7"}, b"rate_limited", DeliveryOutcome("retry", "HTTP 429 rate_limited", 7.0)),
        (SLACK, 500, {}, b"rollup_error", DeliveryOutcome("retry", "HTTP 500 rollup_error")),
        (SLACK, 404, {}, b"no_service", DeliveryOutcome("broken", "HTTP 404 no_service")),
        (SLACK, 410, {}, b"channel_is_archived", DeliveryOutcome("broken", "HTTP 410 channel_is_archived")),
        (SLACK, 400, {}, b"no_service", DeliveryOutcome("broken", "HTTP 400 no_service")),  # keyed on the body
        (SLACK, 403, {}, b"invalid_token", DeliveryOutcome("broken", "HTTP 403 invalid_token")),
        (SLACK, 400, {}, b"invalid_payload", DeliveryOutcome("rejected", "HTTP 400 invalid_payload")),
        (SLACK, 400, {}, b"<html>https://x/secret</html>", DeliveryOutcome("rejected", "HTTP 400")),
        (DISCORD, 204, {}, b"", DeliveryOutcome("delivered", "HTTP 204")),
        (DISCORD, 200, {}, b'{"id": "1"}', DeliveryOutcome("delivered", "HTTP 200")),
        (
            DISCORD,
            429,
            {"Retry-After": "3"},
            b'{"message": "You are being rate limited.", "retry_after": 2.5, "global": false}',
            DeliveryOutcome("retry", "HTTP 429 rate limited", 2.5),
        ),
        (
            DISCORD,
            429,
            {"Retry-After": "3"},
            b'{"message": "You are being rate limited.", "retry_after": 64.57, "global": true}',
            DeliveryOutcome("retry", "HTTP 429 rate limited global", 64.57),
        ),
        (DISCORD, 429, {"Retry-After": "3"}, b"<html>", DeliveryOutcome("retry", "HTTP 429 rate limited", 3.0)),
        (
            DISCORD,
            404,
            {},
            b'{"message": "Unknown Webhook", "code": 10015}',
            DeliveryOutcome("broken", "HTTP 404 code 10015 Unknown Webhook"),
        ),
        (
            DISCORD,
            401,
            {},
            b'{"message": "Invalid Webhook Token", "code": 50027}',
            DeliveryOutcome("broken", "HTTP 401 code 50027 Invalid Webhook Token"),
        ),
        (
            DISCORD,
            400,
            {},
            b'{"code": 50035, "message": "Invalid Form Body"}',
            DeliveryOutcome("rejected", "HTTP 400 code 50035 Invalid Form Body"),
        ),
        (DISCORD, 502, {}, b"bad gateway", DeliveryOutcome("retry", "HTTP 502")),
        (GENERIC, 202, {}, b"", DeliveryOutcome("delivered", "HTTP 202")),
        (GENERIC, 429, {"retry-after": "12"}, b"", DeliveryOutcome("retry", "HTTP 429", 12.0)),
        (
            GENERIC,
            429,
            {"Retry-After": "Thu, 01 Jan 2026 00:01:30 GMT", "Date": "Thu, 01 Jan 2026 00:01:00 GMT"},
            b"",
            DeliveryOutcome("retry", "HTTP 429", 30.0),
        ),
        (GENERIC, 429, {"Retry-After": "999999"}, b"", DeliveryOutcome("retry", "HTTP 429", 3600.0)),  # capped
        (GENERIC, 503, {}, b"", DeliveryOutcome("retry", "HTTP 503")),
        (GENERIC, 408, {}, b"", DeliveryOutcome("retry", "HTTP 408")),
        (GENERIC, 410, {}, b"gone", DeliveryOutcome("broken", "HTTP 410 gone")),
        (GENERIC, 422, {}, b"bad", DeliveryOutcome("rejected", "HTTP 422 bad")),
    ],
)
def test_classify(channel, status, headers, body, expected) -> None:
    assert channel.classify(status, headers, body) == expected


def test_test_messages_render_grey_with_a_test_tag() -> None:
    from pulsegate.core.alerts.sample_alert import sample_message

    msg = sample_message(_config("slack"), T0, "https://pulse.example.com")
    slack, _ = _render("slack", msg)
    discord, _ = _render("discord", msg)
    assert slack["attachments"][0]["color"] == "#6a737d"
    assert slack["text"].startswith("[TEST] Pulsegate test notification\n🔴 Test notification for channel 'c'")
    assert discord["embeds"][0]["color"] == 0x6A737D
    assert discord["content"] == "[TEST] Pulsegate test notification\n<https://pulse.example.com>"


def test_a_title_already_tagged_by_the_engine_is_not_tagged_twice() -> None:
    tagged = message(title="[FIRING] Success rate low · anthropic")
    slack, _ = _render("slack", tagged)
    discord, _ = _render("discord", tagged)
    assert slack["attachments"][0]["blocks"][0]["text"]["text"] == "[FIRING] Success rate low · anthropic"
    assert discord["content"].split("\n")[0] == "[FIRING] Success rate low · anthropic"
