"""The probe-request table on real SQLite and PostgreSQL: request, claim (once, by one claimer), finish, status."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.ops.probe import ProbeError, ProbeResult
from pulsegate.core.ops.probe_requests import (
    claim_probe_requests,
    finish_probe_request,
    probe_request_status,
    request_probe,
)
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import probe_requests

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _result(label: str, ok: bool) -> ProbeResult:
    return ProbeResult(
        provider="anthropic",
        key_label=label,
        model="claude-haiku-4-5",
        ok=ok,
        outcome="success" if ok else "error",
        error_class=None if ok else "auth",
        http_status=200 if ok else 401,
        latency_ms=41.25,
        input_tokens=1 if ok else 0,
        output_tokens=1 if ok else 0,
        cost_usd=6e-06 if ok else 0.0,
        message="ok" if ok else "anthropic key 'Backup 1': 401 auth: invalid x-api-key",
        call_id="00000000-0000-4000-8000-000000000001",
        ts=NOW,
    )


def test_request_claim_finish_and_status(store: sa.Engine) -> None:
    first = request_probe(store, requested_by="dashboard", now=NOW, provider="anthropic")
    second = request_probe(store, requested_by="api", now=NOW + timedelta(seconds=1), key_label="Primary", model="m")
    assert second > first
    assert probe_request_status(store, first) == {
        "id": first,
        "status": "pending",
        "requested_by": "dashboard",
        "provider": "anthropic",
        "key_label": None,
        "model": None,
        "created_at": "2026-03-01T12:00:00+00:00",
        "claimed_by": None,
        "claimed_at": None,
        "finished_at": None,
        "results": [],
        "error": None,
    }

    claimed = claim_probe_requests(store, "worker-a", NOW + timedelta(seconds=2))
    assert [(c.id, c.provider, c.key_label, c.model, c.requested_by) for c in claimed] == [
        (first, "anthropic", None, None, "dashboard"),
        (second, None, "Primary", "m", "api"),
    ]
    assert all(c.claimed_by == "worker-a" and c.claimed_at == NOW + timedelta(seconds=2) for c in claimed)
    assert claim_probe_requests(store, "worker-b", NOW + timedelta(seconds=3)) == []

    results = [_result("Primary", True), _result("Backup 1", False)]
    assert finish_probe_request(store, first, results, NOW + timedelta(seconds=4), worker_id="worker-a") is True
    assert finish_probe_request(store, second, [], NOW + timedelta(seconds=4), error="key: no key labelled 'X'")

    done = probe_request_status(store, first)
    assert done is not None
    assert (done["status"], done["claimed_by"], done["error"]) == ("done", "worker-a", None)
    assert (done["claimed_at"], done["finished_at"]) == ("2026-03-01T12:00:02+00:00", "2026-03-01T12:00:04+00:00")
    assert done["results"] == [r.to_json() for r in results]
    assert done["results"][1]["error_class"] == "auth" and done["results"][0]["ts"] == "2026-03-01T12:00:00+00:00"
    failed = probe_request_status(store, second)
    assert failed is not None
    assert (failed["status"], failed["results"], failed["error"]) == ("failed", [], "key: no key labelled 'X'")
    assert probe_request_status(store, second + 1000) is None
    # finished requests are never claimed again, however old
    assert claim_probe_requests(store, "worker-b", NOW + timedelta(days=1)) == []


def test_claims_are_oldest_first_and_bounded(store: sa.Engine) -> None:
    ids = [request_probe(store, requested_by="api", now=NOW + timedelta(seconds=i)) for i in range(5)]
    assert [c.id for c in claim_probe_requests(store, "w", NOW, limit=2)] == ids[:2]
    assert [c.id for c in claim_probe_requests(store, "w", NOW, limit=10)] == ids[2:]


def test_a_request_left_running_by_a_dead_worker_is_claimed_again_after_five_minutes(store: sa.Engine) -> None:
    request_id = request_probe(store, requested_by="api", now=NOW)
    (claim,) = claim_probe_requests(store, "worker-dead", NOW)
    assert claim.id == request_id
    assert claim_probe_requests(store, "worker-b", NOW + timedelta(minutes=5)) == []  # not stale yet
    stale = NOW + timedelta(minutes=5, seconds=1)
    (again,) = claim_probe_requests(store, "worker-b", stale)
    assert (again.id, again.claimed_by, again.claimed_at) == (request_id, "worker-b", stale)
    # the dead worker's late answer does not overwrite the newer run; the new claimer's does
    later = NOW + timedelta(minutes=6)
    assert finish_probe_request(store, request_id, [], later, worker_id="worker-dead") is False
    assert finish_probe_request(store, request_id, [_result("Primary", True)], later, worker_id="worker-b") is True
    status = probe_request_status(store, request_id)
    assert status is not None and (status["status"], status["claimed_by"]) == ("done", "worker-b")


def test_concurrent_claimers_never_share_a_request(store: sa.Engine) -> None:
    total = 60
    ids = {request_probe(store, requested_by="api", now=NOW) for _ in range(total)}
    claims: dict[str, list[int]] = {f"worker-{n}": [] for n in range(4)}
    barrier = threading.Barrier(len(claims))
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        try:
            barrier.wait()
            idle = 0
            while idle < 3:  # a few empty rounds in a row: everything is taken
                taken = claim_probe_requests(store, name, NOW, limit=3)
                claims[name].extend(request.id for request in taken)
                idle = 0 if taken else idle + 1
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(name,)) for name in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    every = [request_id for taken in claims.values() for request_id in taken]
    assert sorted(every) == sorted(ids)  # each request once, none lost
    with store.connect() as connection:
        owners = dict(connection.execute(sa.select(probe_requests.c.id, probe_requests.c.claimed_by)).all())
    assert all(owners[request_id] == name for name, taken in claims.items() for request_id in taken)


@pytest.mark.postgres
def test_postgres_claim_skips_a_row_another_claimer_holds_without_waiting(postgres_store_url: str) -> None:
    # lock_timeout: a claim that waited for the held row would fail in 2 s instead of skipping it
    engine = create_store_engine(postgres_store_url, connect_args={"options": "-c lock_timeout=2000"})
    try:
        with engine.begin() as connection:
            connection.execute(probe_requests.delete())
        first = request_probe(engine, requested_by="api", now=NOW)
        second = request_probe(engine, requested_by="api", now=NOW)
        with engine.connect() as holder:  # another worker, mid-claim: row `first` is locked
            transaction = holder.begin()
            locked = sa.select(probe_requests.c.id).where(probe_requests.c.id == first).with_for_update()
            assert holder.execute(locked).scalar_one() == first

            assert [r.id for r in claim_probe_requests(engine, "worker-b", NOW)] == [second]

            transaction.rollback()
        assert [r.id for r in claim_probe_requests(engine, "worker-c", NOW)] == [first]
    finally:
        with engine.begin() as connection:
            connection.execute(probe_requests.delete())
        engine.dispose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "gemini"}, "provider: unknown provider 'gemini'; expected one of anthropic, openai"),
        ({"key_label": "  "}, "key: expected a non-empty string, got '  '"),
        ({"model": "m" * 129}, "model: at most 128 characters, got 129"),
        ({"requested_by": ""}, "requested_by: expected a non-empty string, got ''"),
        (
            {"now": datetime(2026, 3, 1)},
            "now: expected a timezone-aware datetime, got datetime.datetime(2026, 3, 1, 0, 0)",
        ),
    ],
)
def test_bad_requests_name_the_field(store: sa.Engine, kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"requested_by": "api", "now": NOW, **kwargs}
    with pytest.raises(ProbeError) as caught:
        request_probe(store, **arguments)  # type: ignore[arg-type]
    assert str(caught.value) == message
    with store.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(probe_requests)).scalar_one() == 0


def test_claim_validates_its_arguments(store: sa.Engine) -> None:
    with pytest.raises(ProbeError, match=r"^limit: expected an integer >= 1, got 0$"):
        claim_probe_requests(store, "w", NOW, limit=0)
    with pytest.raises(ProbeError, match=r"^worker_id: is required$"):
        claim_probe_requests(store, None, NOW)  # type: ignore[arg-type]
