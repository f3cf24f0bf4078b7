"""Discord webhooks: posted with ``?wait=true`` (so a failure is an HTTP error, not a silent 204), a short
``content`` line and one coloured embed per alert.

Limits kept by truncation: content 2,000 characters; ≤ 10 embeds; embed title 256, description 4,096, ≤ 25
fields, field name 256, field value 1,024; 6,000 characters across all embeds. Alerts that do not fit are
counted in ``content`` ("…and 4 more"). Mentions are disabled (``allowed_mentions``) so a label can never ping
``@everyone``. Answers: 200/204 delivered; 429 retried after the body's ``retry_after`` (or ``Retry-After``);
5xx retried; 401/403/404 mean the webhook was deleted or its token is wrong (broken); other 4xx reject the message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pulsegate.core.alerts.channels.base import (
    COLOURS,
    DeliveryOutcome,
    alert_fields,
    dumps,
    header,
    headline,
    mark,
    retry_after_header,
    status_reason,
    truncate,
)
from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.model import AlertView, Message

USERNAME = "Pulsegate"
CONTENT_LIMIT = 2000
MAX_EMBEDS = 10
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
MAX_FIELDS = 25
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
TOTAL_EMBED_LIMIT = 6000
_SAFE_MESSAGE = re.compile(r"^[A-Za-z0-9 _.,'\-]{1,100}$")


def colour_int(key: str) -> int:
    """``#d73a49`` → ``14105161``: Discord takes colours as integers."""
    return int(COLOURS[key].lstrip("#"), 16)


def embed_length(embed: Mapping[str, Any]) -> int:
    """Characters Discord counts toward the 6,000 limit: title, description, field names and values, footer."""
    total = len(embed.get("title", "")) + len(embed.get("description", ""))
    total += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", ()))
    total += len(embed.get("footer", {}).get("text", ""))
    return total


class DiscordChannel:
    """Renders for and classifies answers of a Discord webhook."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    def request_url(self) -> str:
        parts = urlsplit(self.config.url.get_secret_value())
        query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "wait"]
        query.append(("wait", "true"))
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))

    def render(self, message: Message) -> tuple[bytes, dict[str, str]]:
        return dumps(self.payload(message)), {"Content-Type": "application/json"}

    def payload(self, message: Message) -> dict[str, Any]:
        embeds: list[dict[str, Any]] = []
        budget = TOTAL_EMBED_LIMIT
        for alert in message.alerts[:MAX_EMBEDS]:
            embed = self._embed(alert, message)
            if embed_length(embed) > budget:
                if embeds:
                    break
                embed = _fit(embed, budget)
            budget -= embed_length(embed)
            embeds.append(embed)
        hidden = len(message.alerts) - len(embeds)
        content = headline(message)
        if hidden:
            content += f" (…and {hidden} more alert{'s' if hidden != 1 else ''})"
        if message.dashboard_url:
            content += f"\n<{message.dashboard_url}>"
        payload: dict[str, Any] = {"username": USERNAME, "content": truncate(content, CONTENT_LIMIT)}
        if embeds:
            payload["embeds"] = embeds
        payload["allowed_mentions"] = {"parse": []}
        return payload

    def _embed(self, alert: AlertView, message: Message) -> dict[str, Any]:
        key = "test" if message.transition == "test" else ("resolved" if alert.state == "resolved" else alert.severity)
        title = f"{mark(alert, message)} {alert.summary}"
        description = f"Rule `{alert.rule_id}`"
        if len(title) > TITLE_LIMIT:
            description += f"\n{alert.summary}"
        embed: dict[str, Any] = {
            "title": truncate(title, TITLE_LIMIT),
            "description": truncate(description, DESCRIPTION_LIMIT),
            "color": colour_int(key),
            "timestamp": (alert.resolved_at or alert.started_at).isoformat(),
            "fields": [
                {
                    "name": truncate(name, FIELD_NAME_LIMIT),
                    "value": truncate(value, FIELD_VALUE_LIMIT),
                    "inline": True,
                }
                for name, value in alert_fields(alert)[:MAX_FIELDS]
            ],
        }
        if message.dashboard_url:
            embed["url"] = message.dashboard_url
        return embed

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        if 200 <= status < 300:
            return DeliveryOutcome.delivered(status_reason(status))
        data = _json(body)
        detail = _detail(data)
        if status == 429:
            after = data.get("retry_after") if isinstance(data, dict) else None
            wait: float | None
            if isinstance(after, int | float) and not isinstance(after, bool):
                wait = float(after)
            else:
                wait = retry_after_header(headers)
                if wait is None:
                    reset = header(headers, "x-ratelimit-reset-after")
                    wait = _float(reset)
            scope = " global" if isinstance(data, dict) and data.get("global") is True else ""
            return DeliveryOutcome.retry(status_reason(status, f"rate limited{scope}"), wait)
        if status >= 500 or status == 408:
            return DeliveryOutcome.retry(status_reason(status, detail))
        if status in (401, 403, 404):
            return DeliveryOutcome.broken(status_reason(status, detail))
        return DeliveryOutcome.rejected(status_reason(status, detail))


def _fit(embed: dict[str, Any], budget: int) -> dict[str, Any]:
    """Shrink one embed to ``budget`` characters: the description first, then fields from the end."""
    embed = {**embed, "fields": list(embed["fields"])}
    over = embed_length(embed) - budget
    if over > 0:
        keep = max(0, len(embed["description"]) - over)
        embed["description"] = truncate(embed["description"], keep) if keep else ""
    while embed_length(embed) > budget and embed["fields"]:
        embed["fields"].pop()
    if embed_length(embed) > budget:
        embed["title"] = truncate(embed["title"], max(1, budget))
    return embed


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _detail(data: Any) -> str:
    """``code 10015 Unknown Webhook`` from Discord's error JSON — only short, word-like messages are kept."""
    if not isinstance(data, dict):
        return ""
    parts = []
    code = data.get("code")
    if isinstance(code, int) and not isinstance(code, bool):
        parts.append(f"code {code}")
    text = data.get("message")
    if isinstance(text, str) and _SAFE_MESSAGE.match(text):
        parts.append(text)
    return " ".join(parts)


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
