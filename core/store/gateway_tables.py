"""The gateway's apps and their tokens.

An **app** is what a team registers to call through the gateway: it owns the limits, the monthly budget and the
defaults. A **token** is one credential of an app, so a token can be rotated (a new one created, the old revoked)
without the app's limits doubling for the overlap. Tokens are stored only as a SHA-256 hash and shown only by their
prefix: the database never holds anything that would let a reader call through the gateway.
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.store.schema import Timestamp, metadata

gateway_apps = sa.Table(
    "gateway_apps",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("rpm", sa.Integer(), comment="requests per minute across the app's tokens; NULL: no app limit"),
    sa.Column("tpm", sa.Integer(), comment="tokens per minute across the app's tokens; NULL: no app limit"),
    sa.Column("monthly_usd", sa.Float(), comment="budget per calendar month (UTC); NULL: none"),
    sa.Column("priority", sa.SmallInteger(), comment="default priority of the app's calls; NULL: 5"),
    sa.Column("max_priority", sa.SmallInteger(), comment="cap on x-pulsegate-priority; NULL: no cap"),
    sa.Column("fallback", sa.Boolean(), comment="default for 529 fallback; NULL: on"),
    sa.Column("timeout_s", sa.Float(), comment="default deadline of a call; NULL: 60 s"),
    sa.Column("models", sa.JSON(), comment="the models the app may call; NULL: any"),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
)

gateway_tokens = sa.Table(
    "gateway_tokens",
    metadata,
    sa.Column("prefix", sa.String(16), primary_key=True, comment="the token's first characters: how it is shown"),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True, comment="SHA-256 of the whole token, hex"),
    sa.Column("app", sa.String(64), sa.ForeignKey("gateway_apps.name", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("last_used_at", Timestamp),
    sa.Column("revoked_at", Timestamp, comment="NULL: the token is accepted"),
)
