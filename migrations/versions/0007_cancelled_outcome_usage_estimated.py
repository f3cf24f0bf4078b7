"""attempts: the 'cancelled' outcome and usage_estimated; rollups: cancelled, usage_estimated, keys_cooling_down

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

``outcome`` was ``String(8)`` with a CHECK of success|error, so a ``cancelled`` row would be rejected — on
PostgreSQL the whole batch it came in, which would then sit in the spool. Widening a ``varchar`` does not rewrite the
table on PostgreSQL; SQLite's batch mode copies it once.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = ("metric_rollups_1m", "metric_rollups_10m", "metric_rollups_1h")
ROLLUP_COUNTS = ("cancelled", "usage_estimated", "err_keys_cooling_down")


def upgrade() -> None:
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.drop_constraint("outcome", type_="check")
        batch_op.alter_column("outcome", existing_type=sa.String(8), type_=sa.String(16), existing_nullable=False)
        batch_op.create_check_constraint("outcome", "outcome IN ('success', 'error', 'cancelled')")
        batch_op.add_column(
            sa.Column(
                "usage_estimated",
                sa.Boolean(),
                server_default=sa.false(),
                nullable=False,
                comment="tokens (and so cost) partly estimated: the attempt ended before the provider reported its "
                "usage",
            )
        )
    for table in ROLLUPS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in ROLLUP_COUNTS:
                batch_op.add_column(sa.Column(column, sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    for table in reversed(ROLLUPS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(ROLLUP_COUNTS):
                batch_op.drop_column(column)
    op.execute("UPDATE api_usage_metrics SET outcome = 'error' WHERE outcome = 'cancelled'")  # kept, as before 0007
    with op.batch_alter_table("api_usage_metrics", schema=None) as batch_op:
        batch_op.drop_column("usage_estimated")
        batch_op.drop_constraint("outcome", type_="check")
        batch_op.alter_column("outcome", existing_type=sa.String(16), type_=sa.String(8), existing_nullable=False)
        batch_op.create_check_constraint("outcome", "outcome IN ('success', 'error')")
