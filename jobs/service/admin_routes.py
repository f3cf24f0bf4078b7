"""The worker API's admin routes (``/api/admin/…``, behind the bearer token): the health report, probe requests
and key/queue commands.

Every action goes through the same core functions the CLI and the dashboard call (``pulsegate.core.ops.control``,
``pulsegate.core.ops.probe_requests``, ``pulsegate.core.ops.health_report``): these handlers only parse, validate and
serialise. Store work runs in a thread, never on the event loop the worker's scheduler shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pulsegate.core.clock import Clock
from pulsegate.core.ops.control import ControlCommandError, command_status, issue_command
from pulsegate.core.ops.health_report import health_report, http_status
from pulsegate.core.ops.probe import ProbeError, probe_targets
from pulsegate.core.ops.probe_requests import probe_request_status, request_probe
from pulsegate.core.provider import Provider
from pulsegate.core.settings import Settings
from pulsegate.core.store.tables import key_health_snapshots
from pulsegate.jobs.service.api_errors import ApiError, configured_secrets, contains_secret, json_response, shown
from pulsegate.jobs.service.api_input import check_provider, parse_id, parse_window, read_body
from pulsegate.jobs.service.openapi import KEY_ACTIONS

REQUESTED_BY = "api"
ACTION_COMMANDS = {"reset": "reset_key", "disable": "disable_key", "enable": "enable_key"}
#: Labels a key command may name: the worker's configured keys, and those live instances reported this recently.
LABEL_LOOKBACK = timedelta(hours=24)


class AdminRoutes:
    """The admin route handlers, bound to one store, settings and clock."""

    def __init__(self, engine: sa.Engine, settings: Settings, clock: Clock) -> None:
        self.engine = engine
        self.settings = settings
        self.clock = clock
        self.secrets = [secret for secret, _ in configured_secrets(settings)]

    def routes(self) -> list[Route]:
        """Mounted under ``/api/admin`` (see :mod:`pulsegate.jobs.service.openapi`)."""
        return [
            Route("/ai-health", self.ai_health, methods=["GET"]),
            Route("/probe", self.request_probe, methods=["POST"]),
            Route("/probe/{id}", self.probe_status, methods=["GET"]),
            Route("/queue/clear", self.clear_queue, methods=["POST"]),
            Route("/keys/{label}/{action}", self.key_command, methods=["POST"]),
            Route("/keys/{provider}/{label}/{action}", self.key_command, methods=["POST"]),
            Route("/commands/{id}", self.command, methods=["GET"]),
        ]

    def refuse_secrets(self, values: Mapping[str, object]) -> None:
        """A field holding a configured key or the admin token is refused before it is stored or echoed."""
        for field, value in values.items():
            if isinstance(value, str) and any(contains_secret(value, secret) for secret in self.secrets):
                message = f"{field}: this is a secret (an API key or the admin token); send the label or id instead"
                raise ApiError(422, message, field)

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
            raise ApiError(404, f"action: unknown key action {shown(action)}; expected one of {expected}", "action")
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
                raise ApiError(404, f"label: no {provider} key labelled {shown(label)} (keys: {labels})", "label")
            return provider
        owners = sorted(p for p, labels in known.items() if label in labels)
        if len(owners) == 1:
            return owners[0]
        if not owners:
            listed = "; ".join(f"{p}: {', '.join(repr(k) for k in sorted(ls))}" for p, ls in sorted(known.items()))
            raise ApiError(404, f"label: no key labelled {shown(label)} ({listed or 'no keys known'})", "label")
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
