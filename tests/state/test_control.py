"""Issuing commands: validation that names the field, and the status report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pulsegate.core.clock import ManualClock
from pulsegate.core.ops.control import DEFAULT_TTL, ControlCommandError, command_status, issue_command, validate_command

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kwargs", "field", "fragment"),
    [
        ({"command": "reboot"}, "command", "unknown command 'reboot'"),
        ({"command": "clear_queue", "provider": "gemini"}, "provider", "unknown provider 'gemini'"),
        ({"command": "disable_key", "key_label": "Primary"}, "provider", "needs the provider"),
        ({"command": "disable_key", "provider": "openai"}, "key_label", "is required"),
        ({"command": "reset_key", "provider": "openai", "key_label": " "}, "key_label", "non-empty"),
        ({"command": "clear_queue", "key_label": "Primary"}, "key_label", "not on a key"),
        ({"command": "clear_queue", "target_instance": ""}, "target_instance", "non-empty"),
        ({"command": "clear_queue", "target_instance": "x" * 65}, "target_instance", "at most 64"),
        ({"command": "clear_queue", "requested_by": None}, "requested_by", "is required"),
        ({"command": "clear_queue", "now": datetime(2026, 1, 1)}, "now", "timezone-aware"),
        ({"command": "clear_queue", "ttl": 0}, "ttl", "above 0"),
        ({"command": "clear_queue", "ttl": timedelta(days=2)}, "ttl", "at most"),
    ],
)
def test_invalid_commands_name_the_field(kwargs: dict, field: str, fragment: str) -> None:
    arguments = {"requested_by": "cli", "now": NOW, **kwargs}
    with pytest.raises(ControlCommandError) as caught:
        validate_command(arguments.pop("command"), **arguments)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
    assert fragment in str(caught.value)


def test_issue_and_status(store, clock: ManualClock) -> None:
    first = issue_command(store, "clear_queue", provider="openai", requested_by="api", now=clock.now())
    second = issue_command(
        store,
        "disable_key",
        provider="anthropic",
        key_label="Backup 1",
        target_instance="app-1",
        requested_by="dashboard",
        now=clock.now(),
        ttl=30,
    )
    assert second > first
    status = command_status(store, first, now=clock.now())
    assert status == {
        "id": first,
        "command": "clear_queue",
        "provider": "openai",
        "key_label": None,
        "target_instance": None,
        "requested_by": "api",
        "created_at": clock.now(),
        "expires_at": clock.now() + DEFAULT_TTL,
        "acks": [],
        "acked": 0,
        "failed": 0,
        "expired": False,
    }
    later = command_status(store, second, now=clock.now() + timedelta(seconds=30))
    assert (later["target_instance"], later["key_label"], later["expired"]) == ("app-1", "Backup 1", True)
    with pytest.raises(KeyError, match="no control command with id 999"):
        command_status(store, 999)
