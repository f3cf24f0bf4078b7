"""The store going away and coming back under a running dashboard (same URL, no reload), and the CLI's refusal
to serve a public address without a password."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import streamlit as st

from pulsegate import migrations
from tests.conftest import ScratchPostgres
from tests.dashboard.conftest import app, plotly_charts
from tests.support.processes import run_cli


@pytest.mark.postgres
def test_banner_while_the_database_is_gone_then_recovery_without_reload(
    scratch_postgres: ScratchPostgres, dash_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = scratch_postgres.create("pulsegate_dash")
    migrations.upgrade(url)
    name = sa.make_url(url).database
    monkeypatch.setenv("DATABASE_URL", url)
    admin = sa.create_engine(scratch_postgres.server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)

    def rename(old: str, new: str) -> None:
        with admin.connect() as connection:
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :db"), {"db": old}
            )
            connection.execute(sa.text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))

    at = app()
    at.query_params["refresh"] = "paused"
    at.run()
    assert not at.exception and not at.error and len(plotly_charts(at)) == 1
    rename(name, name + "_away")
    try:
        st.cache_data.clear()  # the cache TTL passing, without waiting for it
        at.run()
        assert not at.exception
        [banner] = [e.value for e in at.error]
        assert "The store is unreachable" in banner and f"database '{name}'" in banner
        assert "retries every 5 s" in banner
    finally:
        rename(name + "_away", name)
    at.run()  # the fragment's next run: same session, same URL
    assert not at.exception and not at.error
    assert len(plotly_charts(at)) == 1
    admin.dispose()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::"])
def test_dashboard_refuses_a_public_address_without_a_password(tmp_path: Path, host: str) -> None:
    result = run_cli(["dashboard", "--host", host, "--port", "8599"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"pulsegate dashboard: refusing to serve the dashboard on {host} without a password: set "
        "DASHBOARD_PASSWORD (8+ characters), or bind to 127.0.0.1"
    )
