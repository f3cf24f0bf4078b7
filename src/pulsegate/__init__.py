"""Pulsegate: keeps an application's Anthropic and OpenAI calls alive under load. This is its public surface.

    from pulsegate import AIClient, ModelConfig, CallOptions, AIResponse, Priority

Everything else lives under it: ``pulsegate.core`` (the call wrapper's rooms), ``pulsegate.jobs`` (the worker and
the command line), ``pulsegate.dashboard``, ``pulsegate.emulator`` and ``pulsegate.migrations`` — the repository's
top-level folders of those names, mapped into this one package (docs/house.md says how).

Names are imported on first use, so a process that only needs the settings or the store (the CLI, the worker, the
dashboard) does not pay for loading both provider SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AIClient": "pulsegate.core.client",
    "AIResponse": "pulsegate.core.response",
    "CallOptions": "pulsegate.core.request",
    "ModelConfig": "pulsegate.core.request",
    "Priority": "pulsegate.core.request",
    "ResponseStream": "pulsegate.core.streaming",
    "Usage": "pulsegate.core.translate.usage",
    **dict.fromkeys(
        (
            "AdmissionError",
            "CallError",
            "CircuitOpenError",
            "ConfigError",
            "DeadlineExceededError",
            "ErrorClass",
            "KeysCoolingDownError",
            "NoUsableKeyError",
            "ProviderError",
            "PulsegateError",
            "QueueClearedError",
            "QueueFullError",
            "QueueTimeoutError",
            "RequestValidationError",
            "StreamInterruptedError",
            "UserRateLimitedError",
        ),
        "pulsegate.core.errors",
    ),
}

__all__ = [
    "AIClient",
    "AIResponse",
    "AdmissionError",
    "CallError",
    "CallOptions",
    "CircuitOpenError",
    "ConfigError",
    "DeadlineExceededError",
    "ErrorClass",
    "KeysCoolingDownError",
    "ModelConfig",
    "NoUsableKeyError",
    "Priority",
    "ProviderError",
    "PulsegateError",
    "QueueClearedError",
    "QueueFullError",
    "QueueTimeoutError",
    "RequestValidationError",
    "ResponseStream",
    "StreamInterruptedError",
    "Usage",
    "UserRateLimitedError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pulsegate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from pulsegate.core.client import AIClient
    from pulsegate.core.errors import (
        AdmissionError,
        CallError,
        CircuitOpenError,
        ConfigError,
        DeadlineExceededError,
        ErrorClass,
        NoUsableKeyError,
        ProviderError,
        PulsegateError,
        QueueClearedError,
        QueueFullError,
        QueueTimeoutError,
        RequestValidationError,
        StreamInterruptedError,
        UserRateLimitedError,
    )
    from pulsegate.core.request import CallOptions, ModelConfig, Priority
    from pulsegate.core.response import AIResponse
    from pulsegate.core.streaming import ResponseStream
    from pulsegate.core.translate.usage import Usage
