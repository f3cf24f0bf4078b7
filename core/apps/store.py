"""Gateway apps and tokens in the store: every write the CLI, the admin API and the dashboard make, and the one read
every gateway process repeats each second (:func:`active_tokens`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pulsegate.core.apps.model import AppError, AppPolicy, TokenInfo, check_changes, check_name
from pulsegate.core.apps.tokens import new_token, token_hash, token_prefix
from pulsegate.core.store.gateway_tables import gateway_apps, gateway_tokens


def _policy(row: Any) -> AppPolicy:
    models = row.models
    return AppPolicy(
        name=row.name,
        rpm=row.rpm,
        tpm=row.tpm,
        monthly_usd=row.monthly_usd,
        priority=row.priority,
        max_priority=row.max_priority,
        fallback=row.fallback,
        timeout_s=row.timeout_s,
        models=tuple(models) if models is not None else None,
    )


def _values(changes: dict[str, Any]) -> dict[str, Any]:
    return {k: (list(v) if k == "models" and v is not None else v) for k, v in changes.items()}


def get_app(connection: sa.Connection, name: str) -> AppPolicy | None:
    row = connection.execute(sa.select(gateway_apps).where(gateway_apps.c.name == name)).first()
    return _policy(row) if row is not None else None


def create_token(engine: sa.Engine, name: str, changes: dict[str, Any], now: datetime) -> tuple[AppPolicy, str]:
    """A new token for app ``name`` — created with ``changes`` if new, else ``changes`` applied to it. Returns the
    app as it now is and the token (the only time it exists outside the caller's hands)."""
    name = check_name(name)
    changes = check_changes(changes)
    token = new_token()
    with engine.begin() as connection:
        app = get_app(connection, name)
        if app is None:
            connection.execute(
                gateway_apps.insert().values(name=name, created_at=now, updated_at=now, **_values(changes))
            )
            app = replace(AppPolicy(name=name), **changes)
        elif changes:
            app = _update(connection, app, changes, now)
        connection.execute(
            gateway_tokens.insert().values(
                prefix=token_prefix(token), token_hash=token_hash(token), app=name, created_at=now
            )
        )
    return app, token


def _update(connection: sa.Connection, app: AppPolicy, changes: dict[str, Any], now: datetime) -> AppPolicy:
    connection.execute(
        gateway_apps.update().where(gateway_apps.c.name == app.name).values(updated_at=now, **_values(changes))
    )
    return replace(app, **changes)


def update_app(engine: sa.Engine, name: str, changes: dict[str, Any], now: datetime) -> AppPolicy:
    changes = check_changes(changes)
    if not changes:
        raise AppError("nothing to change: give at least one setting (e.g. --rpm 600)")
    with engine.begin() as connection:
        app = get_app(connection, name)
        if app is None:
            raise AppError(f"no gateway app named {name!r} (pulsegate gateway-token list shows them)")
        return _update(connection, app, changes, now)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(row.prefix, row.app, row.created_at, row.last_used_at, row.revoked_at)


def list_tokens(engine: sa.Engine) -> list[TokenInfo]:
    """Every token, newest first (revoked ones too: they say when a credential stopped working)."""
    query = sa.select(gateway_tokens).order_by(gateway_tokens.c.created_at.desc(), gateway_tokens.c.prefix)
    with engine.connect() as connection:
        return [_info(row) for row in connection.execute(query)]


def list_apps(engine: sa.Engine) -> list[AppPolicy]:
    with engine.connect() as connection:
        return [_policy(row) for row in connection.execute(sa.select(gateway_apps).order_by(gateway_apps.c.name))]


def revoke_token(engine: sa.Engine, prefix: str, now: datetime) -> TokenInfo:
    """Revoke the token named by its prefix (idempotent: revoking a revoked token keeps its first revocation time)."""
    if not isinstance(prefix, str) or not prefix.strip():
        raise AppError("give the token's prefix, as `pulsegate gateway-token list` shows it")
    with engine.begin() as connection:
        row = connection.execute(sa.select(gateway_tokens).where(gateway_tokens.c.prefix == prefix)).first()
        if row is None:
            raise AppError(f"no gateway token with prefix {prefix!r} (pulsegate gateway-token list shows them)")
        if row.revoked_at is None:
            connection.execute(gateway_tokens.update().where(gateway_tokens.c.prefix == prefix).values(revoked_at=now))
            row = connection.execute(sa.select(gateway_tokens).where(gateway_tokens.c.prefix == prefix)).one()
    return _info(row)


def active_tokens(engine: sa.Engine) -> dict[str, tuple[str, AppPolicy]]:
    """``token hash → (prefix, app)`` for every token not revoked: what a gateway accepts, read in one query."""
    query = sa.select(gateway_tokens.c.token_hash, gateway_tokens.c.prefix, gateway_apps).join(
        gateway_apps, gateway_apps.c.name == gateway_tokens.c.app
    )
    query = query.where(gateway_tokens.c.revoked_at.is_(None))
    with engine.connect() as connection:
        return {row.token_hash: (row.prefix, _policy(row)) for row in connection.execute(query)}


def mark_used(engine: sa.Engine, prefixes: Iterable[str], now: datetime) -> None:
    """Stamp ``last_used_at`` on the tokens a gateway accepted since its last stamp (one statement)."""
    names = sorted(set(prefixes))
    if not names:
        return
    with engine.begin() as connection:
        connection.execute(gateway_tokens.update().where(gateway_tokens.c.prefix.in_(names)).values(last_used_at=now))
