"""The per-instance heartbeat: state snapshots out, control commands in.

Every ``HEARTBEAT_INTERVAL_S`` each client (and the worker) writes one ``instance_snapshots`` row per provider and
one ``key_health_snapshots`` row per key (folded in the same transaction into the snapshot rollups and the
``instances`` registry: :mod:`pulsegate.core.store.snapshot_rollups`), then reads the control commands addressed to
every instance or to it that it has not acknowledged and that have not expired, applies them and writes a
``control_acks`` row with the result.

The database work is blocking and runs in a thread (``asyncio.to_thread``): neither the event loop nor a call ever
waits on the store. Reading the client's state and applying commands happen on the loop, where that state lives.
A failed round is logged and retried on the next interval; acknowledgements that could not be written are kept
and written first next time, so a command is never applied twice by one instance.

An instance whose newest snapshot is older than :data:`STALE_AFTER_INTERVALS` intervals is stale
(:func:`live_instances`, :func:`stale_instances`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.ops.control import ControlCommand, apply_command
from pulsegate.core.store.instance_tables import INSTANCE_KINDS
from pulsegate.core.store.limit_changes import insert_limit_changes, limit_change_rows
from pulsegate.core.store.snapshot_rollups import write_snapshots
from pulsegate.core.store.tables import control_acks, control_commands, instances

if TYPE_CHECKING:
    from pulsegate.core.instance import Instance

log = logging.getLogger(__name__)

STALE_AFTER_INTERVALS = 3
#: How far back to look for an instance's last heartbeat (snapshots are kept 7 days).
LIVENESS_LOOKBACK = timedelta(days=7)
RESULT_MAX = 500


@dataclass(frozen=True, slots=True)
class Ack:
    command: ControlCommand
    ok: bool
    result: str
    acked_at: datetime


def _int(value: object) -> int | None:
    return None if value is None else round(float(value))  # type: ignore[arg-type]


def snapshot_rows(
    state: Mapping[str, Any], now: datetime, *, instance_id: str, kind: str, host: str | None, pid: int | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(instance_snapshots rows, key_health_snapshots rows)`` for one :meth:`Instance.snapshot` taken at ``now``.

    ``state["configured_limits"]`` (optional) maps provider → ``{"rpm": n, "tpm": n}`` as configured, next to the
    effective limits the limiter reports.
    """
    configured = state.get("configured_limits") or {}
    recorder = state.get("recorder")
    instance_rows: list[dict[str, Any]] = []
    key_rows: list[dict[str, Any]] = []
    for provider, entry in state["providers"].items():
        queue = entry.get("queue") or {}
        limits = entry.get("limits") or {}
        rpm = limits.get("rpm") or {}
        tpm = limits.get("tpm") or {}
        breaker = entry.get("breaker") or {}
        oldest = queue.get("oldest_wait_s")
        details: dict[str, Any] = {"queue": queue, "limits": limits, "breaker": breaker}
        if recorder is not None:
            details["recorder"] = recorder
        for block in ("limiter", "shared_state"):  # Redis degraded or not: the dashboard's banner reads these
            if state.get(block) is not None:
                details[block] = state[block]
        reason = entry.get("limit_reason")
        instance_rows.append(
            {
                "ts": now,
                "instance_id": instance_id,
                "kind": kind,
                "host": host,
                "pid": pid,
                "provider": provider,
                "queue_depth": int(queue.get("depth") or 0),
                "oldest_wait_ms": None if oldest is None else float(oldest) * 1000.0,
                "requests_used": _int(rpm.get("used")),
                "requests_remaining": _int(rpm.get("remaining")),
                "requests_limit": _int(rpm.get("limit")),
                "requests_limit_configured": _int(configured.get(provider, {}).get("rpm")),
                "tokens_used": _int(tpm.get("used")),
                "tokens_remaining": _int(tpm.get("remaining")),
                "tokens_limit": _int(tpm.get("limit")),
                "tokens_limit_configured": _int(configured.get(provider, {}).get("tpm")),
                "limit_reason": reason[:200] if reason else None,
                "breaker_state": breaker.get("state"),
                "details": details,
            }
        )
        for key in entry.get("keys") or ():
            remaining = float(key.get("cooldown_remaining_s") or 0.0)
            disabled = key.get("disabled_reason")
            key_rows.append(
                {
                    "ts": now,
                    "instance_id": instance_id,
                    "provider": provider,
                    "key_label": key["label"],
                    "key_fingerprint": key["fingerprint"],
                    "key_masked": key["masked"],
                    "score": float(key["score"]),
                    "status": key["status"],
                    "cooldown_until": now + timedelta(seconds=remaining) if remaining > 0 else None,
                    "consecutive_failures": int(key.get("consecutive_failures") or 0),
                    "disabled_reason": disabled[:200] if disabled else None,
                    "requests": int(key.get("requests") or 0),
                }
            )
    return instance_rows, key_rows


class Heartbeat:
    """One instance's heartbeat. ``state()`` returns an :meth:`Instance.snapshot`-shaped dict; ``apply(command)``
    applies a command and returns the result text (raising means ``ok=False`` with the error as the result).

    Commands issued before the heartbeat started are not applied: a fresh instance does not act on decisions taken
    before it existed (its keys start healthy and its queue empty).
    """

    def __init__(
        self,
        state: Callable[[], Mapping[str, Any]],
        apply: Callable[[ControlCommand], str],
        engine: sa.Engine,
        instance_id: str,
        *,
        kind: str = "client",
        interval_s: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
        host: str | None = None,
        pid: int | None = None,
        started_at: datetime | None = None,
    ) -> None:
        if kind not in INSTANCE_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(INSTANCE_KINDS)}, got {kind!r}")
        if interval_s <= 0:
            raise ValueError(f"interval_s: expected a positive number of seconds, got {interval_s!r}")
        self.state = state
        self.apply = apply
        self.engine = engine
        self.instance_id = instance_id
        self.kind = kind
        self.interval_s = interval_s
        self.clock = clock
        self.host = host if host is not None else socket.gethostname()[:128]
        self.pid = pid if pid is not None else os.getpid()
        self.started_at = started_at or clock.now()
        self.beats = 0
        self.failures = 0
        self._unwritten: list[Ack] = []
        self.limit_seq = 0  # the newest limit change stored (state["limit_changes"] are numbered per instance)
        self._task: asyncio.Task[None] | None = None

    # --- the pieces: state on the caller's side, database work anywhere ----------------------------------------

    def write_snapshot(self, state: Mapping[str, Any], now: datetime) -> tuple[int, int]:
        """Blocking: write the snapshot rows; returns (instance rows, key rows)."""
        instance_rows, key_rows = snapshot_rows(
            state, now, instance_id=self.instance_id, kind=self.kind, host=self.host, pid=self.pid
        )
        changes = limit_change_rows(self.instance_id, state.get("limit_changes") or (), self.limit_seq)
        with self.engine.begin() as connection:
            write_snapshots(connection, instance_rows, key_rows)
            insert_limit_changes(connection, changes)
        if changes:
            self.limit_seq = max(row["seq"] for row in changes)
        return len(instance_rows), len(key_rows)

    def pending_commands(self, now: datetime) -> list[ControlCommand]:
        """Blocking: unexpired commands for every instance or this one, not yet acknowledged by it, oldest first."""
        c = control_commands
        acked = sa.select(control_acks.c.command_id).where(
            control_acks.c.command_id == c.c.id, control_acks.c.instance_id == self.instance_id
        )
        waiting = {ack.command.id for ack in self._unwritten}
        query = (
            sa.select(c)
            .where(
                sa.or_(c.c.target_instance.is_(None), c.c.target_instance == self.instance_id),
                c.c.expires_at > now,
                c.c.created_at >= self.started_at,
                ~sa.exists(acked),
            )
            .order_by(c.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [ControlCommand.from_row(row) for row in rows if int(row["id"]) not in waiting]

    def apply_all(self, commands: list[ControlCommand], now: datetime) -> list[Ack]:
        """Apply each command (on the thread that owns the client's state); failures become ``ok=False``."""
        acks: list[Ack] = []
        for command in commands:
            try:
                ok, result = True, self.apply(command)
            except Exception as exc:  # reported to the issuer through the ack, never raised into the loop
                ok, result = False, str(exc) or type(exc).__name__
            log.info("control command %s (%s) on %s: %s", command.id, command.command, self.instance_id, result)
            acks.append(Ack(command, ok, result[:RESULT_MAX], now))
        self._unwritten.extend(acks)
        return acks

    def write_acks(self) -> int:
        """Blocking: write every acknowledgement not yet stored; one already there is kept (idempotent).

        Write-only on purpose (``INSERT … ON CONFLICT DO NOTHING``, no read first): on SQLite a transaction that
        reads and then writes fails at once with "database is locked" when another writer got in between.
        """
        if not self._unwritten:
            return 0
        pending = list(self._unwritten)
        rows = [
            {
                "command_id": ack.command.id,
                "instance_id": self.instance_id,
                "acked_at": ack.acked_at,
                "ok": ack.ok,
                "result": ack.result,
            }
            for ack in pending
        ]
        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        with self.engine.begin() as connection:
            written = connection.execute(insert(control_acks).on_conflict_do_nothing(), rows).rowcount
        self._unwritten = [ack for ack in self._unwritten if ack not in pending]
        return written

    # --- one round ---------------------------------------------------------------------------------------------

    def beat(self, now: datetime | None = None) -> list[Ack]:
        """One synchronous round (blocking I/O: tests and threads only); returns the acks of this round."""
        now = now or self.clock.now()
        self.write_snapshot(self.state(), now)
        if self._unwritten:  # acks a failed round could not store, before reading what is pending
            self.write_acks()
        acks = self.apply_all(self.pending_commands(now), now)
        self.write_acks()
        self.beats += 1
        return acks

    async def abeat(self) -> list[Ack]:
        """One round from the event loop: state and commands applied here, database work in a thread."""
        now = self.clock.now()
        state = self.state()
        await asyncio.to_thread(self.write_snapshot, state, now)
        if self._unwritten:
            await asyncio.to_thread(self.write_acks)
        commands = await asyncio.to_thread(self.pending_commands, now)
        acks = self.apply_all(commands, now)
        await asyncio.to_thread(self.write_acks)
        self.beats += 1
        return acks

    async def run(self) -> None:
        """Beat every ``interval_s`` until cancelled; a failed round is logged and the next one tries again."""
        while True:
            try:
                await self.abeat()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning(
                    "heartbeat of %s failed (will retry in %.0f s): %s", self.instance_id, self.interval_s, reason
                )
            await self.clock.sleep(self.interval_s)

    def start(self) -> asyncio.Task[None]:
        """Start :meth:`run` on the running loop; idempotent while its task lives there. A client that moved to a
        new event loop calls it again: the task of the old (closed) loop is replaced."""
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or task.done() or task.get_loop() is not loop:
            if task is not None and not task.done() and not task.get_loop().is_closed():
                task.get_loop().call_soon_threadsafe(task.cancel)
            self._task = loop.create_task(self.run(), name=f"pulsegate-heartbeat-{self.instance_id}")
        return self._task

    async def stop(self) -> None:
        """Cancel the loop (from any loop), then write acks still pending (best effort)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            home = task.get_loop()
            if home is asyncio.get_running_loop():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            elif not home.is_closed():
                home.call_soon_threadsafe(task.cancel)
        if self._unwritten:
            try:
                await asyncio.to_thread(self.write_acks)
            except Exception as exc:
                log.warning("could not write %d control acks on close: %s", len(self._unwritten), exc)


def instance_state(instance: Instance) -> dict[str, Any]:
    """:meth:`Instance.snapshot` plus the configured limits (the snapshot carries the effective ones)."""
    state = instance.snapshot()
    configured = {}
    for provider in instance.pools:
        rpm, tpm, _, _ = instance.settings.limits(provider)
        configured[provider.value] = {"rpm": rpm, "tpm": tpm}
    state["configured_limits"] = configured
    return state


def instance_heartbeat(
    instance: Instance, engine: sa.Engine, *, kind: str = "client", interval_s: float | None = None
) -> Heartbeat:
    """The heartbeat of one :class:`~pulsegate.core.instance.Instance` (a client's; the worker passes
    ``kind='worker'``)."""
    return Heartbeat(
        lambda: instance_state(instance),
        lambda command: apply_command(instance, command),
        engine,
        instance.instance_id,
        kind=kind,
        interval_s=interval_s if interval_s is not None else instance.settings.heartbeat_interval_s,
        clock=instance.clock,
    )


# --- liveness --------------------------------------------------------------------------------------------------


def last_heartbeats(engine: sa.Engine, now: datetime) -> dict[str, datetime]:
    """Each instance's newest heartbeat (from the instance registry, within the snapshot retention window)."""
    query = sa.select(instances.c.instance_id, instances.c.last_seen).where(
        instances.c.last_seen > now - LIVENESS_LOOKBACK
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return {row.instance_id: row.last_seen for row in rows}


def live_instances(engine: sa.Engine, now: datetime, interval_s: float) -> list[str]:
    """Instances heard from within the last three intervals, sorted."""
    cutoff = now - timedelta(seconds=STALE_AFTER_INTERVALS * interval_s)
    return sorted(i for i, last in last_heartbeats(engine, now).items() if last >= cutoff)


def stale_instances(engine: sa.Engine, now: datetime, interval_s: float) -> dict[str, datetime]:
    """Instances silent for three intervals or more, with their last heartbeat."""
    cutoff = now - timedelta(seconds=STALE_AFTER_INTERVALS * interval_s)
    return {i: last for i, last in sorted(last_heartbeats(engine, now).items()) if last < cutoff}
