"""The shared limiter and the shared key/breaker state on a real three-master Redis Cluster (started by the session,
``redis_cluster``): the link finds out by itself that the server is a cluster, each script's keys share one slot
while different owners' keys spread over the nodes, scripts reach nodes that never saw them, a cluster that goes away
degrades once to local limits and is used again when it returns, and ``pulsegate settings`` says ``cluster``."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.breaker import CircuitBreaker
from pulsegate.core.clock import ManualClock
from pulsegate.core.keys.pool import KeyPool
from pulsegate.core.limits import Demand, LimitSpec, RedisRateLimiter
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import KeyLimits, ProviderRuntime
from pulsegate.core.redis_cluster import describe_mode
from pulsegate.core.redis_link import RedisLink, hash_tagged
from pulsegate.core.shared_state.redis import RedisSharedState
from pulsegate.core.user_limits import UserLimits
from tests.conftest import start_redis_cluster
from tests.limits.conftest import delete_prefix, unique_prefix
from tests.support.processes import run_cli
from tests.support.redis_cluster import RedisClusterProcesses

pytestmark = pytest.mark.redis_cluster

SPEC = LimitSpec(limit=3.0, period_s=60.0)
TPM = LimitSpec(limit=1_000.0, period_s=60.0)
KEYS = [
    ApiKey(Provider.ANTHROPIC, label, f"ANTHROPIC_API_KEY{suffix}", f"sk-ant-test-{label[0]}{suffix}-{'x' * 24}")
    for label, suffix in (("Primary", ""), ("Backup 1", "_2"))
]
#: User ids that would break a naive hash tag: braces, colons, an empty-looking group.
ODD_USERS = ["alice", "a:b:c", "{x}", "}y{", "z}", "{", ":", ""]


class _Queue:
    respec = None
    retune_at = None


def runtime(provider: Provider = Provider.ANTHROPIC) -> ProviderRuntime:
    """A provider's runtime as AIClient builds it, for its demand lists (no adapter, queue or breaker needed)."""
    return ProviderRuntime(
        provider=provider,
        pool=KeyPool(provider, KEYS),
        adapter=None,  # type: ignore[arg-type]
        queue=_Queue(),  # type: ignore[arg-type]
        breaker=None,  # type: ignore[arg-type]
        rpm=SPEC,
        tpm=TPM,
        period_s=60.0,
        key_limits={key.fingerprint: KeyLimits(rpm=SPEC, tpm=TPM) for key in KEYS},
    )


def script_key_lists() -> list[list[str]]:
    """The Redis keys of every demand list one limiter call carries, and of the state exchange, as built in use."""
    lists: list[list[str]] = []
    for provider in Provider:
        owned = runtime(provider)
        lists.append([demand.key for demand in owned.provider_demands(100)])
        lists += [[demand.key for demand in owned.key_demands(key, 100)] for key in KEYS]
    for scope in ("user", "feature"):
        limits = UserLimits(rpm=SPEC, tpm=SPEC, scope=scope)
        hashed = UserLimits(rpm=SPEC, tpm=SPEC, scope=scope, hash_key=b"k" * 32)
        lists += [[demand.key for demand in owner.demands(who, 10)] for owner in (limits, hashed) for who in ODD_USERS]
    redis_keys = [[hash_tagged("pulsegate:limit:", name) for name in names] for names in lists]
    for provider in Provider:
        redis_keys.append([hash_tagged("pulsegate:state:", f"{provider.value}:{kind}") for kind in ("keys", "breaker")])
    return redis_keys


def test_the_keys_of_every_script_share_one_slot() -> None:
    """Redis Cluster refuses a script whose keys span slots: one limiter call names one owner's keys only."""
    lists = script_key_lists()
    assert all(len(keys) == 2 for keys in lists)  # rpm + tpm, or keys + breaker: two keys every time
    assert [keys for keys in lists if len({key_slot(key.encode()) for key in keys}) != 1] == []


@pytest.fixture
def cluster_prefix(redis_cluster_url: str) -> Iterator[str]:
    prefix = unique_prefix()
    yield prefix
    delete_prefix(redis_cluster_url, prefix)


async def test_the_link_asks_the_server_which_kind_it_is(redis_cluster_url: str, redis_url: str) -> None:
    cluster, single = RedisLink(redis_cluster_url, timeout_s=1.0), RedisLink(redis_url, timeout_s=1.0)
    assert (cluster.mode, single.mode) == (None, None)
    for link in (cluster, single):  # a peek: nothing is written
        assert await RedisRateLimiter(link=link).wait_time([Demand("anthropic:rpm", SPEC)]) == 0.0
    assert (cluster.mode, single.mode, cluster.degraded, single.degraded) == ("cluster", "single", False, False)
    await cluster.aclose()
    await single.aclose()


async def test_limits_and_shared_state_live_on_several_nodes_and_stay_exact(
    redis_cluster: RedisClusterProcesses, redis_cluster_url: str, cluster_prefix: str, clock: ManualClock
) -> None:
    link = RedisLink(redis_cluster_url, clock=clock, timeout_s=1.0)
    limiter = RedisRateLimiter(link=link, prefix=cluster_prefix, clock=clock)
    state_prefix = cluster_prefix.replace("limit", "state")
    shared = RedisSharedState(link, prefix=state_prefix, clock=clock)
    owners = [runtime(provider).provider_demands(100) for provider in Provider]
    owners += [runtime().key_demands(key, 100) for key in KEYS]
    owners += [UserLimits(rpm=SPEC, tpm=TPM).demands(f"user-{n}", 10) for n in range(6)]
    try:
        for demands in owners:  # a burst of 3 requests each, then a wait of exactly one request's interval (20 s)
            waits = [await limiter.try_acquire(demands) for _ in range(4)]
            assert waits == [0.0, 0.0, 0.0, pytest.approx(20.0)], demands[0].key
        providers = ["anthropic", "openai", "mistral", "cohere"]
        for name in providers:
            pool = KeyPool(Provider.ANTHROPIC, KEYS, clock)
            shared.attach(name, pool, CircuitBreaker(name, clock))
            pool.state(KEYS[0]).record_success(clock.monotonic())
            await shared.sync(name)  # one outcome told: the provider's keys hash is written
        assert not link.degraded
        assert link.mode == "cluster"

        names = [hash_tagged(cluster_prefix, d.key) for demands in owners for d in demands]
        names += [hash_tagged(state_prefix, f"{name}:keys") for name in providers]
        router = RedisCluster.from_url(redis_cluster_url)
        try:
            expected = Counter(router.get_node_from_key(name).port for name in names)
            state = router.hgetall(hash_tagged(state_prefix, "mistral:keys"))
        finally:
            router.close()
        held = redis_cluster.keys_per_node("pulsegate:*:test-" + cluster_prefix.split("test-")[1] + "*")
        held = {port: count for port, count in held.items() if count}
        assert sum(held.values()) == len(names) == 2 * len(owners) + len(providers)
        assert held == dict(expected)
        assert len(held) >= 2, f"every key landed on one node: {held}"
        assert list(state) == [KEYS[0].fingerprint.encode()]
    finally:
        await link.aclose()
        delete_prefix(redis_cluster_url, state_prefix)


async def test_scripts_reach_nodes_whose_script_cache_is_empty(
    redis_cluster: RedisClusterProcesses, redis_cluster_url: str, cluster_prefix: str, clock: ManualClock
) -> None:
    """Scripts are cached per node: EVALSHA answered NOSCRIPT by a node is sent again as EVAL, on every node."""
    limiter = RedisRateLimiter(redis_cluster_url, prefix=cluster_prefix, clock=clock, timeout_s=1.0)
    users = [UserLimits(rpm=SPEC).demands(f"user-{n}", 1) for n in range(12)]
    for port in redis_cluster.ports:
        node = redis.Redis(port=port)
        node.script_flush()
        node.close()
    for demands in users:
        assert await limiter.try_acquire(demands) == 0.0
    assert limiter.state_nowait(users[0][0].key, SPEC).remaining == pytest.approx(2.0)  # the blocking path too
    from pulsegate.core.limits.redis import _DEMANDS

    cached = {}
    for port in redis_cluster.ports:
        node = redis.Redis(port=port)
        cached[port] = node.script_exists(_DEMANDS.sha)[0]
        node.close()
    assert cached == dict.fromkeys(redis_cluster.ports, True)
    assert not limiter.degraded
    await limiter.aclose()


async def test_a_cluster_url_naming_another_database_degrades_with_one_warning_naming_redis_url(
    redis_cluster: RedisClusterProcesses, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pulsegate.core.redis_link")
    url = f"redis://127.0.0.1:{redis_cluster.ports[0]}/3"
    limiter = RedisRateLimiter(url, clock=clock, timeout_s=1.0)
    assert [await limiter.try_acquire([Demand("anthropic:rpm", SPEC)]) for _ in range(4)] == [
        0.0,
        0.0,
        0.0,
        pytest.approx(20.0),
    ]  # the local bucket: 3, then a wait
    assert limiter.degraded and limiter.outages == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.name == "pulsegate.core.redis_link"]
    assert "cannot be used (RedisUrlError: REDIS_URL names database 3" in warning
    assert "a cluster has only database 0: end REDIS_URL with /0" in warning
    assert describe_mode(url).startswith("cluster, unusable: REDIS_URL names database 3")
    await limiter.aclose()


async def test_a_cluster_that_goes_away_degrades_once_to_local_limits_and_is_used_again_when_it_returns(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = start_redis_cluster(tmp_path)  # a cluster of its own: this one is stopped mid-test
    limiter = RedisRateLimiter(cluster.url, clock=clock, local_share=0.5, probe_interval_s=2.0, timeout_s=0.2)
    caplog.set_level(logging.WARNING, logger="pulsegate.core.redis_link")
    spec = LimitSpec(limit=8.0, period_s=1.0)
    users = [UserLimits(rpm=spec).demands(f"user-{n}", 1) for n in range(6)]  # on more than one node
    try:
        for demands in users:
            assert [await limiter.try_acquire(demands) for _ in range(6)] == [0.0] * 6  # shared: 2 left each
        assert limiter.link.mode == "cluster"

        cluster.stop()
        started = time.perf_counter()
        local = [await limiter.try_acquire(users[0]) for _ in range(5)]
        assert local == [0.0] * 4 + [pytest.approx(0.25)]  # a fresh local bucket of 8 × 0.5 = 4, refilling 4/s
        assert time.perf_counter() - started < 1.0
        assert (limiter.degraded, limiter.outages) == (True, 1)
        assert limiter.state_nowait(users[0][0].key, spec).capacity == 4  # the blocking path answers locally too
        clock.advance(2.0)  # a probe is due and fails: still degraded, still one warning
        assert await limiter.try_acquire(users[1]) == 0.0
        assert limiter.degraded

        cluster.start()  # the same nodes, ports and slots; no persistence, so the buckets come back full
        clock.advance(2.0)
        state = await limiter.state(users[0][0].key, spec)  # the probe: the cluster answers
        assert not limiter.degraded
        assert state.remaining == pytest.approx(8.0)
        assert [await limiter.try_acquire(users[2]) for _ in range(9)] == [0.0] * 8 + [pytest.approx(0.125)]
        messages = [r.getMessage() for r in caplog.records if r.name == "pulsegate.core.redis_link"]
        assert len(messages) == 2, messages
        assert "RATE LIMITS DEGRADED" in messages[0] and "did not answer" in messages[0]
        assert "answers again" in messages[1]
        assert (limiter.status()["outages"], limiter.link.mode) == (1, "cluster")
    finally:
        await limiter.aclose()
        cluster.stop()


def test_settings_shows_the_redis_mode_and_never_the_password(tmp_path: Path, redis_cluster_url: str) -> None:
    url = redis_cluster_url.replace("redis://", "redis://:no-such-password-7@")
    result = run_cli(["settings"], cwd=tmp_path, env={"REDIS_URL": redis_cluster_url})
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("REDIS mode")]
    assert line.split(None, 2)[2] == "cluster (3 masters, cluster_state:ok)"
    with_password = run_cli(["settings"], cwd=tmp_path, env={"REDIS_URL": url})
    assert "no-such-password-7" not in with_password.stdout + with_password.stderr
    assert "REDIS_URL" in with_password.stdout
