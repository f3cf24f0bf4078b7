"""The store on both databases (PostgreSQL included, which the process-level scan does not use): after calls that
succeed, hit a revoked key (401), a rate-limited key (429), an exhausted key (quota) and an unknown model (404),
and a heartbeat snapshot of every key's health, ``SELECT *`` of every table holds no key value — and neither do
this process's log records nor the exceptions raised."""

from __future__ import annotations

import logging
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from pulsegate import AIClient
from pulsegate.core.ops.heartbeat import instance_heartbeat, instance_state
from pulsegate.core.store.tables import ALL_TABLES
from tests.client.conftest import ANTHROPIC_KEYS, OPENAI_KEYS, emu, emulator_server, make_client  # noqa: F401

KEYS = ANTHROPIC_KEYS[:3] + OPENAI_KEYS[:2]


def _forms(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), secret[8:-2]}  # and a middle slice: no partial key either


async def test_no_key_in_any_table_log_record_or_exception(
    make_client,  # noqa: F811
    emu,  # noqa: F811
    store: sa.Engine,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu.set_scenario(
        {
            "keys": {ANTHROPIC_KEYS[1]: {"behaviour": "invalid"}, OPENAI_KEYS[1]: {"behaviour": "quota"}},
            "unknown_models": ["claude-retired-1"],
            "faults": [{"kind": "rate_limit", "count": 2, "key": ANTHROPIC_KEYS[2], "retry_after": 1}],
        }
    )
    caplog.set_level(logging.DEBUG)
    client: AIClient = make_client(anthropic=3, openai=2, store=store)
    hello = [{"role": "user", "content": "hello"}]
    failures: list[BaseException] = []
    configs = [{"model": "claude-sonnet-4-6", "max_tokens": 8}] * 8
    configs += [{"provider": "openai", "model": "gpt-4.1-mini", "max_tokens": 8}] * 4
    configs += [{"model": "claude-retired-1", "max_tokens": 8}]
    for config in configs:
        try:
            await client.generate_response(config, hello, options={"user_id": "u-1", "skipRateLimit": True})
        except Exception as exc:
            failures.append(exc)
    assert client.recorder.flush()
    instance_heartbeat(client.instance, store).write_snapshot(instance_state(client.instance), client.clock.now())
    dumped: dict[str, str] = {}
    with store.connect() as connection:
        for table in ALL_TABLES:
            rows = connection.execute(sa.select(table)).all()
            dumped[table.name] = repr(rows)
        classes = set(connection.execute(sa.text("SELECT DISTINCT error_class FROM api_usage_metrics")).scalars())
    assert {"auth", "quota", "not_found"} <= classes, classes
    assert "key_health_snapshots" in dumped and "Backup 1" in dumped["key_health_snapshots"]
    texts = {f"table {name}": text for name, text in dumped.items()}
    texts["log"] = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    for index, exc in enumerate(failures):
        texts[f"exception {index}"] = f"{exc!s} {exc!r} {exc.__cause__!r} {exc.__context__!r}"
    assert failures and caplog.records
    for where, text in texts.items():
        leaked = [key for key in KEYS if any(form in text for form in _forms(key))]
        assert not leaked, (where, leaked)
