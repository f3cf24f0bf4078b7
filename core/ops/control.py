"""The control channel: the one place that issues operator commands and reports what became of them.

The dashboard, the API and the CLI all call :func:`issue_command` and :func:`command_status`; every running client
or worker picks a command up on its next heartbeat (see :mod:`pulsegate.core.ops.heartbeat`), applies it with
:func:`apply_command` and acknowledges it with the result. A command addressed to no instance in particular
(``target_instance=None``) reaches every instance that is live while it has not expired.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pulsegate.core.clock import require_aware
from pulsegate.core.errors import PulsegateError
from pulsegate.core.provider import Provider
from pulsegate.core.store.tables import PROVIDERS, control_acks, control_commands

if TYPE_CHECKING:
    from pulsegate.core.instance import Instance

COMMANDS = ("clear_queue", "reset_key", "disable_key", "enable_key")
KEY_COMMANDS = frozenset({"reset_key", "disable_key", "enable_key"})
#: Long enough for every live instance to see it (many heartbeats), short enough that a late starter does not act
#: on an old decision.
DEFAULT_TTL = timedelta(minutes=5)
MAX_TTL = timedelta(days=1)


class ControlCommandError(PulsegateError, ValueError):
    """A command that cannot be issued; ``field`` names the argument that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class CommandFailed(PulsegateError):
    """Raised by :func:`apply_command` when an instance cannot apply a command; acknowledged with ``ok=False``."""


@dataclass(frozen=True, slots=True)
class ControlCommand:
    id: int
    command: str
    provider: str | None
    key_label: str | None
    target_instance: str | None
    requested_by: str
    created_at: datetime
    expires_at: datetime
    args: dict[str, Any] | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> ControlCommand:
        return cls(
            id=int(row["id"]),
            command=row["command"],
            provider=row["provider"],
            key_label=row["key_label"],
            target_instance=row["target_instance"],
            requested_by=row["requested_by"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
            args=row["args"],
        )


def _text(field: str, value: object, max_length: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise ControlCommandError(field, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ControlCommandError(field, f"expected a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise ControlCommandError(field, f"at most {max_length} characters, got {len(value)}")
    # a NUL or a lone surrogate cannot be stored on PostgreSQL; no label or instance id holds a control character
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ControlCommandError(field, "expected text without control characters")
    return value


def validate_command(
    command: object,
    *,
    provider: object = None,
    key_label: object = None,
    target_instance: object = None,
    requested_by: object,
    now: object,
    ttl: object = DEFAULT_TTL,
) -> dict[str, Any]:
    """The ``control_commands`` row for these arguments, or :class:`ControlCommandError` naming the bad field."""
    if command not in COMMANDS:
        raise ControlCommandError("command", f"unknown command {command!r}; expected one of {', '.join(COMMANDS)}")
    if provider is not None:
        if isinstance(provider, Provider):
            provider = provider.value
        if provider not in PROVIDERS:
            raise ControlCommandError(
                "provider", f"unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}"
            )
    if command in KEY_COMMANDS:
        if provider is None:
            raise ControlCommandError("provider", f"{command} needs the provider the key belongs to")
        key_label = _text("key_label", key_label, 64, required=True)
    elif key_label is not None:
        raise ControlCommandError("key_label", f"{command} acts on a provider's queue, not on a key: leave it empty")
    target = _text("target_instance", target_instance, 64, required=False)
    requester = _text("requested_by", requested_by, 64, required=True)
    require_aware(now, functools.partial(ControlCommandError, "now"))
    if isinstance(ttl, int | float) and not isinstance(ttl, bool):
        ttl = timedelta(seconds=ttl)
    if not isinstance(ttl, timedelta) or not timedelta(0) < ttl <= MAX_TTL:
        raise ControlCommandError("ttl", f"expected a duration above 0 and at most {MAX_TTL}, got {ttl!r}")
    return {
        "created_at": now,
        "command": command,
        "provider": provider,
        "key_label": key_label,
        "target_instance": target,
        "requested_by": requester,
        "expires_at": now + ttl,
    }


def issue_command(
    engine: sa.Engine,
    command: str,
    *,
    provider: str | Provider | None = None,
    key_label: str | None = None,
    target_instance: str | None = None,
    requested_by: str,
    now: datetime,
    ttl: timedelta | float = DEFAULT_TTL,
) -> int:
    """Queue a command for every live instance (or one); returns its id for :func:`command_status`.

    ``clear_queue`` takes an optional provider (none: every provider's queue); the key commands need ``provider``
    and ``key_label``. ``ttl`` (a timedelta or seconds) bounds how long instances may still pick it up.
    """
    row = validate_command(
        command,
        provider=provider,
        key_label=key_label,
        target_instance=target_instance,
        requested_by=requested_by,
        now=now,
        ttl=ttl,
    )
    with engine.begin() as connection:
        result = connection.execute(control_commands.insert().values(**row).returning(control_commands.c.id))
        return int(result.scalar_one())


def command_status(engine: sa.Engine, command_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The command and every acknowledgement so far (``expired`` when ``now`` is given); KeyError if unknown."""
    with engine.connect() as connection:
        row = connection.execute(sa.select(control_commands).where(control_commands.c.id == command_id)).mappings()
        command = row.one_or_none()
        if command is None:
            raise KeyError(f"no control command with id {command_id}")
        acks = connection.execute(
            sa.select(control_acks)
            .where(control_acks.c.command_id == command_id)
            .order_by(control_acks.c.acked_at, control_acks.c.instance_id)
        ).mappings()
        ack_list = [
            {"instance_id": a["instance_id"], "acked_at": a["acked_at"], "ok": a["ok"], "result": a["result"]}
            for a in acks
        ]
    status: dict[str, Any] = {
        "id": int(command["id"]),
        "command": command["command"],
        "provider": command["provider"],
        "key_label": command["key_label"],
        "target_instance": command["target_instance"],
        "requested_by": command["requested_by"],
        "created_at": command["created_at"],
        "expires_at": command["expires_at"],
        "acks": ack_list,
        "acked": len(ack_list),
        "failed": sum(1 for a in ack_list if not a["ok"]),
    }
    if now is not None:
        status["expired"] = now >= command["expires_at"]
    return status


def apply_command(instance: Instance, command: ControlCommand) -> str:
    """Apply one command to an instance; returns the result text, raises :class:`CommandFailed` when it cannot."""
    if command.command == "clear_queue":
        cancelled = instance.clear_queue(command.provider)
        where = f"{command.provider} queue" if command.provider else "all queues"
        return f"{cancelled} request{'s' if cancelled != 1 else ''} cancelled ({where})"
    if command.command not in KEY_COMMANDS:
        raise CommandFailed(f"unknown command {command.command!r}")
    provider = Provider(command.provider)
    pool = instance.pools[provider]
    key = pool.by_label(command.key_label or "")
    if key is None:
        labels = ", ".join(repr(k.label) for k in pool.keys) or "none"
        raise CommandFailed(f"no {provider.value} key labelled {command.key_label!r} here (keys: {labels})")
    health = pool.state(key)
    if command.command == "disable_key":
        health.disable(f"disabled by {command.requested_by} (command {command.id})")
        return f"key {key.label!r} disabled"
    if command.command == "enable_key":
        health.enable()
        return f"key {key.label!r} enabled"
    health.reset_cooldown()
    return f"key {key.label!r} cooldown reset"
