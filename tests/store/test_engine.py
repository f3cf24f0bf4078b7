"""Engines: SQLite tuned for concurrent readers and one writer; clear one-line errors for bad or dead databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate.core.errors import StoreError, StoreUnreachableError
from pulsegate.core.store.engine import SQLITE_BUSY_TIMEOUT_MS, check_connection, create_store_engine


def test_sqlite_folder_is_created_and_wal_is_on(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "deeper" / "pulsegate.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar_one()
            busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
    finally:
        engine.dispose()
    assert path.parent.is_dir()
    assert (journal, busy, foreign_keys) == ("wal", SQLITE_BUSY_TIMEOUT_MS, 1)


def test_unreachable_postgres_names_the_host_and_hides_the_password() -> None:
    engine = create_store_engine("postgresql+psycopg://pulse:hunter2-secret@127.0.0.1:1/metrics")
    with pytest.raises(StoreUnreachableError) as caught:
        check_connection(engine)
    message = str(caught.value)
    assert message.startswith("cannot reach PostgreSQL at 127.0.0.1:1, database 'metrics', user 'pulse': ")
    assert "hunter2" not in message
    assert "\n" not in message
    assert caught.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "DATABASE_URL is not a database URL"),
        ("mysql+pymysql://u@h/db", "DATABASE_URL names 'mysql'; Pulsegate supports SQLite and PostgreSQL"),
        ("postgresql+asyncpg://u@h/db", "DATABASE_URL driver 'postgresql\\+asyncpg' is not supported"),
    ],
)
def test_bad_urls_are_one_clear_line(url: str, expected: str) -> None:
    with pytest.raises(StoreError, match="^" + expected):
        create_store_engine(url)


def test_store_fixture_is_migrated_and_empty(store: sa.Engine) -> None:
    with store.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM api_usage_metrics")).scalar_one()
    assert count == 0


@pytest.mark.postgres
def test_postgres_connections_notice_a_vanished_server_within_a_minute(scratch_postgres) -> None:  # type: ignore[no-untyped-def]
    """The kernel's own settings on the connection's socket, not just the DSN: keepalive probes after 30 s of
    silence, 10 s apart, 3 of them; a write unacknowledged for 30 s aborts."""
    import socket

    engine = create_store_engine(scratch_postgres.server_url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            raw = connection.connection.dbapi_connection
            assert raw is not None
            sock = socket.socket(fileno=raw.pgconn.socket)
            try:
                options = (
                    sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT),
                )
            finally:
                sock.detach()  # the socket belongs to libpq
    finally:
        engine.dispose()
    assert options == (1, 30, 10, 3, 30_000)
