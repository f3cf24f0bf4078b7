"""The gateway process: an aiohttp application in front of one :class:`~pulsegate.core.instance.Instance`.

Routes: ``POST /v1/messages`` (Anthropic) and ``POST /v1/chat/completions`` (OpenAI) through the whole policy,
``GET /v1/models`` (and ``/v1/models/{id}``) in the caller's format, ``GET /healthz``; any other path is a 404 in
the caller's format naming the path. Every route but ``/healthz`` needs a gateway token. A client that disconnects
cancels its handler (``handler_cancellation``), which cancels the upstream request and records the attempt as
``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from pulsegate.core.errors import ProviderError, PulsegateError
from pulsegate.core.instance import Instance
from pulsegate.core.loopback import is_loopback
from pulsegate.core.ops.heartbeat import instance_heartbeat
from pulsegate.core.provider import Provider
from pulsegate.core.recording import SqlRecorder
from pulsegate.core.settings import Settings
from pulsegate.core.store import create_store_engine
from pulsegate.gateway.auth import TokenBook, presented_token
from pulsegate.gateway.inbound import GatewayRequestError, read_chat
from pulsegate.gateway.passthrough import pass_through
from pulsegate.gateway.relay import Relay
from pulsegate.gateway.upstream import Upstream, UpstreamError
from pulsegate.gateway.wire import Wire, error_body, wire_of

log = logging.getLogger(__name__)

MB = 1024 * 1024
CHAT_PATHS = ("/v1/messages", "/v1/chat/completions")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GatewayError(PulsegateError):
    """The gateway cannot start as configured (the message says what to change)."""


BOOK = web.AppKey("book", TokenBook)
RELAY = web.AppKey("relay", Relay)
SETTINGS = web.AppKey("settings", Settings)


def _error(wire: Wire, status: int, message: str, *, retry: bool = False) -> web.Response:
    headers = {} if retry else {"x-should-retry": "false"}
    return web.Response(
        status=status, body=error_body(wire, status, message), content_type="application/json", headers=headers
    )


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/healthz":
        return await handler(request)
    wire = wire_of(request.path, request.headers)
    token = presented_token(request.headers)
    grant = request.app[BOOK].app_for(token)
    if grant is None:
        what = "no gateway token" if not token else "the gateway token is not valid (unknown or revoked)"
        return _error(wire, 401, f"{what}: send one as 'Authorization: Bearer …' or 'x-api-key'")
    request["app"] = grant[1]
    return await handler(request)


async def chat(request: web.Request) -> web.StreamResponse:
    wire = wire_of(request.path, request.headers)
    settings = request.app[SETTINGS]
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        return _error(wire, 415, f"content-type must be application/json, got {content_type or 'none'!r}")
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        limit = settings.gateway_max_body_mb
        return _error(wire, 413, f"the request body is over the gateway's limit of {limit:g} MB (GATEWAY_MAX_BODY_MB)")
    key = settings.hash_user_ids.get_secret_value().encode() if settings.hash_user_ids else None
    try:
        inbound = read_chat(request.path, raw, hash_key=key, user_header=request.headers.get("x-pulsegate-user"))
        return await request.app[RELAY].chat(request, inbound, request["app"])
    except GatewayRequestError as exc:
        return _error(wire, 400, f"invalid request: {exc}")


async def models(request: web.Request) -> web.Response:
    """``GET /v1/models`` and ``/v1/models/{id}``: the provider's own listing, with one of its healthy keys. Both
    SDKs reach the same path; the Anthropic ones send ``anthropic-version`` and ``x-api-key``, so those pick the
    provider (and so the format). A listing is free, so it is not an attempt row."""
    wire = wire_of(request.path, request.headers)
    provider = Provider.ANTHROPIC if wire is Wire.ANTHROPIC else Provider.OPENAI
    relay = request.app[RELAY]
    choice = relay.instance.pools[provider].choose()
    if choice is None:
        return _error(wire, 503, f"no usable {provider.value} key for a model listing")
    path = request.path + (f"?{request.query_string}" if request.query_string else "")
    try:
        response = await relay.upstream.send(provider, choice.key, path, b"", request.headers, 30.0, method="GET")
        try:
            data = await response.read()
        finally:
            response.release()
    except UpstreamError as error:
        return web.Response(
            status=error.http_status or 502,
            body=error.body,
            content_type="application/json",
            headers={"x-should-retry": "false"},
        )
    except (ProviderError, aiohttp.ClientError, TimeoutError) as error:
        return _error(wire, 502, f"the model listing failed: {type(error).__name__}")
    return web.Response(status=200, body=data, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    book = request.app[BOOK]
    return web.json_response({"status": "ok" if book.loaded else "starting", "tokens_loaded": book.loaded})


async def not_found(request: web.Request) -> web.Response:
    wire = wire_of(request.path, request.headers)
    return _error(wire, 404, f"no such endpoint: {request.method} {request.path[:200]}")


def build_app(settings: Settings, engine: sa.Engine) -> web.Application:
    """The application, with the instance, the token book and the upstream client started and stopped with it."""
    app = web.Application(middlewares=[authenticate], client_max_size=int(settings.gateway_max_body_mb * MB))
    app[SETTINGS] = settings
    key = settings.hash_user_ids.get_secret_value() if settings.hash_user_ids else None
    instance = Instance(
        settings,
        recorder=SqlRecorder(engine, spool_dir=settings.spool_dir, user_id_key=key),
        adapter_factory=pass_through,
    )
    book = TokenBook(engine, instance.clock)
    book.load()
    app[BOOK] = book
    upstream = Upstream({p: settings.base_url(p) for p in Provider}, instance.clock)
    app[RELAY] = Relay(instance, upstream)
    heartbeat = instance_heartbeat(instance, engine, kind="gateway")

    async def lifecycle(app: web.Application) -> object:
        refresher = asyncio.create_task(book.run(), name="gateway-tokens")
        heartbeat.start()
        yield
        refresher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await refresher
        await heartbeat.stop()
        await instance.aclose(on_home=True)
        await upstream.aclose()
        await asyncio.to_thread(instance.recorder.close)

    app.cleanup_ctx.append(lifecycle)
    for path in CHAT_PATHS:
        app.router.add_post(path, chat)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/v1/models/{model_id}", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app


def serve(settings: Settings, host: str, port: int) -> None:
    """Run until SIGTERM/SIGINT. Refuses a non-loopback address while no gateway token exists."""
    engine = create_store_engine(settings.database_url)
    app = build_app(settings, engine)
    if not is_loopback(host) and app[BOOK].empty:
        raise GatewayError(
            f"refusing to serve the gateway on {host} with no gateway token defined: create one with "
            "`pulsegate gateway-token create --name APP`, or bind to 127.0.0.1"
        )
    log.info("gateway on http://%s:%d", host, port)
    # SIGTERM and SIGINT end run_app, which runs the cleanup above (rows flushed, connections closed)
    web.run_app(app, host=host, port=port, handler_cancellation=True, print=None, access_log=None, handle_signals=True)
