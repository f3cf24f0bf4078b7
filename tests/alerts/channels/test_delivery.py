"""The outbox dispatcher against real loopback receivers on SQLite and PostgreSQL: one delivery per transition,
retries with backoff on a manual clock, 429 waits, dead webhooks, receiver and store outages, channel health."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from pulsegate.core.alerts.channel_health import channel_health
from pulsegate.core.alerts.delivery import Dispatcher, backoff_s
from pulsegate.core.clock import ManualClock
from pulsegate.core.store.engine import create_store_engine
from pulsegate.core.store.tables import alert_notifications
from tests.alerts.channels.conftest import (
    T0,
    add_episode,
    alert,
    deliveries,
    discord_config,
    enqueue,
    generic_config,
    message,
    outbox,
    slack_config,
)
from tests.alerts.channels.receivers import (
    DISCORD_BAD_TOKEN,
    DISCORD_UNKNOWN_WEBHOOK,
    SLACK_500,
    SLACK_ARCHIVED,
    SLACK_INVALID_PAYLOAD,
    SLACK_NO_SERVICE,
    SLACK_OK,
    Receiver,
    Reply,
    discord_429,
    discord_ok,
    slack_429,
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def _summary(engine: sa.Engine) -> list[tuple]:
    return [(r["id"], r["status"], r["attempts"], r["next_attempt_at"], r["last_error"]) for r in outbox(engine)]


ATTEMPT_COLUMNS = ("notification_id", "channel", "transition", "attempt", "delivered", "status_code", "error")


def _attempts(engine: sa.Engine) -> list[tuple]:
    return [tuple(r[k] for k in ATTEMPT_COLUMNS) for r in deliveries(engine)]


async def test_one_delivery_per_transition_in_order_and_none_after_success(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    episode = add_episode(store)
    firing = enqueue(store, config.name, message(), episode_ids=[episode])
    resolved_msg = message([alert(state="resolved", resolved_at=T0 + timedelta(minutes=1))], transition="resolved")
    resolved = enqueue(store, config.name, resolved_msg, now=T0 + timedelta(seconds=1), episode_ids=[episode])
    clock.advance(1)
    dispatcher = Dispatcher(store, [config], clock)

    report = await dispatcher.run_once(clock.now())

    assert (report.claimed, report.delivered, report.retrying, report.failed) == (2, 2, 0, 0)
    assert [r.json()["text"].split("\n")[0] for r in receiver.requests] == [
        "[FIRING:1] Success rate low",
        "[RESOLVED] Success rate low",
    ]
    assert all(r.path == "/services/T0A1/B0B2/Xq7SLACKtokenZZ9f3kQ2" for r in receiver.requests)
    rows = outbox(store)
    assert [(r["status"], r["attempts"], r["delivered_at"], r["last_error"]) for r in rows] == [
        ("delivered", 1, clock.now(), None),
        ("delivered", 1, clock.now(), None),
    ]
    assert _attempts(store) == [
        (firing, "ops-slack", "firing", 1, True, 200, None),
        (resolved, "ops-slack", "resolved", 1, True, 200, None),
    ]
    assert [r["episode_id"] for r in deliveries(store)] == [episode, episode]

    for _ in range(3):
        clock.advance(3600)
        assert (await dispatcher.run_once(clock.now())).claimed == 0
    assert len(receiver.requests) == 2


async def test_retries_with_exponential_backoff_on_the_manual_clock(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(SLACK_500, SLACK_500, Reply(503, b""))
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    row = enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock)
    assert [backoff_s(n) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]

    await dispatcher.run_once(clock.now())
    assert _summary(store) == [(row, "pending", 1, T0 + timedelta(seconds=5), "retry: HTTP 500 rollup_error")]
    for wait, attempts in ((5, 2), (10, 3)):
        clock.advance(wait - 1)
        assert (await dispatcher.run_once(clock.now())).claimed == 0  # not due yet: nothing sent
        clock.advance(1)
        report = await dispatcher.run_once(clock.now())
        assert (report.claimed, report.retrying) == (1, 1)
        assert len(receiver.requests) == attempts
    assert _summary(store)[0][1:4] == ("pending", 3, T0 + timedelta(seconds=5 + 10 + 20))
    clock.advance(20)
    assert (await dispatcher.run_once(clock.now())).delivered == 1
    assert [a[3:7] for a in _attempts(store)] == [
        (1, False, 500, "retry: HTTP 500 rollup_error"),
        (2, False, 500, "retry: HTTP 500 rollup_error"),
        (3, False, 503, "retry: HTTP 503"),
        (4, True, 200, None),
    ]
    assert _summary(store)[0][1:3] == ("delivered", 4)
    clock.advance(10_000)
    await dispatcher.run_once(clock.now())
    assert len(receiver.requests) == 4


async def test_slack_429_waits_retry_after_and_parks_the_channels_other_rows(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(slack_429("30"))
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    first = enqueue(store, config.name, message())
    second = enqueue(store, config.name, message(transition="repeat"))
    dispatcher = Dispatcher(store, [config], clock)

    report = await dispatcher.run_once(clock.now())

    assert (report.claimed, len(receiver.requests)) == (2, 1)  # the second row was not sent into the limit
    assert _summary(store) == [
        (first, "pending", 1, T0 + timedelta(seconds=30), "retry: HTTP 429 rate_limited"),
        (second, "pending", 0, T0 + timedelta(seconds=30), None),
    ]
    clock.advance(29)
    assert (await dispatcher.run_once(clock.now())).claimed == 0
    clock.advance(1)
    assert (await dispatcher.run_once(clock.now())).delivered == 2
    assert len(receiver.requests) == 3


async def test_discord_429_json_retry_after_then_delivered_with_wait_true(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(discord_429(2.5, header="9"))
    receiver.default = discord_ok
    config = discord_config(receiver)
    row = enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock)

    await dispatcher.run_once(clock.now())
    assert _summary(store) == [(row, "pending", 1, T0 + timedelta(seconds=2.5), "retry: HTTP 429 rate limited")]
    clock.advance(2.5)
    assert (await dispatcher.run_once(clock.now())).delivered == 1
    assert [r.query for r in receiver.requests] == [{"wait": ["true"]}, {"wait": ["true"]}]
    assert [a[5] for a in _attempts(store)] == [429, 200]


@pytest.mark.parametrize(
    ("make", "reply", "error"),
    [
        (slack_config, SLACK_NO_SERVICE, "broken: HTTP 404 no_service"),
        (slack_config, SLACK_ARCHIVED, "broken: HTTP 410 channel_is_archived"),
        (discord_config, DISCORD_UNKNOWN_WEBHOOK, "broken: HTTP 404 code 10015 Unknown Webhook"),
        (discord_config, DISCORD_BAD_TOKEN, "broken: HTTP 401 code 50027 Invalid Webhook Token"),
        (generic_config, Reply(404, b"not found"), "broken: HTTP 404"),
    ],
)
async def test_a_dead_webhook_fails_the_row_at_once_and_marks_the_channel_broken(
    store: sa.Engine, clock: ManualClock, receiver: Receiver, make, reply: Reply, error: str
) -> None:
    receiver.default = reply
    config = make(receiver)
    enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock)

    report = await dispatcher.run_once(clock.now())

    assert (report.failed, report.broken_channels) == (1, (config.name,))
    assert [(r["status"], r["attempts"], r["last_error"]) for r in outbox(store)] == [("failed", 1, error)]
    health = channel_health(store, clock.now(), channels=[config.name, "never-used"])
    assert health[config.name].state == "broken"
    assert (health[config.name].last_error, health[config.name].consecutive_failures) == (error, 1)
    assert health["never-used"].state == "unknown"
    clock.advance(86_400)
    await dispatcher.run_once(clock.now())
    assert len(receiver.requests) == 1  # never retried


async def test_a_rejected_message_is_not_retried_but_does_not_break_the_channel(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(SLACK_INVALID_PAYLOAD)
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    enqueue(store, config.name, message())
    enqueue(store, config.name, message(transition="repeat"))
    dispatcher = Dispatcher(store, [config], clock)

    await dispatcher.run_once(clock.now())

    assert [(r["status"], r["last_error"]) for r in outbox(store)] == [
        ("failed", "rejected: HTTP 400 invalid_payload"),
        ("delivered", None),
    ]
    assert channel_health(store, clock.now())["ops-slack"].state == "ok"


async def test_failing_after_three_failed_attempts_and_ok_again_after_a_success(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(SLACK_500, SLACK_500, SLACK_500)
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock, backoff_base_s=1, backoff_max_s=1)
    states = []
    for _ in range(4):
        await dispatcher.run_once(clock.now())
        states.append(channel_health(store, clock.now())["ops-slack"].state)
        clock.advance(1)
    assert states == ["ok", "ok", "failing", "ok"]
    health = channel_health(store, clock.now())["ops-slack"]
    assert (health.consecutive_failures, health.last_delivered_at) == (0, T0 + timedelta(seconds=3))


async def test_delivery_after_a_receiver_outage(store: sa.Engine, clock: ManualClock, receiver: Receiver) -> None:
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    receiver.stop()  # the port is closed: connection refused
    row = enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock)

    for _ in range(3):
        await dispatcher.run_once(clock.now())
        clock.advance(clock_to_next_due(store, clock))
    assert _summary(store)[0][1:3] == ("pending", 3)
    assert outbox(store)[0]["last_error"] == "retry: network error (ConnectError)"

    receiver.start()
    report = await dispatcher.run_once(clock.now())
    assert report.delivered == 1 and len(receiver.requests) == 1
    assert _summary(store)[0][:3] == (row, "delivered", 4)


def clock_to_next_due(engine: sa.Engine, clock: ManualClock) -> float:
    with engine.connect() as connection:
        due = connection.execute(sa.select(sa.func.min(alert_notifications.c.next_attempt_at))).scalar_one()
    return max(0.0, (due - clock.now()).total_seconds())


async def test_a_slow_receiver_times_out_and_is_retried(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(Reply(200, b"ok", delay_s=1.0))
    receiver.default = SLACK_OK
    config = slack_config(receiver, timeout_s=0.2)
    enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock)

    await dispatcher.run_once(clock.now())
    assert outbox(store)[0]["last_error"] == "retry: timeout after 0.2s"
    clock.advance(5)
    assert (await dispatcher.run_once(clock.now())).delivered == 1


async def test_gives_up_after_give_up_after_s(store: sa.Engine, clock: ManualClock, receiver: Receiver) -> None:
    receiver.default = SLACK_500
    config = slack_config(receiver)
    enqueue(store, config.name, message())
    dispatcher = Dispatcher(store, [config], clock, give_up_after_s=30)
    for _ in range(4):
        await dispatcher.run_once(clock.now())
        clock.advance(clock_to_next_due(store, clock))
    assert [(r["status"], r["attempts"], r["last_error"]) for r in outbox(store)] == [
        ("failed", 3, "retry: HTTP 500 rollup_error; gave up after 3 attempts")
    ]
    assert len(receiver.requests) == 3  # 0 s, 5 s, 15 s; the next (35 s) would be past 30 s


async def test_rows_of_an_unconfigured_channel_fail_and_unreadable_messages_are_rejected(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    config = slack_config(receiver)
    enqueue(store, "removed", message())
    bad = enqueue(store, config.name, message())
    with store.begin() as connection:
        connection.execute(alert_notifications.update().where(alert_notifications.c.id == bad).values(message={}))
    await Dispatcher(store, [config], clock).run_once(clock.now())
    assert [(r["status"], r["last_error"]) for r in outbox(store)] == [
        ("failed", "rejected: channel 'removed' is not configured"),
        ("failed", "rejected: unreadable message (KeyError)"),
    ]
    assert receiver.requests == []


async def test_channels_are_sent_concurrently_each_in_order(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.default = lambda request: discord_ok(request) if request.query else SLACK_OK
    slack, discord = slack_config(receiver), discord_config(receiver)
    for n in range(3):
        enqueue(store, slack.name, message(title=f"s{n}"), now=T0 + timedelta(seconds=n))
        enqueue(store, discord.name, message(title=f"d{n}"), now=T0 + timedelta(seconds=n))
    clock.advance(3)
    report = await Dispatcher(store, [slack, discord], clock).run_once(clock.now())
    assert report.delivered == 6
    slack_titles = [r.json()["text"].split("\n")[0] for r in receiver.requests if not r.query]
    discord_titles = [r.json()["content"].split("\n")[0] for r in receiver.requests if r.query]
    assert slack_titles == ["[FIRING:1] s0", "[FIRING:1] s1", "[FIRING:1] s2"]
    assert discord_titles == ["[FIRING:1] d0", "[FIRING:1] d1", "[FIRING:1] d2"]


@pytest.mark.postgres
async def test_two_dispatchers_at_once_send_each_row_once(
    postgres_store_url: str, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.default = Reply(200, b"ok", delay_s=0.05)
    config = slack_config(receiver)
    engine = create_store_engine(postgres_store_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("TRUNCATE alert_deliveries, alert_notifications RESTART IDENTITY CASCADE"))
        ids = [enqueue(engine, config.name, message(title=f"m{n}")) for n in range(12)]
        one = Dispatcher(engine, [config], clock, batch=5)
        two = Dispatcher(engine, [config], clock, batch=5)
        reports = await asyncio.gather(one.run_once(clock.now()), two.run_once(clock.now()))
        again = await asyncio.gather(one.run_once(clock.now()), two.run_once(clock.now()))
        sent = sorted(r.json()["text"].split("\n")[0] for r in receiver.requests)
        assert sum(r.claimed for r in (*reports, *again)) == 12
        assert sent == sorted(f"[FIRING:1] m{n}" for n in range(12))  # each exactly once
        assert sorted(a[0] for a in _attempts(engine)) == ids
    finally:
        engine.dispose()


# --- store outage -------------------------------------------------------------------------------------------


def _fragile_engine(store: sa.Engine) -> sa.Engine:
    """A second engine on the same database that gives up on a lock after 100 ms instead of waiting."""
    url = store.url.render_as_string(hide_password=False)
    if store.dialect.name == "sqlite":
        engine = create_store_engine(url)

        @sa.event.listens_for(engine, "connect")
        def _short_busy_timeout(dbapi_connection, _record) -> None:
            dbapi_connection.execute("PRAGMA busy_timeout=100")

        return engine
    return create_store_engine(url, connect_args={"options": "-c lock_timeout=100"})


class StoreLock:
    """Holds a write lock on the outbox from another connection: the store is unusable for writers meanwhile."""

    def __init__(self, store: sa.Engine) -> None:
        self.store = store
        self.taken = threading.Event()
        self.release = threading.Event()
        self.thread: threading.Thread | None = None

    def _hold(self) -> None:
        connection = self.store.connect()
        try:
            if self.store.dialect.name == "sqlite":
                connection.exec_driver_sql("COMMIT")  # leave the implicit BEGIN of the 'begin' listener
                connection.exec_driver_sql("BEGIN EXCLUSIVE")
            else:
                connection.exec_driver_sql("LOCK TABLE alert_notifications IN ACCESS EXCLUSIVE MODE")
            self.taken.set()
            self.release.wait(30)
            connection.rollback()
        finally:
            connection.close()

    def take(self) -> None:
        self.thread = threading.Thread(target=self._hold, daemon=True)
        self.thread.start()
        assert self.taken.wait(10)

    def free(self) -> None:
        self.release.set()
        if self.thread is not None:
            self.thread.join(10)


async def test_a_store_outage_during_dispatch_loses_nothing(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    first = enqueue(store, config.name, message(title="first"))
    second = enqueue(store, config.name, message(title="second"))
    fragile = _fragile_engine(store)
    lock = StoreLock(store)
    # The store goes away while the first message is on the wire: the send succeeds, recording it fails.
    receiver.on_request = lambda _request: lock.take() if not lock.taken.is_set() else None
    dispatcher = Dispatcher(fragile, [config], clock, lease_s=60)
    try:
        report = await dispatcher.run_once(clock.now())
        assert report.store_error is not None and report.delivered == 1  # sent, but not recorded
        assert len(receiver.requests) == 1  # the second row was not sent into a store that cannot record it
        lock.free()
        receiver.on_request = None

        lease_end = T0 + timedelta(seconds=60)
        assert _summary(store) == [(first, "pending", 0, lease_end, None), (second, "pending", 0, lease_end, None)]
        assert deliveries(store) == []
        clock.advance(59)
        assert (await dispatcher.run_once(clock.now())).claimed == 0
        clock.advance(1)  # the lease ran out: the rows are due again and go out (at least once)
        report = await dispatcher.run_once(clock.now())
        assert (report.store_error, report.delivered) == (None, 2)
        assert [row[1:3] for row in _summary(store)] == [("delivered", 1), ("delivered", 1)]
        titles = [r.json()["text"].split("\n")[0] for r in receiver.requests]
        assert titles == ["[FIRING:1] first", "[FIRING:1] first", "[FIRING:1] second"]
        assert len(deliveries(store)) == 2
    finally:
        lock.free()
        fragile.dispose()


async def test_a_store_outage_before_the_claim_sends_nothing_and_is_reported(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    config = slack_config(receiver)
    enqueue(store, config.name, message())
    fragile = _fragile_engine(store)
    lock = StoreLock(store)
    lock.take()
    try:
        report = await Dispatcher(fragile, [config], clock).run_once(clock.now())
        assert report.claimed == 0 and report.store_error is not None
        assert receiver.requests == []
    finally:
        lock.free()
        fragile.dispose()
    assert (await Dispatcher(store, [config], clock).run_once(clock.now())).delivered == 1


def verifying_receiver(secret: str):
    """A generic receiver as the README tells users to write one: recompute the HMAC over the raw body."""
    import hashlib
    import hmac

    def answer(request) -> Reply:
        expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-pulsegate-signature", "")):
            return Reply(401, b"bad_signature")
        return Reply(204)

    return answer


async def test_generic_receiver_verifies_the_signature_over_the_raw_body(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    from tests.alerts.channels.receivers import HMAC_SECRET

    receiver.default = verifying_receiver(HMAC_SECRET)
    good = generic_config(receiver, name="good")
    unsigned = generic_config(receiver, name="unsigned", signed=False)
    enqueue(store, good.name, message())
    enqueue(store, unsigned.name, message())

    await Dispatcher(store, [good, unsigned], clock).run_once(clock.now())

    assert [(r["channel"], r["status"], r["last_error"]) for r in outbox(store)] == [
        ("good", "delivered", None),
        ("unsigned", "failed", "broken: HTTP 401 bad_signature"),
    ]
    signed_request = next(r for r in receiver.requests if "x-pulsegate-signature" in r.headers)
    payload = signed_request.json()
    assert (payload["version"], payload["status"], signed_request.headers["x-pulsegate-event"]) == (
        "1",
        "firing",
        payload["event_id"],
    )


async def test_a_down_receiver_costs_one_request_per_wait_not_one_per_message(
    store: sa.Engine, clock: ManualClock, receiver: Receiver
) -> None:
    receiver.script(SLACK_500)
    receiver.default = SLACK_OK
    config = slack_config(receiver)
    ids = [enqueue(store, config.name, message(title=f"m{n}"), now=T0 + timedelta(seconds=n)) for n in range(3)]
    clock.advance(3)
    dispatcher = Dispatcher(store, [config], clock)

    await dispatcher.run_once(clock.now())
    due = T0 + timedelta(seconds=3 + 5)
    assert [row[:4] for row in _summary(store)] == [
        (ids[0], "pending", 1, due),
        (ids[1], "pending", 0, due),
        (ids[2], "pending", 0, due),
    ]
    assert len(receiver.requests) == 1
    clock.advance(5)
    assert (await dispatcher.run_once(clock.now())).delivered == 3
    assert [r.json()["text"].split("\n")[0] for r in receiver.requests[1:]] == [
        "[FIRING:1] m0",
        "[FIRING:1] m1",
        "[FIRING:1] m2",
    ]
