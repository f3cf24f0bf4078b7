"""The demo's pieces without processes: the failure cycle's exact order and timings on a manual clock, the
traffic mix, the children's environment, ports, and the webhook sink."""

from __future__ import annotations

import io
import json
import random
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from pulsegate.core.clock import ManualClock
from pulsegate.core.request import Priority
from pulsegate.core.settings import Settings
from pulsegate.emulator import parse_scenario
from pulsegate.jobs.cli.demo.orchestrator import children_for
from pulsegate.jobs.cli.demo.scenario import (
    DemoKeys,
    Phase,
    ScenarioCycle,
    ScenarioDriver,
    build_phases,
    phase_scenarios,
)
from pulsegate.jobs.cli.demo.setup import DEFAULT_PORTS, choose_port, make_plan, port_is_free
from pulsegate.jobs.cli.demo.sink import WebhookSink
from pulsegate.jobs.cli.demo.traffic import CALL_TIMEOUT_S, USERS, TrafficMix, TrafficStats, plan_call

KEYS = DemoKeys(anthropic=("a-1", "a-2", "a-3"), openai=("o-1", "o-2", "o-3"))
ORDER = ["calm", "anthropic_529_storm", "key_429_pressure", "invalid_key", "recovery"]


def test_phases_follow_the_cycle_in_order_with_exact_timings() -> None:
    phases = build_phases(40, KEYS)
    assert [(p.name, p.start_s, p.end_s) for p in phases] == [
        ("calm", 0.0, 3.2),
        ("anthropic_529_storm", 3.2, 13.2),
        ("key_429_pressure", 13.2, 21.2),
        ("invalid_key", 21.2, 29.2),
        ("recovery", 29.2, 40.0),
    ]
    default = build_phases(180, KEYS)
    assert [p.name for p in default] == ORDER
    assert default[1].start_s == pytest.approx(14.4)  # the storm (and its alerts) come well within the first minute
    with pytest.raises(ValueError, match="at least 20 s"):
        build_phases(10, KEYS)


def test_the_driver_applies_each_phase_once_when_it_starts_and_repeats_the_cycle() -> None:
    clock = ManualClock()
    applied: list[str] = []
    driver = ScenarioDriver(ScenarioCycle(build_phases(40, KEYS)), lambda p: applied.append(p.name), clock)
    waits = []
    for _ in range(12):
        wait = driver.tick()
        waits.append(round(wait, 3))
        assert driver.tick() == pytest.approx(wait)  # a tick within a phase applies nothing
        clock.advance(wait)
    assert applied == ORDER + ORDER + ORDER[:2]
    assert waits[:6] == [3.2, 10.0, 8.0, 8.0, 10.8, 3.2]
    assert [(round(t, 3), n) for t, n, _ in driver.history[4:7]] == [(29.2, 0), (40.0, 1), (43.2, 1)]


def test_each_phase_is_a_valid_emulator_scenario_aimed_at_the_right_key() -> None:
    scenarios = phase_scenarios(KEYS)
    for scenario in scenarios.values():
        parse_scenario(scenario)  # the emulator would accept it
    assert "faults" not in scenarios["calm"] and "faults" not in scenarios["recovery"]
    assert scenarios["anthropic_529_storm"]["faults"][0] | {"rate": 1} == {
        "kind": "overloaded",
        "provider": "anthropic",
        "rate": 1,
    }
    assert scenarios["key_429_pressure"]["faults"][0]["key"] == "a-2"  # Backup 1
    assert scenarios["invalid_key"]["keys"] == {"a-3": {"behaviour": "invalid"}}  # Backup 2
    assert KEYS.environ() == {
        "ANTHROPIC_API_KEY": "a-1",
        "ANTHROPIC_API_KEY_2": "a-2",
        "ANTHROPIC_API_KEY_3": "a-3",
        "OPENAI_API_KEY": "o-1",
        "OPENAI_API_KEY_2": "o-2",
        "OPENAI_API_KEY_3": "o-3",
    }
    generated = DemoKeys.generate()
    assert len(set(generated.anthropic + generated.openai)) == 6


def test_cycle_edges() -> None:
    cycle = ScenarioCycle([Phase("a", 0, 5, "", {}), Phase("b", 5, 15, "", {})])
    assert cycle.cycle_s == 20
    assert [cycle.at(t)[1].name for t in (0, 4.999, 5, 19.999, 20, 25)] == ["a", "a", "b", "b", "a", "b"]
    assert cycle.at(42) == (2, cycle.phases[0])
    assert cycle.next_change_in(3) == pytest.approx(2)


def test_the_traffic_mix_has_every_kind_of_call_in_its_shares() -> None:
    rng = random.Random(1)
    plans = [plan_call(rng) for _ in range(4000)]
    mix = TrafficMix()
    share = lambda pred: sum(map(pred, plans)) / len(plans)  # noqa: E731
    assert share(lambda p: p.provider == "anthropic") == pytest.approx(mix.anthropic, abs=0.03)
    assert share(lambda p: p.mode == "stream") == pytest.approx(mix.streaming, abs=0.03)
    assert share(lambda p: p.mode == "sync") == pytest.approx((1 - mix.streaming) * mix.sync, abs=0.03)
    anthropic = [p for p in plans if p.provider == "anthropic"]
    assert sum(p.fallback for p in anthropic) / len(anthropic) == pytest.approx(mix.fallback, abs=0.03)
    assert not any(p.fallback for p in plans if p.provider == "openai")
    priorities = Counter(p.priority for p in plans)
    assert set(priorities) == {Priority.USER_FACING_HIGH, Priority.USER_FACING, Priority.ADMIN, Priority.BACKGROUND}
    assert priorities[Priority.USER_FACING] / len(plans) == pytest.approx(0.40, abs=0.03)
    assert {p.feature for p in plans} == {"chat", "search", "admin-report", "batch-summaries"}
    assert {p.user_id for p in plans if p.priority >= Priority.USER_FACING} == set(USERS)
    assert all(p.user_id is None for p in plans if p.priority < Priority.USER_FACING)
    again = random.Random(1)
    assert [plan_call(again) for _ in range(50)] == plans[:50]  # seeded: reproducible traffic


def test_traffic_stats_serialise(tmp_path: Path) -> None:
    stats = TrafficStats(calls=3, succeeded=2, failed=1)
    stats.modes["stream"] += 2
    stats.errors["overloaded"] += 1
    stats.write(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["errors"] == {"overloaded": 1}


def test_children_get_the_demo_settings_and_none_of_the_users(tmp_path: Path) -> None:
    plan = make_plan(tmp_path / "demo", cycle_s=40, rate=2, ports={name: 0 for name in DEFAULT_PORTS})
    env = plan.environ(
        {
            "PATH": "/bin",
            "OPENAI_API_KEY_7": "sk-real",
            "DATABASE_URL": "postgresql://prod",
            "REDIS_URL": "redis://x",
            "PYTHONPATH": "/elsewhere",
        }
    )
    assert env["PATH"] == "/bin" and "OPENAI_API_KEY_7" not in env and "REDIS_URL" not in env
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path / 'demo' / 'pulsegate.db'}"
    assert env["ANTHROPIC_BASE_URL"] == plan.url("emulator") and env["OPENAI_BASE_URL"] == plan.url("emulator") + "/v1"
    assert env["PULSEGATE_DEMO_SINK_URL"] == plan.url("sink")
    assert float(env["FALLBACK_RESERVE_S"]) < CALL_TIMEOUT_S  # a queued demo call can fall back
    assert env["MONITORING_WEBHOOK_URL"] == plan.url("sink") + "/slack"
    assert all(url.startswith("http://127.0.0.1:") for url in (plan.url(n) for n in DEFAULT_PORTS))
    assert len(set(plan.ports.values())) == 4
    assert (tmp_path / "demo" / "alerts.toml").read_text().count("[[rules]]") >= 6
    assert "PYTHONPATH" not in env  # the children import the installed `pulsegate`, nothing from a path
    children = children_for(plan, console=io.StringIO())
    assert set(children) == {"emulator", "sink", "worker", "traffic", "dashboard"}
    assert {c.cwd for c in children.values()} == {plan.directory}  # a `.env` where the user ran it is not read


def test_no_setting_of_the_users_shell_reaches_a_child(tmp_path: Path) -> None:
    """Every setting Pulsegate reads is either scrubbed or set by the demo itself: a LIMIT_TUNING=off or a
    FALLBACK_RESERVE_S in the shell would silently change what the demo shows."""
    plan = make_plan(tmp_path / "demo", cycle_s=40, rate=2, ports={name: 0 for name in DEFAULT_PORTS})
    names = sorted(name.upper() for name in Settings.model_fields)
    env = plan.environ({name: "from-the-shell" for name in names})
    leaked = [name for name in names if env.get(name) == "from-the-shell"]
    assert leaked == []


def test_ports_default_when_free_else_any_free_port() -> None:
    assert choose_port(12345, 8501) == 12345
    picked = choose_port(0, 8501)
    assert picked > 0 and port_is_free(picked)
    with _Busy() as busy:
        assert choose_port(None, busy) != busy


class _Busy:
    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_the_sink_answers_like_slack_and_discord_and_lists_what_it_received() -> None:
    sink = WebhookSink()
    try:
        slack = {"text": "[FIRING] Circuit breaker open · anthropic\n🔴 anthropic breaker open &lt; now"}
        discord = {"content": "[RESOLVED] Circuit breaker open · anthropic\n<http://x>", "embeds": [{"title": "✅ ok"}]}
        for path, body in (("/slack", slack), ("/discord?wait=true", discord)):
            request = urllib.request.Request(sink.url(path), data=json.dumps(body).encode(), method="POST")
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.status == 200
        with urllib.request.urlopen(sink.url("/messages"), timeout=5) as response:
            messages = json.load(response)["messages"]
    finally:
        sink.stop()
    assert [(m["id"], m["format"], m["transition"], m["title"], m["alerts"]) for m in messages] == [
        (1, "slack", "firing", "[FIRING] Circuit breaker open · anthropic", ["🔴 anthropic breaker open < now"]),
        (2, "discord", "resolved", "[RESOLVED] Circuit breaker open · anthropic", ["✅ ok"]),
    ]


def test_the_inbox_page_is_listed_only_when_a_demo_sink_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from pulsegate.dashboard import ui

    monkeypatch.delenv("PULSEGATE_DEMO_SINK_URL", raising=False)
    assert "inbox" not in [slug for *_, slug in ui.page_specs()]
    monkeypatch.setenv("PULSEGATE_DEMO_SINK_URL", "http://127.0.0.1:8702")
    assert [slug for *_, slug in ui.page_specs()][-1] == "inbox"
