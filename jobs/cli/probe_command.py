"""``pulsegate probe``: probe keys now, in this process, and return a key found working to service.

The exit status is the answer for scripts: 0 if every probe passed, 1 if one failed.
"""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from pulsegate.core.settings import Settings, load_settings
from pulsegate.jobs.cli.arguments import AddCommand
from pulsegate.jobs.cli.command_error import CommandError

if TYPE_CHECKING:
    from pulsegate.core.ops.probe import ProbeResult, ProbeTarget


def cmd_probe(args: argparse.Namespace) -> int:
    """Probe keys now, in this process: a result table; exit 0 if every probe passed, 1 if one failed."""
    import asyncio
    import json

    from pulsegate.core.ops.probe import format_probe_table, probe_targets

    if not args.verbose:
        logging.getLogger("httpx2").setLevel(logging.WARNING)  # one line per request would bury the table
    settings = load_settings()
    targets = probe_targets(settings, provider=args.provider, key_label=args.key, model=args.model)
    if not targets:
        raise CommandError("no API keys are configured: set ANTHROPIC_API_KEY and/or OPENAI_API_KEY")
    results, restored = asyncio.run(_probe_now(settings, targets))
    if args.json:
        print(json.dumps({"results": [r.to_json() for r in results], "commands": restored}, indent=2))
    else:
        print(format_probe_table(results))
        for line in restored:
            print(f"{line['provider']} key {line['key_label']!r}: {line['command']} issued (command {line['id']})")
    return 0 if all(r.ok for r in results) else 1


async def _probe_now(settings: Settings, targets: list[ProbeTarget]) -> tuple[list[ProbeResult], list[dict[str, Any]]]:
    """Run the probes on a client recording to DATABASE_URL; a key found working is returned to service."""
    from pulsegate.core.client import AIClient
    from pulsegate.core.ops.control import command_status
    from pulsegate.core.ops.probe import run_probes
    from pulsegate.core.ops.probe_history import restore_recovered_keys
    from pulsegate.core.store import store_status

    client = AIClient.from_env(settings=settings, heartbeat=False)  # a one-shot process is no instance to watch
    try:
        results = await run_probes(client.probe, targets, concurrency=settings.probe_concurrency)
    finally:
        await client.aclose()
    engine = client.recorder.engine  # type: ignore[attr-defined]
    restored: list[dict[str, Any]] = []
    if store_status(engine).revision is not None:
        now = client.clock.now()
        ids = restore_recovered_keys(engine, results, now, heartbeat_interval_s=settings.heartbeat_interval_s)
        for command_id in ids:
            status = command_status(engine, command_id)
            restored.append({k: status[k] for k in ("id", "command", "provider", "key_label")})
    engine.dispose()
    return results, restored


def add_probe_command(add: AddCommand) -> None:
    probe = add("probe", cmd_probe, "probe API keys now and print the results (exit 1 if one fails)")
    probe.add_argument("--provider", choices=("anthropic", "openai"), help="only this provider's keys")
    probe.add_argument("--key", metavar="LABEL", help="only the key with this label (e.g. Primary, 'Backup 1')")
    probe.add_argument("--model", help="probe on this model (default: ANTHROPIC_PROBE_MODEL / OPENAI_PROBE_MODEL)")
    probe.add_argument("--json", action="store_true", help="print the results as JSON")
