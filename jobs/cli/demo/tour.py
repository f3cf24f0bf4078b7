"""The text ``pulsegate demo`` prints once everything is up: where to look, and what the cycle will show."""

from __future__ import annotations

from collections.abc import Sequence

from pulsegate.jobs.cli.demo.scenario import Phase
from pulsegate.jobs.cli.demo.setup import DemoPlan


def dashboard_link(plan: DemoPlan) -> str:
    """The Overview on the last 15 minutes: the demo's store starts empty, an hour-wide axis would hide the data."""
    return f"{plan.url('dashboard')}/?range=15m"


def tour_text(plan: DemoPlan, phases: Sequence[Phase]) -> str:
    dashboard, worker, sink = dashboard_link(plan), plan.url("worker"), plan.url("sink")
    schedule = "\n".join(
        f"    {p.start_s:5.0f}–{p.end_s:3.0f} s  {p.name.replace('_', ' '):<20} {p.description}" for p in phases
    )
    return f"""
Pulsegate demo is running — open the dashboard:

    {dashboard}

The traffic generator sends about {plan.rate:g} calls/s through AIClient (3 fake keys per provider, mixed priorities,
users and features, streaming and sync calls) to the local emulator, which cycles every {plan.cycle_s:g} s:
{schedule}

What to look at:
  • Overview: calls, success rate and latency charts fill in within seconds; during the 529 storm the
    fallbacks panel rises and the circuit breaker opens; alerts appear under "Active alerts".
  • Keys: Backup 1 cools down under 429 pressure; Backup 2 turns disabled when it is revoked, and comes back
    after the worker's next probe (every 15 s) once it works again.
  • Alerts: episodes fire within seconds of a fault and resolve when it clears (the demo's timings are in
    {plan.alert_rules_file}).
  • Inbox: the Slack- and Discord-format messages the worker sent to the local webhook sink ({sink}/messages).
  • Worker API: curl -H "Authorization: Bearer {plan.admin_token}" {worker}/api/admin/ai-health
                Prometheus metrics at {worker}/metrics

Logs: {plan.log_dir}   Store: {plan.database_url}
Press Ctrl-C to stop everything.
"""
