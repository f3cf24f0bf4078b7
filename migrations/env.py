"""Alembic environment: batch mode on SQLite, a migration lock on PostgreSQL, type comparison on."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import metadata

#: Serialises concurrent ``pulsegate migrate`` runs (several release phases at once) on PostgreSQL.
MIGRATION_LOCK_ID = 0x70756C7365  # "pulse"


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL given to the migrations (set DATABASE_URL)")
    engine = create_store_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported: SQLite batch mode needs a live database")
run_migrations_online()
