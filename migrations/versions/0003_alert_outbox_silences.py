"""alert outbox, silences, deliveries per notification

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=64), nullable=False, comment="channel name from the alert config"),
        sa.Column("transition", sa.String(length=16), nullable=False),
        sa.Column(
            "group_key", sa.String(length=200), nullable=False, comment="alerts grouped into one message share it"
        ),
        sa.Column("episode_ids", sa.JSON(), nullable=False),
        sa.Column("message", sa.JSON(), nullable=False, comment="the secret-free alert data a channel renders"),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f("ck_alert_notifications_status")),
        sa.CheckConstraint(
            "transition IN ('firing', 'resolved', 'repeat', 'test')", name=op.f("ck_alert_notifications_transition")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_notifications")),
        comment="outbox: one row per message per channel, written with the episode change, sent until delivered",
    )
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_notifications_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_alert_notifications_status_next_attempt_at"), ["status", "next_attempt_at"], unique=False
        )

    op.create_table(
        "alert_silences",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False, comment="dashboard | api | cli"),
        sa.Column("matchers", sa.JSON(), nullable=False, comment="label -> exact value; 'rule_id' matches the rule"),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True, comment="set when expired early"),
        sa.Column("comment", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_silences")),
    )
    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_silences_ends_at"), ["ends_at"], unique=False)

    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.create_index(batch_op.f("ix_alert_deliveries_channel_ts"), ["channel", "ts"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_notification_id"), ["notification_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_alert_deliveries_notification_id_alert_notifications"),
            "alert_notifications",
            ["notification_id"],
            ["id"],
            ondelete="CASCADE",
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_alert_deliveries_notification_id_alert_notifications"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_notification_id"))
        batch_op.drop_index(batch_op.f("ix_alert_deliveries_channel_ts"))
        batch_op.drop_column("notification_id")

    with op.batch_alter_table("alert_silences", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_silences_ends_at"))

    op.drop_table("alert_silences")
    with op.batch_alter_table("alert_notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alert_notifications_status_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_alert_notifications_created_at"))

    op.drop_table("alert_notifications")
