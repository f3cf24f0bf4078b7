"""Who is calling: the gateway's tokens, re-read from the store every second.

Every gateway process reads the whole table of live tokens once a second (one indexed query: a few hundred rows at
most), so a revoked token is refused by every process within a second, with or without Redis. Between reads the
lookup is a dictionary access by the token's hash, then a constant-time comparison. A store that cannot be read keeps
the last table (a database blip must not lock every app out), and the gateway logs it once per outage.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

import sqlalchemy as sa

from pulsegate.core.apps.model import AppPolicy
from pulsegate.core.apps.store import active_tokens, mark_used
from pulsegate.core.apps.tokens import looks_like_token, same_hash, token_hash
from pulsegate.core.clock import Clock

log = logging.getLogger(__name__)

REFRESH_S = 1.0
STAMP_LAST_USED_S = 30.0


def presented_token(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries: ``Authorization: Bearer …`` (the OpenAI SDKs) or ``x-api-key`` (Anthropic)."""
    value = headers.get("authorization")
    if value is not None:
        scheme, _, token = value.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    value = headers.get("x-api-key")
    return value.strip() if value else None


class TokenBook:
    """The live tokens of every app, as of the last read (at most :data:`REFRESH_S` old)."""

    def __init__(self, engine: sa.Engine, clock: Clock, reader: Callable[[sa.Engine], dict] = active_tokens) -> None:
        self.engine = engine
        self.clock = clock
        self._reader = reader
        self._tokens: dict[str, tuple[str, str, AppPolicy]] = {}  # hash → (hash, prefix, app)
        self._used: set[str] = set()
        self._last_stamp = time.monotonic()
        self._failing = False
        self.loaded = False

    @property
    def empty(self) -> bool:
        return not self._tokens

    def load(self) -> None:
        """Read the table now (blocking: run it in a thread from the loop)."""
        try:
            self._tokens = {digest: (digest, *grant) for digest, grant in self._reader(self.engine).items()}
        except sa.exc.SQLAlchemyError as exc:
            if not self._failing:
                log.warning("gateway: cannot read the tokens table (%s); keeping the last one read", type(exc).__name__)
            self._failing = True
            return
        if self._failing:
            log.info("gateway: the tokens table is readable again")
        self._failing = False
        self.loaded = True
        if self._used and time.monotonic() - self._last_stamp >= STAMP_LAST_USED_S:
            used, self._used = self._used, set()
            self._last_stamp = time.monotonic()
            try:
                mark_used(self.engine, used, self.clock.now())
            except sa.exc.SQLAlchemyError:
                self._used |= used  # stamped next time

    async def run(self) -> None:
        """Re-read every second until cancelled."""
        while True:
            await asyncio.sleep(REFRESH_S)
            await asyncio.to_thread(self.load)

    def app_for(self, token: str | None) -> tuple[str, AppPolicy] | None:
        """``(prefix, app)`` for a live token; None for a missing, malformed, unknown or revoked one."""
        if not token or not looks_like_token(token):
            return None
        digest = token_hash(token)
        found = self._tokens.get(digest)
        # what the dictionary compared is the hash, never the token; the match is then confirmed in constant time
        if found is None or not same_hash(found[0], digest):
            return None
        self._used.add(found[1])
        return found[1], found[2]
