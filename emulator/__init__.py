"""Pulsegate's local emulator of the Anthropic Messages and OpenAI Chat Completions APIs, with fault injection.

One loopback port serves both providers; scenarios (file, constructor or admin API) choose key behaviour, budgets,
latency and faults. See docs/emulator.md.
"""

from pulsegate.emulator.clock import Clock, ManualClock, MonotonicClock
from pulsegate.emulator.errors import EmulatorError, ScenarioError
from pulsegate.emulator.scenario import Fault, KeyPolicy, Latency, ReplyConfig, Scenario
from pulsegate.emulator.scenario_parser import load_scenario, parse_scenario
from pulsegate.emulator.server import EmulatorServer, serve
from pulsegate.emulator.stats import fingerprint

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
