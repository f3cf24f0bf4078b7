"""Real webhook receivers on loopback for channel tests: a threaded HTTP server that records every request and
answers from a script, like Slack, Discord or a generic endpoint would (success, 429, 5xx, dead webhook, down,
slow). Nothing of Pulsegate is mocked: the dispatcher talks HTTP to these."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

#: The secret part of every test webhook URL: tests assert it never shows up outside the HTTP request.
SLACK_TOKEN = "Xq7SLACKtokenZZ9f3kQ2"
DISCORD_TOKEN = "Dz8DISCORDtokenYY4mN1pL"
GENERIC_TOKEN = "Gk5GENERICtokenWW2hR7"
HMAC_SECRET = "hmac-SECRET-value-0123456789abcdef"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


Responder = Callable[[Recorded], Reply]

# --- Slack ------------------------------------------------------------------------------------------------------
SLACK_OK = Reply(200, b"ok", (("Content-Type", "text/html"),))
SLACK_NO_SERVICE = Reply(404, b"no_service")
SLACK_ARCHIVED = Reply(410, b"channel_is_archived")
SLACK_INVALID_PAYLOAD = Reply(400, b"invalid_payload")
SLACK_500 = Reply(500, b"rollup_error")


def slack_429(retry_after: str) -> Reply:
    return Reply(429, b"rate_limited", (("Retry-After", retry_after),))


# --- Discord ----------------------------------------------------------------------------------------------------
def discord_ok(request: Recorded) -> Reply:
    """204 without ``wait``; with ``wait=true`` the created message (200), as Discord does."""
    if request.query.get("wait") == ["true"]:
        payload = json.loads(request.body)
        message = {"id": "1234567890", "type": 0, "content": payload.get("content", ""), "webhook_id": "42"}
        return Reply(200, json.dumps(message).encode(), (("Content-Type", "application/json"),))
    return Reply(204)


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


class Receiver:
    """A loopback HTTP server. ``script(...)`` queues replies (a Reply or a responder function) used in order;
    when the queue is empty ``default`` answers. ``stop()`` closes the port (connection refused), ``start()``
    opens it again on the same port. ``on_request`` runs in the server thread before replying."""

    def __init__(self, default: Reply | Responder = Reply(200, b"ok")) -> None:
        self.default: Reply | Responder = default
        self.requests: list[Recorded] = []
        self.on_request: Callable[[Recorded], None] | None = None
        self._queue: deque[Reply | Responder] = deque()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def script(self, *replies: Reply | Responder) -> None:
        with self._lock:
            self._queue.extend(replies)

    def _next(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            item = self._queue.popleft() if self._queue else self.default
        return item(request) if callable(item) else item

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                request = Recorded(
                    "POST",
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                if receiver.on_request is not None:
                    receiver.on_request(request)
                reply = receiver._next(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.body:
                    self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
