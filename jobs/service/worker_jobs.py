"""The worker's jobs: what runs, how often, and the functions that do it.

Every job is an ``async`` function of a :class:`JobContext`, returning a one-line summary for ``/healthz`` and
the log. :func:`default_jobs` is the registry the worker schedules; tests pass their own.

==================  ==========================================  ===============================================
job id              every                                       does
==================  ==========================================  ===============================================
``probe:<p>:<key>`` ``<P>_PROBE_INTERVAL_S`` / PROBE_INTERVAL_S  one tiny request on that key
                                                                (:mod:`pulsegate.core.ops.probe`), then returns a
                                                                recovered key to service
``probe-requests``  1 s                                         runs the probes asked for in ``probe_requests``
``alerts``          ALERT_INTERVAL_S (30 s)                     evaluates the alert rules
                                                                (:mod:`pulsegate.core.alerts`), then sends what is due
``alert-delivery``  5 s                                         sends due notifications (retries on time)
``retention``       1 day                                       :func:`pulsegate.core.store.retention.prune`
==================  ==========================================  ===============================================

The heartbeat (state snapshots, control commands) is not a scheduled job: every worker, leader or standby, beats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pulsegate.core.clock import Clock
from pulsegate.core.settings import Settings

if TYPE_CHECKING:
    from pulsegate.core.alerts.config import AlertConfig, AlertConfigLoader
    from pulsegate.core.client import AIClient
    from pulsegate.core.ops.probe import ProbeResult, ProbeTarget

log = logging.getLogger(__name__)

PROBE_REQUESTS_INTERVAL_S = 1.0
RETENTION_INTERVAL_S = 86_400.0
RETENTION_START_DELAY_S = 60.0
#: Scheduled probes of all keys start spread over this window (or the shortest probe interval, if shorter).
PROBE_SPREAD_S = 30.0
#: Each probe run is delayed by a random 0…min(2 % of its interval, 5 s): replicas and restarts drift apart.
PROBE_JITTER_FRACTION = 0.02
PROBE_JITTER_MAX_S = 5.0
PROBE_REQUESTS_PER_POLL = 10
#: Due notifications (first tries and retries) are sent at least this often, between rule evaluations.
ALERT_DELIVERY_INTERVAL_S = 5.0


@dataclass(slots=True)
class JobContext:
    """What a job may use. ``probe_slots`` bounds the scheduled probes running at once (PROBE_CONCURRENCY)."""

    engine: sa.Engine
    settings: Settings
    clock: Clock
    instance_id: str
    client: AIClient | None = None
    probe_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(1))
    alerts: AlertConfigLoader | None = None

    def alert_config(self) -> AlertConfig:
        """The alert rules and channels in force: reloaded when the rules file changes, the last good kept."""
        if self.alerts is None:
            from pulsegate.core.alerts.config import AlertConfigLoader

            self.alerts = AlertConfigLoader(self.settings)
        return self.alerts.get()


JobFunction = Callable[[JobContext], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One scheduled job.

    ``once_per_period``: the run first claims its period in ``worker_leases`` (see
    :mod:`pulsegate.jobs.service.leadership.lease`), so no two workers run it in the same period and a new leader
    resumes where the old one stopped. Jobs whose work is claimed row by row (the probe-request poll) skip it.
    """

    id: str
    run: JobFunction
    interval_s: float
    start_delay_s: float = 0.0
    jitter_s: float = 0.0
    once_per_period: bool = True
    misfire_grace_s: float | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.interval_s <= 0:
            raise ValueError(f"job {self.id}: interval_s must be positive, got {self.interval_s!r}")
        if self.start_delay_s < 0 or self.jitter_s < 0:
            raise ValueError(f"job {self.id}: start_delay_s and jitter_s cannot be negative")

    @property
    def claim_s(self) -> float:
        """How long a run's claim holds its period: the interval less a small tolerance, so the next on-time run
        (a few milliseconds early or late against the last) is never refused."""
        return self.interval_s - min(0.1 * self.interval_s, 2.0)

    @property
    def grace_s(self) -> float:
        """How late a run may start: a paused worker runs one overdue job on waking (coalesced), not a storm, and
        one later than this is skipped to the next period."""
        if self.misfire_grace_s is not None:
            return self.misfire_grace_s
        return max(1.0, min(self.interval_s / 2, 60.0))


# --- the jobs -----------------------------------------------------------------------------------------------------


def _summary(result: ProbeResult) -> str:
    status = f" {result.http_status}" if result.http_status is not None else ""
    if result.ok:
        return f"ok{status} in {result.latency_ms:.0f} ms"
    return f"failed{status} ({result.error_class or 'error'}) in {result.latency_ms:.0f} ms: {result.message}"


async def _restore(ctx: JobContext, results: list[ProbeResult]) -> list[int]:
    from pulsegate.core.ops.probe_history import restore_recovered_keys

    return await asyncio.to_thread(
        restore_recovered_keys,
        ctx.engine,
        results,
        ctx.clock.now(),
        heartbeat_interval_s=ctx.settings.heartbeat_interval_s,
    )


async def probe_key(ctx: JobContext, target: ProbeTarget) -> str:
    """Scheduled probe of one key; a success on a cooling or provider-disabled key returns it to service."""
    from pulsegate.core.ops.probe import run_probes

    if ctx.client is None:
        raise RuntimeError("the worker has no AIClient to probe with")
    async with ctx.probe_slots:
        results = await run_probes(ctx.client.probe, [target], concurrency=1)
    summary = _summary(results[0])
    level = logging.INFO if results[0].ok else logging.WARNING
    log.log(level, "probe %s/%s (%s): %s", target.provider, target.key_label, target.model, summary)
    issued = await _restore(ctx, results)
    return summary + (f"; control commands {issued}" if issued else "")


async def poll_probe_requests(ctx: JobContext) -> str | None:
    """Run the probes asked for through ``probe_requests`` (dashboard, API): claim, probe, store the results."""
    from pulsegate.core.ops.probe import ProbeError, probe_targets, run_probes
    from pulsegate.core.ops.probe_requests import claim_probe_requests, finish_probe_request

    requests = await asyncio.to_thread(
        claim_probe_requests, ctx.engine, ctx.instance_id, ctx.clock.now(), limit=PROBE_REQUESTS_PER_POLL
    )
    if not requests:
        return None
    if ctx.client is None:
        raise RuntimeError("the worker has no AIClient to probe with")
    done = []
    for request in requests:
        results: list[ProbeResult] = []
        error: str | None = None
        try:
            targets = probe_targets(
                ctx.settings, provider=request.provider, key_label=request.key_label, model=request.model
            )
            if not targets:
                raise ProbeError("key", "no API keys are configured")
            results = await run_probes(ctx.client.probe, targets, concurrency=ctx.settings.probe_concurrency)
        except ProbeError as exc:
            error = str(exc)
        except Exception as exc:  # the request fails with a reason instead of staying 'running' for minutes
            error = f"the worker could not run it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        await asyncio.to_thread(
            finish_probe_request,
            ctx.engine,
            request.id,
            results,
            ctx.clock.now(),
            error=error,
            worker_id=ctx.instance_id,
        )
        passed = sum(1 for r in results if r.ok)
        outcome = f"failed: {error}" if error else f"{passed}/{len(results)} passed"
        log.info("probe request %d (by %s): %s", request.id, request.requested_by, outcome)
        done.append(f"#{request.id} {outcome}")
        if results:
            await _restore(ctx, results)
    return "; ".join(done)


async def evaluate_alerts(ctx: JobContext) -> str:
    """Evaluate every rule (blocking queries: in a thread), then send what became due. The engine keeps no state
    of its own — episodes and the outbox are in the store — so a fresh one per run is right, and cheap."""
    from pulsegate.core.alerts.evaluator import AlertEvaluator

    config = ctx.alert_config()
    report = await asyncio.to_thread(AlertEvaluator(ctx.engine, config, ctx.clock).evaluate, ctx.clock.now())
    if report.notifications or report.errors or report.fired or report.resolved:  # what changed, muted or not
        log.info("alerts: %s", report.line())
    delivered = await deliver_alerts(ctx)
    return f"{report.line()}; {delivered}" if delivered else report.line()


async def deliver_alerts(ctx: JobContext) -> str | None:
    """Send due notifications from the outbox; every row is leased, so replicas never send one twice."""
    from pulsegate.core.alerts.delivery import Dispatcher

    config = ctx.alert_config()
    if not config.channels:
        return None
    report = await Dispatcher(ctx.engine, config.channels, ctx.clock).run_once(ctx.clock.now())
    if report.attempts or report.store_error:
        log.info("alert delivery: %s", report.line())
        return report.line()
    return None


async def prune_old_rows(ctx: JobContext) -> str:
    """Daily retention (:func:`pulsegate.core.store.retention.prune`), in a thread: batched deletes, short
    transactions."""
    from pulsegate.core.store.retention import prune

    report = await asyncio.to_thread(prune, ctx.engine, ctx.clock.now(), retention_days=ctx.settings.retention_days)
    if report.total:
        log.info("retention: %d rows pruned (%s)", report.total, {k: v for k, v in report.deleted.items() if v})
    return f"{report.total} rows pruned"


# --- the registry -------------------------------------------------------------------------------------------------


def probe_jobs(settings: Settings) -> list[JobSpec]:
    """One job per configured key, at its provider's interval; first runs spread over the spread window so keys
    are never probed in lockstep."""
    from pulsegate.core.ops.probe import probe_interval_s, probe_targets
    from pulsegate.core.provider import Provider

    targets = probe_targets(settings)
    if not targets:
        return []
    intervals = [probe_interval_s(settings, Provider(t.provider)) for t in targets]
    window = min(PROBE_SPREAD_S, *intervals)
    jobs = []
    for index, (target, interval) in enumerate(zip(targets, intervals, strict=True)):
        jobs.append(
            JobSpec(
                id=f"probe:{target.provider}:{target.key_label}",
                run=partial(probe_key, target=target),
                interval_s=interval,
                start_delay_s=round(window * index / len(targets), 3),
                jitter_s=min(interval * PROBE_JITTER_FRACTION, PROBE_JITTER_MAX_S),
                description=f"probe {target.provider} key {target.key_label!r} on {target.model}",
            )
        )
    return jobs


def default_jobs(settings: Settings) -> list[JobSpec]:
    """The worker's jobs for these settings (probe jobs only for the keys configured)."""
    return [
        *probe_jobs(settings),
        JobSpec(
            "probe-requests",
            poll_probe_requests,
            PROBE_REQUESTS_INTERVAL_S,
            once_per_period=False,
            description="run the probes requested by the dashboard and the API",
        ),
        JobSpec("alerts", evaluate_alerts, settings.alert_interval_s, description="evaluate the alert rules"),
        JobSpec(
            "alert-delivery",
            deliver_alerts,
            ALERT_DELIVERY_INTERVAL_S,
            once_per_period=False,
            description="send due alert notifications and retries",
        ),
        JobSpec(
            "retention",
            prune_old_rows,
            RETENTION_INTERVAL_S,
            start_delay_s=RETENTION_START_DELAY_S,
            misfire_grace_s=3_600.0,
            description="prune rows past their retention",
        ),
    ]
