"""One SDK client per key over one shared connection pool: built on first use, never per call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.providers.sent_mark import watch

C = TypeVar("C")


class SdkClients(Generic[C]):
    def __init__(self, build: Callable[[str, Any], C], http_client: Any) -> None:
        self._build = build
        self.http_client = watch(http_client)  # so a cancelled attempt knows whether its request left
        self._clients: dict[str, C] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, key: ApiKey) -> C:
        client = self._clients.get(key.fingerprint)
        if client is None:
            client = self._clients[key.fingerprint] = self._build(key.reveal(), self.http_client)
        return client

    async def aclose(self) -> None:
        self._clients.clear()
        await self.http_client.aclose()
