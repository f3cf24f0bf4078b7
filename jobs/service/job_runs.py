"""What a worker knows of its jobs' runs, and when each runs first after an election.

Kept apart from :mod:`pulsegate.jobs.service.worker` because both are plain data and arithmetic: ``/healthz`` serialises
:class:`JobState`, and :func:`first_runs` is the resume rule tests check without a scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pulsegate.core.errors import one_line_reason
from pulsegate.jobs.service.leadership import LeaderInfo
from pulsegate.jobs.service.worker_jobs import JobSpec

ERROR_MAX = 300


def reason(exc: BaseException) -> str:
    """An exception as one short line, fit for ``/healthz`` and the log."""
    return one_line_reason(exc, ERROR_MAX)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(slots=True)
class JobState:
    """What ``/healthz`` says about one job. ``ran_by`` is the worker that ran it last (a standby learns the
    leader's runs from the period claims)."""

    last_run: datetime | None = None
    last_ok: bool | None = None
    last_error: str | None = None
    last_result: str | None = None
    ran_by: str | None = None
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    missed: int = 0

    def to_json(self, next_run: datetime | None) -> dict[str, Any]:
        return {
            "last_run": iso(self.last_run),
            "last_ok": self.last_ok,
            "last_error": self.last_error,
            "last_result": self.last_result,
            "next_run": iso(next_run),
            "ran_by": self.ran_by,
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
            "missed": self.missed,
        }


def first_runs(jobs: Sequence[JobSpec], claims: Mapping[str, LeaderInfo], now: datetime) -> dict[str, datetime]:
    """When each job first runs after this worker is elected.

    A job that ran before (its claim's ``acquired_at``, by any worker) resumes one interval after that run, so a
    takeover or a restart neither repeats a period nor starts afresh; one overdue, or never run, starts after
    its start delay (probes spread over a window).
    """
    plan = {}
    for job in jobs:
        claim = claims.get(job.id)
        fresh = now + timedelta(seconds=job.start_delay_s)
        if claim is not None and claim.acquired_at is not None:
            due = claim.acquired_at + timedelta(seconds=job.interval_s)
            plan[job.id] = due if due > now else fresh
        else:
            plan[job.id] = fresh
    return plan
