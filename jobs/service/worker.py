"""The worker process: APScheduler jobs, leader election and the HTTP API on one event loop.

Several workers may run (replicas); one leads and schedules the jobs of :mod:`pulsegate.jobs.service.worker_jobs`, the
others stand by, watch the leader's lease and take over when it lapses (:mod:`pulsegate.jobs.service.leadership`). Jobs
are added to the scheduler when this worker is elected and removed (running ones cancelled) when it stops leading, and
every run checks leadership and claims its period first — three fences, so a job never runs twice in one period even
when a paused leader wakes up. Every worker serves the API (``/healthz`` says which role it has) and beats its
heartbeat as a ``worker`` instance.

Shutdown (SIGTERM / SIGINT): stop scheduling, let running jobs finish (at most ``shutdown_grace_s``, then they
are cancelled), give the lease back so a standby takes over at once, close the AIClient (which flushes the
recorder), stop the API, exit 0.

The process around it (store checks, signals) is :mod:`pulsegate.jobs.service.worker_process`; what it records of each
job is :mod:`pulsegate.jobs.service.job_runs`; the API's socket and server, :mod:`pulsegate.jobs.service.worker_http`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import uvicorn
from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from pulsegate.core.clock import SYSTEM_CLOCK, Clock
from pulsegate.core.settings import Settings
from pulsegate.jobs.service.job_runs import ERROR_MAX, JobState, first_runs, iso, reason
from pulsegate.jobs.service.key_adoption import adopt_disabled_keys
from pulsegate.jobs.service.leadership import (
    Election,
    LeaderInfo,
    Leadership,
    claim_period,
    last_claims,
    leadership_for,
)
from pulsegate.jobs.service.worker_http import QuietServer, bind_socket
from pulsegate.jobs.service.worker_jobs import JobContext, JobSpec, default_jobs

log = logging.getLogger("pulsegate.worker")

SHUTDOWN_GRACE_S = 10.0
HTTP_STOP_TIMEOUT_S = 5.0


class Worker:
    """One worker. ``jobs`` defaults to :func:`pulsegate.jobs.service.worker_jobs.default_jobs`, ``leadership`` to the
    store's election, ``client`` to an AIClient recording to ``engine``; ``serve_http`` serves
    :func:`pulsegate.jobs.service.api.build_app` on ``host``:``port`` (tests of scheduling turn it off)."""

    def __init__(
        self,
        settings: Settings,
        engine: sa.Engine,
        *,
        client: Any = None,
        clock: Clock = SYSTEM_CLOCK,
        jobs: Sequence[JobSpec] | None = None,
        leadership: Leadership | None = None,
        host: str | None = None,
        port: int | None = None,
        serve_http: bool = True,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.clock = clock
        self.client = client if client is not None else _worker_client(settings, engine, clock)
        self.instance_id: str = self.client.instance_id
        self.jobs = {job.id: job for job in (jobs if jobs is not None else default_jobs(settings))}
        self.states = {job_id: JobState() for job_id in self.jobs}
        self.host = host if host is not None else settings.worker_host
        self.port = port if port is not None else settings.worker_port
        self.serve_http = serve_http
        self.shutdown_grace_s = shutdown_grace_s
        self.election = Election(
            leadership or leadership_for(engine, self.instance_id, settings.leader_lease_s),
            clock=clock,
            on_elected=self._on_elected,
            on_demoted=self._on_demoted,
            on_tick=self._refresh_claims,
        )
        self.context = JobContext(engine, settings, clock, self.instance_id, self.client)
        self.started_at = clock.now()
        self.started = False
        self.stopping = False
        self.scheduler: Any = None
        self._heartbeat: Any = None
        self._http: Any = None
        self._http_task: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[Any]] = {}

    # --- status ------------------------------------------------------------------------------------------------

    def next_run(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id) if self.scheduler is not None and self.scheduler.running else None
        return job.next_run_time if job is not None else None

    def status(self) -> dict[str, Any]:
        """Role, leader, jobs and recorder — ``/healthz`` (and ``/metrics``) serve it."""
        stats = dict(self.client.recorder.stats()) if self.client is not None else {}
        recorder = {"spool_rows": stats.get("spool_pending", 0), "lost_rows": stats.get("lost", 0), **stats}
        return {
            "status": "stopping" if self.stopping else "ok",
            "role": self.election.role,
            "instance_id": self.instance_id,
            "started_at": iso(self.started_at),
            "lease_s": self.election.lease_s,
            "leader": self.election.leader.to_json(self.instance_id),
            "election": {"failures": self.election.failures, "last_error": self.election.last_error},
            "jobs": {job_id: state.to_json(self.next_run(job_id)) for job_id, state in self.states.items()},
            "recorder": recorder,
        }

    # --- leadership callbacks ----------------------------------------------------------------------------------

    async def _on_elected(self) -> None:
        now = self.clock.now()
        try:
            claims = await asyncio.to_thread(last_claims, self.engine, list(self.jobs), now)
        except Exception as exc:  # the claims still guard every run; we only lose the resume point
            log.warning("could not read the jobs' last runs (starting their schedules afresh): %s", reason(exc))
            claims = {}
        self._absorb_claims(claims)
        await self._adopt_disabled_keys(claims, now)
        plan = first_runs(list(self.jobs.values()), claims, now)
        if self.scheduler is None or self.stopping:
            return
        for job_id, job in self.jobs.items():
            self.scheduler.add_job(
                self.run_job,
                IntervalTrigger(seconds=job.interval_s, start_date=plan[job_id], jitter=job.jitter_s or None),
                args=[job_id],
                id=job_id,
                name=job.description or job_id,
                next_run_time=plan[job_id],
                misfire_grace_time=math.ceil(job.grace_s),  # APScheduler takes whole seconds
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )
        log.info("leader: %d jobs scheduled (%s)", len(self.jobs), ", ".join(self.jobs))

    async def _adopt_disabled_keys(self, claims: Mapping[str, LeaderInfo], now: datetime) -> None:
        """Take over the keys the previous leader's probes had disabled, before any job runs.

        A key refused by the provider is disabled in the process that saw the refusal; without Redis no other process
        knows. Without this, a new leader (after a failover or a restart) reports the key healthy, the old leader's
        view goes stale, ``key_unhealthy`` resolves — and fires again at the next probe: two needless notifications.
        The key's next probe decides, as it would have for the old leader."""
        try:
            adopted = await asyncio.to_thread(adopt_disabled_keys, self.engine, self.client, claims, self.instance_id)
        except Exception as exc:
            log.warning("could not read the previous leader's key states: %s", reason(exc))
            return
        if adopted:
            log.info("leader: keys the previous leader had disabled stay disabled: %s", ", ".join(adopted))
            if self._heartbeat is not None:
                with contextlib.suppress(Exception):
                    await self._heartbeat.abeat()  # say so before the first alert evaluation reads the snapshots

    async def _on_demoted(self) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.remove_all_jobs()
        running = [task for task in self._running.values() if not task.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=self.shutdown_grace_s)
        log.info("standby: jobs removed (%d running were cancelled)", len(running))

    async def _refresh_claims(self) -> None:
        """Learn the runs other workers made (a standby's ``/healthz`` shows the leader's last runs)."""
        try:
            claims = await asyncio.to_thread(last_claims, self.engine, list(self.jobs), self.clock.now())
        except Exception as exc:
            log.debug("could not read the jobs' claims: %s", exc)
            return
        self._absorb_claims(claims)

    def _absorb_claims(self, claims: Mapping[str, LeaderInfo]) -> None:
        for job_id, claim in claims.items():
            state = self.states.get(job_id)
            if state is None or claim.acquired_at is None or claim.holder == self.instance_id:
                continue
            if state.last_run is None or claim.acquired_at > state.last_run:
                state.last_run, state.ran_by = claim.acquired_at, claim.holder
                state.last_ok = state.last_error = state.last_result = None

    # --- one run -----------------------------------------------------------------------------------------------

    async def run_job(self, job_id: str) -> None:
        """One run of ``job_id`` (what the scheduler calls): only while leading, only once per period."""
        job, state = self.jobs[job_id], self.states[job_id]
        if not self.election.is_leader() or self.stopping:
            state.skipped += 1
            return
        now = self.clock.now()
        if job.once_per_period:
            try:
                claimed = await asyncio.to_thread(claim_period, self.engine, job_id, self.instance_id, now, job.claim_s)
            except Exception as exc:
                state.failures += 1
                state.last_ok, state.last_error = False, f"could not claim the period: {reason(exc)}"
                log.warning("job %s not run: %s", job_id, state.last_error)
                return
            if not claimed:
                state.skipped += 1
                log.info("job %s already ran in this period (by another worker): skipped", job_id)
                return
        task = asyncio.current_task()
        if task is not None:
            self._running[job_id] = task
        state.last_run, state.ran_by, state.runs = now, self.instance_id, state.runs + 1
        try:
            result = await job.run(self.context)
        except asyncio.CancelledError:  # demoted or shutting down; APScheduler need not log a traceback
            state.failures += 1
            state.last_ok, state.last_error, state.last_result = False, "cancelled", None
            log.warning("job %s cancelled", job_id)
        except Exception as exc:
            state.failures += 1
            state.last_ok, state.last_error, state.last_result = False, reason(exc), None
            log.warning("job %s failed: %s", job_id, state.last_error)
        else:
            state.last_ok, state.last_error = True, None
            state.last_result = result[:ERROR_MAX] if result else None
            log.debug("job %s ran: %s", job_id, result)
        finally:
            self._running.pop(job_id, None)

    def _on_missed(self, event: Any) -> None:
        state = self.states.get(event.job_id)
        if state is None:
            return
        state.missed += 1
        when = event.scheduled_run_time.isoformat() if event.scheduled_run_time else "?"
        log.warning("job %s missed its run at %s (worker paused or busy): skipped to the next", event.job_id, when)

    # --- lifecycle ---------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the API, start the scheduler (empty until elected), the heartbeat and the election."""
        self.context.probe_slots = asyncio.Semaphore(self.settings.probe_concurrency)
        if self.serve_http:
            await self._start_http()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.scheduler.add_listener(self._on_missed, EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._on_overlap, EVENT_JOB_MAX_INSTANCES)
        self.scheduler.start()
        self._heartbeat = _worker_heartbeat(self.client, self.engine)
        if self._heartbeat is not None:
            self._heartbeat.start()
        await self.election.tick()  # lead (or not) before saying we are up
        self.election.start()
        self.started = True

    def _on_overlap(self, event: Any) -> None:
        state = self.states.get(event.job_id)
        if state is not None:
            state.skipped += 1

    async def _start_http(self) -> None:
        from pulsegate.jobs.service.api import build_app

        sock = bind_socket(self.host, self.port)
        self.port = sock.getsockname()[1]
        app = build_app(engine=self.engine, settings=self.settings, clock=self.clock, status=self.status)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=3)
        self._http = QuietServer(config)
        self._http_task = asyncio.get_running_loop().create_task(self._http.serve(sockets=[sock]), name="worker-api")
        for _ in range(200):  # started within a second or so; a failure surfaces when the task ends
            if self._http.started or self._http_task.done():
                break
            await asyncio.sleep(0.01)
        if self._http_task.done():
            self._http_task.result()

    async def stop(self) -> None:
        """Graceful stop; see the module docstring for the order."""
        if self.stopping:
            return
        self.stopping = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.pause()
        running = [task for task in self._running.values() if not task.done()]
        if running:
            log.info("waiting up to %.0f s for %d running jobs", self.shutdown_grace_s, len(running))
            _, late = await asyncio.wait(running, timeout=self.shutdown_grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=2)
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=False)
        await self.election.stop()
        await self.election.resign()
        if self._heartbeat is not None:
            await self._heartbeat.stop()
        await self.client.aclose()
        stats = self.client.recorder.stats()
        if self._http is not None and self._http_task is not None:
            self._http.should_exit = True
            try:
                await asyncio.wait_for(self._http_task, HTTP_STOP_TIMEOUT_S)
            except (TimeoutError, Exception) as exc:
                log.debug("API server stop: %s", exc)
        log.log(
            logging.INFO if self.started else logging.DEBUG,
            "worker stopped: recorder wrote %s rows, %s waiting in the spool, %s lost",
            stats.get("written", 0),
            stats.get("spool_pending", 0),
            stats.get("lost", 0),
        )

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then stop gracefully."""
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()


def _worker_client(settings: Settings, engine: sa.Engine, clock: Clock) -> Any:
    from pulsegate.core.client import AIClient
    from pulsegate.core.recording import SqlRecorder

    key = settings.hash_user_ids.get_secret_value() if settings.hash_user_ids else None
    recorder = SqlRecorder(engine, spool_dir=settings.spool_dir, user_id_key=key)
    return AIClient(settings, recorder=recorder, clock=clock, heartbeat=False)


def _worker_heartbeat(client: Any, engine: sa.Engine) -> Any:
    from pulsegate.core.ops.heartbeat import instance_heartbeat

    return instance_heartbeat(client.instance, engine, kind="worker")
