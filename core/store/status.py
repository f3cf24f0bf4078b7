"""Is the store usable, and at which schema revision? Asked by the CLI, the worker and the dashboard."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from pulsegate.core.errors import StoreUnreachableError
from pulsegate.core.store.engine import check_connection, describe_url


@dataclass(frozen=True, slots=True)
class StoreStatus:
    description: str
    reachable: bool
    revision: str | None
    problem: str | None = None


def store_status(engine: sa.Engine) -> StoreStatus:
    """Never raises for an unreachable database: the answer says so instead."""
    description = describe_url(engine.url)
    try:
        check_connection(engine)
    except StoreUnreachableError as exc:
        return StoreStatus(description, reachable=False, revision=None, problem=str(exc))
    from alembic.runtime.migration import MigrationContext  # only here: alembic is heavy to import

    with engine.connect() as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
    return StoreStatus(description, reachable=True, revision=revision)
