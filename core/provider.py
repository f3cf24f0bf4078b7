"""The providers Pulsegate calls. A room of its own because nearly everything names a provider — settings, key pools,
adapters, the store's columns, control commands — and none of them should have to import the API-key code to do so.
"""

from __future__ import annotations

from enum import StrEnum


class Provider(StrEnum):
    """A provider, by the name stored in the ``provider`` columns and used in settings, labels and URLs."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
