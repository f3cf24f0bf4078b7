"""What a gateway app is allowed and what it gets by default, checked once where it is entered (CLI, admin API)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from pulsegate.core.errors import PulsegateError
from pulsegate.core.request import Priority

APP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_TIMEOUT_S = 3600.0


class AppError(PulsegateError):
    """A gateway app or token request that cannot be done as asked (the message names what and why)."""


@dataclass(frozen=True, slots=True)
class AppPolicy:
    """One app's limits and defaults. ``None`` everywhere means "no limit" / "the product's default"."""

    name: str
    rpm: int | None = None
    tpm: int | None = None
    monthly_usd: float | None = None
    priority: int | None = None
    max_priority: int | None = None
    fallback: bool | None = None
    timeout_s: float | None = None
    models: tuple[str, ...] | None = None

    def effective_priority(self, asked: int | None) -> int:
        """The priority a call runs at: the one asked for (or the app's default, or 5), capped by ``max_priority``."""
        value = asked if asked is not None else (self.priority if self.priority is not None else Priority.USER_FACING)
        if self.max_priority is not None:
            value = min(value, self.max_priority)
        return value

    def allows_model(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A token as it may be shown: its prefix, never the token."""

    prefix: str
    app: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def state(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"


#: The settings of an app that ``create`` and ``update`` may change.
SETTABLE = tuple(f.name for f in fields(AppPolicy) if f.name != "name")


def check_name(name: object) -> str:
    if not isinstance(name, str) or not APP_NAME.fullmatch(name):
        raise AppError(
            f"app name {name!r} is not valid: 1-64 characters of letters, digits, '.', '_' or '-', starting with a "
            "letter or digit"
        )
    return name


def _positive_int(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise AppError(f"{field} must be a whole number above 0, got {value!r}")
    return value


def _check_one(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field in ("rpm", "tpm"):
        return _positive_int(field, value)
    if field == "monthly_usd":
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
            raise AppError(f"monthly_usd must be a number of dollars above 0, got {value!r}")
        return float(value)
    if field in ("priority", "max_priority"):
        if isinstance(value, bool) or not isinstance(value, int) or not Priority.MIN <= value <= Priority.MAX:
            raise AppError(f"{field} must be a whole number from {Priority.MIN} to {Priority.MAX}, got {value!r}")
        return value
    if field == "fallback":
        if not isinstance(value, bool):
            raise AppError(f"fallback must be true or false, got {value!r}")
        return value
    if field == "timeout_s":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_TIMEOUT_S:
            raise AppError(f"timeout_s must be seconds above 0 and at most {MAX_TIMEOUT_S:.0f}, got {value!r}")
        return float(value)
    if field == "models":
        if isinstance(value, str) or not all(isinstance(m, str) and m.strip() for m in value) or not value:
            raise AppError(f"models must be a non-empty list of model names, got {value!r}")
        return tuple(value)
    raise AppError(f"unknown app setting {field!r}; settable: {', '.join(SETTABLE)}")


def check_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes, each checked (``None`` clears a setting); raises :class:`AppError` naming the first bad one."""
    return {field: _check_one(field, value) for field, value in changes.items()}
