"""The admin API under `/_emulator/`: read/replace the scenario, add a fault, stats, reset, move a manual clock.

Plain JSON, no authentication (the emulator binds to loopback only). Not counted in the stats.
"""

from __future__ import annotations

import json
import tomllib
from typing import Any, Protocol

from pulsegate.emulator.clock import Clock
from pulsegate.emulator.errors import ScenarioError
from pulsegate.emulator.plan import Reply, Request
from pulsegate.emulator.scenario import Fault, Scenario
from pulsegate.emulator.scenario_parser import parse_fault, parse_scenario
from pulsegate.emulator.stats import Stats


class Emulator(Protocol):
    """What the admin routes act on: :class:`pulsegate.emulator.app.Emulator` is one. A protocol, so that the app can
    dispatch here without this module importing the app back."""

    scenario: Scenario
    clock: Clock
    stats: Stats

    def set_scenario(self, scenario: Scenario) -> None: ...

    def add_fault(self, fault: Fault) -> None: ...

    def reset(self) -> None: ...


_JSON = ("content-type", "application/json")


def _reply(status: int, payload: Any) -> Reply:
    return Reply(status, [_JSON], json.dumps(payload).encode())


def _problem(status: int, message: str, field: str = "", kind: str = "invalid_request") -> Reply:
    return _reply(status, {"error": {"type": kind, "message": message, "field": field}})


def _body(req: Request) -> Any:
    if "toml" in req.headers.get("content-type", ""):
        return tomllib.loads(req.body.decode("utf-8"))
    return json.loads(req.body or b"{}")


def handle(emu: Emulator, req: Request) -> Reply:
    route = (req.method, req.path.rstrip("/"))
    try:
        if route == ("GET", "/_emulator/scenario"):
            return _reply(200, emu.scenario.to_dict())
        if route == ("PUT", "/_emulator/scenario"):
            scenario = parse_scenario(_body(req), source="scenario")
            emu.set_scenario(scenario)
            return _reply(200, {"ok": True, "scenario": scenario.to_dict()})
        if route == ("POST", "/_emulator/faults"):
            fault = parse_fault(_body(req))
            emu.add_fault(fault)
            return _reply(200, {"ok": True, "faults": len(emu.scenario.faults)})
        if route == ("GET", "/_emulator/stats"):
            return _reply(200, emu.stats.snapshot())
        if route == ("POST", "/_emulator/reset"):
            emu.reset()
            return _reply(200, {"ok": True})
        if route == ("GET", "/_emulator/clock"):
            return _reply(200, {"manual": bool(getattr(emu.clock, "manual", False)), "now": emu.clock.now()})
        if route == ("POST", "/_emulator/clock/advance"):
            return _advance(emu, _body(req))
        if route == ("GET", "/_emulator/health"):
            return _reply(200, {"ok": True})
    except ScenarioError as exc:
        return _problem(400, str(exc), exc.field, "scenario_error")
    except (ValueError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return _problem(400, f"invalid request body: {exc}")
    return _problem(404, f"no admin route {req.method} {req.path}")


def _advance(emu: Emulator, body: Any) -> Reply:
    advance = getattr(emu.clock, "advance", None)
    if advance is None:
        return _problem(409, 'the emulator runs on the real clock; start it with clock = "manual" to move time')
    seconds = body.get("seconds") if isinstance(body, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return _problem(400, "seconds: expected a number >= 0", "seconds")
    return _reply(200, {"now": advance(float(seconds))})
