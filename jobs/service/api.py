"""The worker's HTTP API: admin actions and the health report behind a bearer token, plus liveness and metrics.

Every admin action goes through the same core functions the CLI and the dashboard call (``pulsegate.core.ops.control``,
``pulsegate.core.ops.probe_requests``, ``pulsegate.core.ops.health_report``): the API only parses, validates and
serialises. Bad input is answered with JSON ``{"error", "status", "field"}`` naming what is wrong (400 / 404 / 413 /
422); an unreachable store with 503; nothing answers with a traceback. Store work runs in a thread, never on the event
loop the worker's scheduler shares.

This module assembles the app; the routes are :mod:`pulsegate.jobs.service.admin_routes` and
:mod:`pulsegate.jobs.service.public_routes`, the input readers :mod:`pulsegate.jobs.service.api_input`, the error
answers :mod:`pulsegate.jobs.service.api_errors`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount

from pulsegate.core.clock import Clock
from pulsegate.core.settings import Settings
from pulsegate.jobs.service.admin_routes import AdminRoutes
from pulsegate.jobs.service.api_errors import exception_handlers
from pulsegate.jobs.service.auth import AdminAuthMiddleware
from pulsegate.jobs.service.public_routes import PublicRoutes


def build_app(
    *, engine: sa.Engine, settings: Settings, clock: Clock, status: Callable[[], Mapping[str, Any]]
) -> Starlette:
    """The worker's ASGI app (routes in :mod:`pulsegate.jobs.service.openapi`); served by uvicorn on the worker's event
    loop."""
    admin = AdminRoutes(engine, settings, clock)
    public = PublicRoutes(engine, settings, clock, status)
    routes = [
        *public.routes(),
        Mount(
            "/api/admin",
            routes=admin.routes(),
            middleware=[Middleware(AdminAuthMiddleware, token=settings.admin_token)],
        ),
    ]
    return Starlette(routes=routes, exception_handlers=exception_handlers(settings))
