"""The worker's own metrics on ``GET /metrics`` — leadership and each scheduled job's runs — read from the worker's
``status()`` rather than the store, so they answer even when the store does not."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pulsegate.core.clock import as_utc


def worker_metrics(status: Mapping[str, Any]) -> Iterator[Metric]:
    """The worker's own metrics, from its ``status()``: whether it leads, and each job's runs."""
    if "role" in status:
        yield gauge(
            "pulsegate_worker_leader",
            "1 when this worker leads (runs the jobs)",
            [],
            [([], float(status["role"] == "leader"))],
        )
    jobs = status.get("jobs")
    if not isinstance(jobs, Mapping):
        return
    last_run = GaugeMetricFamily("pulsegate_job_last_run_timestamp_seconds", "When the job last ran", labels=["job"])
    last_ok = GaugeMetricFamily("pulsegate_job_last_run_ok", "1 when the job's last run succeeded", labels=["job"])
    next_run = GaugeMetricFamily("pulsegate_job_next_run_timestamp_seconds", "When the job runs next", labels=["job"])
    runs = CounterMetricFamily("pulsegate_job_runs", "Runs of the job by this worker", labels=["job"])
    failures = CounterMetricFamily("pulsegate_job_failures", "Failed runs of the job by this worker", labels=["job"])
    for job, info in sorted(jobs.items()):
        if not isinstance(info, Mapping):
            continue
        for family, value in ((last_run, info.get("last_run")), (next_run, info.get("next_run"))):
            moment = timestamp(value)
            if moment is not None:
                family.add_metric([str(job)], moment)
        if isinstance(info.get("last_ok"), bool):
            last_ok.add_metric([str(job)], float(info["last_ok"]))
        for family, key in ((runs, "runs"), (failures, "failures")):
            value = info.get(key)
            if isinstance(value, int) and not isinstance(value, bool):
                family.add_metric([str(job)], float(value))
    yield from (last_run, last_ok, next_run, runs, failures)


def gauge(name: str, documentation: str, labels: list[str], samples: list[tuple[list[str], float]]) -> Metric:
    """A gauge family with its samples, in one call."""
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(values, value)
    return family


def timestamp(value: Any) -> float | None:
    """Seconds since the epoch for a datetime, an ISO string or a number; None when absent or unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        moment = as_utc(value)
    except (TypeError, ValueError):
        return None
    return moment.timestamp()
