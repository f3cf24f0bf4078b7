"""limit changes: the history of self-tuned effective limits

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "limit_changes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column(
            "seq", sa.BigInteger(), nullable=False, comment="per instance, increasing: heartbeats de-duplicate on it"
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=True, comment="NULL: the provider's own limit"),
        sa.Column("kind", sa.String(length=8), nullable=False, comment="rpm | tpm"),
        sa.Column(
            "configured", sa.Float(), nullable=True, comment="the ceiling; NULL for a key limit learned from headers"
        ),
        sa.Column("effective_before", sa.Float(), nullable=False),
        sa.Column("effective_after", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.CheckConstraint("kind IN ('rpm', 'tpm')", name=op.f("ck_limit_changes_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_limit_changes")),
        sa.UniqueConstraint("instance_id", "seq", name=op.f("uq_limit_changes_instance_id_seq")),
        comment="every change of an effective (self-tuned) limit, written by the heartbeat",
    )
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_limit_changes_ts"), ["ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("limit_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_limit_changes_ts"))

    op.drop_table("limit_changes")
