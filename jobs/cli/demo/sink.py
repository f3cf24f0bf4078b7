"""A webhook sink on loopback: receives the worker's Slack- and Discord-format alerts, logs each one readably and
serves what it received as JSON (``GET /messages``) for the dashboard's Inbox view.

The threaded recording server underneath (:class:`LoopbackReceiver`) is also what the alert tests script as a
fake Slack / Discord / webhook endpoint, so both answer exactly as those services do.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import re
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger("pulsegate.demo.sink")

MAX_KEPT = 500  # messages served by GET /messages (the newest)


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
_JSON = (("Content-Type", "application/json"),)

SLACK_OK = Reply(200, b"ok", (("Content-Type", "text/html"),))


def discord_ok(request: Recorded) -> Reply:
    """204 without ``wait``; with ``wait=true`` the created message (200), as Discord does."""
    if request.query.get("wait") == ["true"]:
        payload = json.loads(request.body)
        message = {"id": "1234567890", "type": 0, "content": payload.get("content", ""), "webhook_id": "42"}
        return Reply(200, json.dumps(message).encode(), _JSON)
    return Reply(204)


class LoopbackReceiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST and answers it with :meth:`respond`.
    ``stop()`` closes the port (connection refused), ``start()`` opens it again on the same port.
    ``on_request`` runs in the server thread before replying; :meth:`get` answers GET requests (404 by default)."""

    def __init__(self, port: int = 0) -> None:
        self.requests: list[Recorded] = []
        self.on_request: Callable[[Recorded], None] | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        if port == 0:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        self.port = port
        self.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def respond(self, request: Recorded) -> Reply:
        return Reply(200, b"ok")

    def get(self, path: str) -> Reply:
        return Reply(404, b'{"error": "not found"}', _JSON)

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        return self.respond(request)

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _send(self, reply: Reply) -> None:
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if reply.body:
                    self.wfile.write(reply.body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Recorded("POST", parts.path, parse_qs(parts.query), headers, body)
                if receiver.on_request is not None:
                    receiver.on_request(request)
                self._send(receiver._record(request))

            def do_GET(self) -> None:
                self._send(receiver.get(urlsplit(self.path).path))

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


# --- the demo's sink ----------------------------------------------------------------------------------------------

_TAG = re.compile(r"^\[(?P<tag>[A-Z]+)(?::\d+)?\]")


def summarise(fmt: str, payload: Any) -> dict[str, Any]:
    """One received webhook as the Inbox shows it: format, transition, title and one line per alert."""
    title, lines = "", []
    if isinstance(payload, dict) and fmt == "slack":
        text = html.unescape(str(payload.get("text", "")))
        title, *lines = text.splitlines() or [""]
    elif isinstance(payload, dict) and fmt == "discord":
        title = str(payload.get("content", "")).splitlines()[0] if payload.get("content") else ""
        lines = [str(e.get("title", "")) for e in payload.get("embeds") or [] if isinstance(e, dict)]
    match = _TAG.match(title)
    return {
        "format": fmt,
        "transition": match.group("tag").lower() if match else "message",
        "title": title,
        "alerts": [line for line in lines if line.strip()],
    }


class WebhookSink(LoopbackReceiver):
    """``POST /slack`` answers like Slack, ``POST /discord`` like Discord; ``GET /messages`` lists what came in,
    newest last, as ``{"messages": [{"id", "received_at", "format", "transition", "title", "alerts"}]}``."""

    def __init__(self, port: int = 0) -> None:
        self.messages: list[dict[str, Any]] = []
        self._count = 0
        super().__init__(port)

    def respond(self, request: Recorded) -> Reply:
        fmt = request.path.strip("/").split("/")[0]
        if fmt not in ("slack", "discord"):
            return Reply(404, b"unknown webhook: POST to /slack or /discord")
        try:
            payload = request.json()
        except ValueError:
            return Reply(400, b"invalid_payload")
        entry = summarise(fmt, payload)
        with self._lock:
            self._count += 1
            entry = {"id": self._count, "received_at": datetime.now(UTC).isoformat(timespec="seconds"), **entry}
            self.messages.append(entry)
            del self.messages[:-MAX_KEPT]
        shown = "".join(f"\n      {line}" for line in entry["alerts"])
        log.info("webhook %-7s %s%s", fmt, entry["title"], shown)
        return SLACK_OK if fmt == "slack" else discord_ok(request)

    def get(self, path: str) -> Reply:
        if path == "/messages":
            with self._lock:
                body = json.dumps({"messages": list(self.messages)}).encode()
            return Reply(200, body, _JSON)
        if path == "/healthz":
            return Reply(200, b'{"ok": true}', _JSON)
        return super().get(path)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pulsegate.jobs.cli.demo.sink --port N``: serve until SIGTERM / SIGINT."""
    parser = argparse.ArgumentParser(prog="pulsegate-demo-sink", description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    sink = WebhookSink(args.port)
    log.info("webhook sink listening on %s (GET /messages)", sink.url(""))
    try:
        stop.wait()
    finally:
        sink.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
