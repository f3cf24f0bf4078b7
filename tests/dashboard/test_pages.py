"""Every page through ``streamlit.testing.v1.AppTest`` against a real, migrated SQLite store."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from streamlit.proto.Metric_pb2 import Metric as MetricProto

from pulsegate.core.ops.probe import ProbeResult
from pulsegate.core.ops.probe_requests import claim_probe_requests, finish_probe_request
from pulsegate.core.store.tables import (
    alert_episodes,
    alert_silences,
    control_acks,
    control_commands,
    probe_requests,
)
from tests.dashboard.conftest import app, plotly_charts, texts
from tests.queries.data import (
    NOW,
    attempt_row,
    episode_row,
    insert,
    insert_attempts,
    insert_instances,
    insert_keys,
    insert_tiers,
    instance_row,
    key_row,
    rollup_row,
)

OVERVIEW_CHARTS = 1
GRAY, UP, NO_ARROW = MetricProto.MetricColor.GRAY, MetricProto.MetricDirection.UP, MetricProto.MetricDirection.NONE


def seed(engine: sa.Engine) -> None:
    """Half an hour of traffic on two providers, two live instances reporting, one key cooling down."""
    minutes = []
    for i in range(30):
        bucket = NOW - timedelta(minutes=30 - i)
        minutes.append(
            rollup_row(bucket, [120.0] * 9 + [900.0], errors={"rate_limited": 1}, input_tokens=100, output_tokens=20)
        )
        minutes.append(rollup_row(bucket, [80.0] * 4, provider="openai", model="gpt-x", key_label="Main"))
    insert_tiers(engine, minutes)
    beat = NOW - timedelta(seconds=2)
    insert_instances(
        engine,
        [instance_row(beat, "w1", kind="worker", queue_depth=3), instance_row(beat, "w1", provider="openai")],
    )
    insert_keys(
        engine,
        [
            key_row(beat, "w1", "Primary", 100.0),
            key_row(beat, "w1", "Backup", 40.0, status="cooldown", cooldown_until=NOW + timedelta(minutes=3)),
            key_row(beat, "w1", "Main", 90.0, provider="openai"),
        ],
    )


def rows(engine: sa.Engine, table: sa.Table) -> list[dict]:
    with engine.connect() as connection:
        return [dict(r) for r in connection.execute(sa.select(table)).mappings()]


# --- Overview -----------------------------------------------------------------------------------------------------


def test_overview_on_an_empty_store_draws_chart_frames_under_a_notice(dash_store: sa.Engine) -> None:
    at = app().run()
    assert not at.exception
    assert "pulsegate worker" in texts(at)
    assert len(plotly_charts(at)) == OVERVIEW_CHARTS
    assert [m.label for m in at.metric] == ["Requests", "Success rate", "p95 latency", "Tokens", "Cost", "Fallbacks"]
    assert at.metric[0].value == "0"


def test_overview_shows_kpis_status_and_charts_from_the_store(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "420"  # 30 × (10 + 4)
    assert metrics["Success rate"] == "92.9 %"  # 390 / 420
    assert metrics["Tokens"] == "3,600"
    assert "pulsegate worker" not in texts(at)
    assert len(plotly_charts(at)) == OVERVIEW_CHARTS
    statuses = [e.value for e in at.success] + [e.value for e in at.warning]
    assert "**anthropic**: degraded" in statuses  # one key cooling down
    assert "**openai**: ok" in statuses


def test_overview_names_the_window_of_its_status_and_of_its_tiles(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app()
    at.query_params["range"] = "24h"
    at.run()
    assert not at.exception
    captions = [c.value for c in at.caption]
    assert (
        "**Provider status now** (from keys, breakers and firing alerts) · **last hour** (whatever the range "
        "below): 420 live calls, 92.9 % succeeded · "
        "overall degraded: anthropic is degraded; success rate 92.9% is below 95.0%"
    ) in captions
    assert (
        "**Selected range, last 24 h** (2026-03-09 12:00 → 2026-03-10 12:00 UTC) · "
        "each change is against the 1,440 minutes before"
    ) in captions


def test_a_change_that_shows_as_zero_has_no_colour_and_volume_none_either(dash_store: sa.Engine) -> None:
    seed(dash_store)  # nothing in the hour before: every change is from zero
    at = app().run()
    metrics = {m.label: m.proto for m in at.metric}
    fallbacks, requests, success = metrics["Fallbacks"], metrics["Requests"], metrics["Success rate"]
    assert (fallbacks.delta, fallbacks.color, fallbacks.direction) == ("±0", GRAY, NO_ARROW)  # was a red "↑ +0"
    assert (requests.delta, requests.color, requests.direction) == (
        "+420",
        GRAY,
        UP,
    )  # more calls: neither good nor bad
    assert (success.delta, success.color) == ("", GRAY)  # no calls before: no rate to compare with


def test_filters_are_read_from_and_written_to_the_query_string(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app()
    at.query_params["range"] = "6h"
    at.query_params["provider"] = "openai"
    at.query_params["refresh"] = "paused"
    at.run()
    assert not at.exception
    assert at.selectbox(key="f_range").value == "6h"
    assert at.selectbox(key="f_provider").value == "openai"
    assert at.selectbox(key="f_refresh").value == "paused"
    assert {m.label: m.value for m in at.metric}["Requests"] == "120"  # openai only
    at.selectbox(key="f_source").select("probe").run()
    at.selectbox(key="f_range").select("24h").run()
    assert at.query_params["source"] == "probe"
    assert at.query_params["range"] == "24h"
    assert at.query_params["provider"] == "openai"
    assert {m.label: m.value for m in at.metric}["Requests"] == "0"


def test_a_typo_in_a_shared_link_falls_back_to_defaults(dash_store: sa.Engine) -> None:
    at = app()
    at.query_params["range"] = "3 weeks"
    at.query_params["provider"] = "mistral"
    at.run()
    assert not at.exception
    assert at.selectbox(key="f_range").value == "1h"
    assert at.selectbox(key="f_provider").value == "all"


def test_overview_run_probe_queues_a_request_and_shows_its_result(dash_store: sa.Engine) -> None:
    at = app().run()
    at.button(key="overview_probe_run").click().run()
    assert not at.exception
    [request] = rows(dash_store, probe_requests)
    assert (request["status"], request["requested_by"], request["provider"], request["key_label"]) == (
        "pending",
        "dashboard",
        None,
        None,
    )
    assert f"Probe #{request['id']} queued" in texts(at)
    finish(dash_store, ok=True)
    at.run()
    assert f"Probe #{request['id']}: 1/1 passed" in texts(at)


def finish(engine: sa.Engine, *, ok: bool) -> None:
    """What the worker does with a claimed request (tests/worker checks the worker itself)."""
    [claimed] = claim_probe_requests(engine, "worker-test", NOW)
    result = ProbeResult(
        provider=claimed.provider or "anthropic",
        key_label=claimed.key_label or "Primary",
        model=claimed.model or "claude-haiku-4-5",
        ok=ok,
        outcome="success" if ok else "error",
        error_class=None if ok else "auth",
        http_status=200 if ok else 401,
        latency_ms=42.0,
        input_tokens=8,
        output_tokens=1,
        cost_usd=0.00001,
        message="ok" if ok else "invalid x-api-key",
        call_id="c1",
        ts=NOW,
    )
    assert finish_probe_request(engine, claimed.id, [result], NOW, worker_id="worker-test")


# --- DB down, auth --------------------------------------------------------------------------------------------------


def test_unreachable_store_shows_a_banner_not_a_traceback(dash_store: sa.Engine, monkeypatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nowhere")
    for page in (None, "keys", "probes", "alerts", "calls"):
        at = app(page).run()
        assert not at.exception, page
        assert any("The store is unreachable" in e.value for e in at.error), page
        assert "127.0.0.1:9" in texts(at), page  # names the database; never a traceback


def test_password_gate_blocks_every_page_until_signed_in(dash_store: sa.Engine, monkeypatch) -> None:
    monkeypatch.setenv("DASHBOARD_PASSWORD", "correct horse battery")
    for page in (None, "keys", "calls", "alerts"):
        at = app(page)
        at.query_params["authenticated"] = "1"
        at.query_params["page"] = "keys"
        at.run()
        assert not at.exception
        assert [t.value for t in at.title] == ["Pulsegate"], page
        assert len(at.text_input) == 1 and at.text_input[0].label == "Password"
        assert not at.metric and not plotly_charts(at)
    at = app().run()
    at.text_input(key="auth_password").input("wrong password")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error)
    assert [t.value for t in at.title] == ["Pulsegate"]
    at.text_input(key="auth_password").input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    at.switch_page("views/calls.py").run()
    assert [t.value for t in at.title] == ["Calls"]


def test_failed_sign_ins_slow_the_next_attempt() -> None:
    from pulsegate.dashboard import auth

    auth.reset()
    assert auth.delay_s() == 0
    assert not auth.check("nope", "secret-password")
    assert auth.delay_s() == auth.BASE_DELAY_S
    assert not auth.check("nope", "secret-password")
    assert auth.delay_s() == auth.BASE_DELAY_S * 2
    assert auth.check("secret-password", "secret-password")
    assert auth.delay_s() == 0


# --- Keys and admin actions -------------------------------------------------------------------------------------------


def test_keys_page_lists_each_keys_health(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("keys").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert sorted(table["key"]) == ["Backup", "Main", "Primary"]
    backup = table[table["key"] == "Backup"].iloc[0]
    assert (backup["status"], backup["health"], backup["cooldown"]) == ("cooldown", 40.0, "3 m 00 s")
    primary = table[table["key"] == "Primary"].iloc[0]
    assert primary["requests"] == 300
    assert primary["success_rate"] == 90.0  # percent, one decimal
    assert (primary["key_failures"], primary["other_failures"]) == (30, 0)  # the 429s are the key's own
    assert len(plotly_charts(at)) == 1  # the health strip


def _confirm(at, button: str) -> None:
    at.button(key=button).click().run()
    assert any(w.value.startswith("Confirm:") for w in at.warning)
    at.button(key="action_confirm").click().run()
    assert not at.exception


def test_each_admin_action_asks_then_issues_its_control_command(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("keys").run()
    at.selectbox(key="action_key").select("anthropic · Backup").run()
    _confirm(at, "action_reset_key")
    _confirm(at, "action_disable_key")
    _confirm(at, "action_enable_key")
    at.selectbox(key="action_queue_provider").select("openai").run()
    _confirm(at, "action_clear_queue")
    issued = [
        (r["command"], r["provider"], r["key_label"], r["requested_by"]) for r in rows(dash_store, control_commands)
    ]
    assert issued == [
        ("reset_key", "anthropic", "Backup", "dashboard"),
        ("disable_key", "anthropic", "Backup", "dashboard"),
        ("enable_key", "anthropic", "Backup", "dashboard"),
        ("clear_queue", "openai", None, "dashboard"),
    ]
    first = rows(dash_store, control_commands)[0]["id"]
    insert(
        dash_store,
        control_acks,
        [
            {
                "command_id": first,
                "instance_id": "w1",
                "acked_at": NOW,
                "ok": True,
                "result": "key 'Backup' cooldown reset",
            }
        ],
    )
    at.run()
    assert "acknowledged by 1 of 1 live instance(s)" in "\n".join(str(m.value) for m in at.markdown)
    assert "✅ w1 at 12:00:00: key 'Backup' cooldown reset" in texts(at)


def test_cancel_issues_nothing(dash_store: sa.Engine) -> None:
    seed(dash_store)
    at = app("keys").run()
    at.button(key="action_disable_key").click().run()
    at.button(key="action_cancel").click().run()
    assert rows(dash_store, control_commands) == []


# --- Probes -----------------------------------------------------------------------------------------------------------


def test_probe_page_requests_the_chosen_key_and_shows_the_result(dash_store: sa.Engine) -> None:
    seed(dash_store)
    insert_attempts(
        dash_store,
        [
            attempt_row(NOW - timedelta(minutes=5), source="probe"),
            attempt_row(NOW - timedelta(minutes=4), source="probe", outcome="error", error_class="auth"),
        ],
    )
    at = app("probes").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 2  # history
    at.selectbox(key="probes_probe_provider").select("anthropic").run()
    at.selectbox(key="probes_probe_key").select("Backup").run()
    at.button(key="probes_probe_run").click().run()
    [request] = rows(dash_store, probe_requests)
    assert (request["provider"], request["key_label"], request["model"]) == ("anthropic", "Backup", None)
    finish(dash_store, ok=False)
    at.run()
    assert f"Probe #{request['id']}: 0/1 passed" in texts(at)


# --- Calls ------------------------------------------------------------------------------------------------------------


def test_calls_page_paginates_filters_and_offers_csv(dash_store: sa.Engine, monkeypatch) -> None:
    from pulsegate.dashboard import export

    monkeypatch.setattr(export, "_served", False)
    insert_attempts(
        dash_store,
        [attempt_row(NOW - timedelta(seconds=10 * i), latency_ms=float(i)) for i in range(60)]
        + [attempt_row(NOW - timedelta(seconds=5), outcome="error", error_class="timeout")],
    )
    at = app("calls").run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 50
    assert "user_id" not in at.dataframe[0].value.columns
    at.number_input(key="calls_page").set_value(2).run()
    assert len(at.dataframe[0].value) == 11
    at.number_input(key="calls_page").set_value(1).run()
    at.selectbox(key="calls_outcome").select("error").run()
    frame = at.dataframe[0].value
    assert list(frame["result"]) == ["timeout"]
    assert not at.get("download_button")  # no longer the one page shown: an export of the whole view
    assert "start the dashboard with `pulsegate dashboard`" in texts(at)  # AppTest serves no export route


def test_calls_page_shows_user_ids_only_to_a_signed_in_operator(dash_store: sa.Engine, monkeypatch) -> None:
    insert_attempts(dash_store, [attempt_row(NOW - timedelta(seconds=5), user_id="user-42")])
    assert "user_id" not in app("calls").run().dataframe[0].value.columns  # no password: nobody is signed in
    monkeypatch.setenv("DASHBOARD_PASSWORD", "correct horse battery")
    at = app().run()
    at.text_input(key="auth_password").input("correct horse battery")
    at.button[0].click().run()
    at.switch_page("views/calls.py").run()
    assert list(at.dataframe[0].value["user_id"]) == ["user-42"]


# --- Alerts -----------------------------------------------------------------------------------------------------------


def test_alerts_page_lists_episodes_and_manages_silences(dash_store: sa.Engine) -> None:
    insert(
        dash_store,
        alert_episodes,
        [
            episode_row("breaker_open", "anthropic", fingerprint="f1", summary="anthropic breaker open on 1 instance"),
            {
                "rule_id": "success_rate_low",
                "fingerprint": "f2",
                "labels": {"provider": "openai"},
                "severity": "critical",
                "state": "resolved",
                "pending_since": NOW - timedelta(minutes=40),
                "fired_at": NOW - timedelta(minutes=35),
                "resolved_at": NOW - timedelta(minutes=20),
                "summary": "openai success rate 71 % < 95 %",
            },
        ],
    )
    at = app("alerts").run()
    assert not at.exception
    firing, resolved = at.dataframe[0].value, at.dataframe[1].value
    assert list(firing["rule_id"]) == ["breaker_open"] and list(firing["labels"]) == ["provider=anthropic"]
    assert list(resolved["rule_id"]) == ["success_rate_low"]
    rules = at.dataframe[-1].value
    assert "success_rate_low" in set(rules["id"])
    at.text_input(key="silence_matchers").input("provider=anthropic, rule_id=breaker_open")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    [silence] = rows(dash_store, alert_silences)
    assert silence["matchers"] == {"provider": "anthropic", "rule_id": "breaker_open"}
    assert silence["created_by"] == "dashboard"
    assert silence["ends_at"].replace(tzinfo=None) == (NOW + timedelta(hours=1)).replace(tzinfo=None)
    at.button(key="silence_expire").click().run()
    [silence] = rows(dash_store, alert_silences)
    assert silence["expired_at"] is not None


def test_overview_lists_active_alerts(dash_store: sa.Engine) -> None:
    seed(dash_store)
    insert(
        dash_store,
        alert_episodes,
        [episode_row("breaker_open", "openai", fingerprint="f1", summary="openai breaker open")],
    )
    at = app().run()
    assert not at.exception
    assert "**openai**: degraded · 1 alert(s) firing" in [w.value for w in at.warning]
    [table] = at.table  # static: the grid's script would cost the page's draw time
    assert table.value.to_dict("records") == [
        {
            "State": "firing",
            "Severity": "critical",
            "Rule": "breaker\\_open",
            "Labels": "provider=openai",
            "Summary": "openai breaker open",
            "Pending since (UTC)": "2026-03-10 11:50:00",
            "Fired (UTC)": "2026-03-10 11:51:00",
        }
    ]


def test_overview_lists_the_ten_newest_active_alerts_and_counts_the_rest(dash_store: sa.Engine) -> None:
    seed(dash_store)
    rows = [
        episode_row("key_unhealthy", "openai", fingerprint=f"f{i}", pending_since=NOW - timedelta(minutes=30 - i))
        for i in range(12)
    ]
    insert(dash_store, alert_episodes, rows)
    at = app().run()
    assert not at.exception
    [table] = at.table
    assert list(table.value["Pending since (UTC)"]) == [
        f"{NOW - timedelta(minutes=30 - i):%Y-%m-%d %H:%M:%S}" for i in range(11, 1, -1)
    ]
    assert "2 more firing or pending: see the Alerts page." in [c.value for c in at.caption]
