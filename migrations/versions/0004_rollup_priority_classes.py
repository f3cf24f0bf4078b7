"""calls per priority class in the rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("metric_rollups_10m", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calls_user_facing", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_admin", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_background", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("metric_rollups_1h", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calls_user_facing", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_admin", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_background", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("metric_rollups_1m", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calls_user_facing", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_admin", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("calls_background", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("metric_rollups_1m", schema=None) as batch_op:
        batch_op.drop_column("calls_background")
        batch_op.drop_column("calls_admin")
        batch_op.drop_column("calls_user_facing")

    with op.batch_alter_table("metric_rollups_1h", schema=None) as batch_op:
        batch_op.drop_column("calls_background")
        batch_op.drop_column("calls_admin")
        batch_op.drop_column("calls_user_facing")

    with op.batch_alter_table("metric_rollups_10m", schema=None) as batch_op:
        batch_op.drop_column("calls_background")
        batch_op.drop_column("calls_admin")
        batch_op.drop_column("calls_user_facing")
