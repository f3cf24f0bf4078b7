"""The Keys page states the truth: a key's own status beside what its calls and probes saw, with the reason when
they seem to disagree (a 529 storm fails every key alike and does not count against any)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from pulsegate.dashboard.key_table import note
from tests.dashboard.conftest import app, texts
from tests.queries.data import (
    NOW,
    attempt_row,
    insert_attempts,
    insert_instances,
    insert_keys,
    insert_tiers,
    instance_row,
    key_row,
    rollup_row,
)


def seed_storm(engine: sa.Engine) -> None:
    """Primary: half its calls overloaded (529) and its last probe too; Backup: its own 429s, then disabled."""
    beat = NOW - timedelta(seconds=2)
    insert_instances(engine, [instance_row(beat, "w1", kind="worker")])
    insert_keys(
        engine,
        [
            key_row(beat, "w1", "Primary", 100.0),
            key_row(
                beat, "w1", "Backup", 62.5, status="disabled", disabled_reason="auth: the provider refused this key"
            ),
        ],
    )
    insert_tiers(
        engine,
        [
            rollup_row(NOW - timedelta(minutes=3), [200.0] * 10, errors={"overloaded": 5}),
            rollup_row(NOW - timedelta(minutes=3), [200.0] * 4, key_label="Backup", errors={"rate_limited": 2}),
        ],
    )
    probe = {"source": "probe", "outcome": "error", "http_status": 529}
    insert_attempts(
        engine,
        [
            attempt_row(NOW - timedelta(seconds=75), **probe, error_class="overloaded"),
            attempt_row(NOW - timedelta(seconds=200), source="probe"),  # an older probe, which passed
            attempt_row(
                NOW - timedelta(seconds=60), key_label="Backup", **probe | {"http_status": 401}, error_class="auth"
            ),
        ],
    )


def test_a_key_failing_only_with_its_provider_is_healthy_and_the_page_says_why(dash_store: sa.Engine) -> None:
    seed_storm(dash_store)
    at = app("keys").run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("key")
    primary = table.loc["Primary"]
    assert (primary["status"], primary["health"], primary["success_rate"]) == ("healthy", 100.0, 50.0)
    assert (primary["key_failures"], primary["other_failures"]) == (0, 5)
    assert primary["last_probe"] == "✗ overloaded 11:58:45"
    expected = (
        "anthropic · Primary: 5 of its 5 failures in range were not the key's (provider overloaded…); "
        "last probe failed overloaded: not the key's, not counted against it"
    )
    assert expected in texts(at)
    backup = table.loc["Backup"]
    assert (backup["status"], backup["key_failures"], backup["last_probe"]) == ("disabled", 2, "✗ auth 11:59:00")
    assert "anthropic · Backup: out of service: auth: the provider refused this key" in texts(at)


def test_notes_only_speak_when_the_numbers_seem_to_disagree() -> None:
    passed = {"outcome": "success", "error_class": None}
    timed_out = {"outcome": "error", "error_class": "timeout"}
    assert note("healthy", 2, 1, 0.98, passed, None) is None  # a few failures, a high success rate: nothing to say
    assert note("unhealthy", 7, 0, 0.3, timed_out, None) is None  # the status says it already
    assert note("healthy", 1, 0, 0.99, timed_out, None) == (
        "last probe failed timeout: counted, and outweighed by recent successes"
    )
    assert note("degraded", 3, 2, 0.5, None, None) == (
        "2 of its 5 failures in range were not the key's (provider overloaded…); "
        "its own 3 count less as they age (half-life 60 s)"
    )
    assert (
        note("disabled", 1, 0, 0.5, timed_out, "disabled by an operator") == "out of service: disabled by an operator"
    )
