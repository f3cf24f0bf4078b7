"""The sync twin from plain threads, many concurrent calls on one client, and one SDK client per key."""

from __future__ import annotations

import asyncio
import threading

import pytest

from pulsegate import AIClient, ModelConfig
from pulsegate.core.provider import Provider
from tests.client.conftest import requests_by_key, settings_for, total_requests

HELLO = [{"role": "user", "content": "Hello"}]
SONNET = ModelConfig(model="claude-sonnet-4-6", max_tokens=32)


def test_sync_twin_from_threads_with_no_event_loop(emu) -> None:
    client = AIClient(settings_for(emu, anthropic=3))
    answers: list[str] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(10):
                answers.append(client.generate_response_sync(SONNET, HELLO).text)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    client.close()
    assert errors == []
    assert answers == ["This is an emulated reply to: Hello"] * 40
    assert sum(sum(s.values()) for s in requests_by_key(emu).values()) == 40


async def test_sync_twin_inside_a_running_loop_says_what_to_do(emu) -> None:
    client = AIClient(settings_for(emu, anthropic=1))
    with pytest.raises(RuntimeError, match="inside a running event loop: await generate_response"):
        client.generate_response_sync(SONNET, HELLO)
    await client.aclose()


async def test_two_hundred_concurrent_calls_share_one_sdk_client_per_key(make_client, emu) -> None:
    client = make_client(anthropic=3)
    responses = await asyncio.gather(*(client.generate_response(SONNET, HELLO) for _ in range(200)))
    assert len(responses) == 200 and {r.provider for r in responses} == {"anthropic"}
    assert total_requests(emu) == 200
    adapter = client.instance.runtimes[Provider.ANTHROPIC].adapter
    assert len(adapter._clients) == 3  # built once per key, reused by every call
    assert all(k["in_flight"] == 0 for k in client.pools[Provider.ANTHROPIC].snapshot())
    counts = sorted(sum(s.values()) for s in requests_by_key(emu).values())
    assert counts[-1] - counts[0] <= 20


def test_a_client_survives_two_asyncio_runs(emu) -> None:
    client = AIClient(settings_for(emu, anthropic=2))

    async def once() -> str:
        return (await client.generate_response(SONNET, HELLO)).key_label

    first = asyncio.run(once())
    second = asyncio.run(once())  # a new loop: pools and queues are rebuilt, key health carries over
    assert (first, second) == ("Primary", "Backup 1")
    client.close()


async def test_snapshot_is_json_and_names_no_secret(make_client, emu) -> None:
    import json

    client = make_client(anthropic=2, openai=1, env={"ANTHROPIC_TPM": "100000"})
    await client.generate_response(SONNET, HELLO)
    snapshot = client.snapshot()
    text = json.dumps(snapshot)
    assert "sk-ant-test-primary" not in text and "sk-test-openai" not in text
    anthropic = snapshot["providers"]["anthropic"]
    assert set(anthropic) == {"queue", "limits", "limit_reason", "breaker", "keys"}
    assert set(anthropic["limits"]) == {"rpm", "tpm"}
    assert [k["label"] for k in anthropic["keys"]] == ["Primary", "Backup 1"]
    assert anthropic["breaker"]["state"] == "closed"
    assert snapshot["instance_id"] == client.instance_id


async def test_from_env_records_to_database_url(emu, tmp_path, monkeypatch, caplog) -> None:
    import logging

    import sqlalchemy as sa

    from pulsegate import migrations

    url = f"sqlite:///{tmp_path / 'app.db'}"
    for name, value in {
        "ANTHROPIC_API_KEY": "sk-ant-test-from-env-" + "q" * 20,
        "ANTHROPIC_BASE_URL": emu.url,
        "DATABASE_URL": url,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.ERROR, logger="pulsegate.core.client"):
        unmigrated = AIClient.from_env()
    assert "has no tables: run `pulsegate migrate`" in caplog.text
    await unmigrated.aclose()
    migrations.upgrade(url)
    client = AIClient.from_env()
    await client.generate_response(SONNET, HELLO, options={"user_id": "u-1"})
    await client.aclose()
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT user_id FROM api_usage_metrics")).scalars().all() == ["u-1"]
    engine.dispose()
