"""What the demo decides before anything starts: its folder, ports, fake keys, admin token, alert timings, and
the environment every child gets (the user's own provider keys, database and webhooks are never inherited).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pulsegate.jobs.cli.demo.scenario import DemoKeys

DEFAULT_DIR = ".pulsegate-demo"
DEFAULT_PORTS = {"dashboard": 8501, "worker": 8600, "emulator": 8700, "sink": 8702}
HEARTBEAT_INTERVAL_S = 2.0
PROBE_INTERVAL_S = 15.0
ALERT_INTERVAL_S = 3.0
FALLBACK_RESERVE_S = 4.0
SINK_URL_ENV = "PULSEGATE_DEMO_SINK_URL"
DISCORD_URL_ENV = "PULSEGATE_DEMO_DISCORD_URL"
#: Settings a developer may have in the shell that must not leak into the demo (it is all fake and loopback).
SCRUBBED_PREFIXES = (
    "ANTHROPIC_", "OPENAI_", "DATABASE_URL", "REDIS_", "UPSTASH_", "MONITORING_", "ADMIN_TOKEN", "ALERT_",
    "DASHBOARD_", "WORKER_", "PROBE_", "HEARTBEAT_", "SPOOL_DIR", "USER_RPM", "USER_TPM", "FEATURE_RPM",
    "FEATURE_TPM", "HASH_USER_IDS", "RATE_LIMIT_", "LIMIT_TUNING", "FALLBACK_", "PULSEGATE_DEMO_", "RETENTION_DAYS",
    "LEADER_LEASE_S", "PRICE_TABLE_FILE", "PYTHONPATH", "GATEWAY_",
)  # fmt: skip

#: The demo's own alert rules: windows and hysteresis sized for phases of half a minute, so that each incident of
#: the cycle (jobs/cli/demo/scenario.py) sends each of its rules once firing and once resolved, and the calm sends
#: nothing. What fires when, with the default cycle: docs/alerts.md#the-demos-rules.
ALERT_RULES = f"""\
# Written by `pulsegate demo`: short windows, and hysteresis, so each incident fires its alerts once and resolves
# them once while you watch.
group_wait = "2s"
repeat_interval = "5m"

[[rules]]                   # 529 storm: the breaker opens (half-open trials must not flap it)
id = "breaker_open"
for = "0s"
keep_firing_for = "10s"

[[rules]]                   # 529 storm: overloaded answers; with the breaker, mutes Anthropic's per-key alerts
id = "overloaded_share_high"
window = "30s"
for = "5s"
resolve_threshold = 3
keep_firing_for = "5s"
min_sample = 10

[[rules]]                   # 529 storm: near 0 %; 429s and the revoked key keep it above 85 %
id = "success_rate_low"
threshold = 50
resolve_threshold = 85
window = "30s"
for = "5s"
keep_firing_for = "5s"
min_sample = 10

[[rules]]                   # 529 storm: OpenAI answers Anthropic's calls
id = "fallback_rate_high"
threshold = 20
resolve_threshold = 5
window = "30s"
for = "5s"
keep_firing_for = "5s"
min_sample = 10

[[rules]]                   # 429 pressure: one key, so per key
id = "rate_limited_share_high"
scope = "key"
threshold = 20
resolve_threshold = 5
window = "30s"
for = "5s"
keep_firing_for = "5s"
min_sample = 5

[[rules]]                   # invalid key: disabled at its first 401, enabled by the next passing probe (a state
id = "key_unhealthy"        # that cannot flap: nothing to keep firing for)
statuses = ["disabled"]
for = "0s"
keep_firing_for = "0s"

[[rules]]                   # a probe every 15 s is too coarse for half-minute phases: whether a streak of 3 fits
id = "probe_failures"       # in a phase is chance (the keys' own alerts above say it)
enabled = false

[[rules]]                   # hour-long error budgets cannot recover within a demo cycle
id = "slo_burn_fast"
enabled = false

[[rules]]
id = "slo_burn_slow"
enabled = false

[[channels]]                # MONITORING_WEBHOOK_URL is the Slack-format channel; this one speaks Discord
name = "discord"
format = "discord"
url_env = "{DISCORD_URL_ENV}"
"""


def choose_port(requested: int | None, default: int) -> int:
    """``requested`` as given (0 = any free port); not given: ``default`` if it is free, else any free port."""
    if requested is None:
        return default if port_is_free(default) else free_port()
    return free_port() if requested == 0 else requested


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """Everything fixed at start; ``url(name)`` is where each component listens."""

    directory: Path
    database_url: str
    ports: Mapping[str, int]
    keys: DemoKeys
    admin_token: str
    cycle_s: float
    rate: float

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def alert_rules_file(self) -> Path:
        return self.directory / "alerts.toml"

    @property
    def log_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def traffic_stats_file(self) -> Path:
        return self.directory / "traffic.json"

    def environ(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """The children's environment: ``base`` (default os.environ) without the user's settings, plus the demo's."""
        source = os.environ if base is None else base
        env = {k: v for k, v in source.items() if not k.startswith(SCRUBBED_PREFIXES)}
        emulator, sink = self.url("emulator"), self.url("sink")
        env.update(self.keys.environ())
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "SPOOL_DIR": str(self.directory / "spool"),
                "ANTHROPIC_BASE_URL": emulator,
                "OPENAI_BASE_URL": f"{emulator}/v1",
                "ANTHROPIC_RPM": "300",
                "OPENAI_RPM": "600",
                # the traffic's calls have a 10 s deadline: one queued 6 s leaves for OpenAI with 4 s kept
                "FALLBACK_RESERVE_S": f"{FALLBACK_RESERVE_S:g}",
                "ADMIN_TOKEN": self.admin_token,
                "HEARTBEAT_INTERVAL_S": f"{HEARTBEAT_INTERVAL_S:g}",
                "PROBE_INTERVAL_S": f"{PROBE_INTERVAL_S:g}",
                "ALERT_INTERVAL_S": f"{ALERT_INTERVAL_S:g}",
                "ALERT_RULES_FILE": str(self.alert_rules_file),
                "MONITORING_WEBHOOK_URL": f"{sink}/slack",
                "MONITORING_WEBHOOK_FORMAT": "slack",
                DISCORD_URL_ENV: f"{sink}/discord",
                "DASHBOARD_URL": self.url("dashboard"),
                SINK_URL_ENV: sink,
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env


def make_plan(
    directory: Path,
    *,
    cycle_s: float,
    rate: float,
    ports: Mapping[str, int | None],
    database_url: str | None = None,
) -> DemoPlan:
    """Fresh state under ``directory`` (its SQLite store, spool and logs are recreated) and the ports to use."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("pulsegate.db", "pulsegate.db-wal", "pulsegate.db-shm", "traffic.json", "demo.json"):
        (directory / stale).unlink(missing_ok=True)
    for folder in ("spool", "logs"):
        shutil.rmtree(directory / folder, ignore_errors=True)
        (directory / folder).mkdir()
    chosen: dict[str, int] = {}
    for name, default in DEFAULT_PORTS.items():
        port = choose_port(ports.get(name), default)
        while port in chosen.values():  # two free-port picks can coincide
            port = free_port()
        chosen[name] = port
    plan = DemoPlan(
        directory=directory,
        database_url=database_url or f"sqlite:///{directory / 'pulsegate.db'}",
        ports=chosen,
        keys=DemoKeys.generate(),
        admin_token=secrets.token_urlsafe(24),
        cycle_s=cycle_s,
        rate=rate,
    )
    plan.alert_rules_file.write_text(ALERT_RULES, encoding="utf-8")
    return plan
