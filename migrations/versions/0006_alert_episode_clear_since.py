"""alert episodes: clear_since, for keep_firing_for (hysteresis)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alert_episodes", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "clear_since",
                sa.DateTime(timezone=True),
                nullable=True,
                comment="firing, but back past the resolve threshold since (keep_firing_for)",
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("alert_episodes", schema=None) as batch_op:
        batch_op.drop_column("clear_since")
