"""The control tables: worker leadership leases, operators' commands and their acks, requested probes.

What the worker, the dashboard, the CLI and every instance coordinate through: rows written by one process and
claimed or acknowledged by another.
"""

from __future__ import annotations

import sqlalchemy as sa

from pulsegate.core.store.schema import BigId, Timestamp, metadata, one_of

worker_leases = sa.Table(
    "worker_leases",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True, comment="what is led, e.g. 'scheduler'"),
    sa.Column("holder", sa.String(64), nullable=False, comment="instance id of the leader"),
    sa.Column("acquired_at", Timestamp, nullable=False),
    sa.Column("renewed_at", Timestamp, nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)

control_commands = sa.Table(
    "control_commands",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("command", sa.String(32), nullable=False),
    sa.Column("provider", sa.String(16)),
    sa.Column("key_label", sa.String(64)),
    sa.Column("target_instance", sa.String(64), comment="NULL: every live instance"),
    sa.Column("requested_by", sa.String(64), nullable=False, comment="dashboard | api | cli | alert:<rule>"),
    sa.Column("args", sa.JSON()),
    sa.Column("expires_at", Timestamp, nullable=False),
    sa.CheckConstraint(one_of("command", ("clear_queue", "reset_key", "disable_key", "enable_key")), name="command"),
    sa.Index(None, "created_at"),
)

control_acks = sa.Table(
    "control_acks",
    metadata,
    sa.Column("command_id", BigId, sa.ForeignKey("control_commands.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("instance_id", sa.String(64), primary_key=True),
    sa.Column("acked_at", Timestamp, nullable=False),
    sa.Column("ok", sa.Boolean(), nullable=False),
    sa.Column("result", sa.String(500)),
)


probe_requests = sa.Table(
    "probe_requests",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("provider", sa.String(16)),
    sa.Column("key_label", sa.String(64)),
    sa.Column("model", sa.String(128)),
    sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", Timestamp),
    sa.Column("finished_at", Timestamp),
    sa.Column("result", sa.JSON()),
    sa.CheckConstraint(one_of("status", ("pending", "running", "done", "failed")), name="status"),
    sa.Index(None, "status", "created_at"),
)
