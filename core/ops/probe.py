"""Probes: one tiny, real request per key, to learn whether the key works.

A probe costs real money (a few input tokens and one output token on a cheap model), so it is as small as a request
can be: ``max_tokens=1``, a two-letter prompt, thinking/reasoning off. It runs on exactly the key it names, even when
that key is cooling down or disabled — the probe *is* the trial — never waits in the priority queue behind user
traffic (it is still charged to the limits), and is never retried or moved to another key or provider. Each probe is
recorded as one attempt with ``source='probe'``.

A probe runs on an :class:`~pulsegate.core.instance.Instance` (:func:`probe_key`); :func:`run_probes` runs many through
any probe callable (``AIClient.probe`` hands each to the client's home loop). What successful probes do for keys that
were out of service: :mod:`pulsegate.core.ops.probe_history`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pulsegate.core.api_keys import ApiKey
from pulsegate.core.call.context import CallContext
from pulsegate.core.errors import CallError, PulsegateError
from pulsegate.core.ids import uuid7
from pulsegate.core.ops.probe_auth import list_models
from pulsegate.core.provider import Provider
from pulsegate.core.provider_runtime import ProviderRuntime
from pulsegate.core.providers.base import PreparedRequest
from pulsegate.core.request import CallOptions, ModelConfig, Priority

if TYPE_CHECKING:
    from pulsegate.core.instance import Instance
    from pulsegate.core.settings import Settings

#: The whole prompt of a probe: about one input token.
PROBE_PROMPT = "hi"
PROBE_MAX_TOKENS = 1
MESSAGE_MAX = 300


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


Probe = Callable[[ProbeTarget], Awaitable[ProbeResult]]


async def probe_key(instance: Instance, target: ProbeTarget, timeout_s: float) -> ProbeResult:
    """One probe on exactly ``target``'s key, recorded with ``source='probe'``. Provider failures come back as a
    failed result; an unknown provider or key label raises :class:`ProbeError`. Runs on the loop the instance's
    runtimes belong to."""
    provider = check_provider(target.provider)
    assert provider is not None
    pool = instance.pools[provider]
    key = pool.by_label(target.key_label)
    if key is None:
        labels = ", ".join(repr(k.label) for k in pool.keys) or "none"
        raise ProbeError("key", f"no {provider.value} key labelled {target.key_label!r} (keys: {labels})")
    clock, settings = instance.clock, instance.settings
    started = clock.monotonic()
    ctx = CallContext(
        call_id=uuid7(),
        config=ModelConfig(model=target.model, provider=provider.value, max_tokens=PROBE_MAX_TOKENS),
        messages=[{"role": "user", "content": PROBE_PROMPT}],
        system=None,
        options=CallOptions(priority=Priority.BACKGROUND, timeout_s=timeout_s),
        started=started,
        started_at=clock.now(),
        deadline=started + timeout_s,
        source="probe",
    )

    async def auth_check(runtime: ProviderRuntime, key: ApiKey, prepared: PreparedRequest, timeout_s: float) -> None:
        await list_models(runtime.provider, settings.base_url(runtime.provider), key, timeout_s)

    async with instance.runner.call(ctx) as call:
        try:
            if settings.probe_auth_check:  # the free check first (PROBE_AUTH_CHECK): a refused key costs nothing
                await call.run_pinned(provider, target.model, key, send=auth_check)
                await call.abandon()  # passed: free, so no row; the paid probe follows
            completion = await call.run_pinned(provider, target.model, key, extra=reasoning_off(provider, target.model))
            assert call.lease is not None
            first_token_ms = (clock.monotonic() - call.lease.sent_at) * 1000.0  # one token: the whole answer
            await call.succeed(completion.response, completion.headers, first_token_ms)
            message = "ok"
        except CallError as error:
            if not ctx.rows:  # refused before sending (e.g. a request the provider's format cannot carry)
                call.reject(provider.value, target.model, error)
            message = str(error)
        row = ctx.rows[-1]
    return ProbeResult(
        provider=provider.value,
        key_label=key.label,
        model=target.model,
        ok=row.outcome == "success",
        outcome=row.outcome,
        error_class=row.error_class.value if row.error_class is not None else None,
        http_status=row.http_status,
        latency_ms=row.latency_ms,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        message=message[:MESSAGE_MAX],
        call_id=str(ctx.call_id),
        ts=row.ts,
    )


async def run_probes(probe: Probe, targets: Sequence[ProbeTarget], *, concurrency: int) -> list[ProbeResult]:
    """Probe every target with ``probe`` (e.g. ``client.probe``), at most ``concurrency`` at once; results in target
    order. A provider failure is a failed result, never an exception."""
    if concurrency < 1:
        raise ProbeError("concurrency", f"expected an integer >= 1, got {concurrency!r}")
    gate = asyncio.Semaphore(concurrency)

    async def one(target: ProbeTarget) -> ProbeResult:
        async with gate:
            return await probe(target)

    return list(await asyncio.gather(*(one(target) for target in targets)))


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
