"""A realistic run with known secrets, shared by the secrets scan and the browser access tests.

Emulator, worker (``-v``: debug logging) and dashboard run as real processes on one SQLite store; webhooks go to a
loopback receiver (Slack, Discord and generic channels, each URL holding a secret token path); AIClient calls in
this process succeed, hit a revoked key (401), a rate-limited key (429), an exhausted OpenAI key (quota) and an
unknown model (404), and are refused for a malformed request. Every secret is distinct and long enough to find.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pulsegate import AIClient, migrations
from pulsegate.core.settings import load_settings
from tests.alerts.channels.receivers import Receiver, Reply
from tests.support.browser import require_chromium
from tests.support.processes import BackgroundProcess, free_port, wait_http

KEY_OK = "sk-ant-api03-SeCrEtOkKey1-" + "q" * 28 + "Zz01"
KEY_REVOKED = "sk-ant-api03-SeCrEtRevoked2-" + "w" * 26 + "Zz02"
KEY_LIMITED = "sk-ant-api03-SeCrEtLimited3-" + "v" * 26 + "Zz03"
OPENAI_OK = "sk-proj-SeCrEtOpenAi4-" + "e" * 30 + "Zz04"
OPENAI_SPENT = "sk-proj-SeCrEtSpent5-" + "t" * 30 + "Zz05"
ADMIN_TOKEN = "adm-SeCrEtAdminToken-" + "r" * 20
DASHBOARD_PASSWORD = "pw-SeCrEt-correct-horse-battery"
SLACK_PATH = "/services/T0SECRET/B0SECRET/SeCrEtSlackPath9x8y7z"
DISCORD_PATH = "/api/webhooks/1234567/SeCrEtDiscordPathQwErTy"
GENERIC_PATH = "/hooks/SeCrEtGenericPathAsDfGh"
WEBHOOK_SECRET = "hmac-SeCrEtSigningKey-0123456789"
HASH_KEY = "hash-SeCrEtUserIdKey-0123456789"

API_KEYS = {"ANTHROPIC_API_KEY": KEY_OK, "ANTHROPIC_API_KEY_2": KEY_REVOKED, "ANTHROPIC_API_KEY_3": KEY_LIMITED}
API_KEYS |= {"OPENAI_API_KEY": OPENAI_OK, "OPENAI_API_KEY_2": OPENAI_SPENT}


@dataclass
class Flow:
    tmp: Path
    env: dict[str, str]
    secrets: dict[str, str]
    store_path: Path
    worker_url: str
    web_url: str
    receiver: Receiver
    processes: dict[str, BackgroundProcess]
    exceptions: list[BaseException] = field(default_factory=list)
    log_records: list[str] = field(default_factory=list)


def secret_values(receiver: Receiver) -> dict[str, str]:
    values = {f"key {name}": value for name, value in API_KEYS.items()}
    values |= {"ADMIN_TOKEN": ADMIN_TOKEN, "DASHBOARD_PASSWORD": DASHBOARD_PASSWORD}
    values |= {"MONITORING_WEBHOOK_SECRET": WEBHOOK_SECRET, "HASH_USER_IDS": HASH_KEY}
    for name, path in (("slack", SLACK_PATH), ("discord", DISCORD_PATH), ("generic", GENERIC_PATH)):
        values[f"{name} webhook URL"] = receiver.url(path)
        values[f"{name} webhook token"] = path.rsplit("/", 1)[1]
    return values


def _emulator_scenario(tmp: Path) -> Path:
    scenario = {
        "keys": {KEY_REVOKED: {"behaviour": "invalid"}, OPENAI_SPENT: {"behaviour": "quota"}},
        "unknown_models": ["claude-retired-1"],
        "faults": [{"kind": "rate_limit", "count": 2, "key": KEY_LIMITED, "retry_after": 1}],
    }
    path = tmp / "scenario.json"
    path.write_text(json.dumps(scenario))
    return path


def _rules_file(tmp: Path) -> Path:
    path = tmp / "rules.toml"
    path.write_text(
        """
[[rules]]
id = "any_failure"
kind = "success_rate_below"
threshold = 99.9
window = "10m"
for = 0
min_sample = 1
severity = "critical"

[[channels]]
name = "discord"
format = "discord"
url_env = "HARDENING_DISCORD_URL"

[[channels]]
name = "generic"
format = "generic"
url_env = "HARDENING_GENERIC_URL"
secret_env = "HARDENING_GENERIC_SECRET"
"""
    )
    return path


class Collect(logging.Handler):
    """Every log record of this process, formatted with its traceback (what a log file would hold)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = lines
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def _traffic(env: dict[str, str], exceptions: list[BaseException]) -> None:
    settings = load_settings(environ=env, env_file=None)
    client = AIClient.from_env(settings=settings)
    hello = [{"role": "user", "content": "hello"}]
    calls: list[tuple[dict[str, Any], dict[str, Any]]] = []
    calls += [({"model": "claude-sonnet-4-6", "max_tokens": 8}, {"user_id": f"user-{i}"}) for i in range(8)]
    calls += [({"provider": "openai", "model": "gpt-4.1-mini", "max_tokens": 8}, {}) for _ in range(4)]
    calls += [({"model": "claude-retired-1", "max_tokens": 8}, {})]  # 404
    calls += [({"model": "claude-sonnet-4-6", "max_tokens": 0}, {})]  # refused before sending
    calls += [({"model": "claude-sonnet-4-6", "max_tokens": 8, "temprature": 1}, {})]
    try:
        for config, options in calls:
            try:
                await client.generate_response(config, hello, None, options)
            except Exception as exc:  # every failure is kept for the scan
                exceptions.append(exc)
        await asyncio.sleep(0)
    finally:
        await client.aclose()


def _wait_for_delivery(receiver: Receiver, store_path: Path, timeout: float) -> None:
    """Until every channel has had its alert delivered (after the scripted failures) and recorded."""
    deadline = time.monotonic() + timeout
    delivered = 0
    while time.monotonic() < deadline:
        paths = {r.path for r in receiver.requests}
        if {SLACK_PATH, DISCORD_PATH, GENERIC_PATH} <= paths:
            connection = sqlite3.connect(store_path)
            try:
                query = "SELECT COUNT(DISTINCT channel) FROM alert_deliveries WHERE status_code = 200"
                delivered = connection.execute(query).fetchone()[0]
            finally:
                connection.close()
            if delivered >= 3:
                return
        time.sleep(0.3)
    raise AssertionError(f"alerts were not delivered to every channel: {sorted({r.path for r in receiver.requests})}")


@pytest.fixture(scope="package")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flow]:
    require_chromium()
    tmp = tmp_path_factory.mktemp("secrets-flow")
    store_path = tmp / "store.db"
    store = f"sqlite:///{store_path}"
    migrations.upgrade(store)
    receiver = Receiver(Reply(200, b"ok"))
    # the first delivery to each channel fails (a retry, and its log line, with the URL in play)
    receiver.script(Reply(500, b"upstream error"), Reply(500, b"upstream error"), Reply(500, b"upstream error"))
    emulator_port, worker_port, web_port = free_port(), free_port(), free_port()
    base = f"http://127.0.0.1:{emulator_port}"
    env = {
        "DATABASE_URL": store,
        "SPOOL_DIR": str(tmp / "spool"),
        **API_KEYS,
        "ANTHROPIC_BASE_URL": base,
        "OPENAI_BASE_URL": f"{base}/v1",
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "DASHBOARD_PASSWORD": DASHBOARD_PASSWORD,
        "MONITORING_WEBHOOK_URL": receiver.url(SLACK_PATH),
        "MONITORING_WEBHOOK_FORMAT": "slack",
        "MONITORING_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "HARDENING_DISCORD_URL": receiver.url(DISCORD_PATH),
        "HARDENING_GENERIC_URL": receiver.url(GENERIC_PATH),
        "HARDENING_GENERIC_SECRET": WEBHOOK_SECRET,
        "HASH_USER_IDS": HASH_KEY,
        "ALERT_RULES_FILE": str(_rules_file(tmp)),
        "ALERT_INTERVAL_S": "1",
        "ALERT_GROUP_WAIT_S": "0",
        "HEARTBEAT_INTERVAL_S": "2",
        "PROBE_INTERVAL_S": "3600",
    }
    processes = {
        "emulator": BackgroundProcess(
            ["emulator", "--port", str(emulator_port), "--scenario", str(_emulator_scenario(tmp))], cwd=tmp
        ),
        "worker": BackgroundProcess(["-v", "worker", "--port", str(worker_port)], cwd=tmp, env=env),
        "dashboard": BackgroundProcess(["dashboard", "--port", str(web_port)], cwd=tmp, env=env),
    }
    try:
        for process in processes.values():
            process.__enter__()
        wait_http(f"{base}/v1/models", timeout=30, process=processes["emulator"].process)
        processes["worker"].wait_for_output("worker started", timeout=60)
        exceptions: list[BaseException] = []
        lines: list[str] = []
        handler, root = Collect(lines), logging.getLogger()
        level = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            asyncio.run(_traffic(env, exceptions))
        finally:
            root.removeHandler(handler)
            root.setLevel(level)
        _wait_for_delivery(receiver, store_path, timeout=90)
        wait_http(f"http://127.0.0.1:{web_port}/_stcore/health", timeout=60, process=processes["dashboard"].process)
        yield Flow(
            tmp=tmp,
            env=env,
            secrets=secret_values(receiver),
            store_path=store_path,
            worker_url=f"http://127.0.0.1:{worker_port}",
            web_url=f"http://127.0.0.1:{web_port}",
            receiver=receiver,
            processes=processes,
            exceptions=exceptions,
            log_records=lines,
        )
    finally:
        for process in processes.values():
            process.__exit__(None, None, None)
        receiver.stop()


def http_get(url: str, token: str | None = None, method: str = "GET", body: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
