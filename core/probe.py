"""Probes: one tiny, real request per key, to learn whether the key works — and to return it to service when it does.

A probe costs real money (a few input tokens and one output token on a cheap model), so it is as small as a request
can be: ``max_tokens=1``, a two-letter prompt, thinking/reasoning off. It runs on exactly the key it names, even when
that key is cooling down or disabled — the probe *is* the trial — never waits in the priority queue behind user
traffic (it is still charged to the limits), and is never retried or moved to another key or provider. Each probe is
recorded as one attempt with ``source='probe'``.

:func:`restore_recovered_keys` turns successful probes into control commands for every live instance: ``reset_key``
for a key they report cooling down, ``enable_key`` for one the provider had refused (auth, quota). Each instance
applies them on its next heartbeat, so a key is back within one heartbeat interval (5 s by default), not at once.
A key an operator disabled stays disabled: only an operator enables it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from core.errors import PulsegateError
from core.keys.health import DISABLING
from core.provider import Provider

if TYPE_CHECKING:
    from core.client import AIClient
    from core.settings import Settings

log = logging.getLogger(__name__)

#: The whole prompt of a probe: about one input token.
PROBE_PROMPT = "hi"
PROBE_MAX_TOKENS = 1
MESSAGE_MAX = 300
#: How a key the provider refused is described by :meth:`core.keys.health.KeyHealth.record_failure`
#: (``"auth: the provider refused this key"``); any other disabled reason is an operator's and is left alone.
AUTO_DISABLED_PREFIXES: tuple[str, ...] = tuple(f"{error_class.value}: " for error_class in DISABLING)
DEFAULT_FAILURE_LOOKBACK = timedelta(hours=24)


class ProbeError(PulsegateError, ValueError):
    """A probe that cannot be run as asked (unknown provider, key label, bad model); ``field`` names the argument."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    provider: str  # "anthropic" | "openai"
    key_label: str  # e.g. "Primary", "Backup 1"
    model: str


@dataclass(frozen=True, slots=True)
class ProbeResult:
    provider: str
    key_label: str
    model: str
    ok: bool
    outcome: str  # "success" | "error"
    error_class: str | None
    http_status: int | None
    latency_ms: float
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    message: str  # "ok", or the error's message (never a key)
    call_id: str
    ts: datetime  # when the probe started (UTC)

    def to_json(self) -> dict[str, Any]:
        """JSON-safe (``ts`` as ISO 8601), snake_case keys."""
        return {
            "provider": self.provider,
            "key_label": self.key_label,
            "model": self.model,
            "ok": self.ok,
            "outcome": self.outcome,
            "error_class": self.error_class,
            "http_status": self.http_status,
            "latency_ms": round(self.latency_ms, 3),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd,
            "message": self.message,
            "call_id": self.call_id,
            "ts": self.ts.isoformat(),
        }


def probe_model(settings: Settings, provider: Provider) -> str:
    return settings.anthropic_probe_model if provider is Provider.ANTHROPIC else settings.openai_probe_model


def probe_interval_s(settings: Settings, provider: Provider) -> float:
    """Seconds between scheduled probes of each of ``provider``'s keys (its own setting, else PROBE_INTERVAL_S)."""
    own = settings.anthropic_probe_interval_s if provider is Provider.ANTHROPIC else settings.openai_probe_interval_s
    return own if own is not None else settings.probe_interval_s


def reasoning_off(provider: Provider, model: str) -> dict[str, Any]:
    """SDK arguments that keep a probe from thinking (thinking and reasoning tokens are billed). Anthropic thinks
    only when asked to: nothing to add. OpenAI reasoning models reason by default and take the lowest effort each
    accepts (gpt-5.1 and later: ``none``; gpt-5, -mini, -nano: ``minimal``; o-series: ``low``); other models
    reject the parameter, so they get none. ``gpt-5-pro`` accepts only ``high``: do not probe on it."""
    if provider is not Provider.OPENAI:
        return {}
    name = model.lower()
    if name.startswith("gpt-5."):
        return {"reasoning_effort": "none"}
    if name.startswith("gpt-5") and not name.startswith("gpt-5-pro"):
        return {"reasoning_effort": "minimal"}
    if name.startswith(("o1", "o3", "o4")):
        return {"reasoning_effort": "low"}
    return {}


def check_text(field: str, value: object, max_length: int, *, required: bool = False) -> str | None:
    """A non-empty string of at most ``max_length`` characters, or None when not ``required``."""
    if value is None:
        if required:
            raise ProbeError(field, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ProbeError(field, f"expected a non-empty string, got {value!r}")
    if len(value) > max_length:
        raise ProbeError(field, f"at most {max_length} characters, got {len(value)}")
    # stored in a text column and sent in a request: a NUL or a lone surrogate cannot be stored on PostgreSQL
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ProbeError(field, "expected text without control characters")
    return value


def check_provider(value: object) -> Provider | None:
    if value is None:
        return None
    names = ", ".join(p.value for p in Provider)
    if not isinstance(value, str) or value not in {p.value for p in Provider}:
        raise ProbeError("provider", f"unknown provider {value!r}; expected one of {names}")
    return Provider(value)


def probe_targets(
    settings: Settings, *, provider: str | None = None, key_label: str | None = None, model: str | None = None
) -> list[ProbeTarget]:
    """Every configured key (filtered by provider and/or label), each with its provider's probe model unless
    ``model`` is given. A filter that matches no key raises :class:`ProbeError` naming the keys there are."""
    chosen = check_provider(provider)
    label = check_text("key", key_label, 64)
    model = check_text("model", model, 128)
    providers = [chosen] if chosen is not None else list(Provider)
    targets = [
        ProbeTarget(p.value, key.label, model or probe_model(settings, p))
        for p in providers
        for key in settings.keys(p)
        if label is None or key.label == label
    ]
    if targets or (chosen is None and label is None):
        return targets
    configured = [f"{p.value} {key.label!r}" for p in providers for key in settings.keys(p)]
    if label is None:
        assert chosen is not None
        variable = f"{chosen.value.upper()}_API_KEY"
        raise ProbeError("provider", f"no {chosen.value} keys are configured (set {variable})")
    where = f"{chosen.value} key" if chosen is not None else "key"
    known = ", ".join(configured) or "none"
    raise ProbeError("key", f"no {where} labelled {label!r} is configured (keys: {known})")


async def run_probes(client: AIClient, targets: Sequence[ProbeTarget], *, concurrency: int) -> list[ProbeResult]:
    """Probe every target, at most ``concurrency`` at once; results in target order. A provider failure is a
    failed result, never an exception."""
    if concurrency < 1:
        raise ProbeError("concurrency", f"expected an integer >= 1, got {concurrency!r}")
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ProbeTarget) -> ProbeResult:
        async with gate:
            return await client.probe(target)

    return list(await asyncio.gather(*(one(target) for target in targets)))


# --- returning keys to service ----------------------------------------------------------------------------------


def _auto_disabled(reason: object) -> bool:
    return isinstance(reason, str) and reason.startswith(AUTO_DISABLED_PREFIXES)


def recovery_command(views: Sequence[dict[str, Any]], now: datetime) -> str | None:
    """What a successful probe should do for one key, given every live instance's latest view of it:
    ``enable_key`` if one reports it refused by the provider, else ``reset_key`` if one reports it cooling down,
    else nothing. Nothing at all when an operator disabled it on any instance: ``enable_key`` would undo that."""
    disabled = [v for v in views if v.get("status") == "disabled" or _given(v.get("disabled_reason"))]
    if any(not _auto_disabled(v.get("disabled_reason")) for v in disabled):
        return None
    if disabled:
        return "enable_key"
    for view in views:
        until = view.get("cooldown_until")
        if view.get("status") == "cooldown" or (_given(until) and _aware(until) > now):
            return "reset_key"
    return None


def _given(value: object) -> bool:
    """Not None, NaN or NaT (a pandas frame's empty cells)."""
    return value is not None and value == value  # NaN and NaT are the values unequal to themselves


def _aware(value: Any) -> datetime:
    """A UTC datetime from a pandas Timestamp or a datetime (SQLite hands back naive UTC)."""
    moment: datetime = value.to_pydatetime() if hasattr(value, "to_pydatetime") else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def restore_recovered_keys(
    engine: sa.Engine,
    results: Sequence[ProbeResult],
    now: datetime,
    *,
    heartbeat_interval_s: float,
    requested_by: str = "probe",
) -> list[int]:
    """For each key a probe just found working: ``reset_key`` when the live instances report it cooling down,
    ``enable_key`` when the provider had refused it (auth, quota). Keys an operator disabled stay disabled — also
    when the ``disable_key`` is so recent (unexpired) that the snapshots do not show it yet. A command the instances
    have had no heartbeat to act on yet is not issued twice. Returns the ids of the commands issued (see
    :func:`core.control.command_status`)."""
    from core.control import issue_command
    from core.queries.keys import latest_key_views, stale_before

    working = sorted({(r.provider, r.key_label) for r in results if r.ok})
    if not working:
        return []
    frame = latest_key_views(engine, now)
    live_after = stale_before(now, heartbeat_interval_s)
    views: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in frame.to_dict("records"):
        if _aware(row["ts"]) >= live_after:
            views.setdefault((row["provider"], row["key_label"]), []).append(row)
    wanted = {}
    for key in working:
        command = recovery_command(views.get(key, []), now)
        if command is not None:
            wanted[key] = command
    if not wanted:
        return []
    recent = _recent_commands(engine, list(wanted), now)
    issued: list[int] = []
    for (provider, label), command in wanted.items():
        # A heartbeat writes its snapshot before applying commands: a view reflects a command only when taken
        # more than one interval after it was issued.
        newest_view = max(_aware(view["ts"]) for view in views[(provider, label)])
        reflected_before = newest_view - timedelta(seconds=heartbeat_interval_s)
        earlier = sorted(recent.get((provider, label), []), key=lambda item: item[1])
        switches = [name for name, _ in earlier if name in ("disable_key", "enable_key")]
        if switches and switches[-1] == "disable_key":
            log.info("probe of %s key %r succeeded; a recent disable_key stands", provider, label)
            continue
        if any(name == command and created >= reflected_before for name, created in earlier):
            continue  # the same command is on its way
        command_id = issue_command(
            engine, command, provider=provider, key_label=label, requested_by=requested_by, now=now
        )
        log.info("probe of %s key %r succeeded: %s issued (command %d)", provider, label, command, command_id)
        issued.append(command_id)
    return issued


def _recent_commands(
    engine: sa.Engine, keys: Sequence[tuple[str, str]], now: datetime
) -> dict[tuple[str, str], list[tuple[str, datetime]]]:
    """Unexpired key commands for these keys: ``(command, created_at)`` per (provider, key label)."""
    from core.store.tables import control_commands as c

    query = sa.select(c.c.provider, c.c.key_label, c.c.command, c.c.created_at).where(
        c.c.expires_at > now,
        c.c.created_at <= now,
        sa.or_(*(sa.and_(c.c.provider == provider, c.c.key_label == label) for provider, label in keys)),
    )
    found: dict[tuple[str, str], list[tuple[str, datetime]]] = {}
    with engine.connect() as connection:
        for row in connection.execute(query):
            found.setdefault((row.provider, row.key_label), []).append((row.command, _aware(row.created_at)))
    return found


# --- consecutive failures, for alert rules and the API ------------------------------------------------------------


#: ``source = 'probe'`` written into the SQL, not bound: only a literal lets the planners (PostgreSQL's generic plans,
#: SQLite) prove the query matches the partial index ``ix_api_usage_metrics_probe_ts``.
PROBE_SOURCE = sa.literal_column("'probe'")


def consecutive_probe_failures(
    engine: sa.Engine, now: datetime, *, lookback: timedelta = DEFAULT_FAILURE_LOOKBACK
) -> dict[tuple[str, str], int]:
    """Per (provider, key label) probed within ``lookback``: failed probes since its last successful one (0 when
    the latest probe passed). The minute rollups narrow the raw rows read to those after each key's last
    successful minute; a key failing all day still reads only its probe rows, through the partial index on probe
    rows (never the day's live traffic)."""
    from core.store.tables import api_usage_metrics, metric_rollups_1m

    since = now - lookback
    r = metric_rollups_1m
    last_ok = sa.func.max(sa.case((r.c.successes > 0, r.c.bucket), else_=None))
    summary = (
        sa.select(r.c.provider, r.c.key_label, last_ok.label("last_ok"))
        .where(
            r.c.source == "probe", r.c.bucket >= since - timedelta(minutes=1), r.c.bucket <= now, r.c.key_label != ""
        )
        .group_by(r.c.provider, r.c.key_label)
    )
    m = api_usage_metrics
    with engine.connect() as connection:
        keys = connection.execute(summary).all()
        if not keys:
            return {}
        starts = {(k.provider, k.key_label): max(since, _aware(k.last_ok)) if k.last_ok else since for k in keys}
        # each key's own probes from its own start: a key failing all day reads its day of probes, never the
        # other keys' (nor any live row) — one index range per key
        since_start = sa.or_(
            *(
                sa.and_(m.c.provider == provider, m.c.key_label == label, m.c.ts >= start)
                for (provider, label), start in sorted(starts.items())
            )
        )
        raw = connection.execute(
            sa.select(m.c.provider, m.c.key_label, m.c.ts, m.c.outcome)
            .where(m.c.source == PROBE_SOURCE, since_start, m.c.ts <= now)
            .order_by(m.c.ts)
        ).all()
    counts = dict.fromkeys(starts, 0)
    for row in raw:
        key = (row.provider, row.key_label)
        if key not in counts or _aware(row.ts) < starts[key]:
            continue
        counts[key] = 0 if row.outcome == "success" else counts[key] + 1
    return counts


# --- presentation -------------------------------------------------------------------------------------------------

TABLE_COLUMNS = ("provider", "key", "model", "result", "status", "latency", "tokens", "cost", "detail")


def format_probe_table(results: Sequence[ProbeResult]) -> str:
    """A plain-text table, one line per probe (``pulsegate probe``)."""
    lines = [TABLE_COLUMNS]
    for r in results:
        tokens = f"{r.input_tokens or 0}+{r.output_tokens or 0}"
        cost = "unpriced" if r.cost_usd is None else "$" + (f"{r.cost_usd:.8f}".rstrip("0").rstrip(".") or "0")
        lines.append(
            (
                r.provider,
                r.key_label,
                r.model,
                "ok" if r.ok else "FAIL",
                str(r.http_status) if r.http_status is not None else "-",
                f"{r.latency_ms:.0f} ms",
                tokens,
                cost,
                r.message,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(TABLE_COLUMNS) - 1)]
    rendered = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[-1]
        for line in lines
    ]
    passed = sum(1 for r in results if r.ok)
    rendered.append(f"{passed}/{len(results)} passed")
    return "\n".join(rendered)
