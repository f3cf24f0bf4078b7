"""user_rollups_1h: per-user hourly totals for the Limits page's top-users table, backfilled from the raw rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-21

The top-users table aggregated up to 24 h of raw attempts (about 1 s at the 10 M-row benchmark); it now reads whole
hours from this table and only the range's partial hours from the raw rows. The backfill aggregates every raw row
still retained (``RETENTION_DAYS``, the same span retention keeps of this table), so an upgraded store shows the same
table as before for any range whose raw rows are still there. Rows written by a recorder still running the previous
release after this migration has run are in the raw table but not here: upgrade the store, then the app servers.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The aggregates as of this revision (the flush-time SQL in core/store/rollups.py uses the same ones).
AGGREGATES = (
    ("calls", "COUNT(*)"),
    ("errors", "SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END)"),
    ("user_rate_limited", "SUM(CASE WHEN error_class = 'user_rate_limited' THEN 1 ELSE 0 END)"),
    ("input_tokens", "SUM(input_tokens)"),
    ("output_tokens", "SUM(output_tokens)"),
    ("cost_usd", "COALESCE(SUM(cost_usd), 0)"),
)


def _hour(dialect_name: str) -> str:
    """The hour of a raw row's ``ts`` in UTC (SQLite: the store's text form, cut to the hour)."""
    if dialect_name == "postgresql":
        return "(date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"
    return "(substr(ts, 1, 14) || '00:00.000000')"


def upgrade() -> None:
    op.create_table(
        "user_rollups_1h",
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False, comment="as stored: hashed under HASH_USER_IDS"),
        sa.Column("calls", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "errors", sa.Integer(), server_default="0", nullable=False, comment="outcome 'error' (not cancelled)"
        ),
        sa.Column("user_rate_limited", sa.Integer(), server_default="0", nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("cost_usd", sa.Float(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("bucket", "user_id", name="pk_user_rollups_1h"),
    )
    keys = f"{_hour(op.get_bind().dialect.name)}, user_id"
    names = ", ".join(("bucket", "user_id", *(name for name, _ in AGGREGATES)))
    selects = ", ".join(expression for _, expression in AGGREGATES)
    op.execute(
        f"INSERT INTO user_rollups_1h ({names}) SELECT {keys}, {selects} FROM api_usage_metrics "  # noqa: S608
        f"WHERE user_id IS NOT NULL GROUP BY {keys}"
    )


def downgrade() -> None:
    op.drop_table("user_rollups_1h")
