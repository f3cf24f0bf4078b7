"""Slack incoming webhooks: ``text`` (the notification fallback) plus one coloured attachment of Block Kit blocks.

Limits kept by truncation: header 150 characters, section text 3,000, a field 2,000, 10 fields per section,
50 blocks per message; ``text`` is kept to 3,000 (Slack itself cuts at 40,000). Answers: ``200 ok`` is delivered;
429 is retried after ``Retry-After``; 5xx and network errors are retried with backoff; ``no_service``,
``channel_not_found``, ``channel_is_archived``, ``invalid_token``, … mean the webhook is dead (broken); any other
4xx (``invalid_payload``, ``no_text``) rejects this message only. Slack keys errors on the body string, so do we.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulsegate.core.alerts.channels.base import (
    COLOURS,
    DeliveryOutcome,
    alert_fields,
    colour_key,
    dumps,
    error_word,
    headline,
    mark,
    retry_after_header,
    status_reason,
    truncate,
)
from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.model import Message

TEXT_LIMIT = 3000
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
MAX_FIELDS = 10
MAX_ALERT_SECTIONS = 20  # + header, context, actions: well under Slack's 50 blocks
#: Body strings that mean the webhook (or its channel, workspace or token) is gone: no later message can work.
DEAD_WEBHOOK = frozenset(
    {
        "no_service",
        "no_service_id",
        "no_team",
        "team_disabled",
        "invalid_token",
        "no_active_hooks",
        "channel_not_found",
        "channel_is_archived",
        "action_prohibited",
        "posting_to_general_channel_denied",
        "user_not_found",
    }
)


def escape(text: str) -> str:
    """Slack mrkdwn needs ``&``, ``<`` and ``>`` escaped (``71 % < 95 %`` would otherwise start a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mrkdwn(text: str, limit: int) -> str:
    """Escaped text cut to ``limit`` characters without splitting an ``&lt;``-style entity."""
    escaped = escape(text)
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


class SlackChannel:
    """Renders for and classifies answers of a Slack incoming webhook."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    def request_url(self) -> str:
        return self.config.url.get_secret_value()

    def render(self, message: Message) -> tuple[bytes, dict[str, str]]:
        return dumps(self.payload(message)), {"Content-Type": "application/json; charset=utf-8"}

    def payload(self, message: Message) -> dict[str, Any]:
        title = headline(message)
        shown = message.alerts[:MAX_ALERT_SECTIONS]
        hidden = len(message.alerts) - len(shown)

        lines = [title] + [f"{mark(a, message)} {a.summary}" for a in shown]
        if hidden:
            lines.append(f"…and {hidden} more")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(title, HEADER_LIMIT), "emoji": True}}
        ]
        for alert in shown:
            fields = [
                {"type": "mrkdwn", "text": mrkdwn(f"*{name}*\n{value}", FIELD_LIMIT)}
                for name, value in alert_fields(alert)[:MAX_FIELDS]
            ]
            text = mrkdwn(f"{mark(alert, message)} *{alert.summary}*\n`{alert.rule_id}`", SECTION_LIMIT)
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}, "fields": fields})
        if hidden:
            more = f"…and {hidden} more alert{'s' if hidden != 1 else ''} (see the dashboard)"
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": escape(more)}]})
        if message.dashboard_url:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [
                        {
                            "type": "button",
                            "text": {"type": "plain_text", "text": "Open dashboard"},
                            "url": message.dashboard_url,
                        }
                    ],
                }
            )
        return {
            "text": mrkdwn("\n".join(lines), TEXT_LIMIT),
            "attachments": [{"color": COLOURS[colour_key(message)], "blocks": blocks}],
        }

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        word = error_word(body)
        if 200 <= status < 300:
            return DeliveryOutcome.delivered(status_reason(status, word))
        if word in DEAD_WEBHOOK:
            return DeliveryOutcome.broken(status_reason(status, word))
        if status == 429:
            return DeliveryOutcome.retry(status_reason(status, word or "rate_limited"), retry_after_header(headers))
        if status >= 500 or status == 408:
            return DeliveryOutcome.retry(status_reason(status, word))
        if status in (401, 403, 404, 410):
            return DeliveryOutcome.broken(status_reason(status, word))
        return DeliveryOutcome.rejected(status_reason(status, word))
