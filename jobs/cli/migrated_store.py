"""The store a command that reads or writes alert state needs: reachable and migrated, or one clear line."""

from __future__ import annotations

from typing import Any

from pulsegate.core.settings import Settings
from pulsegate.jobs.cli.command_error import CommandError


def migrated_store(settings: Settings) -> Any:
    """An engine on a reachable, migrated store, or one CommandError saying what to do."""
    from pulsegate.core.store import create_store_engine, store_status

    engine = create_store_engine(settings.database_url)
    status = store_status(engine)
    if not status.reachable:
        engine.dispose()
        raise CommandError(status.problem or f"cannot reach {status.description}")
    if status.revision is None:
        engine.dispose()
        raise CommandError(f"{status.description} has no tables yet: run `pulsegate migrate` first")
    return engine
