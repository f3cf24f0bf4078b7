"""The Worker in-process on the real stores: which jobs the leader schedules, the once-per-period fence, demotion,
graceful stop and /healthz's status — jobs injected so their effect is observable."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pulsegate.core.clock import ManualClock
from pulsegate.core.settings import Settings, load_settings
from pulsegate.core.store.tables import worker_leases
from pulsegate.jobs.service.job_runs import first_runs
from pulsegate.jobs.service.leadership import LeaderInfo, Leadership, claim_period, last_claims, leadership_for
from pulsegate.jobs.service.worker import Worker
from pulsegate.jobs.service.worker_jobs import JobContext, JobSpec, default_jobs


def worker_settings(store: sa.Engine, tmp_path: Path, **env: str) -> Settings:
    values = {
        "DATABASE_URL": store.url.render_as_string(hide_password=False),
        "SPOOL_DIR": str(tmp_path / "spool"),
        "LEADER_LEASE_S": "3",
        **env,
    }
    return load_settings(values, env_file=None)


class Log:
    """Runs of the injected jobs: (job id, worker instance, start time)."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, str, datetime]] = []

    def job(self, job_id: str, *, sleep_s: float = 0.0) -> Callable[[JobContext], Any]:
        async def run(ctx: JobContext) -> str:
            self.runs.append((job_id, ctx.instance_id, ctx.clock.now()))
            if sleep_s:
                await asyncio.sleep(sleep_s)
            return f"{job_id} done"

        return run


class AlwaysLeader(Leadership):
    """Split brain on purpose: every worker believes it leads (the period claims must still hold)."""

    async def acquire_or_renew(self, now: datetime) -> bool:
        return True

    async def release(self, now: datetime) -> None:
        return None


@pytest.fixture
async def workers(store: sa.Engine, tmp_path: Path) -> AsyncIterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for worker in made:
        await worker.stop()


def make_worker(made: list[Worker], store: sa.Engine, tmp_path: Path, jobs: list[JobSpec], **kwargs: Any) -> Worker:
    worker = Worker(worker_settings(store, tmp_path), store, jobs=jobs, serve_http=False, **kwargs)
    made.append(worker)
    return worker


async def test_the_leader_schedules_every_job_and_a_standby_none(
    store: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    log = Log()
    jobs = [
        JobSpec("probe:x", log.job("probe:x"), 300, start_delay_s=7.5, jitter_s=5.0),
        JobSpec("poll", log.job("poll"), 60, once_per_period=False),
    ]
    a = make_worker(workers, store, tmp_path, jobs)
    b = make_worker(workers, store, tmp_path, jobs)
    before = datetime.now(UTC)
    await a.start()
    await b.start()
    assert (a.election.role, b.election.role) == ("leader", "standby")
    scheduled = {job.id: job for job in a.scheduler.get_jobs()}
    assert sorted(scheduled) == ["poll", "probe:x"]
    probe = scheduled["probe:x"]
    assert (probe.coalesce, probe.max_instances, probe.misfire_grace_time) == (True, 1, 60)
    assert (probe.trigger.interval, probe.trigger.jitter) == (timedelta(seconds=300), 5.0)
    assert before + timedelta(seconds=7.5) <= probe.next_run_time <= datetime.now(UTC) + timedelta(seconds=7.5)
    assert scheduled["poll"].misfire_grace_time == 30
    assert b.scheduler.get_jobs() == []
    status = json.loads(json.dumps(b.status()))
    assert status["role"] == "standby"
    assert status["leader"]["holder"] == a.instance_id and status["leader"]["is_self"] is False
    assert status["jobs"]["poll"]["next_run"] is None
    assert json.loads(json.dumps(a.status()))["jobs"]["probe:x"]["next_run"] == probe.next_run_time.isoformat()


async def test_two_workers_that_both_believe_they_lead_still_run_a_job_once_per_period(
    store: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    log = Log()
    spec = JobSpec("tick", log.job("tick"), 0.3)
    for _ in range(2):
        worker = make_worker(workers, store, tmp_path, [spec])
        worker.election.leadership = AlwaysLeader(store, worker.instance_id, 3.0)
    for worker in workers:
        await worker.start()
    await asyncio.sleep(1.6)
    for worker in workers:
        await worker.stop()
    times = sorted(t for _, _, t in log.runs)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert 5 <= len(times) <= 7, log.runs  # one per 0.3 s period over 1.6 s, not two
    # the claim spaces claims by claim_s; each logged run starts a database round trip after its claim, so
    # allow that much jitter — a run twice in one period would show a gap near 0
    assert min(gaps) >= spec.claim_s - 0.1, gaps
    skipped = sum(w.states["tick"].skipped for w in workers)
    assert skipped >= 3  # the other worker's schedule fired too, and was refused by the claim


async def test_a_job_that_ran_this_period_is_refused_and_a_new_leader_resumes_after_it(
    store: sa.Engine, clock: ManualClock
) -> None:
    start = clock.now()
    assert await asyncio.to_thread(claim_period, store, "alerts", "worker-a", start, 27.0) is True
    clock.advance(20)
    assert await asyncio.to_thread(claim_period, store, "alerts", "worker-b", clock.now(), 27.0) is False
    claims = await asyncio.to_thread(last_claims, store, ["alerts", "retention"], clock.now())
    assert list(claims) == ["alerts"] and (claims["alerts"].holder, claims["alerts"].acquired_at) == ("worker-a", start)
    jobs = [JobSpec("alerts", Log().job("a"), 30), JobSpec("retention", Log().job("r"), 86_400, start_delay_s=60)]
    plan = first_runs(jobs, claims, clock.now())
    assert plan == {"alerts": start + timedelta(seconds=30), "retention": clock.now() + timedelta(seconds=60)}
    clock.advance(7)  # the period is over: anyone may run it
    assert await asyncio.to_thread(claim_period, store, "alerts", "worker-b", clock.now(), 27.0) is True
    overdue = {"alerts": LeaderInfo("worker-a", start, start, start, silent=True)}
    assert first_runs(jobs[:1], overdue, start + timedelta(hours=1)) == {"alerts": start + timedelta(hours=1)}


async def test_a_standby_skips_a_run_and_reports_the_leaders_runs(
    store: sa.Engine, tmp_path: Path, workers: list[Worker], clock: ManualClock
) -> None:
    log = Log()
    standby = make_worker(workers, store, tmp_path, [JobSpec("alerts", log.job("alerts"), 30)], clock=clock)
    leader = leadership_for(store, "worker-a", 3.0)  # another worker leads...
    assert await leader.acquire_or_renew(clock.now())
    with store.begin() as connection:  # ...and ran the job
        connection.execute(
            worker_leases.insert().values(
                name="job:alerts",
                holder="worker-a",
                acquired_at=clock.now(),
                renewed_at=clock.now(),
                expires_at=clock.now() + timedelta(seconds=27),
            )
        )
    assert await standby.election.tick() is False
    await standby.run_job("alerts")
    assert log.runs == []
    job = standby.status()["jobs"]["alerts"]
    assert (job["last_run"], job["ran_by"], job["skipped"], job["runs"]) == (clock.now().isoformat(), "worker-a", 1, 0)
    assert standby.status()["leader"]["holder"] == "worker-a"
    await leader.close()


async def test_demotion_removes_the_jobs_and_cancels_a_running_one(
    store: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    log = Log()
    worker = make_worker(workers, store, tmp_path, [JobSpec("slow", log.job("slow", sleep_s=30), 60)])
    await worker.start()
    for _ in range(200):
        if log.runs:
            break
        await asyncio.sleep(0.01)
    assert [job_id for job_id, _, _ in log.runs] == ["slow"]
    await worker.election.demote("test")
    assert worker.scheduler.get_jobs() == []
    state = worker.status()["jobs"]["slow"]
    assert (state["last_ok"], state["last_error"], state["runs"]) == (False, "cancelled", 1)


async def test_stop_lets_a_running_job_finish_and_gives_the_lease_back(
    store: sa.Engine, tmp_path: Path, workers: list[Worker]
) -> None:
    log = Log()
    worker = make_worker(workers, store, tmp_path, [JobSpec("short", log.job("short", sleep_s=0.3), 60)])
    await worker.start()
    for _ in range(200):
        if log.runs:
            break
        await asyncio.sleep(0.01)
    await worker.stop()
    state = worker.status()["jobs"]["short"]
    assert (state["last_ok"], state["last_result"], state["last_error"]) == (True, "short done", None)
    assert worker.status()["role"] == "standby" and worker.status()["status"] == "stopping"
    with store.connect() as connection:
        names = connection.execute(sa.select(worker_leases.c.name)).scalars().all()
    assert names == ["job:short"]  # the leader's lease is gone: a standby takes over at its next try


async def test_a_failing_job_is_reported_without_stopping_the_worker(
    store: sa.Engine, tmp_path: Path, workers: list[Worker], clock: ManualClock
) -> None:
    async def broken(ctx: JobContext) -> str:
        raise RuntimeError("alert engine exploded\nsecond line")

    worker = make_worker(workers, store, tmp_path, [JobSpec("alerts", broken, 30)], clock=clock)
    assert await worker.election.tick() is True
    await worker.run_job("alerts")
    state = worker.status()["jobs"]["alerts"]
    assert (state["last_ok"], state["last_error"], state["failures"], state["runs"]) == (
        False,
        "alert engine exploded",
        1,
        1,
    )


def test_the_default_jobs_follow_the_settings(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "ANTHROPIC_API_KEY": "sk-ant-test-" + "a" * 30,
            "ANTHROPIC_API_KEY_2": "sk-ant-test-" + "b" * 30,
            "OPENAI_API_KEY": "sk-test-" + "c" * 30,
            "PROBE_INTERVAL_S": "300",
            "OPENAI_PROBE_INTERVAL_S": "600",
            "ALERT_INTERVAL_S": "45",
        },
        env_file=None,
    )
    jobs = {job.id: job for job in default_jobs(settings)}
    summary = {
        job_id: (job.interval_s, job.start_delay_s, job.jitter_s, job.once_per_period) for job_id, job in jobs.items()
    }
    assert summary == {
        "probe:anthropic:Primary": (300.0, 0.0, 5.0, True),
        "probe:anthropic:Backup 1": (300.0, 10.0, 5.0, True),
        "probe:openai:Primary": (600.0, 20.0, 5.0, True),
        "probe-requests": (1.0, 0.0, 0.0, False),
        "alerts": (45.0, 0.0, 0.0, True),
        "alert-delivery": (5.0, 0.0, 0.0, False),
        "retention": (86_400.0, 60.0, 0.0, True),
    }
    assert jobs["alerts"].grace_s == 22.5 and jobs["probe-requests"].grace_s == 1.0
    assert jobs["retention"].grace_s == 3_600.0
    assert jobs["alerts"].claim_s == 43.0 and jobs["probe-requests"].claim_s == pytest.approx(0.9)
