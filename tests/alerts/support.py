"""Writing the store the way the product does (attempts through the recorder's BatchWriter, snapshots through the
heartbeat) and reading back episodes and outbox rows, for the alert engine tests."""

from __future__ import annotations

import html
import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr

from pulsegate.core.alerts.channels import make_channel
from pulsegate.core.alerts.channels.config import ChannelConfig
from pulsegate.core.alerts.claims import resolved_alert_problems
from pulsegate.core.alerts.config import AlertConfig
from pulsegate.core.alerts.evaluator import AlertEvaluator
from pulsegate.core.alerts.model import Message
from pulsegate.core.alerts.rules import Rule
from pulsegate.core.clock import ManualClock
from pulsegate.core.errors import ErrorClass
from pulsegate.core.ops.heartbeat import Heartbeat
from pulsegate.core.recording import AttemptRecord
from pulsegate.core.recording.batch_writer import BatchWriter
from pulsegate.core.store.tables import alert_episodes, alert_notifications, control_commands

#: A Monday, mid-month: windows never cross a month boundary unless a test moves there.
START = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
MODEL = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1"}


def channel(name: str, *severities: str, fmt: str = "generic") -> ChannelConfig:
    return ChannelConfig(
        name=name,
        format=fmt,  # type: ignore[arg-type]
        url=SecretStr(f"http://127.0.0.1:9/{name}-hook-secret-path"),
        severities=frozenset(severities or ("info", "warning", "critical")),
    )


OPS = channel("ops")
PAGER = channel("pager", "critical")


def config(
    *rules: Rule,
    channels: Sequence[ChannelConfig] = (OPS,),
    group_wait_s: float = 30.0,
    repeat_interval_s: float = 4 * 3600.0,
    dashboard_url: str | None = "http://127.0.0.1:8501",
    probe_interval_s: float = 60.0,
) -> AlertConfig:
    return AlertConfig(
        rules=tuple(rules),
        channels=tuple(channels),
        group_wait_s=group_wait_s,
        repeat_interval_s=repeat_interval_s,
        dashboard_url=dashboard_url,
        heartbeat_interval_s=5.0,
        probe_interval_s=probe_interval_s,
    )


def engine_for(store: sa.Engine, clock: ManualClock, *rules: Rule, **options: Any) -> AlertEvaluator:
    return AlertEvaluator(store, config(*rules, **options), clock)


# --- writing ------------------------------------------------------------------------------------------------------


class Calls:
    """Attempts written through the recorder's BatchWriter (raw rows and every rollup tier in one transaction)."""

    def __init__(self, store: sa.Engine) -> None:
        self.store = store
        self.writer = BatchWriter(store.dialect)

    def add(
        self,
        ts: datetime,
        *,
        ok: int = 0,
        failed: int = 0,
        provider: str = "anthropic",
        key_label: str | None = "Primary",
        error_class: ErrorClass = ErrorClass.SERVER_ERROR,
        source: str = "live",
        latency_ms: float = 800.0,
        cost_usd: float | None = 0.0,
        input_tokens: int = 0,
        output_tokens: int = 0,
        fell_back_from: str | None = None,
        model: str | None = None,
    ) -> None:
        records = []
        count = ok + failed
        for i in range(count):
            success = i < ok
            records.append(
                AttemptRecord(
                    ts=ts - timedelta(milliseconds=count - 1 - i),  # in order, the last one at ``ts``
                    call_id=uuid.uuid4(),
                    attempt=1,
                    provider=provider,
                    model=model or MODEL[provider],
                    outcome="success" if success else "cancelled" if error_class is ErrorClass.CANCELLED else "error",
                    latency_ms=latency_ms,
                    instance_id="app-1",
                    is_final=True,
                    source=source,
                    key_label=key_label,
                    error_class=None if success else error_class,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=cost_usd,
                    fell_back_from=fell_back_from,
                )
            )
        if records:
            self.writer.write(self.store, records, replay=False)


def key_state(
    label: str,
    status: str = "healthy",
    *,
    score: float = 1.0,
    disabled_reason: str | None = None,
    cooldown_s: float = 0.0,
) -> dict[str, Any]:
    return {
        "label": label,
        "fingerprint": f"fp{label[:10]}",
        "masked": "sk-…abcd",
        "score": score,
        "status": status,
        "cooldown_remaining_s": cooldown_s,
        "consecutive_failures": 0 if status == "healthy" else 3,
        "disabled_reason": disabled_reason,
        "requests": 10,
    }


def provider_state(
    keys: Iterable[dict[str, Any]] = (),
    *,
    depth: int = 0,
    oldest_wait_s: float | None = None,
    breaker: str = "closed",
) -> dict[str, Any]:
    return {
        "queue": {"depth": depth, "oldest_wait_s": oldest_wait_s},
        "limits": {"rpm": {"used": 1, "remaining": 99, "limit": 100}},
        "breaker": {"state": breaker},
        "keys": list(keys),
    }


def beat(
    store: sa.Engine,
    now: datetime,
    providers: dict[str, dict[str, Any]],
    *,
    instance: str = "app-1",
    kind: str = "client",
) -> None:
    """One heartbeat's snapshot rows (with the snapshot rollups and the instance registry), as a client writes them."""
    state = {"providers": providers}
    heartbeat = Heartbeat(lambda: state, lambda command: "", store, instance, kind=kind, host="test", pid=1)
    heartbeat.write_snapshot(state, now)


# --- reading ------------------------------------------------------------------------------------------------------


def episodes(store: sa.Engine) -> list[dict[str, Any]]:
    with store.connect() as connection:
        rows = connection.execute(sa.select(alert_episodes).order_by(alert_episodes.c.id)).mappings()
        return [dict(row) for row in rows]


def states(store: sa.Engine) -> list[tuple[str, dict[str, str], str]]:
    """(rule_id, labels, state) of every episode, oldest first."""
    return [(e["rule_id"], dict(e["labels"]), e["state"]) for e in episodes(store)]


def outbox(store: sa.Engine) -> list[dict[str, Any]]:
    with store.connect() as connection:
        rows = connection.execute(sa.select(alert_notifications).order_by(alert_notifications.c.id)).mappings()
        return [dict(row) for row in rows]


def sent(store: sa.Engine) -> list[tuple[str, str, str, list[str]]]:
    """(transition, channel, group_key, [fingerprint per alert]) of every outbox row."""
    return [
        (r["transition"], r["channel"], r["group_key"], [a["fingerprint"] for a in r["message"]["alerts"]])
        for r in outbox(store)
    ]


def commands(store: sa.Engine) -> list[tuple[str, str | None, str | None, str]]:
    with store.connect() as connection:
        rows = connection.execute(sa.select(control_commands).order_by(control_commands.c.id)).mappings()
        return [(r["command"], r["provider"], r["key_label"], r["requested_by"]) for r in rows]


def rendered_lines(row: dict[str, Any]) -> dict[str, list[str]]:
    """An outbox row's per-alert lines as each format renders them: Slack's text lines after the title (as Slack
    shows them, entities decoded), Discord's embed titles, the generic webhook's summaries."""
    message = Message.from_json(row["message"])
    lines: dict[str, list[str]] = {}
    for fmt in ("slack", "discord", "generic"):
        body, _ = make_channel(channel("render", fmt=fmt)).render(message)
        payload = json.loads(body)
        if fmt == "slack":
            lines[fmt] = html.unescape(payload["text"]).splitlines()[1:]
        elif fmt == "discord":
            lines[fmt] = [embed["title"] for embed in payload["embeds"]]
        else:
            lines[fmt] = [alert["summary"] for alert in payload["alerts"]]
    return lines


def assert_resolved_text(row: dict[str, Any], *texts: str) -> None:
    """A resolved outbox row states exactly ``texts`` (one per alert) in every format, and none contradicts its
    own numbers."""
    assert row["transition"] == "resolved"
    assert rendered_lines(row) == {
        "slack": [f"✅ {t}" for t in texts],
        "discord": [f"✅ {t}" for t in texts],
        "generic": list(texts),
    }
    for alert in row["message"]["alerts"]:
        assert resolved_alert_problems(alert) == [], alert["summary"]


def run(engine: AlertEvaluator, clock: ManualClock, seconds: float = 0.0) -> Any:
    """Advance the clock, then evaluate once."""
    if seconds:
        clock.advance(seconds)
    return engine.evaluate(clock.now())
