"""api_usage_metrics: a partial index on probe rows (the probe_failures rule's streak query)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-20

Partial (``WHERE source = 'probe'``) so live attempts — nearly every row — add no index work at ingest; covering
(provider, key_label, ts, outcome) so the streak is counted from the index without reading the table.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBE_ROWS = "source = 'probe'"


def upgrade() -> None:
    op.create_index(
        "ix_api_usage_metrics_probe_ts",
        "api_usage_metrics",
        ["provider", "key_label", "ts", "outcome"],
        postgresql_where=sa.text(PROBE_ROWS),
        sqlite_where=sa.text(PROBE_ROWS),
    )


def downgrade() -> None:
    op.drop_index("ix_api_usage_metrics_probe_ts", table_name="api_usage_metrics")
