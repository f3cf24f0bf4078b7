"""Pulsegate's call wrapper: the small public surface an application imports.

    from core import AIClient, ModelConfig, CallOptions, AIResponse, Priority

Names are imported on first use, so a process that only needs ``core.settings`` or ``core.store`` (the CLI, the
worker, the dashboard) does not pay for loading both provider SDKs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "AIClient": "core.client",
    "AIResponse": "core.response",
    "CallOptions": "core.request",
    "ModelConfig": "core.request",
    "Priority": "core.request",
    "ResponseStream": "core.streaming",
    "Usage": "core.translate.usage",
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
        "core.errors",
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
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:
    from core.client import AIClient
    from core.errors import (
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
    from core.request import CallOptions, ModelConfig, Priority
    from core.response import AIResponse
    from core.streaming import ResponseStream
    from core.translate.usage import Usage
