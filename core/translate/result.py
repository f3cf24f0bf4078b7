"""The provider-neutral answer: what a call returned, in Anthropic vocabulary, whichever provider served it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pulsegate.core.errors import PulsegateError
from pulsegate.core.translate.usage import Usage


class IncompleteResponseError(PulsegateError, ValueError):
    """The provider's answer ended without a stop/finish reason (cut-off stream, empty ``choices``, …).

    A distinct type so the caller can classify it (e.g. as an interrupted stream) instead of trusting a partial answer.
    ``partial_text`` is the text that had arrived, if any.
    """

    def __init__(self, message: str, *, partial_text: str = "") -> None:
        super().__init__(message)
        self.partial_text = partial_text


class StreamErrorEvent(PulsegateError, ValueError):
    """An ``error`` event/chunk was fed to a stream accumulator (the SDKs normally raise these themselves).

    ``error_type`` is the provider's ``error.type`` (e.g. ``overloaded_error``, ``server_error``) for classification.
    """

    def __init__(self, error: Mapping[str, Any] | str, *, partial_text: str = "") -> None:
        error = dict(error) if isinstance(error, Mapping) else {"message": str(error)}
        self.error = error
        self.error_type: str | None = error.get("type")
        self.code: str | None = error.get("code")
        self.partial_text = partial_text
        super().__init__(str(error.get("message") or self.error_type or "stream error"))


@dataclass(frozen=True, slots=True)
class NormalizedResponse:
    """One completed model answer in Anthropic terms, so callers handle a single shape.

    - ``text``: every text block concatenated (no separator).
    - ``content``: Anthropic-style blocks: ``{"type":"text","text"}`` and ``{"type":"tool_use","id","name","input"}``
      (other Anthropic block types, e.g. ``thinking``, are kept verbatim when the answer came from Anthropic).
    - ``stop_reason``: Anthropic vocabulary (``end_turn``, ``max_tokens``, ``tool_use``, ``refusal``, …).
    - ``model``: the model id the provider reported (e.g. ``gpt-4.1-2025-04-14``).
    - ``request_id``: the HTTP ``request-id`` / ``x-request-id`` header value; it is not in the body, so the caller
      passes it in (``message._request_id``).
    - ``response_id``: the body's ``id`` (``msg_…`` / ``chatcmpl-…``).
    - ``stop_sequence``: the matched custom stop string (Anthropic only; OpenAI does not report it).
    """

    text: str
    content: list[dict[str, Any]]
    stop_reason: str
    model: str
    usage: Usage = field(default_factory=Usage)
    request_id: str | None = None
    response_id: str | None = None
    stop_sequence: str | None = None

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """The ``tool_use`` blocks, in order: what the caller must run before continuing the conversation."""
        return [block for block in self.content if block.get("type") == "tool_use"]
