"""The worker's HTTP API: admin actions and the health report behind a bearer token, plus liveness and metrics.

Every admin action goes through the same core functions the CLI and the dashboard call (``core.control``,
``core.probe_requests``, ``core.health_report``): the API only parses, validates and serialises. Bad input is
answered with JSON ``{"error", "status", "field"}`` naming what is wrong (400 / 404 / 413 / 422); an unreachable
store with 503; nothing answers with a traceback. Store work runs in a thread, never on the event loop the
worker's scheduler shares.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client.exposition import choose_encoder
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from core.clock import Clock
from core.control import ControlCommandError, command_status, issue_command
from core.errors import PulsegateError
from core.health_report import DEFAULT_WINDOW, health_report, http_status
from core.probe import ProbeError, probe_targets
from core.probe_requests import probe_request_status, request_probe
from core.provider import Provider
from core.settings import Settings
from core.store.tables import PROVIDERS, key_health_snapshots
from jobs.service.auth import AdminAuthMiddleware
from jobs.service.metrics import build_registry
from jobs.service.openapi import KEY_ACTIONS, openapi_spec

log = logging.getLogger(__name__)

REQUESTED_BY = "api"
MAX_BODY_BYTES = 64 * 1024
MIN_WINDOW = timedelta(minutes=1)
MAX_WINDOW = timedelta(days=400)
_WINDOW = re.compile(r"\s*([0-9]{1,9})\s*([smhd]?)\s*")
_ID = re.compile(r"[0-9]{1,19}")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
ACTION_COMMANDS = {"reset": "reset_key", "disable": "disable_key", "enable": "enable_key"}
#: Labels a key command may name: the worker's configured keys, and those live instances reported this recently.
LABEL_LOOKBACK = timedelta(hours=24)
#: Secrets shorter than this (test keys) are only matched whole: replacing "k1" in every message would garble them.
SCRUB_MIN_LENGTH = 12


class ApiError(PulsegateError):
    """An answer other than success: status, message and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


def json_response(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    body = json.dumps(data, default=_jsonable, allow_nan=False, separators=(",", ":"))
    return Response(body, status_code=status, headers=dict(headers or {}), media_type="application/json")


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if hasattr(value, "to_json"):
        return value.to_json()
    return str(value)  # e.g. an enum in status(): shown, never a failed answer


def _shown(value: object) -> str:
    """A bad input as it may be echoed: whole when short, else only its length (never part of a pasted secret)."""
    text = repr(value)
    if len(text) <= 40:
        return text
    return f"a {len(value)}-character {type(value).__name__}" if isinstance(value, str | list | dict) else "a value"


def _contains(value: str, secret: str) -> bool:
    """Whether ``value`` holds ``secret`` (a short test key only when it is the whole value)."""
    return secret in value if len(secret) >= SCRUB_MIN_LENGTH else secret == value


def parse_window(value: str | None) -> timedelta:
    """``?window=``: seconds, or a number with s / m / h / d; from one minute to 400 days."""
    if value is None:
        return DEFAULT_WINDOW
    match = _WINDOW.fullmatch(value)
    if not match:
        raise ApiError(
            422, f"window: expected seconds or a number with s/m/h/d (e.g. 24h), got {_shown(value)}", "window"
        )
    window = timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])
    if not MIN_WINDOW <= window <= MAX_WINDOW:
        raise ApiError(422, f"window: expected 1m to 400d, got {_shown(value)}", "window")
    return window


def parse_id(value: str) -> int:
    if not _ID.fullmatch(value) or not 0 < int(value) < 2**63:
        raise ApiError(422, f"id: expected a positive integer, got {_shown(value)}", "id")
    return int(value)


def check_provider(value: object, field: str = "provider", status: int = 422) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or value not in PROVIDERS:
        raise ApiError(
            status, f"{field}: unknown provider {_shown(value)}; expected one of {', '.join(PROVIDERS)}", field
        )
    return value


async def read_body(request: Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object in the body (empty body: ``{}``); only ``allowed`` fields."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"body: at most {MAX_BODY_BYTES} bytes, got {declared}", "body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # a body sent without a length is cut off as soon as it is too big
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"body: at most {MAX_BODY_BYTES} bytes", "body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except RecursionError:
        raise ApiError(400, "body: not valid JSON (nested too deeply)", "body") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body: not valid JSON ({type(exc).__name__}: {str(exc)[:80]})", "body") from None
    if not isinstance(data, dict):
        raise ApiError(422, f"body: expected a JSON object, got {type(data).__name__}", "body")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        names = ", ".join(_shown(name) for name in unknown)
        expected = ", ".join(allowed) or "no fields"
        field = unknown[0] if len(unknown[0]) <= 40 else "body"
        raise ApiError(422, f"body: unknown field {names}; expected {expected}", field)
    return data


class WorkerApi:
    """The route handlers, bound to one store, settings, clock and status function."""

    def __init__(
        self, engine: sa.Engine, settings: Settings, clock: Clock, status: Callable[[], Mapping[str, Any]]
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.status = status
        self.secrets = [key.reveal() for p in Provider for key in settings.keys(p)]
        if settings.admin_token is not None:
            self.secrets.append(settings.admin_token.get_secret_value())
        self.registry = build_registry(engine, clock, heartbeat_interval_s=settings.heartbeat_interval_s, status=status)

    def refuse_secrets(self, values: Mapping[str, object]) -> None:
        """A field holding a configured key or the admin token is refused before it is stored or echoed."""
        for field, value in values.items():
            if isinstance(value, str) and any(_contains(value, secret) for secret in self.secrets):
                message = f"{field}: this is a secret (an API key or the admin token); send the label or id instead"
                raise ApiError(422, message, field)

    # --- admin --------------------------------------------------------------------------------------------------

    async def ai_health(self, request: Request) -> Response:
        window = parse_window(request.query_params.get("window"))
        report = await run_in_threadpool(
            health_report,
            self.engine,
            self.clock.now(),
            window=window,
            heartbeat_interval_s=self.settings.heartbeat_interval_s,
        )
        return json_response(report, http_status(report))

    async def request_probe(self, request: Request) -> Response:
        body = await read_body(request, ("provider", "key", "model"))
        self.refuse_secrets(body)
        provider, key_label, model = body.get("provider"), body.get("key"), body.get("model")
        try:
            targets = probe_targets(self.settings, provider=provider, key_label=key_label, model=model)
        except ProbeError as exc:
            raise ApiError(422, str(exc), exc.field) from None
        if not targets:
            message = "provider: no keys are configured on the worker (set ANTHROPIC_API_KEY or OPENAI_API_KEY)"
            raise ApiError(422, message, "provider")
        try:
            request_id = await run_in_threadpool(
                lambda: request_probe(
                    self.engine,
                    requested_by=REQUESTED_BY,
                    now=self.clock.now(),
                    provider=provider,
                    key_label=key_label,
                    model=model,
                )
            )
        except ValueError as exc:  # the table's own validation, should it be stricter than probe_targets
            raise ApiError(422, str(exc), getattr(exc, "field", None)) from None
        url = f"/api/admin/probe/{request_id}"
        data = {
            "id": request_id,
            "status": "pending",
            "targets": [{"provider": t.provider, "key": t.key_label, "model": t.model} for t in targets],
            "status_url": url,
        }
        return json_response(data, 202, {"Location": url})

    async def probe_status(self, request: Request) -> Response:
        request_id = parse_id(request.path_params["id"])
        status = await run_in_threadpool(probe_request_status, self.engine, request_id)
        if status is None:
            raise ApiError(404, f"id: no probe request {request_id}", "id")
        return json_response(status)

    async def clear_queue(self, request: Request) -> Response:
        body = await read_body(request, ("provider",))
        provider = check_provider(body.get("provider"))
        return await self._issue("clear_queue", provider, None)

    async def key_command(self, request: Request) -> Response:
        params = request.path_params
        action = params["action"]
        if action not in ACTION_COMMANDS:
            expected = ", ".join(KEY_ACTIONS)
            raise ApiError(404, f"action: unknown key action {_shown(action)}; expected one of {expected}", "action")
        body = await read_body(request, ("provider",))
        label = params["label"]
        self.refuse_secrets({"label": label, **body})
        in_path = check_provider(params.get("provider"), status=404)
        given = check_provider(body.get("provider")) or check_provider(request.query_params.get("provider"))
        if in_path is not None and given is not None and given != in_path:
            raise ApiError(422, f"provider: {given!r} does not match the path's {in_path!r}", "provider")
        provider = await run_in_threadpool(self._key_provider, label, in_path or given)
        return await self._issue(ACTION_COMMANDS[action], provider, label)

    async def command(self, request: Request) -> Response:
        command_id = parse_id(request.path_params["id"])
        try:
            status = await run_in_threadpool(command_status, self.engine, command_id, self.clock.now())
        except KeyError:
            raise ApiError(404, f"id: no control command {command_id}", "id") from None
        return json_response(status)

    async def _issue(self, command: str, provider: str | None, key_label: str | None) -> Response:
        now = self.clock.now()
        try:
            command_id = await run_in_threadpool(
                lambda: issue_command(
                    self.engine, command, provider=provider, key_label=key_label, requested_by=REQUESTED_BY, now=now
                )
            )
        except ControlCommandError as exc:
            raise ApiError(422, str(exc), "key" if exc.field == "key_label" else exc.field) from None
        status = await run_in_threadpool(command_status, self.engine, command_id)
        url = f"/api/admin/commands/{command_id}"
        data = {
            "id": command_id,
            "command": command,
            "provider": provider,
            "key": key_label,
            "expires_at": status["expires_at"],
            "status_url": url,
        }
        return json_response(data, 202, {"Location": url})

    def _key_provider(self, label: str, provider: str | None) -> str:
        """The provider of a key label: the given one if it has the label, the only one that has it, else an error
        (404 unknown label, 400 ambiguous)."""
        known = self._known_labels()
        if provider is not None:
            if label not in known.get(provider, set()):
                labels = ", ".join(repr(k) for k in sorted(known.get(provider, ()))) or "none"
                raise ApiError(404, f"label: no {provider} key labelled {_shown(label)} (keys: {labels})", "label")
            return provider
        owners = sorted(p for p, labels in known.items() if label in labels)
        if len(owners) == 1:
            return owners[0]
        if not owners:
            listed = "; ".join(f"{p}: {', '.join(repr(k) for k in sorted(ls))}" for p, ls in sorted(known.items()))
            raise ApiError(404, f"label: no key labelled {_shown(label)} ({listed or 'no keys known'})", "label")
        raise ApiError(
            400,
            f"provider: key label {label!r} exists for both {owners[0]} and {owners[1]}; add ?provider="
            f'{owners[0]} (or {{"provider": "{owners[1]}"}} in the body), or use '
            f"/api/admin/keys/{{provider}}/{{label}}/…",
            "provider",
        )

    def _known_labels(self) -> dict[str, set[str]]:
        known: dict[str, set[str]] = {p.value: {k.label for k in self.settings.keys(p)} for p in Provider}
        t = key_health_snapshots
        query = (
            sa.select(t.c.provider, t.c.key_label)
            .where(t.c.ts >= self.clock.now() - LABEL_LOOKBACK)
            .group_by(t.c.provider, t.c.key_label)
        )
        with self.engine.connect() as connection:
            for provider, label in connection.execute(query):
                known.setdefault(provider, set()).add(label)
        return known

    # --- public ---------------------------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            status = self.status()
        except Exception as exc:
            log.warning("healthz: status() failed: %s", type(exc).__name__)
            return json_response({"error": "the worker cannot report its status", "status": 503}, 503)
        return json_response(status)

    async def metrics(self, request: Request) -> Response:
        encoder, content_type = choose_encoder(request.headers.get("accept", ""))
        output = await run_in_threadpool(encoder, self.registry)
        return Response(output, headers={"Content-Type": content_type})

    async def openapi(self, request: Request) -> Response:
        return json_response(openapi_spec())

    async def docs(self, request: Request) -> Response:
        rows = []
        for path, methods in openapi_spec()["paths"].items():
            for method, operation in methods.items():
                lock = "🔒 " if operation.get("security") else ""
                rows.append(
                    f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                    f"<td>{lock}{html.escape(operation['summary'])}</td></tr>"
                )
        page = (
            "<!doctype html><meta charset='utf-8'><title>Pulsegate worker API</title>"
            "<h1>Pulsegate worker API</h1><p>🔒 needs <code>Authorization: Bearer $ADMIN_TOKEN</code>. "
            "Machine-readable: <a href='/openapi.json'>/openapi.json</a>.</p>"
            f"<table border='1' cellpadding='4'>{''.join(rows)}</table>"
        )
        return HTMLResponse(page)


def build_app(
    *, engine: sa.Engine, settings: Settings, clock: Clock, status: Callable[[], Mapping[str, Any]]
) -> Starlette:
    """The worker's ASGI app (routes in :mod:`jobs.service.openapi`); served by uvicorn on the worker's event loop."""
    api = WorkerApi(engine, settings, clock, status)
    admin = [
        Route("/ai-health", api.ai_health, methods=["GET"]),
        Route("/probe", api.request_probe, methods=["POST"]),
        Route("/probe/{id}", api.probe_status, methods=["GET"]),
        Route("/queue/clear", api.clear_queue, methods=["POST"]),
        Route("/keys/{label}/{action}", api.key_command, methods=["POST"]),
        Route("/keys/{provider}/{label}/{action}", api.key_command, methods=["POST"]),
        Route("/commands/{id}", api.command, methods=["GET"]),
    ]
    routes = [
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", api.metrics, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/docs", api.docs, methods=["GET"]),
        Mount(
            "/api/admin",
            routes=admin,
            middleware=[Middleware(AdminAuthMiddleware, token=settings.admin_token)],
        ),
    ]
    secrets = [(key.reveal(), key.masked) for p in Provider for key in settings.keys(p)]
    if settings.admin_token is not None:
        secrets.append((settings.admin_token.get_secret_value(), "…"))

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        message, field = exc.message, exc.field
        for secret, masked in secrets:  # an operator who pasted a key where its label goes gets it back masked
            if len(secret) >= SCRUB_MIN_LENGTH:
                message = message.replace(secret, masked)
                field = field.replace(secret, masked) if field is not None else None
        data: dict[str, Any] = {"error": message, "status": exc.status}
        if field is not None:
            data["field"] = field
        return json_response(data, exc.status)

    handlers = {
        ApiError: api_error,
        HTTPException: _http_error,
        sa.exc.SQLAlchemyError: _store_error,
        Exception: _crash,
    }
    return Starlette(routes=routes, exception_handlers=handlers)  # type: ignore[arg-type]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = "no such route; the routes are listed at /openapi.json"
    elif exc.status_code == 405:
        message = f"method {request.method} is not allowed here; allowed: {headers.get('Allow', '?')}"
    else:
        message = str(exc.detail)
    return json_response({"error": message, "status": exc.status_code}, exc.status_code, headers)


async def _store_error(request: Request, exc: Exception) -> Response:
    log.warning("API %s %s: the store failed (%s)", request.method, request.url.path, type(exc).__name__)
    return json_response({"error": "the store is unreachable or failed; see the worker's log", "status": 503}, 503)


async def _crash(request: Request, exc: Exception) -> Response:
    log.error("API %s %s failed", request.method, request.url.path, exc_info=exc)
    return json_response({"error": "internal error; see the worker's log", "status": 500}, 500)
