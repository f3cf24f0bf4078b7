"""`python -m pulsegate.emulator --host 127.0.0.1 --port 8700 --scenario FILE` (the same as `pulsegate emulator`)."""

from __future__ import annotations

import argparse
import sys

from pulsegate.emulator.errors import EmulatorError
from pulsegate.emulator.scenario_parser import load_scenario
from pulsegate.emulator.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulsegate.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8700)
    parser.add_argument("--scenario", default=None, help="scenario file (.toml or .json)")
    args = parser.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        serve(args.host, args.port, scenario)
    except EmulatorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
