"""Nothing lost, nothing doubled: outages mid-load, the spool and its order, losses counted, exit flush, hashing."""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import sqlite3
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from benchmarks.support.tcp_proxy import TcpProxy
from pulsegate import migrations
from pulsegate.core.recording import AttemptRecord, SqlRecorder
from pulsegate.core.recording.batch_writer import BatchWriter
from pulsegate.core.recording.spool import Spool
from pulsegate.core.store import create_store_engine
from tests.recording.support import assert_rollups_match_raw, hour_ago, random_attempt

UNREACHABLE = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
ROOT = Path(__file__).resolve().parents[2]


def count(engine: sa.Engine, sql: str = "SELECT COUNT(*) FROM api_usage_metrics") -> int:
    with engine.connect() as connection:
        return int(connection.execute(sa.text(sql)).scalar_one())


@contextmanager
def cuttable(store: sa.Engine) -> Iterator[tuple[sa.Engine, Callable[[], None], Callable[[], None]]]:
    """An engine on the test store whose database the test can take away and give back."""
    url = store.url
    if store.dialect.name == "postgresql":
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        engine = create_store_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
        try:
            yield engine, proxy.cut, proxy.restore
        finally:
            engine.dispose()
            proxy.close()
        return
    # SQLite: another connection holds the write lock; the recorder's engine gives up after 20 ms, not 10 s
    engine = create_store_engine(url.render_as_string(hide_password=False))

    @sa.event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_connection: Any, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=20")

    locker = sqlite3.connect(url.database or "", isolation_level=None, check_same_thread=False)
    try:
        yield engine, lambda: locker.execute("BEGIN EXCLUSIVE"), lambda: locker.execute("COMMIT")
    finally:
        if locker.in_transaction:
            locker.execute("COMMIT")
        locker.close()
        engine.dispose()


def test_cut_the_database_mid_load_then_restore(store: sa.Engine, tmp_path: Path) -> None:
    rng = random.Random(11)
    start = hour_ago()
    timings: dict[str, list[int]] = {"baseline": [], "outage": []}

    def load(n: int, phase: str) -> None:
        for _ in range(n):
            attempt = random_attempt(rng, start)
            began = time.perf_counter_ns()
            recorder.record(attempt)
            timings[phase].append(time.perf_counter_ns() - began)

    with cuttable(store) as (engine, cut, restore):
        recorder = SqlRecorder(engine, batch_size=50, interval_s=0.005, retry_interval_s=0.05, spool_dir=tmp_path)
        try:
            load(500, "baseline")
            assert recorder.flush()
            cut()
            for _ in range(5):  # keep calling while the database is away
                load(200, "outage")
                time.sleep(0.01)
            assert not recorder.flush(timeout_s=10)
            outage = recorder.stats()
            assert outage["write_failures"] > 0
            assert outage["spooled"] > 0
            assert outage["lost"] == 0
            assert outage["buffered"] == 1000  # all of it waiting, in the spool
            restore()
            load(500, "baseline")
            assert recorder.flush(timeout_s=20)
        finally:
            recorder.close()
    stats = recorder.stats()
    assert stats["lost"] == 0 and stats["buffered"] == 0
    assert stats["replayed"] >= 1000
    assert count(store) == 2000
    assert count(store, "SELECT COUNT(DISTINCT call_id) FROM api_usage_metrics") == 2000
    assert count(store, "SELECT SUM(calls) FROM metric_rollups_1m") == 2000
    assert count(store, "SELECT SUM(calls) FROM metric_rollups_1h") == 2000
    assert assert_rollups_match_raw(store) == 2000
    # the call path never waited for the database
    p99 = {phase: statistics.quantiles(values, n=100)[98] for phase, values in timings.items()}
    assert p99["outage"] < 100_000, p99  # ns


def test_while_the_database_is_away_replays_only_ask_whether_it_is_back(store: sa.Engine, tmp_path: Path) -> None:
    """Retries during an outage check the database before decoding the spool: one failed write in all (the batch
    that found it gone), however many retry intervals pass; then everything lands once."""
    rng = random.Random(5)
    with cuttable(store) as (engine, cut, restore):
        recorder = SqlRecorder(engine, batch_size=50, interval_s=0.005, retry_interval_s=0.02, spool_dir=tmp_path)
        try:
            for _ in range(50):
                recorder.record(random_attempt(rng, hour_ago()))
            assert recorder.flush()
            cut()
            for _ in range(150):
                recorder.record(random_attempt(rng, hour_ago()))
            assert not recorder.flush(timeout_s=2)
            time.sleep(0.5)  # some 25 retry intervals
            stats = recorder.stats()
            assert (stats["write_failures"], stats["spool_pending"], stats["replayed"]) == (1, 150, 0)
            restore()
            assert recorder.flush(timeout_s=20)
        finally:
            recorder.close()
    stats = recorder.stats()
    assert (stats["write_failures"], stats["replayed"], stats["lost"]) == (1, 150, 0)
    assert count(store) == 200


def test_the_spool_is_replayed_in_order(store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[Any] = []
    original = BatchWriter.write

    def spy(self: BatchWriter, engine: sa.Engine, rows: list[AttemptRecord], **kwargs: Any) -> int:
        added = original(self, engine, rows, **kwargs)
        written.extend(row.call_id for row in rows)
        return added

    monkeypatch.setattr(BatchWriter, "write", spy)
    unreachable = create_store_engine(UNREACHABLE)
    recorder = SqlRecorder(
        unreachable, batch_size=20, max_batch_size=20, interval_s=3600, retry_interval_s=3600, spool_dir=tmp_path
    )
    rng = random.Random(3)
    attempts = [random_attempt(rng, hour_ago()) for _ in range(230)]
    try:
        for index, attempt in enumerate(attempts[:200]):
            recorder.record(attempt)
            if index % 40 == 39:
                assert not recorder.flush()
        assert recorder.stats()["spool_pending"] == 200
        (spool_file,) = tmp_path.rglob("*.jsonl")
        lines = spool_file.read_text().splitlines()
        assert len(lines) == 10  # one line per batch
        for attempt in attempts[200:]:  # recorded after the outage, before the replay: they come after
            recorder.record(attempt)
        recorder.engine = store
        assert recorder.flush()
    finally:
        recorder.close()
        unreachable.dispose()
    assert written == [a.call_id for a in attempts]
    assert count(store) == 230
    assert recorder.stats()["replayed"] == 200
    assert not list(tmp_path.rglob("*.jsonl"))  # a fully replayed spool leaves nothing behind


def adopt_and_flush(store: sa.Engine, spool_dir: Path, pending: int) -> None:
    """A new recorder finds ``pending`` rows left in the spool and replays them all."""
    recorder = SqlRecorder(store, spool_dir=spool_dir)
    try:
        assert recorder.stats()["spool_pending"] == pending
        assert recorder.flush()
    finally:
        recorder.close()


def test_a_spool_left_by_a_dead_recorder_is_adopted(store: sa.Engine, tmp_path: Path) -> None:
    rng = random.Random(5)
    orphan = Spool(tmp_path, store.url.render_as_string(hide_password=True))
    orphan.append([random_attempt(rng, hour_ago()).as_row() for _ in range(30)])
    orphan.append([random_attempt(rng, hour_ago()).as_row() for _ in range(12)])
    orphan.close()  # the process died with rows in its spool
    adopt_and_flush(store, tmp_path, pending=42)
    assert count(store) == 42
    assert assert_rollups_match_raw(store) == 42
    assert not list(tmp_path.rglob("*.jsonl"))


def test_a_spool_written_by_the_earlier_encoder_is_replayed(store: sa.Engine, tmp_path: Path) -> None:
    """Spool lines from before orjson (the standard library's encoder, UUIDs as bare hex) survive an upgrade."""
    import json
    from datetime import datetime

    def old_default(value: object) -> object:
        if isinstance(value, datetime):
            return value.isoformat()
        if isinstance(value, uuid.UUID):
            return value.hex
        raise TypeError(type(value).__name__)

    rng = random.Random(8)
    batches = [[random_attempt(rng, hour_ago()).as_row() for _ in range(n)] for n in (20, 7)]
    orphan = Spool(tmp_path, store.url.render_as_string(hide_password=True))
    orphan.append(batches[0])
    orphan.close()
    (spool_file,) = tmp_path.rglob("*.jsonl")
    spool_file.write_bytes(b"".join(json.dumps(b, default=old_default).encode() + b"\n" for b in batches))
    adopt_and_flush(store, tmp_path, pending=27)
    ids = {row["id"] for batch in batches for row in batch}
    with store.connect() as connection:
        stored = {uuid.UUID(str(v)) for v in connection.execute(sa.text("SELECT id FROM api_usage_metrics")).scalars()}
    assert stored == ids


def test_a_full_buffer_with_an_unwritable_spool_counts_losses(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    not_a_folder = tmp_path / "spool"
    not_a_folder.write_text("a file where the spool folder should be")
    unreachable = create_store_engine(UNREACHABLE)
    recorder = SqlRecorder(unreachable, max_buffer=10, batch_size=5, interval_s=3600, spool_dir=not_a_folder)
    rng = random.Random(2)
    caplog.set_level(logging.WARNING, logger="pulsegate.core.recording")
    try:
        for _ in range(10):
            recorder.record(random_attempt(rng, hour_ago()))
        assert not recorder.flush()
        stats = recorder.stats()
        assert (stats["in_memory"], stats["lost"]) == (10, 0)  # kept, waiting
        assert stats["spool_failures"] >= 1
        for _ in range(15):
            recorder.record(random_attempt(rng, hour_ago()))
        assert recorder.stats()["lost"] == 15
        assert not recorder.flush()
        assert any("15 attempt rows lost" in r.getMessage() for r in caplog.records)
    finally:
        recorder.close()
        unreachable.dispose()
    assert recorder.stats()["lost"] == 25  # the 10 kept in memory had nowhere to go at close
    assert recorder.stats()["dropped"] == 25


def test_close_flushes_what_is_buffered(store: sa.Engine, tmp_path: Path) -> None:
    recorder = SqlRecorder(store, batch_size=100_000, interval_s=3600, spool_dir=tmp_path)
    rng = random.Random(8)
    for _ in range(1234):
        recorder.record(random_attempt(rng, hour_ago()))
    assert count(store) == 0
    recorder.close()
    assert count(store) == 1234
    assert recorder.stats()["written"] == 1234


def test_interpreter_exit_flushes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'exit.db'}"
    migrations.upgrade(url)
    script = textwrap.dedent(
        f"""
        import random
        from pulsegate.core.recording import AttemptRecord, SqlRecorder
        from pulsegate.core.store import create_store_engine
        from tests.recording.support import hour_ago, random_attempt
        recorder = SqlRecorder(create_store_engine({url!r}), interval_s=3600, spool_dir={str(tmp_path)!r})
        rng = random.Random(1)
        for _ in range(777):
            recorder.record(random_attempt(rng, hour_ago()))
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
    engine = create_store_engine(url)
    try:
        assert count(engine) == 777
    finally:
        engine.dispose()


def test_user_ids_are_hashed_at_record_time(store: sa.Engine, tmp_path: Path) -> None:
    key = "a-long-secret-for-user-ids"
    expected = hmac.new(key.encode(), b"alice@example.com", hashlib.sha256).hexdigest()[:32]
    rng = random.Random(9)

    # while the database is away the spool never sees the raw id either
    unreachable = create_store_engine(UNREACHABLE)
    spooling = SqlRecorder(unreachable, interval_s=3600, spool_dir=tmp_path / "a", user_id_key=key)
    attempt = random_attempt(rng, hour_ago())
    attempt.user_id = "alice@example.com"
    spooling.record(attempt)
    assert not spooling.flush()
    spooled = "".join(p.read_text() for p in (tmp_path / "a").rglob("*.jsonl"))
    assert expected in spooled and "alice" not in spooled
    spooling.close()
    unreachable.dispose()

    recorder = SqlRecorder(store, interval_s=3600, spool_dir=tmp_path / "b", user_id_key=key)
    plain = SqlRecorder(store, interval_s=3600, spool_dir=tmp_path / "c")
    try:
        hashed, anonymous, kept = (random_attempt(rng, hour_ago()) for _ in range(3))
        hashed.user_id, anonymous.user_id, kept.user_id = "alice@example.com", None, "bob"
        recorder.record(hashed)
        recorder.record(anonymous)
        plain.record(kept)
        assert recorder.flush() and plain.flush()
    finally:
        recorder.close()
        plain.close()
    with store.connect() as connection:
        stored = {r[0]: r[1] for r in connection.execute(sa.text("SELECT call_id, user_id FROM api_usage_metrics"))}
    by_call = {str(k).replace("-", ""): v for k, v in stored.items()}
    assert by_call[hashed.call_id.hex] == expected
    assert by_call[anonymous.call_id.hex] is None
    assert by_call[kept.call_id.hex] == "bob"  # without HASH_USER_IDS the id is stored as given


def test_a_row_the_store_refuses_never_blocks_the_rest(store: sa.Engine, tmp_path: Path) -> None:
    rng = random.Random(6)
    recorder = SqlRecorder(store, interval_s=3600, spool_dir=tmp_path)
    try:
        good = [random_attempt(rng, hour_ago()) for _ in range(5)]
        bad = random_attempt(rng, hour_ago())
        bad.provider = "bogus"  # violates the provider CHECK: the whole batch is refused
        for attempt in [*good[:2], bad, *good[2:]]:
            recorder.record(attempt)
        assert recorder.flush()  # salvaged row by row from the spool
        stats = recorder.stats()
        assert (stats["rejected"], stats["written"], stats["buffered"]) == (1, 5, 0)
        later = random_attempt(rng, hour_ago())
        recorder.record(later)
        assert recorder.flush()
    finally:
        recorder.close()
    assert count(store) == 6
    assert assert_rollups_match_raw(store) == 6


def test_a_refused_first_batch_does_not_leave_its_connection_without_a_staging_table(store: sa.Engine) -> None:
    """The staging tables are created in a connection's first batch; when the store refuses that batch, their
    creation is rolled back with it, and the next batch on the same connection must create them again."""
    from pulsegate.core.recording.batch_writer import BatchWriter
    from pulsegate.core.store import create_store_engine

    fresh = create_store_engine(store.url.render_as_string(hide_password=False), pool_size=1)  # one connection
    rng = random.Random(11)
    writer = BatchWriter(fresh.dialect)
    try:
        bad = random_attempt(rng, hour_ago())
        bad.provider = "bogus"  # violates the provider CHECK
        with pytest.raises(sa.exc.IntegrityError):
            writer.write(fresh, [bad])
        good = [random_attempt(rng, hour_ago()) for _ in range(3)]
        assert writer.write(fresh, good) == 3
        with fresh.connect() as connection:
            ids = {uuid.UUID(str(v)) for v in connection.execute(sa.text("SELECT id FROM api_usage_metrics")).scalars()}
        assert {attempt.id for attempt in good} <= ids
    finally:
        fresh.dispose()
