"""the gateway: apps and their tokens; attempts gain ``app`` and the ``gateway`` source

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08

``source`` stays ``String(8)`` (``gateway`` fits); its CHECK admits the new value. ``app`` is nullable: in-process
calls made without an app name leave it empty. SQLite's batch mode copies ``api_usage_metrics`` once to change the
CHECK; PostgreSQL swaps the constraint in place.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KIND_TABLES = ("instances", "instance_snapshots")


def upgrade() -> None:
    op.create_table(
        "gateway_apps",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("rpm", sa.Integer(), comment="requests per minute across the app's tokens; NULL: no app limit"),
        sa.Column("tpm", sa.Integer(), comment="tokens per minute across the app's tokens; NULL: no app limit"),
        sa.Column("monthly_usd", sa.Float(), comment="budget per calendar month (UTC); NULL: none"),
        sa.Column("priority", sa.SmallInteger(), comment="default priority of the app's calls; NULL: 5"),
        sa.Column("max_priority", sa.SmallInteger(), comment="cap on x-pulsegate-priority; NULL: no cap"),
        sa.Column("fallback", sa.Boolean(), comment="default for 529 fallback; NULL: on"),
        sa.Column("timeout_s", sa.Float(), comment="default deadline of a call; NULL: 60 s"),
        sa.Column("models", sa.JSON(), comment="the models the app may call; NULL: any"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_gateway_apps")),
    )
    op.create_table(
        "gateway_tokens",
        sa.Column("prefix", sa.String(16), nullable=False, comment="the token's first characters: how it is shown"),
        sa.Column("token_hash", sa.String(64), nullable=False, comment="SHA-256 of the whole token, hex"),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True), comment="NULL: the token is accepted"),
        sa.ForeignKeyConstraint(
            ["app"], ["gateway_apps.name"], name=op.f("fk_gateway_tokens_app_gateway_apps"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_gateway_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gateway_tokens_token_hash")),
    )
    op.create_index(op.f("ix_gateway_tokens_app"), "gateway_tokens", ["app"], unique=False)
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.drop_constraint("source", type_="check")
        batch_op.create_check_constraint("source", "source IN ('live', 'probe', 'gateway')")
        batch_op.add_column(
            sa.Column("app", sa.String(64), comment="the gateway app (or AIClient(app=…)) that made the call")
        )
    for table in KIND_TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint("kind", type_="check")
            batch_op.create_check_constraint("kind", "kind IN ('client', 'worker', 'gateway')")
            batch_op.alter_column(
                "kind",
                existing_type=sa.String(16),
                existing_nullable=False,
                comment="client | worker | gateway",
                existing_comment="client | worker",
            )


def downgrade() -> None:
    for table in reversed(KIND_TABLES):
        op.execute(f"DELETE FROM {table} WHERE kind = 'gateway'")  # noqa: S608 — fixed names
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint("kind", type_="check")
            batch_op.create_check_constraint("kind", "kind IN ('client', 'worker')")
            batch_op.alter_column(
                "kind",
                existing_type=sa.String(16),
                existing_nullable=False,
                comment="client | worker",
                existing_comment="client | worker | gateway",
            )
    op.execute("DELETE FROM api_usage_metrics WHERE source = 'gateway'")  # not representable before 0010
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.drop_column("app")
        batch_op.drop_constraint("source", type_="check")
        batch_op.create_check_constraint("source", "source IN ('live', 'probe')")
    op.drop_index(op.f("ix_gateway_tokens_app"), table_name="gateway_tokens")
    op.drop_table("gateway_tokens")
    op.drop_table("gateway_apps")
