"""Reading and validating scenarios: TOML/JSON files and dicts, with one-line errors naming the field.

Every error reads `<source>: <field path>: expected ..., got ...`. Unknown fields are rejected so a typo never
silently does nothing.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pulsegate.emulator.errors import ScenarioError
from pulsegate.emulator.scenario import (
    BEHAVIOURS,
    ERROR_STATUSES,
    FAULT_KINDS,
    LATENCY_KINDS,
    PROVIDERS,
    ROUTES,
    Fault,
    KeyPolicy,
    Latency,
    Models,
    ReplyConfig,
    Scenario,
)


def parse_scenario(data: Mapping[str, Any], source: str = "scenario") -> Scenario:
    """Validate a mapping in the documented shape."""
    return _Parser(source).scenario(data)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario file: `.toml` or `.json` by extension. Any problem raises a one-line `ScenarioError`."""
    p = Path(path)
    name = str(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ScenarioError(f"{name}: unsupported scenario file type {suffix or '(none)'!r}: expected .toml or .json")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"{name}: cannot read scenario file: {exc.strerror or exc}", source=name) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8")) if suffix == ".toml" else json.loads(raw)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ScenarioError(f"{name}: invalid {suffix[1:].upper()}: {detail}", source=name) from exc
    return parse_scenario(data, source=name)


class _Parser:
    """Turns a mapping into a Scenario, raising ScenarioError(`<source>: <field path>: expected ..., got ...`)."""

    def __init__(self, source: str) -> None:
        self.source = source

    # -- primitives -----------------------------------------------------------------------------------------
    def fail(self, path: str, expected: str, got: Any = ...) -> ScenarioError:
        got_text = "" if got is ... else f", got {_short(got)}"
        return ScenarioError(f"{self.source}: {path}: expected {expected}{got_text}", field=path, source=self.source)

    def table(self, value: Any, path: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path or "(top level)", "a table/object", value)
        for k in value:
            if k not in allowed:
                where = f"{path}.{k}" if path else str(k)
                raise self.fail(where, "one of the known fields " + ", ".join(allowed), "an unknown field")
        return value

    def integer(self, value: Any, path: str, minimum: int | None = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, "an integer", value)
        if minimum is not None and value < minimum:
            raise self.fail(path, f"an integer >= {minimum}", value)
        return value

    def number(self, value: Any, path: str, minimum: float = 0.0, maximum: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, "a number", value)
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"between {minimum:g} and {maximum:g}" if maximum is not None else f">= {minimum:g}"
            raise self.fail(path, f"a number {bound}", value)
        return float(value)

    def choice(self, value: Any, path: str, options: tuple[str, ...]) -> str:
        if value not in options:
            raise self.fail(path, "one of " + ", ".join(repr(o) for o in options), value)
        return str(value)

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str):
            raise self.fail(path, "a string", value)
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "true or false", value)
        return value

    def strings(self, value: Any, path: str) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail(path, "a list of strings", value)
        return tuple(self.text(v, f"{path}[{i}]") for i, v in enumerate(value))

    # -- sections -------------------------------------------------------------------------------------------
    def scenario(self, data: Mapping[str, Any]) -> Scenario:
        top = self.table(
            data,
            "",
            (
                "seed",
                "clock",
                "max_body_bytes",
                "unknown_models",
                "reasoning_models",
                "context_window",
                "models",
                "reply",
                "latency",
                "defaults",
                "keys",
                "faults",
            ),
        )
        kw: dict[str, Any] = {}
        if "seed" in top:
            kw["seed"] = self.integer(top["seed"], "seed", None)
        if "clock" in top:
            kw["clock"] = self.choice(top["clock"], "clock", ("real", "manual"))
        if "max_body_bytes" in top:
            kw["max_body_bytes"] = self.integer(top["max_body_bytes"], "max_body_bytes", 1)
        if "unknown_models" in top:
            kw["unknown_models"] = self.strings(top["unknown_models"], "unknown_models")
        if "reasoning_models" in top:
            kw["reasoning_models"] = self.strings(top["reasoning_models"], "reasoning_models")
        if "context_window" in top:
            cw = self.table(top["context_window"], "context_window", PROVIDERS)
            if "anthropic" in cw:
                kw["anthropic_context_window"] = self.integer(cw["anthropic"], "context_window.anthropic", 1)
            if "openai" in cw:
                kw["openai_context_window"] = self.integer(cw["openai"], "context_window.openai", 1)
        if "models" in top:
            kw["models"] = self.models(top["models"])
        if "reply" in top:
            kw["reply"] = self.reply(top["reply"])
        if "latency" in top:
            kw["latency"] = self.latency(top["latency"])
        defaults = self.policy(top.get("defaults", {}), "defaults", KeyPolicy())
        kw["defaults"] = defaults
        if "keys" in top:
            keys = top["keys"]
            if not isinstance(keys, Mapping):
                raise self.fail("keys", "a table of key value -> policy", keys)
            kw["keys"] = {str(k): self.policy(v, f"keys.{json.dumps(str(k))}", defaults) for k, v in keys.items()}
        if "faults" in top:
            faults = top["faults"]
            if not isinstance(faults, list | tuple):
                raise self.fail("faults", "a list of fault tables", faults)
            kw["faults"] = tuple(self.fault(f, f"faults[{i}]") for i, f in enumerate(faults))
        return Scenario(**kw)

    def policy(self, value: Any, path: str, base: KeyPolicy) -> KeyPolicy:
        t = self.table(value, path, ("behaviour", "requests", "tokens", "input_tokens", "output_tokens", "period"))
        kw: dict[str, Any] = {}
        if "behaviour" in t:
            kw["behaviour"] = self.choice(t["behaviour"], f"{path}.behaviour", BEHAVIOURS)
        for name in ("requests", "tokens", "input_tokens", "output_tokens"):
            if name in t:
                kw[name] = self.integer(t[name], f"{path}.{name}", 1)
        if "period" in t:
            period = self.number(t["period"], f"{path}.period", 0.001)
            kw["period"] = period
        return replace(base, **kw)

    def latency(self, value: Any) -> Latency:
        names = ("kind", "ms", "min_ms", "max_ms", "median_ms", "sigma", "ttft_ms", "per_token_ms")
        t = self.table(value, "latency", names)
        kw: dict[str, Any] = {}
        if "kind" in t:
            kw["kind"] = self.choice(t["kind"], "latency.kind", LATENCY_KINDS)
        for name in names[1:]:
            if name in t:
                kw[name] = self.number(t[name], f"latency.{name}")
        lat = Latency(**kw)
        if lat.kind == "uniform" and lat.max_ms < lat.min_ms:
            raise self.fail("latency.max_ms", f"a number >= latency.min_ms ({lat.min_ms:g})", lat.max_ms)
        return lat

    def reply(self, value: Any) -> ReplyConfig:
        t = self.table(value, "reply", ("text", "extra_words", "tool_use"))
        kw: dict[str, Any] = {}
        if "text" in t:
            text = self.text(t["text"], "reply.text")
            if not text.strip():
                raise self.fail("reply.text", "a non-empty string", text)
            kw["text"] = text
        if "extra_words" in t:
            kw["extra_words"] = self.integer(t["extra_words"], "reply.extra_words", 0)
        if "tool_use" in t:
            kw["tool_use"] = self.boolean(t["tool_use"], "reply.tool_use")
        return ReplyConfig(**kw)

    def models(self, value: Any) -> Models:
        t = self.table(value, "models", PROVIDERS)
        kw: dict[str, Any] = {}
        for provider in PROVIDERS:
            if provider not in t:
                continue
            items = t[provider]
            path = f"models.{provider}"
            if not isinstance(items, list | tuple):
                raise self.fail(path, "a list of model ids or model objects", items)
            kw[provider] = tuple(self.model(provider, m, f"{path}[{i}]") for i, m in enumerate(items))
        return Models(**kw)

    def model(self, provider: str, value: Any, path: str) -> dict[str, Any]:
        if isinstance(value, str):
            value = {"id": value}
        if provider == "anthropic":
            t = self.table(value, path, ("id", "display_name", "created_at", "type"))
            model_id = self.text(t.get("id"), f"{path}.id")
            return {
                "type": "model",
                "id": model_id,
                "display_name": self.text(t.get("display_name", _display_name(model_id)), f"{path}.display_name"),
                "created_at": self.text(t.get("created_at", "2026-01-01T00:00:00Z"), f"{path}.created_at"),
            }
        t = self.table(value, path, ("id", "created", "owned_by", "object"))
        return {
            "id": self.text(t.get("id"), f"{path}.id"),
            "object": "model",
            "created": self.integer(t.get("created", 1767225600), f"{path}.created"),
            "owned_by": self.text(t.get("owned_by", "system"), f"{path}.owned_by"),
        }

    def fault(self, value: Any, path: str) -> Fault:
        names = tuple(Fault.__dataclass_fields__)
        t = self.table(value, path, names)
        if "kind" not in t:
            raise self.fail(f"{path}.kind", "one of " + ", ".join(FAULT_KINDS) + " (required)")
        kw: dict[str, Any] = {"kind": self.choice(t["kind"], f"{path}.kind", FAULT_KINDS)}
        if "rate" in t:
            kw["rate"] = self.number(t["rate"], f"{path}.rate", 0.0, 1.0)
        if t.get("count") is not None:
            kw["count"] = self.integer(t["count"], f"{path}.count", 1)
        if t.get("provider") is not None:
            kw["provider"] = self.choice(t["provider"], f"{path}.provider", PROVIDERS)
        if t.get("route") is not None:
            route = self.text(t["route"], f"{path}.route")
            if not any(r == route or r.endswith("." + route) for r in ROUTES):
                raise self.fail(f"{path}.route", "a route name like " + ", ".join(ROUTES), route)
            kw["route"] = route
        for name in ("key", "model", "message"):
            if t.get(name) is not None:
                kw[name] = self.text(t[name], f"{path}.{name}")
        if t.get("stream") is not None:
            kw["stream"] = self.boolean(t["stream"], f"{path}.stream")
        if t.get("status") is not None:
            kw["status"] = self.integer(t["status"], f"{path}.status", None)
            if kw["status"] not in ERROR_STATUSES:
                raise self.fail(f"{path}.status", "one of " + ", ".join(map(str, ERROR_STATUSES)), kw["status"])
        if t.get("retry_after") is not None:
            kw["retry_after"] = self.integer(t["retry_after"], f"{path}.retry_after", 0)
        if "seconds" in t:
            kw["seconds"] = self.number(t["seconds"], f"{path}.seconds")
        if "after_events" in t:
            kw["after_events"] = self.integer(t["after_events"], f"{path}.after_events", 0)
        if kw["kind"] == "error" and "status" not in kw:
            raise self.fail(f"{path}.status", "an HTTP status for kind 'error' (required)")
        if kw["kind"] in ("stall", "stall_stream", "drip_body") and kw.get("seconds", 0.0) <= 0:
            raise self.fail(f"{path}.seconds", f"a number > 0 for kind {kw['kind']!r}", t.get("seconds", 0))
        return Fault(**kw)


def _display_name(model_id: str) -> str:
    """`claude-sonnet-4-6` -> `Claude Sonnet 4.6` (runs of short numbers become a version; dates are dropped)."""
    words: list[str] = []
    for part in model_id.split("-"):
        if part.isdigit() and len(part) >= 8:
            continue
        if part.isdigit() and words and words[-1].replace(".", "").isdigit():
            words[-1] += "." + part
        else:
            words.append(part if part.isdigit() else part.capitalize())
    return " ".join(words)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_fault(data: Any, source: str = "fault") -> Fault:
    """Validate one fault rule on its own (used by `POST /_emulator/faults` and `EmulatorServer.add_fault`)."""
    return _Parser(source).fault(data, source)
