"""Generic JSON webhooks: a stable, versioned schema for any receiver, optionally signed with HMAC-SHA256.

Body (schema ``version`` "1", keys never renamed; new keys may be added)::

    {"version": "1", "event_id": "<32 hex, the same on every retry>", "transition": "firing|resolved|repeat|test",
     "status": "firing|resolved", "group_key", "title", "severity", "created_at", "dashboard_url",
     "truncated_alerts": 0, "alerts": [AlertView.to_json(), ...]}

With a secret, ``X-Pulsegate-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>``; receivers recompute it over
the raw bytes and compare in constant time, and drop repeated ``event_id`` values (delivery is at least once).
Answers: 2xx delivered; 429 retried after ``Retry-After``; 408 and 5xx retried; 401/403/404/410 broken; other
4xx reject the message.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from pulsegate.core.alerts.channels.base import (
    DeliveryOutcome,
    dumps,
    error_word,
    retry_after_header,
    status_reason,
)
from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.model import Message

SCHEMA_VERSION = "1"
MAX_ALERTS = 100
SIGNATURE_HEADER = "X-Pulsegate-Signature"
EVENT_HEADER = "X-Pulsegate-Event"


def event_id(message: Message) -> str:
    """A stable id for one message: the same bytes on every retry, so receivers can deduplicate."""
    return hashlib.sha256(dumps(message.to_json())).hexdigest()[:32]


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    """What a receiver does (shown in the README): recompute over the raw body, compare in constant time."""
    return hmac.compare_digest(sign(secret, body), signature)


class GenericWebhookChannel:
    """Renders the documented JSON schema; signs it when the channel has a secret."""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config

    def request_url(self) -> str:
        return self.config.url.get_secret_value()

    def render(self, message: Message) -> tuple[bytes, dict[str, str]]:
        body = dumps(self.payload(message))
        headers = {"Content-Type": "application/json", EVENT_HEADER: event_id(message)}
        if self.config.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.config.secret.get_secret_value(), body)
        return body, headers

    def payload(self, message: Message) -> dict[str, Any]:
        data = message.to_json()
        alerts = data["alerts"]
        return {
            "version": SCHEMA_VERSION,
            "event_id": event_id(message),
            "transition": data["transition"],
            "status": "firing" if message.firing else "resolved",
            "group_key": data["group_key"],
            "title": data["title"],
            "severity": data["severity"],
            "created_at": data["created_at"],
            "dashboard_url": data["dashboard_url"],
            "truncated_alerts": max(0, len(alerts) - MAX_ALERTS),
            "alerts": alerts[:MAX_ALERTS],
        }

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        word = error_word(body)
        if 200 <= status < 300:
            return DeliveryOutcome.delivered(status_reason(status))
        if status == 429:
            return DeliveryOutcome.retry(status_reason(status, word), retry_after_header(headers))
        if status >= 500 or status == 408:
            return DeliveryOutcome.retry(status_reason(status, word))
        if status in (401, 403, 404, 410):
            return DeliveryOutcome.broken(status_reason(status, word))
        return DeliveryOutcome.rejected(status_reason(status, word))
