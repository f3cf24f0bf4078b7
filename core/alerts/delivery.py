"""The outbox dispatcher: sends pending ``alert_notifications`` rows to their channels until each is delivered.

The engine writes one outbox row per channel per message in the same transaction as the episode change; this
module only reads and updates those rows, so a crash, a receiver outage or a store outage loses nothing:

* **claim** — due rows (``status='pending'`` and ``next_attempt_at <= now``) are leased by moving their
  ``next_attempt_at`` ``lease_s`` ahead in one committed statement (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
  ``BEGIN IMMEDIATE`` on SQLite), so two workers never send the same row at once, and a worker that dies mid-send
  leaves a row that becomes due again when the lease ends (delivery is at least once).
* **send** — rows of one channel go out one after another, oldest first (Slack allows ~1 message/s per webhook);
  channels run concurrently. An attempt to be retried (429, 5xx, timeout, network error) parks the channel's
  remaining rows, unsent, until the same time (the receiver's ``Retry-After``/``retry_after``, or the backoff):
  a receiver that is down or rate limiting costs one request per channel per wait, not one per message.
* **record** — one ``alert_deliveries`` row per attempt and the outbox row's new state, in one transaction:
  ``delivered`` (never sent again), ``pending`` with an exponential-backoff ``next_attempt_at`` (retryable), or
  ``failed`` (rejected, broken channel, or still undelivered after ``give_up_after_s``).

Secrets: the URL and HMAC secret only ever reach the HTTP request. Errors stored or logged are built from the status
code, the receiver's short error word and exception class names, then passed through :func:`redact`.
``alert_deliveries.error`` starts with the outcome kind (``retry:``, ``rejected:``, ``broken:``) so
:func:`pulsegate.core.alerts.channel_health.channel_health` can tell a dead webhook from a flaky one without another
column.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

import httpx2
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from pulsegate.core.alerts.channels import Channel, ChannelConfig, DeliveryOutcome, make_channel
from pulsegate.core.alerts.dispatch_report import Attempt, DispatchReport
from pulsegate.core.alerts.model import Message
from pulsegate.core.alerts.redaction import redact, redact_in_logs
from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.store.engine import SQLITE_IMMEDIATE
from pulsegate.core.store.tables import alert_deliveries, alert_notifications

log = logging.getLogger("pulsegate.alerts.delivery")

ERROR_MAX = 500  # alert_deliveries.error / alert_notifications.last_error are String(500)
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 600.0
GIVE_UP_AFTER_S = 24 * 3600.0
LEASE_S = 60.0
BATCH = 50


def backoff_s(attempt: int, base_s: float = BACKOFF_BASE_S, max_s: float = BACKOFF_MAX_S) -> float:
    """Wait before attempt ``attempt + 1``: base · 2^(attempt-1), capped — 5, 10, 20, 40 … 600 s."""
    return min(max_s, base_s * 2 ** max(0, attempt - 1))


class Dispatcher:
    """Delivers due outbox rows. Stateless between runs: everything it needs is in the store."""

    def __init__(
        self,
        engine: sa.Engine,
        channels: Sequence[ChannelConfig],
        clock: Clock = SYSTEM_CLOCK,
        *,
        http: httpx2.AsyncClient | None = None,
        backoff_base_s: float = BACKOFF_BASE_S,
        backoff_max_s: float = BACKOFF_MAX_S,
        give_up_after_s: float = GIVE_UP_AFTER_S,
        lease_s: float = LEASE_S,
        batch: int = BATCH,
    ) -> None:
        self.engine = engine
        self.channels = {c.name: c for c in channels}
        self.clock = clock
        self._http = http
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.give_up_after_s = give_up_after_s
        self.lease_s = lease_s
        self.batch = batch
        redact_in_logs(self.channels)

    async def run_once(self, now: datetime | None = None) -> DispatchReport:
        """Claim due rows, send each once, record the outcomes. Never raises for a receiver or store failure."""
        now = now or self.clock.now()
        report = DispatchReport()
        try:
            rows = await asyncio.to_thread(self._claim, now, None)
        except SQLAlchemyError as exc:
            report.store_error = _store_reason(exc)
            log.warning("alert dispatch: cannot claim notifications: %s", report.store_error)
            return report
        report.claimed = len(rows)
        if rows:
            await self._deliver(rows, now, report, single_shot=False)
        return report

    async def deliver_ids(self, ids: Sequence[int], now: datetime, *, single_shot: bool = False) -> DispatchReport:
        """Send these pending rows now, due or not (``single_shot``: fail rather than retry — test alerts)."""
        report = DispatchReport()
        try:
            rows = await asyncio.to_thread(self._claim, now, list(ids))
        except SQLAlchemyError as exc:
            report.store_error = _store_reason(exc)
            return report
        report.claimed = len(rows)
        if rows:
            await self._deliver(rows, now, report, single_shot=single_shot)
        return report

    # --- claim ---------------------------------------------------------------------------------------------

    def _claim(self, now: datetime, ids: list[int] | None) -> list[Mapping[str, Any]]:
        t = alert_notifications
        lease_until = now + timedelta(seconds=self.lease_s)
        claimable = t.c.status == "pending"
        if ids is None:
            claimable = sa.and_(claimable, t.c.next_attempt_at <= now)
        else:
            claimable = sa.and_(claimable, t.c.id.in_(ids))
        chosen = (
            sa.select(t.c.id)
            .where(claimable)
            .order_by(t.c.next_attempt_at, t.c.id)
            .limit(self.batch if ids is None else max(1, len(ids)))
            .with_for_update(skip_locked=True)
            .cte("chosen")
            .prefix_with("MATERIALIZED", dialect="postgresql")
        )
        statement = (
            t.update().where(t.c.id == chosen.c.id, claimable).values(next_attempt_at=lease_until).returning(*t.c)
        )
        with self.engine.execution_options(**{SQLITE_IMMEDIATE: True}).begin() as connection:
            rows = [dict(r) for r in connection.execute(statement).mappings().all()]
        for row in rows:
            row["_lease"] = lease_until
        return sorted(rows, key=lambda r: (r["created_at"], r["id"]))

    # --- send ----------------------------------------------------------------------------------------------

    async def _deliver(
        self, rows: list[Mapping[str, Any]], now: datetime, report: DispatchReport, *, single_shot: bool
    ) -> None:
        by_channel: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            by_channel.setdefault(row["channel"], []).append(row)
        client = self._http or httpx2.AsyncClient(follow_redirects=False)
        try:
            results = await asyncio.gather(
                *(self._deliver_channel(client, name, items, now, single_shot) for name, items in by_channel.items())
            )
        finally:
            if self._http is None:
                await client.aclose()
        for attempts, store_error in results:
            report.attempts.extend(attempts)
            report.store_error = report.store_error or store_error

    async def _deliver_channel(
        self,
        client: httpx2.AsyncClient,
        name: str,
        rows: list[Mapping[str, Any]],
        now: datetime,
        single_shot: bool,
    ) -> tuple[list[Attempt], str | None]:
        config = self.channels.get(name)
        attempts: list[Attempt] = []
        store_error: str | None = None
        parked_until: datetime | None = None
        for row in rows:
            if parked_until is not None:  # rate limited or down: the channel's other rows wait too, unsent
                store_error = store_error or await self._release(row, parked_until)
                continue
            if config is None:
                outcome = DeliveryOutcome.rejected(f"channel {name!r} is not configured")
                status_code = None
            else:
                outcome, status_code = await self._send(client, make_channel(config), row)
            attempt = self._next_state(row, outcome, status_code, now, single_shot)
            attempts.append(attempt)
            self._log(attempt)
            problem = await self._record(row, attempt, now)
            if problem is not None:  # the store is away: stop here; unsent rows come back when their lease ends
                store_error = store_error or problem
                break
            if attempt.status == "pending":
                parked_until = attempt.next_attempt_at
        return attempts, store_error

    async def _send(
        self, client: httpx2.AsyncClient, channel: Channel, row: Mapping[str, Any]
    ) -> tuple[DeliveryOutcome, int | None]:
        config = channel.config
        try:
            message = Message.from_json(row["message"])
            body, headers = channel.render(message)
        except (KeyError, TypeError, ValueError) as exc:
            return DeliveryOutcome.rejected(f"unreadable message ({type(exc).__name__})"), None
        try:
            response = await client.post(channel.request_url(), content=body, headers=headers, timeout=config.timeout_s)
        except httpx2.TimeoutException:
            return DeliveryOutcome.retry(f"timeout after {config.timeout_s:g}s"), None
        except httpx2.HTTPError as exc:
            return DeliveryOutcome.retry(f"network error ({type(exc).__name__})"), None
        except OSError as exc:
            return DeliveryOutcome.retry(f"network error ({type(exc).__name__})"), None
        outcome = channel.classify(response.status_code, response.headers, response.content)
        return outcome, response.status_code

    def _next_state(
        self, row: Mapping[str, Any], outcome: DeliveryOutcome, status_code: int | None, now: datetime, single: bool
    ) -> Attempt:
        number = int(row["attempts"]) + 1
        error: str | None = None
        next_at: datetime | None = None
        if outcome.kind == "delivered":
            status: Literal["delivered", "pending", "failed"] = "delivered"
        elif outcome.kind == "retry" and not single:
            delay = (
                outcome.after_s
                if outcome.after_s is not None
                else backoff_s(number, self.backoff_base_s, self.backoff_max_s)
            )
            next_at = now + timedelta(seconds=delay)
            age = (next_at - row["created_at"]).total_seconds()
            if age > self.give_up_after_s:
                status, next_at = "failed", None
                error = f"retry: {outcome.reason}; gave up after {number} attempts"
            else:
                status = "pending"
                error = f"retry: {outcome.reason}"
        else:
            status = "failed"
            error = f"{outcome.kind}: {outcome.reason}"
        if error is not None:
            error = redact(error, self.channels.values())[:ERROR_MAX]
        return Attempt(
            notification_id=int(row["id"]),
            channel=row["channel"],
            transition=row["transition"],
            attempt=number,
            outcome=outcome,
            status_code=status_code,
            error=error,
            next_attempt_at=next_at,
            status=status,
        )

    # --- record --------------------------------------------------------------------------------------------

    async def _record(self, row: Mapping[str, Any], attempt: Attempt, now: datetime) -> str | None:
        try:
            await asyncio.to_thread(self._record_sync, row, attempt, now)
        except SQLAlchemyError as exc:
            # The row keeps its lease: it becomes due again and is re-sent (at least once, never lost).
            reason = _store_reason(exc)
            log.warning("alert dispatch: cannot record notification %s: %s", attempt.notification_id, reason)
            return reason
        return None

    def _record_sync(self, row: Mapping[str, Any], attempt: Attempt, now: datetime) -> None:
        t = alert_notifications
        episode_ids = row.get("episode_ids") or []
        episode_id = int(episode_ids[0]) if len(episode_ids) == 1 else None
        values: dict[str, Any] = {"attempts": attempt.attempt, "status": attempt.status, "last_error": attempt.error}
        if attempt.status == "delivered":
            values["delivered_at"] = now
        if attempt.next_attempt_at is not None:
            values["next_attempt_at"] = attempt.next_attempt_at
        with self.engine.begin() as connection:
            updated = connection.execute(
                t.update()
                .where(t.c.id == attempt.notification_id, t.c.status == "pending", t.c.next_attempt_at == row["_lease"])
                .values(**values)
            ).rowcount
            if updated != 1:
                # Someone else re-claimed the row after our lease ran out: their attempt is the one that counts.
                return
            connection.execute(
                alert_deliveries.insert().values(
                    episode_id=episode_id,
                    notification_id=attempt.notification_id,
                    ts=now,
                    channel=attempt.channel,
                    transition=attempt.transition,
                    attempt=attempt.attempt,
                    delivered=attempt.status == "delivered",
                    status_code=attempt.status_code,
                    error=attempt.error,
                )
            )

    async def _release(self, row: Mapping[str, Any], until: datetime | None) -> str | None:
        """Hand an unsent row back, due at ``until`` (its channel is rate limited)."""
        t = alert_notifications

        def release() -> None:
            with self.engine.begin() as connection:
                connection.execute(
                    t.update()
                    .where(t.c.id == row["id"], t.c.status == "pending", t.c.next_attempt_at == row["_lease"])
                    .values(next_attempt_at=until)
                )

        try:
            await asyncio.to_thread(release)
        except SQLAlchemyError as exc:
            return _store_reason(exc)
        return None

    def _log(self, attempt: Attempt) -> None:
        if attempt.status == "delivered":
            log.info(
                "alert notification %s delivered to %r (attempt %s)",
                attempt.notification_id,
                attempt.channel,
                attempt.attempt,
            )
            return
        level = logging.ERROR if attempt.outcome.kind == "broken" else logging.WARNING
        log.log(
            level,
            "alert notification %s to %r attempt %s: %s%s",
            attempt.notification_id,
            attempt.channel,
            attempt.attempt,
            attempt.error,
            f" (next try {attempt.next_attempt_at.isoformat()})" if attempt.next_attempt_at else "",
        )


def _store_reason(exc: SQLAlchemyError) -> str:
    """One line about a store failure; the DSN's password never appears (drivers do not echo it)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:ERROR_MAX]
