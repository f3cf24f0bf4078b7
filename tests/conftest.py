"""Shared fixtures: real SQLite and PostgreSQL stores, Redis, and a manual clock.

PostgreSQL and Redis are the real servers named by ``PULSEGATE_TEST_DATABASE_URL`` and ``PULSEGATE_TEST_REDIS_URL``;
the Redis Cluster is three ``redis-server`` processes the session starts on loopback itself
(:mod:`tests.support.redis_cluster`). When one is unreachable its tests skip with the reason — except with ``CI``
set, where they fail: CI must never go green by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from pulsegate import migrations
from pulsegate.core.clock import ManualClock
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import ALL_TABLES
from tests.support.redis_cluster import RedisClusterProcesses
from tests.support.sdk_versions import floor_problem, report_header

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
IN_CI = bool(os.environ.get("CI"))


def pytest_report_header(config: pytest.Config) -> str:
    return report_header()


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = floor_problem()
    if problem is not None:
        pytest.exit(problem, returncode=3)


def _unavailable(what: str, reason: str) -> None:
    message = f"{what} is not reachable ({reason})"
    if IN_CI:
        pytest.fail(f"{message}; CI must run these tests — start it (see .ci/run)", pytrace=False)
    pytest.skip(f"{message}; start it or set the URL to run these tests")


def postgres_server_url() -> sa.URL:
    return sa.make_url(os.environ.get("PULSEGATE_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))


class ScratchPostgres:
    """Creates throwaway databases on the test server so tests never touch a database they did not make."""

    def __init__(self, server_url: sa.URL) -> None:
        self.server_url = server_url
        self._admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.created: list[str] = []

    def check(self) -> str | None:
        try:
            with self._admin.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except sa.exc.OperationalError as exc:
            return str(exc.orig).splitlines()[0]
        return None

    def create(self, prefix: str = "pulsegate_test") -> str:
        name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return self.server_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self._admin.connect() as connection:
            for name in self.created:
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.created.clear()
        self._admin.dispose()


@pytest.fixture(scope="session")
def scratch_postgres() -> Iterator[ScratchPostgres]:
    scratch = ScratchPostgres(postgres_server_url())
    problem = scratch.check()
    if problem:
        _unavailable(f"PostgreSQL at {scratch.server_url.host}:{scratch.server_url.port}", problem)
    yield scratch
    scratch.drop_all()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    url = os.environ.get("PULSEGATE_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _unavailable(f"Redis at {url}", str(exc))
    finally:
        client.close()
    return url


def start_redis_cluster(directory: Path) -> RedisClusterProcesses:
    """A started three-master cluster in ``directory``, or the test skips (fails with ``CI`` set) saying why."""
    problem = RedisClusterProcesses.missing_tools()
    if problem:
        _unavailable("a Redis Cluster on loopback", problem)
    cluster = RedisClusterProcesses(directory)
    try:
        cluster.start()
    except Exception as exc:  # whatever stopped it (a port taken meanwhile, a node that exited) is the reason
        cluster.stop()
        _unavailable("a Redis Cluster on loopback", f"{type(exc).__name__}: {exc}")
    return cluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """Three masters on free loopback ports for the whole session, stopped at its end."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(redis_cluster: RedisClusterProcesses) -> str:
    return redis_cluster.url


@pytest.fixture(scope="session")
def sqlite_store_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("store") / "pulsegate.db"
    url = f"sqlite:///{path}"
    migrations.upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_store_url(scratch_postgres: ScratchPostgres) -> str:
    url = scratch_postgres.create()
    migrations.upgrade(url)
    return url


def _empty(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in ALL_TABLES)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in ALL_TABLES:
                connection.execute(table.delete())


@pytest.fixture(scope="session")
def _store_engines(request: pytest.FixtureRequest) -> Iterator[dict[str, sa.Engine]]:
    engines: dict[str, sa.Engine] = {}
    yield engines
    for engine in engines.values():
        engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, _store_engines: dict[str, sa.Engine]) -> Iterator[sa.Engine]:
    """A migrated, empty store on each database: migrated once per session, emptied before each test."""
    kind: str = request.param
    if kind not in _store_engines:
        url = request.getfixturevalue(f"{kind}_store_url")
        _store_engines[kind] = create_store_engine(url)
    engine = _store_engines[kind]
    _empty(engine)
    yield engine


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


#: Test files that judge wall-clock time (deadlines, periods, draw times) or race processes against each other: a
#: second test running beside them on a 2-CPU machine would make them flaky, so `make test` runs everything else two
#: at a time (pytest-xdist) and then these alone.
SERIAL_FILES = (
    "tests/hardening/test_worker_kill.py",
    "tests/hardening/test_redis_outage.py",
    "tests/hardening/test_database_outage.py",
    "tests/hardening/test_provider_chaos.py",
    "tests/hardening/test_webhook_faults.py",
    "tests/demo/",
    "tests/limits/test_multiprocess.py",
    "tests/worker/test_worker_process.py",
    "tests/client/test_shared_state_processes.py",
    "tests/client/test_honest_accounting.py",
    "tests/client/test_cancellation_rows.py",
    "tests/client/test_stream_stalls.py",
    "tests/dashboard/test_overview_live.py",
    "tests/limits/test_redis_link.py",
    "tests/worker/test_leadership.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(str(config.rootpath))
    for item in items:
        where = Path(str(item.path)).relative_to(root).as_posix()
        if where.startswith(SERIAL_FILES):
            item.add_marker(pytest.mark.serial)
