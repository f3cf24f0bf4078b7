"""The silences API: create with checks, active / pending / expired, expire early, list."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.silences import SilenceError, active_silences, create_silence, expire_silence, list_silences
from pulsegate.core.clock import ManualClock
from tests.alerts.support import START


@pytest.fixture
def clock() -> ManualClock:
    """Time starts at :data:`START` (mid-month, on a half minute) in the alert tests."""
    return ManualClock(START)


def test_silences_are_active_between_start_and_end_or_until_expired(store: sa.Engine, clock: ManualClock) -> None:
    now = clock.now()
    first = create_silence(
        store, {"provider": "anthropic"}, ends_at=now + timedelta(hours=1), created_by="cli", comment="deploy", now=now
    )
    later = create_silence(
        store,
        {"rule_id": "key_unhealthy", "key_label": "Primary"},
        starts_at=now + timedelta(minutes=30),
        ends_at=now + timedelta(hours=2),
        created_by="dashboard",
        now=now,
    )
    assert [s.id for s in active_silences(store, now)] == [first]
    assert [(s.id, s.state(now)) for s in list_silences(store, now)] == [(later, "pending"), (first, "active")]
    silence = active_silences(store, now)[0]
    assert silence.to_json(now) == {
        "id": first,
        "matchers": {"provider": "anthropic"},
        "starts_at": now.isoformat(),
        "ends_at": (now + timedelta(hours=1)).isoformat(),
        "expired_at": None,
        "created_at": now.isoformat(),
        "created_by": "cli",
        "comment": "deploy",
        "state": "active",
    }
    assert silence.matches("success_rate_low", {"provider": "anthropic"})
    assert not silence.matches("success_rate_low", {"provider": "openai"})
    assert not silence.matches("no_heartbeat", {"instance_kind": "worker"})

    at = now + timedelta(minutes=45)
    assert [s.id for s in active_silences(store, at)] == [first, later]
    assert expire_silence(store, first, at) is True
    assert expire_silence(store, first, at) is False  # already ended
    assert [s.id for s in active_silences(store, at)] == [later]
    assert [(s.id, s.state(at)) for s in list_silences(store, at)] == [(later, "active"), (first, "expired")]
    assert active_silences(store, now + timedelta(hours=2)) == []
    assert [s.id for s in list_silences(store, now + timedelta(days=8))] == []  # ended more than a week ago
    with pytest.raises(KeyError):
        expire_silence(store, 999, at)


def test_matchers_can_name_the_severity(store: sa.Engine, clock: ManualClock) -> None:
    now = clock.now()
    create_silence(store, {"severity": "warning"}, ends_at=now + timedelta(hours=1), created_by="cli", now=now)
    [silence] = active_silences(store, now)
    assert silence.matches("queue_depth_high", {"provider": "openai"}, "warning")
    assert not silence.matches("breaker_open", {"provider": "openai"}, "critical")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"matchers": {}}, "matchers"),
        ({"matchers": {"provider": ""}}, "matchers"),
        ({"ends_at_offset": timedelta(0)}, "ends_at"),
        ({"ends_at_offset": timedelta(days=91)}, "ends_at"),
        ({"created_by": ""}, "created_by"),
        ({"comment": "x" * 501}, "comment"),
    ],
)
def test_bad_silences_name_the_field(store: sa.Engine, clock: ManualClock, kwargs: dict, field: str) -> None:
    now = clock.now()
    args = {"matchers": {"provider": "anthropic"}, "created_by": "cli", "comment": None}
    kwargs = dict(kwargs)  # the parameter dict is shared by both stores
    offset = kwargs.pop("ends_at_offset", timedelta(hours=1))
    args.update(kwargs)
    with pytest.raises(SilenceError) as caught:
        create_silence(store, args.pop("matchers"), ends_at=now + offset, now=now, **args)
    assert caught.value.field == field


def test_one_matcher_grammar_serves_the_cli_and_the_dashboard() -> None:
    from pulsegate.core.alerts.silences import MatcherError, parse_matchers, split_matchers

    assert parse_matchers(["provider=anthropic", " rule_id = breaker_open "]) == {
        "provider": "anthropic",
        "rule_id": "breaker_open",
    }
    assert parse_matchers(split_matchers("provider=anthropic,\nrule_id=breaker_open, ")) == {
        "provider": "anthropic",
        "rule_id": "breaker_open",
    }
    assert split_matchers(" , ") == []
    for bad in ("provider", "=anthropic", "provider=", "provider= "):
        with pytest.raises(MatcherError) as caught:
            parse_matchers([bad])
        assert caught.value.part == bad
        assert str(caught.value) == f"matchers: {bad!r}: expected NAME=VALUE, e.g. provider=anthropic"
