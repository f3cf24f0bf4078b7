"""The dashboard (Streamlit AppTest) opened with hostile query strings: a clear message or the defaults, never an
exception — and the store's tables survive injection strings in filter values."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from pulsegate.core.store.tables import ALL_TABLES
from tests.dashboard.conftest import app, dash_store, texts  # noqa: F401

HOSTILE = {
    "calendar edge": {"now": "0001-01-01T00:00:00Z"},
    "far future": {"now": "9999-12-31T23:59:59-05:00"},
    "huge custom range": {"range": "custom", "from": "1970-01-01T00:00", "to": "8999-12-31T00:00"},
    "injection filters": {
        "model": "'; DROP TABLE api_usage_metrics; --",
        "key": '" OR 1=1 --',
        "provider": "anthropic' OR '1'='1",
        "source": "<script>alert(1)</script>",
    },
    "control characters": {"model": "gpt\x00-4", "key": "Primary\u202e", "refresh": "\x1b[2J", "range": "\n"},
    "long values": {"now": "9" * 5000, "model": "m" * 5000, "range": "r" * 5000},
}

NOW_MESSAGES = {
    "calendar edge": "'0001-01-01T00:00:00Z' is not a time between 1970 and 9000 (UTC)",
    "far future": "'9999-12-31T23:59:59-05:00' is not a time between 1970 and 9000 (UTC)",
    "long values": "a 5000-character value is not an ISO 8601 time such as 2025-06-02T12:00:00Z",
}


@pytest.mark.parametrize("page", [None, "calls"])
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_query_strings_give_a_message_or_the_defaults(
    dash_store: sa.Engine,  # noqa: F811
    case: str,
    page: str | None,
) -> None:
    at = app(page)
    for name, value in HOSTILE[case].items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, (case, [e.value for e in at.exception])
    shown = texts(at)
    if case in NOW_MESSAGES:
        assert [e.value for e in at.error] == [f"PULSEGATE_DASHBOARD_NOW / now=: {NOW_MESSAGES[case]}"], shown
    else:
        assert [t.value for t in at.title] == ["Calls" if page else "Overview"], shown
    assert "Traceback" not in shown
    names = set(sa.inspect(dash_store).get_table_names())
    assert {t.name for t in ALL_TABLES} <= names
