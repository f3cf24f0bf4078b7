"""``/metrics`` parsed with prometheus_client's parser: exact values from the rows recorded, monotonic counters."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx2
import pytest
import sqlalchemy as sa
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from pulsegate.core.clock import ManualClock
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.store import latency_buckets
from pulsegate.core.store.tables import instances
from tests.worker_api.conftest import NOW, ago, attempt, beat, key_state, provider_state, record

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
START_HOUR = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
COUNTER_FAMILIES = (
    "pulsegate_calls_total",
    "pulsegate_call_errors_total",
    "pulsegate_fallbacks_total",
    "pulsegate_tokens_total",
    "pulsegate_cost_usd_total",
    "pulsegate_unpriced_calls_total",
    "pulsegate_probes_total",
    "pulsegate_call_duration_seconds_bucket",
    "pulsegate_call_duration_seconds_sum",
    "pulsegate_call_duration_seconds_count",
    "gen_ai_client_token_usage_bucket",
    "gen_ai_client_token_usage_sum",
    "gen_ai_client_token_usage_count",
)


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, tuple(sorted(sample.labels.items())))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return samples


def of(samples: Samples, name: str) -> Samples:
    return {key: value for key, value in samples.items() if key[0] == name}


def s(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted(labels.items())))


def expected_traffic(attempts: list[AttemptRecord], since: datetime) -> Samples:
    """Every counter and histogram sample, computed from the attempts themselves (not from the rollups)."""
    out: Samples = defaultdict(float)
    buckets: dict[tuple, list[int]] = defaultdict(lambda: [0] * latency_buckets.BUCKET_COUNT)
    for a in attempts:
        if a.ts < since:
            continue
        series = {"provider": a.provider, "model": a.model, "key": a.key_label or "", "source": a.source}
        for outcome in ("success", "error", "cancelled"):
            out[s("pulsegate_calls_total", **series, outcome=outcome)] += 1 if a.outcome == outcome else 0
        other = "error" if a.outcome == "success" else "success"
        if a.error_class is not None:
            out[s("pulsegate_call_errors_total", **series, error_class=a.error_class.value)] += 1
        out[s("pulsegate_fallbacks_total", **series)] += 1 if a.fell_back_from else 0
        for kind in ("input", "output", "cache_read", "cache_write"):
            out[s("pulsegate_tokens_total", **series, type=kind)] += getattr(a, f"{kind}_tokens")
        out[s("pulsegate_cost_usd_total", **series)] += a.cost_usd or 0.0
        out[s("pulsegate_unpriced_calls_total", **series)] += 1 if a.unpriced else 0
        if a.source == "probe":
            probe = {"provider": a.provider, "model": a.model, "key": a.key_label or ""}
            out[s("pulsegate_probes_total", **probe, outcome=a.outcome)] += 1
            out[s("pulsegate_probes_total", **probe, outcome=other)] += 0
        buckets[tuple(sorted(series.items()))][latency_buckets.bucket_index(a.latency_ms)] += 1
        out[s("pulsegate_call_duration_seconds_sum", **series)] += a.latency_ms / 1000.0
        out[s("pulsegate_call_duration_seconds_count", **series)] += 1
        otel = {"gen_ai_provider_name": a.provider, "gen_ai_request_model": a.model, "key": series["key"]}
        for kind in ("input", "output"):
            labels = {**otel, "source": a.source, "gen_ai_token_type": kind}
            out[s("gen_ai_client_token_usage_bucket", **labels, le="+Inf")] += 1
            out[s("gen_ai_client_token_usage_count", **labels)] += 1
            out[s("gen_ai_client_token_usage_sum", **labels)] += getattr(a, f"{kind}_tokens")
    for series_items, counts in buckets.items():
        cumulative = 0
        for index, count in enumerate(counts):
            cumulative += count
            bound = latency_buckets.UPPER_BOUNDS_MS[index] / 1000.0 if index < len(counts) - 1 else math.inf
            out[("pulsegate_call_duration_seconds_bucket", tuple(sorted((*series_items, ("le", bound)))))] = cumulative
    return dict(out)


def traffic(samples: Samples) -> Samples:
    """Our counter samples, with histogram ``le`` labels as floats (the text form is the parser's business)."""
    out: Samples = {}
    for (name, labels), value in samples.items():
        if name not in COUNTER_FAMILIES:
            continue
        if name == "pulsegate_call_duration_seconds_bucket":
            labels = tuple(sorted((k, float(v) if k == "le" else v) for k, v in labels))
        out[(name, labels)] = value
    return out


def assert_samples_equal(actual: Samples, expected: Samples) -> None:
    assert sorted(actual) == sorted(expected)
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def hour_12_attempts() -> list[AttemptRecord]:
    at = START_HOUR
    return [
        # before the worker's start hour: never counted
        attempt(at - timedelta(minutes=10), 50.0, input_tokens=1000, cost_usd=1.0),
        attempt(at - timedelta(minutes=10), 70.0, source="probe", key_label="Backup 1"),
        # live traffic, both providers, every kind of value
        attempt(at + timedelta(minutes=1), 0.4, input_tokens=10, output_tokens=5, cost_usd=0.0125),
        attempt(at + timedelta(minutes=1), 120.0, input_tokens=12, output_tokens=7, cost_usd=0.0025, streamed=True),
        attempt(at + timedelta(minutes=2), 905.5, input_tokens=3, output_tokens=0, cache_read_tokens=64),
        attempt(at + timedelta(minutes=3), 2500.0, error_class="overloaded", http_status=529),
        attempt(at + timedelta(minutes=3), 30_000.0, error_class="timeout", key_label="Backup 1"),
        attempt(at + timedelta(minutes=4), 900_000.0, error_class="timeout", key_label="Backup 1"),
        attempt(at + timedelta(minutes=4), 1.0, error_class="queue_full", key_label=None),
        attempt(
            at + timedelta(minutes=5),
            333.0,
            provider="openai",
            model="gpt-4.1",
            input_tokens=40,
            output_tokens=9,
            cache_write_tokens=2,
            cost_usd=0.5,
            fell_back_from="anthropic",
        ),
        attempt(at + timedelta(minutes=6), 44.0, provider="openai", model="gpt-x", unpriced=True, output_tokens=1),
        # probes: anthropic Primary passes at 12:05 and fails at 12:18; openai Primary passes at 12:10
        attempt(at + timedelta(minutes=5), 210.0, source="probe", input_tokens=8, output_tokens=1, cost_usd=1e-5),
        attempt(at + timedelta(minutes=18, seconds=20), 95.0, source="probe", error_class="auth", http_status=401),
        attempt(at + timedelta(minutes=10), 150.0, provider="openai", model="gpt-5-nano", source="probe"),
    ]


async def scrape(client: httpx2.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


async def test_traffic_counters_and_histogram_are_exactly_the_recorded_rows(
    store: sa.Engine, client: httpx2.AsyncClient
) -> None:
    rows = hour_12_attempts()
    record(store, rows)
    samples = await scrape(client)
    expected = expected_traffic(rows, START_HOUR)
    assert_samples_equal(traffic(samples), expected)
    # spot checks of the arithmetic above, readable on their own
    live_primary = {"provider": "anthropic", "model": "claude-haiku-4-5", "key": "Primary", "source": "live"}
    assert samples[s("pulsegate_calls_total", **live_primary, outcome="success")] == 3
    assert samples[s("pulsegate_calls_total", **live_primary, outcome="error")] == 1
    assert samples[s("pulsegate_call_errors_total", **live_primary, error_class="overloaded")] == 1
    assert samples[s("pulsegate_tokens_total", **live_primary, type="cache_read")] == 64
    assert samples[s("pulsegate_cost_usd_total", **live_primary)] == pytest.approx(0.015)
    assert samples[s("pulsegate_call_duration_seconds_bucket", **live_primary, le="0.001")] == 1
    assert samples[s("pulsegate_call_duration_seconds_bucket", **live_primary, le="+Inf")] == 4
    assert samples[s("pulsegate_call_duration_seconds_sum", **live_primary)] == pytest.approx(3.5259)
    backup = {**live_primary, "key": "Backup 1"}
    assert samples[s("pulsegate_call_duration_seconds_bucket", **backup, le="+Inf")] == 2  # 900 s is past the last le
    assert (
        samples[
            s("pulsegate_probes_total", provider="anthropic", model="claude-haiku-4-5", key="Primary", outcome="error")
        ]
        == 1
    )
    assert (
        s("pulsegate_probes_total", provider="anthropic", model="claude-haiku-4-5", key="Backup 1", outcome="success")
        not in samples
    )
    no_key = {**live_primary, "key": ""}
    assert samples[s("pulsegate_call_errors_total", **no_key, error_class="queue_full")] == 1
    openai = {"provider": "openai", "model": "gpt-4.1", "key": "Primary", "source": "live"}
    assert samples[s("pulsegate_fallbacks_total", **openai)] == 1
    usage = {"gen_ai_provider_name": "openai", "gen_ai_request_model": "gpt-4.1", "key": "Primary", "source": "live"}
    assert samples[s("gen_ai_client_token_usage_sum", **usage, gen_ai_token_type="input")] == 40

    # the newest probe minute of each key (the minute tier, 24 h back: the 11:50 probe counts here)
    assert of(samples, "pulsegate_probe_last_ok") == {
        s("pulsegate_probe_last_ok", provider="anthropic", key="Backup 1"): 1.0,
        s("pulsegate_probe_last_ok", provider="anthropic", key="Primary"): 0.0,
        s("pulsegate_probe_last_ok", provider="openai", key="Primary"): 1.0,
    }
    assert of(samples, "pulsegate_probe_last_timestamp_seconds") == {
        s("pulsegate_probe_last_timestamp_seconds", provider="anthropic", key="Backup 1"): (
            START_HOUR - timedelta(minutes=10)
        ).timestamp(),
        s("pulsegate_probe_last_timestamp_seconds", provider="anthropic", key="Primary"): (
            START_HOUR + timedelta(minutes=18)
        ).timestamp(),
        s("pulsegate_probe_last_timestamp_seconds", provider="openai", key="Primary"): (
            START_HOUR + timedelta(minutes=10)
        ).timestamp(),
    }
    assert samples[s("pulsegate_store_up")] == 1.0


async def test_counters_are_monotonic_across_scrapes_and_hours(
    store: sa.Engine, client: httpx2.AsyncClient, clock: ManualClock
) -> None:
    first_rows = hour_12_attempts()
    record(store, first_rows)
    first = traffic(await scrape(client))
    again = traffic(await scrape(client))
    assert again == first  # nothing recorded: nothing moves

    clock.advance(3600)  # 13:20:30: the hour tier now holds two hours since the start hour
    more = [
        attempt(NOW + timedelta(minutes=1), 80.0, input_tokens=5, cost_usd=0.001),
        attempt(NOW + timedelta(hours=1), 2.0, error_class="overloaded"),
        attempt(NOW + timedelta(hours=1), 7.0, provider="openai", model="gpt-4.1", fell_back_from="anthropic"),
        attempt(NOW + timedelta(hours=1), 3.0, model="claude-new"),  # a new series appears
    ]
    record(store, more)
    second = traffic(await scrape(client))
    assert_samples_equal(second, expected_traffic(first_rows + more, START_HOUR))
    for key, value in first.items():
        assert second[key] >= value, key
    assert set(first) <= set(second)
    assert sum(second.values()) > sum(first.values())


async def test_live_state_gauges_come_from_live_instances_only(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    beat(
        store,
        "app-1",
        ago(2),
        {
            "anthropic": provider_state(
                3,
                used=7,
                remaining=43,
                oldest_wait_s=1.5,
                keys=[
                    key_state("Primary", 92.5),
                    key_state("Backup 1", 40, "cooldown", cooldown_remaining_s=30, consecutive_failures=3),
                ],
            ),
        },
        recorder={"spool_pending": 10, "buffered": 12, "lost": 1, "written": 100, "write_failures": 2},
    )
    beat(
        store,
        "app-2",
        ago(4),
        {
            "anthropic": provider_state(
                2, used=5, remaining=45, breaker="open", keys=[key_state("Primary", 80, "degraded")]
            ),
            "openai": provider_state(
                0, breaker="half_open", remaining=100, limit=100, keys=[key_state("Primary", 100)]
            ),
        },
    )
    # silent for a minute (three 5 s heartbeats): left out of every gauge
    beat(
        store,
        "gone",
        ago(60),
        {
            "anthropic": provider_state(
                40, used=50, remaining=0, breaker="open", keys=[key_state("Primary", 1, "disabled")]
            )
        },
        recorder={"spool_pending": 999, "lost": 999},
    )
    samples = await scrape(client)

    def gauge(name: str) -> dict[tuple, float]:
        return {labels: value for (n, labels), value in samples.items() if n == name}

    a, o = (("provider", "anthropic"),), (("provider", "openai"),)
    assert gauge("pulsegate_queue_depth") == {a: 5.0, o: 0.0}
    assert gauge("pulsegate_queue_oldest_wait_seconds") == {a: 1.5}
    assert gauge("pulsegate_rate_limit_requests_used") == {a: 12.0, o: 0.0}
    assert gauge("pulsegate_rate_limit_requests_remaining") == {a: 88.0, o: 100.0}
    assert gauge("pulsegate_rate_limit_requests_limit") == {a: 100.0, o: 100.0}
    assert gauge("pulsegate_reporting_instances") == {a: 2.0, o: 1.0}
    assert of(samples, "pulsegate_breaker_state") == {
        s("pulsegate_breaker_state", provider="anthropic", state="closed"): 1.0,
        s("pulsegate_breaker_state", provider="anthropic", state="half_open"): 0.0,
        s("pulsegate_breaker_state", provider="anthropic", state="open"): 1.0,
        s("pulsegate_breaker_state", provider="openai", state="closed"): 0.0,
        s("pulsegate_breaker_state", provider="openai", state="half_open"): 1.0,
        s("pulsegate_breaker_state", provider="openai", state="open"): 0.0,
    }
    assert of(samples, "pulsegate_key_health_score") == {
        s("pulsegate_key_health_score", provider="anthropic", key="Backup 1"): 40.0,
        s("pulsegate_key_health_score", provider="anthropic", key="Primary"): 80.0,  # the lowest live view
        s("pulsegate_key_health_score", provider="openai", key="Primary"): 100.0,
    }
    statuses = {labels: value for (n, labels), value in samples.items() if n == "pulsegate_key_status" and value}
    assert statuses == {
        (("key", "Backup 1"), ("provider", "anthropic"), ("status", "cooldown")): 1.0,
        (("key", "Primary"), ("provider", "anthropic"), ("status", "degraded")): 1.0,  # the worst live view
        (("key", "Primary"), ("provider", "openai"), ("status", "healthy")): 1.0,
    }
    assert len(of(samples, "pulsegate_key_status")) == 3 * 5
    assert samples[s("pulsegate_key_consecutive_failures", provider="anthropic", key="Backup 1")] == 3.0
    assert samples[s("pulsegate_key_cooldown_remaining_seconds", provider="anthropic", key="Backup 1")] == 28.0
    assert samples[s("pulsegate_key_cooldown_remaining_seconds", provider="openai", key="Primary")] == 0.0
    # recorders: app-1's from its heartbeat, this worker's own from status(); the stale instance is left out
    assert of(samples, "pulsegate_recorder_spool_rows") == {
        s("pulsegate_recorder_spool_rows", instance="app-1"): 10.0,
        s("pulsegate_recorder_spool_rows", instance="worker-1"): 3.0,
    }
    assert of(samples, "pulsegate_recorder_lost_rows_total") == {
        s("pulsegate_recorder_lost_rows_total", instance="app-1"): 1.0,
        s("pulsegate_recorder_lost_rows_total", instance="worker-1"): 2.0,
    }
    assert samples[s("pulsegate_recorder_buffered_rows", instance="worker-1")] == 5.0
    assert samples[s("pulsegate_recorder_written_rows_total", instance="app-1")] == 100.0
    assert samples[s("pulsegate_recorder_write_failures_total", instance="worker-1")] == 1.0


async def test_instances_and_the_worker_itself(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    rows = [
        ("worker-1", "worker", ago(1)),
        ("worker-0", "worker", ago(3600)),
        ("app-1", "client", ago(2)),
        ("gw-1", "gateway", ago(4)),
        ("gone", "client", ago(60)),
        ("ancient", "client", ago(3 * 86400)),
    ]
    with store.begin() as connection:
        connection.execute(
            instances.insert(),
            [
                {"instance_id": i, "kind": k, "host": "h", "pid": 1, "first_seen": ago(7200), "last_seen": t}
                for i, k, t in rows
            ],
        )
    samples = await scrape(client)
    assert of(samples, "pulsegate_instances") == {
        s("pulsegate_instances", kind="client", state="live"): 1.0,
        s("pulsegate_instances", kind="client", state="stale"): 1.0,
        s("pulsegate_instances", kind="worker", state="live"): 1.0,
        s("pulsegate_instances", kind="worker", state="stale"): 1.0,
        s("pulsegate_instances", kind="gateway", state="live"): 1.0,
        s("pulsegate_instances", kind="gateway", state="stale"): 0.0,
    }
    assert of(samples, "pulsegate_instance_last_heartbeat_timestamp_seconds") == {
        s("pulsegate_instance_last_heartbeat_timestamp_seconds", kind="client"): ago(2).timestamp(),
        s("pulsegate_instance_last_heartbeat_timestamp_seconds", kind="worker"): ago(1).timestamp(),
        s("pulsegate_instance_last_heartbeat_timestamp_seconds", kind="gateway"): ago(4).timestamp(),
    }
    job = "probes:anthropic:Primary"
    assert samples[s("pulsegate_worker_leader")] == 1.0
    assert of(samples, "pulsegate_job_last_run_timestamp_seconds") == {
        s("pulsegate_job_last_run_timestamp_seconds", job=job): datetime(2026, 3, 10, 12, 15, tzinfo=UTC).timestamp()
    }
    assert of(samples, "pulsegate_job_last_run_ok") == {s("pulsegate_job_last_run_ok", job=job): 1.0}
    assert of(samples, "pulsegate_job_runs_total") == {s("pulsegate_job_runs_total", job=job): 4.0}
    assert of(samples, "pulsegate_job_failures_total") == {s("pulsegate_job_failures_total", job=job): 1.0}
    assert of(samples, "pulsegate_job_next_run_timestamp_seconds") == {
        s("pulsegate_job_next_run_timestamp_seconds", job=job): datetime(2026, 3, 10, 12, 25, tzinfo=UTC).timestamp()
    }


async def test_an_empty_store_scrapes_cleanly(client: httpx2.AsyncClient) -> None:
    samples = await scrape(client)
    assert traffic(samples) == {}
    assert samples[s("pulsegate_store_up")] == 1.0
    assert all(value == 0.0 for (name, _), value in samples.items() if name == "pulsegate_instances")


async def test_openmetrics_is_offered_and_valid(store: sa.Engine, client: httpx2.AsyncClient) -> None:
    record(store, hour_12_attempts())
    beat(store, "app-1", ago(2), {"anthropic": provider_state(1, keys=[key_state("Primary", 90)])})
    response = await client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert response.text.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(response.text)}  # the strict parser
    text_families = {family.name for family in text_string_to_metric_families((await client.get("/metrics")).text)}
    assert set(families) == text_families
    assert families["pulsegate_calls"].type == "counter"
    assert families["pulsegate_call_duration_seconds"].type == "histogram"
    assert families["gen_ai_client_token_usage"].type == "histogram"
    assert families["pulsegate_key_status"].type == "gauge"
