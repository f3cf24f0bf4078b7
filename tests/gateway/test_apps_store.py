"""Gateway apps and tokens in the store, on SQLite and PostgreSQL: what is kept (a hash and a prefix, never the
token), what each action does, and clear refusals of bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.apps.model import AppError, AppPolicy
from pulsegate.core.apps.store import active_tokens, create_token, list_tokens, mark_used, revoke_token, update_app
from pulsegate.core.apps.tokens import PREFIX_LENGTH, looks_like_token, token_hash
from pulsegate.core.store.tables import gateway_apps, gateway_tokens

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(store: sa.Engine) -> sa.Engine:
    with store.begin() as connection:
        connection.execute(gateway_tokens.delete())
        connection.execute(gateway_apps.delete())
    return store


def test_a_token_is_stored_as_its_hash_and_prefix_only(engine: sa.Engine) -> None:
    app, token = create_token(engine, "checkout-web", {"rpm": 600, "tpm": 400_000}, NOW)
    assert app == AppPolicy(name="checkout-web", rpm=600, tpm=400_000)
    assert looks_like_token(token) and len(token) == 44
    with engine.connect() as connection:
        stored = connection.execute(sa.select(gateway_tokens)).one()
        everything = " ".join(str(v) for v in stored) + " ".join(
            str(v) for v in connection.execute(sa.select(gateway_apps)).one()
        )
    assert stored.token_hash == token_hash(token) and stored.prefix == token[:PREFIX_LENGTH]
    assert token not in everything and token[PREFIX_LENGTH:] not in everything
    assert active_tokens(engine) == {token_hash(token): (token[:PREFIX_LENGTH], app)}


def test_a_second_token_shares_the_app_and_settings_given_to_create_update_it(engine: sa.Engine) -> None:
    _, first = create_token(engine, "web", {"rpm": 100}, NOW)
    app, second = create_token(engine, "web", {"priority": 6}, NOW + timedelta(seconds=1))
    assert app == AppPolicy(name="web", rpm=100, priority=6)
    assert {grant[1] for grant in active_tokens(engine).values()} == {app}
    assert [t.prefix for t in list_tokens(engine)] == [second[:PREFIX_LENGTH], first[:PREFIX_LENGTH]]  # newest first


def test_revoking_removes_the_token_from_what_gateways_accept_and_keeps_its_first_time(engine: sa.Engine) -> None:
    _, keep = create_token(engine, "web", {}, NOW)
    _, drop = create_token(engine, "web", {}, NOW)
    info = revoke_token(engine, drop[:PREFIX_LENGTH], NOW + timedelta(minutes=1))
    again = revoke_token(engine, drop[:PREFIX_LENGTH], NOW + timedelta(minutes=5))
    assert info.state == again.state == "revoked"
    assert again.revoked_at == NOW + timedelta(minutes=1)
    assert set(active_tokens(engine)) == {token_hash(keep)}
    with pytest.raises(AppError, match="no gateway token with prefix 'pgw_nope'"):
        revoke_token(engine, "pgw_nope", NOW)


def test_update_changes_and_clears_settings_and_names_what_is_wrong(engine: sa.Engine) -> None:
    create_token(engine, "batch", {"rpm": 10, "models": ["gpt-4.1"]}, NOW)
    assert update_app(engine, "batch", {"rpm": None, "max_priority": 2}, NOW) == AppPolicy(
        name="batch", max_priority=2, models=("gpt-4.1",)
    )
    with pytest.raises(AppError, match="no gateway app named 'other'"):
        update_app(engine, "other", {"rpm": 5}, NOW)
    with pytest.raises(AppError, match="nothing to change"):
        update_app(engine, "batch", {}, NOW)
    with pytest.raises(AppError, match=r"rpm must be a whole number above 0, got -3"):
        update_app(engine, "batch", {"rpm": -3}, NOW)
    with pytest.raises(AppError, match=r"priority must be a whole number from 0 to 10, got 11"):
        create_token(engine, "batch", {"priority": 11}, NOW)
    with pytest.raises(AppError, match="app name 'bad name!' is not valid"):
        create_token(engine, "bad name!", {}, NOW)


def test_last_used_is_stamped_for_the_tokens_named(engine: sa.Engine) -> None:
    _, used = create_token(engine, "web", {}, NOW)
    _, idle = create_token(engine, "web", {}, NOW)
    mark_used(engine, [used[:PREFIX_LENGTH]], NOW + timedelta(minutes=2))
    stamps = {t.prefix: t.last_used_at for t in list_tokens(engine)}
    assert stamps == {used[:PREFIX_LENGTH]: NOW + timedelta(minutes=2), idle[:PREFIX_LENGTH]: None}


def test_the_effective_priority_is_the_asked_one_capped_by_the_app() -> None:
    app = AppPolicy(name="a", priority=3, max_priority=4)
    assert [app.effective_priority(p) for p in (None, 2, 9)] == [3, 2, 4]
    assert AppPolicy(name="b").effective_priority(None) == 5
