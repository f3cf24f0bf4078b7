"""The worker API's open routes: liveness and status (``/healthz``), Prometheus ``/metrics``, and the API's own
description (``/openapi.json``, ``/docs``). No token: a load balancer and a scraper must reach them.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from pulsegate.core.clock import Clock
from pulsegate.core.settings import Settings
from pulsegate.jobs.service.api_errors import json_response
from pulsegate.jobs.service.metrics import build_registry
from pulsegate.jobs.service.openapi import openapi_spec

log = logging.getLogger("pulsegate.jobs.service.api")  # the API's one logger, whichever module of it logs


class PublicRoutes:
    """The open route handlers, bound to the worker's status function and a metrics registry on its store."""

    def __init__(
        self, engine: sa.Engine, settings: Settings, clock: Clock, status: Callable[[], Mapping[str, Any]]
    ) -> None:
        self.status = status
        self.registry = build_registry(engine, clock, heartbeat_interval_s=settings.heartbeat_interval_s, status=status)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/docs", self.docs, methods=["GET"]),
        ]

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
