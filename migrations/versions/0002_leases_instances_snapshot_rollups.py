"""worker leases, instance registry, snapshot rollups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False, comment="client | worker"),
        sa.Column("host", sa.String(length=128), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "last_seen",
            sa.DateTime(timezone=True),
            nullable=False,
            comment="ts of the latest heartbeat's snapshot rows",
        ),
        sa.CheckConstraint("kind IN ('client', 'worker')", name=op.f("ck_instances_kind")),
        sa.PrimaryKeyConstraint("instance_id", name=op.f("pk_instances")),
        comment="one row per instance, upserted by every heartbeat: the current state without scanning snapshots",
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_last_seen"), ["last_seen"], unique=False)

    op.create_table(
        "key_health_rollups",
        sa.Column("tier_s", sa.Integer(), nullable=False, comment="60 or 3600"),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("key_label", sa.String(length=64), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("min_score", sa.Float(), nullable=False),
        sa.Column("worst_rank", sa.SmallInteger(), nullable=False, comment="healthy 0 … disabled 4"),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "tier_s", "bucket", "provider", "key_label", "instance_id", name=op.f("pk_key_health_rollups")
        ),
    )
    op.create_table(
        "queue_rollups",
        sa.Column("tier_s", sa.Integer(), nullable=False, comment="60 or 3600"),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("instance_id", sa.String(length=64), nullable=False),
        sa.Column("max_queue_depth", sa.Integer(), nullable=False),
        sa.Column("max_oldest_wait_ms", sa.Float(), nullable=True),
        sa.Column("breaker_open_samples", sa.Integer(), server_default="0", nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tier_s", "bucket", "provider", "instance_id", name=op.f("pk_queue_rollups")),
    )
    op.create_table(
        "worker_leases",
        sa.Column("name", sa.String(length=64), nullable=False, comment="what is led, e.g. 'scheduler'"),
        sa.Column("holder", sa.String(length=64), nullable=False, comment="instance id of the leader"),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_worker_leases")),
    )


def downgrade() -> None:
    op.drop_table("worker_leases")
    op.drop_table("queue_rollups")
    op.drop_table("key_health_rollups")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instances_last_seen"))

    op.drop_table("instances")
