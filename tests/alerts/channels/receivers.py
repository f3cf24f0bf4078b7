"""Real webhook receivers on loopback for channel tests: a threaded HTTP server that records every request and
answers from a script, like Slack, Discord or a generic endpoint would (success, 429, 5xx, dead webhook, down,
slow). Nothing of Pulsegate is mocked: the dispatcher talks HTTP to these."""

from __future__ import annotations

import json
from collections import deque

from pulsegate.jobs.cli.demo.sink import SLACK_OK, LoopbackReceiver, Recorded, Reply, Responder, discord_ok

__all__ = ["SLACK_OK", "Receiver", "Recorded", "Reply", "Responder", "discord_ok"]

#: The secret part of every test webhook URL: tests assert it never shows up outside the HTTP request.
SLACK_TOKEN = "Xq7SLACKtokenZZ9f3kQ2"
DISCORD_TOKEN = "Dz8DISCORDtokenYY4mN1pL"
GENERIC_TOKEN = "Gk5GENERICtokenWW2hR7"
HMAC_SECRET = "hmac-SECRET-value-0123456789abcdef"


PLAIN_OK = Reply(200, b"ok")

# --- Slack ------------------------------------------------------------------------------------------------------
SLACK_NO_SERVICE = Reply(404, b"no_service")
SLACK_ARCHIVED = Reply(410, b"channel_is_archived")
SLACK_INVALID_PAYLOAD = Reply(400, b"invalid_payload")
SLACK_500 = Reply(500, b"rollup_error")


def slack_429(retry_after: str) -> Reply:
    return Reply(429, b"rate_limited", (("Retry-After", retry_after),))


# --- Discord ----------------------------------------------------------------------------------------------------
def discord_429(retry_after: float, *, header: str = "1") -> Reply:
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return Reply(
        429,
        json.dumps(body).encode(),
        (("Content-Type", "application/json"), ("Retry-After", header), ("X-RateLimit-Scope", "shared")),
    )


_JSON = (("Content-Type", "application/json"),)
DISCORD_UNKNOWN_WEBHOOK = Reply(404, b'{"message": "Unknown Webhook", "code": 10015}', _JSON)
DISCORD_BAD_TOKEN = Reply(401, b'{"message": "Invalid Webhook Token", "code": 50027}', _JSON)
DISCORD_BAD_FORM = Reply(
    400,
    b'{"code": 50035, "errors": {"embeds": {}}, "message": "Invalid Form Body"}',
    (("Content-Type", "application/json"),),
)


class Receiver(LoopbackReceiver):
    """A scripted receiver. ``script(...)`` queues replies (a Reply or a responder function) used in order; when
    the queue is empty ``default`` answers."""

    def __init__(self, default: Reply | Responder = PLAIN_OK) -> None:
        self.default: Reply | Responder = default
        self._queue: deque[Reply | Responder] = deque()
        super().__init__()

    def script(self, *replies: Reply | Responder) -> None:
        with self._lock:
            self._queue.extend(replies)

    def respond(self, request: Recorded) -> Reply:
        with self._lock:
            item = self._queue.popleft() if self._queue else self.default
        return item(request) if callable(item) else item
