"""What every channel does: render a :class:`Message` to exact bytes, and classify the receiver's answer.

A channel is pure (no I/O): the dispatcher (``pulsegate.core.alerts.delivery``) sends the bytes and records the outcome.
That keeps payloads and error handling testable byte for byte, and keeps network code in one place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.model import AlertView, Message
from pulsegate.core.providers.rate_limit_headers import parse_retry_after

OutcomeKind = Literal["delivered", "retry", "rejected", "broken"]
#: Longest wait a receiver may ask for that we honour as is (a bogus Retry-After must not park alerts for days).
MAX_RETRY_AFTER_S = 3600.0
ELLIPSIS = "…"

# Colours: firing by severity, resolved green, test grey. Slack takes "#rrggbb", Discord the same as an integer.
COLOURS: dict[str, str] = {
    "critical": "#d73a49",
    "warning": "#dbab09",
    "info": "#0366d6",
    "resolved": "#28a745",
    "test": "#6a737d",
}
STATE_MARK = {"firing": "🔴", "resolved": "✅"}
REPEAT_MARK = "🔁"


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to.

    ``delivered``: done, never sent again. ``retry``: try later (``after_s`` when the receiver said when).
    ``rejected``: this message was refused for good (e.g. 400) — not retried, the channel may still work.
    ``broken``: the channel itself is dead (webhook removed, channel archived, token revoked).
    ``reason`` is short and secret-free: status code and the receiver's error string, never the URL.
    """

    kind: OutcomeKind
    reason: str = ""
    after_s: float | None = None

    @classmethod
    def delivered(cls, reason: str = "") -> DeliveryOutcome:
        return cls("delivered", reason)

    @classmethod
    def retry(cls, reason: str, after_s: float | None = None) -> DeliveryOutcome:
        if after_s is not None:
            after_s = min(max(0.0, after_s), MAX_RETRY_AFTER_S)
        return cls("retry", reason, after_s)

    @classmethod
    def rejected(cls, reason: str) -> DeliveryOutcome:
        return cls("rejected", reason)

    @classmethod
    def broken(cls, reason: str) -> DeliveryOutcome:
        return cls("broken", reason)


class Channel(Protocol):
    """One webhook format. Implementations: Slack, Discord, generic JSON."""

    config: ChannelConfig

    def request_url(self) -> str:
        """Where to POST (the secret URL, plus any query the format needs)."""
        ...

    def render(self, message: Message) -> tuple[bytes, dict[str, str]]:
        """The exact request body and headers, within the receiver's limits (by truncation)."""
        ...

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        """What the receiver's answer means: delivered, retry (maybe after N s), rejected or broken."""
        ...


# --- helpers shared by the renderers -------------------------------------------------------------------------


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut is marked with an ellipsis so readers know text is missing."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)] + ELLIPSIS


def dumps(payload: Mapping[str, Any]) -> bytes:
    """Compact, key-order-preserving UTF-8 JSON: the bytes that are sent (and signed)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def mark(alert: AlertView, message: Message) -> str:
    """The sign before an alert's text: 🔴 firing, ✅ resolved, 🔁 still firing in a repeat message."""
    if message.transition == "repeat" and alert.state == "firing":
        return REPEAT_MARK
    return STATE_MARK[alert.state]


def headline(message: Message) -> str:
    """``[FIRING:2] title`` / ``[RESOLVED] title`` / ``[REPEAT:1] title`` / ``[TEST] title``.

    The engine's titles already start with their tag (``[FIRING] Success rate low · anthropic``): those are used
    as they are, so a message never reads ``[FIRING:1] [FIRING] …``.
    """
    if message.title.startswith("["):
        return message.title
    firing = len(message.firing)
    if message.transition == "test":
        tag = "TEST"
    elif message.transition == "resolved" or (message.alerts and firing == 0):
        tag = "RESOLVED"
    elif message.transition == "repeat":
        tag = f"REPEAT:{firing}"
    else:
        tag = f"FIRING:{firing}"
    return f"[{tag}] {message.title}"


def colour_key(message: Message) -> str:
    """Which entry of :data:`COLOURS` a message gets: firing ones by their worst severity."""
    if message.transition == "test":
        return "test"
    if not message.firing:
        return "resolved"
    worst = "info"
    for alert in message.firing:
        if alert.severity == "critical" or (alert.severity == "warning" and worst == "info"):
            worst = alert.severity
    return worst


def format_number(value: float | None) -> str:
    """Up to four significant digits, no exponent for everyday magnitudes."""
    if value is None:
        return "–"
    if value == int(value) and abs(value) < 1e12:
        return f"{int(value):,}".replace(",", " ")
    return f"{value:.4g}" if abs(value) < 1e6 else f"{value:,.0f}".replace(",", " ")


def format_duration(seconds: float | None) -> str:
    """``300`` → ``5m``, ``3600`` → ``1h``, ``5400`` → ``1h30m``, ``45`` → ``45s``."""
    if seconds is None:
        return "–"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


def format_scope(labels: Mapping[str, str]) -> str:
    """``provider=anthropic key=Primary`` (sorted), or ``all`` when the alert has no labels."""
    return " ".join(f"{k}={v}" for k, v in sorted(labels.items())) or "all"


def format_time(value: datetime | None) -> str:
    return "–" if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def alert_fields(alert: AlertView) -> list[tuple[str, str]]:
    """The (name, value) facts every format shows for one alert, in one order."""
    fields = [("Severity", alert.severity), ("Scope", format_scope(alert.labels))]
    if alert.value is not None:
        fields.append(("Value", format_number(alert.value)))
    if alert.threshold is not None:
        fields.append(("Threshold", format_number(alert.threshold)))
    if alert.resolve_threshold is not None and alert.resolve_threshold != alert.threshold:
        fields.append(("Resolves at", format_number(alert.resolve_threshold)))
    if alert.window_s is not None:
        fields.append(("Window", format_duration(alert.window_s)))
    fields.append(("Since", format_time(alert.started_at)))
    if alert.resolved_at is not None:
        fields.append(("Resolved", format_time(alert.resolved_at)))
    return fields


# --- helpers shared by the classifiers ------------------------------------------------------------------------

_ERROR_WORD = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")


def error_word(body: bytes) -> str:
    """A receiver's short error string (Slack answers ``no_service``) when the body is one; '' otherwise.

    Only a single short token is kept, so no sentence a receiver sends back (quoting a URL or a signature) reaches
    a row or a log line.
    """
    try:
        text = body.decode("utf-8").strip()
    except UnicodeDecodeError:
        return ""
    return text if _ERROR_WORD.match(text) else ""


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header value by case-insensitive name (plain dicts in tests, httpx2 Headers in production)."""
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def retry_after_header(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date measured against the response's ``Date`` (the same
    parser as the providers' responses)."""
    return parse_retry_after(headers, datetime.now(UTC))


def status_reason(status: int, word: str = "") -> str:
    return f"HTTP {status} {word}".strip()
