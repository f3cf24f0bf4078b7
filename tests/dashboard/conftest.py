"""A real SQLite store for the dashboard's AppTests, with "now" fixed so hand-made rows line up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st
from streamlit.testing.v1 import AppTest

from pulsegate.core.store.engine import create_store_engine
from pulsegate.dashboard import auth
from pulsegate.dashboard.filters import NOW_ENV
from tests.conftest import _empty
from tests.queries.data import NOW

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 60


@pytest.fixture
def dash_store(sqlite_store_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[sa.Engine]:
    """An empty migrated SQLite store the dashboard reads (DATABASE_URL), "now" fixed at ``NOW``."""
    engine = create_store_engine(sqlite_store_url)
    _empty(engine)
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("DASHBOARD_PASSWORD", "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "ALERT_RULES_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", sqlite_store_url)
    monkeypatch.setenv(NOW_ENV, NOW.isoformat())
    monkeypatch.setattr(auth, "BASE_DELAY_S", 0.01)
    auth.reset()
    st.cache_data.clear()
    yield engine
    st.cache_data.clear()
    engine.dispose()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page is not None:
        at.switch_page(f"views/{page}.py")
    return at


def texts(at: AppTest) -> str:
    """Every text-ish element of the run, joined (for `in` assertions)."""
    parts: list[str] = []
    for kind in ("title", "markdown", "caption", "info", "success", "warning", "error", "subheader"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    return "\n".join(parts)


def plotly_charts(at: AppTest) -> list:
    return [e for e in at.get("plotly_chart")]
