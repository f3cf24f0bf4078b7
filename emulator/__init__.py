"""Pulsegate's local emulator of the Anthropic Messages and OpenAI Chat Completions APIs, with fault injection.

One loopback port serves both providers; scenarios (file, constructor or admin API) choose key behaviour, budgets,
latency and faults. See docs/emulator.md.
"""

from emulator.clock import Clock, ManualClock, MonotonicClock
from emulator.errors import EmulatorError, ScenarioError
from emulator.scenario import Fault, KeyPolicy, Latency, ReplyConfig, Scenario
from emulator.scenario_parser import load_scenario, parse_scenario
from emulator.server import EmulatorServer, serve
from emulator.stats import fingerprint

__all__ = [
    "Clock",
    "EmulatorError",
    "EmulatorServer",
    "Fault",
    "KeyPolicy",
    "Latency",
    "ManualClock",
    "MonotonicClock",
    "ReplyConfig",
    "Scenario",
    "ScenarioError",
    "fingerprint",
    "load_scenario",
    "parse_scenario",
    "serve",
]
