"""Bearer-token guard for the worker's admin routes (``Authorization: Bearer $ADMIN_TOKEN``).

A pure ASGI middleware on the ``/api/admin`` mount, so every admin path — including unknown ones — is checked
before routing: nothing about the admin API is revealed to a caller without the token.

* ``ADMIN_TOKEN`` unset → 503 with how to enable the admin API (the routes exist but are switched off);
* header missing → 401 with ``WWW-Authenticate: Bearer realm="pulsegate"`` (RFC 6750: no error code);
* not ``Bearer <token>`` → 401 ``error="invalid_request"``; wrong token → 401 ``error="invalid_token"``.

The comparison is :func:`hmac.compare_digest` on bytes (constant time; a ``str`` with non-ASCII characters would
raise instead of comparing). Neither the expected nor the offered token ever appears in a response or a log line.
"""

from __future__ import annotations

import hmac
import json
import logging

from pydantic import SecretStr
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

REALM = "pulsegate"
DISABLED_MESSAGE = (
    "the admin API is disabled because ADMIN_TOKEN is not set: set ADMIN_TOKEN (at least 16 characters, e.g. "
    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`) in the worker's environment or .env, "
    "restart the worker, and send it as `Authorization: Bearer <token>`"
)


def token_matches(offered: bytes, expected: SecretStr) -> bool:
    """Constant-time comparison of an offered token with the configured one."""
    return hmac.compare_digest(offered, expected.get_secret_value().encode("utf-8"))


def check_authorization(header: bytes | None, expected: SecretStr | None) -> tuple[int, str, str | None] | None:
    """``None`` when the request may pass, else ``(status, message, WWW-Authenticate value or None)``."""
    if expected is None:
        return 503, DISABLED_MESSAGE, None
    if header is None or not header.strip():
        return 401, "Authorization: missing; send `Authorization: Bearer <ADMIN_TOKEN>`", f'Bearer realm="{REALM}"'
    scheme, _, token = header.strip().partition(b" ")
    token = token.strip()
    if scheme.lower() != b"bearer" or not token:
        challenge = f'Bearer realm="{REALM}", error="invalid_request"'
        return 401, "Authorization: expected the form `Bearer <ADMIN_TOKEN>`", challenge
    if not token_matches(token, expected):
        return 401, "Authorization: the bearer token is not valid", f'Bearer realm="{REALM}", error="invalid_token"'
    return None


class AdminAuthMiddleware:
    """Rejects HTTP requests without the admin bearer token (see the module docstring for the rules)."""

    def __init__(self, app: ASGIApp, token: SecretStr | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        refusal = check_authorization(header, self.token)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, challenge = refusal
        if status == 401:
            client = scope.get("client") or ("?", 0)
            # no path in the line: it may hold what an operator pasted by mistake
            log.info("admin API: a %s request from %s was refused (401)", scope["method"], client[0])
        body = json.dumps({"error": message, "status": status}, separators=(",", ":")).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if challenge is not None:
            headers.append((b"www-authenticate", challenge.encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
