"""``python -m pulsegate.gateway [--host H] [--port P]``: the gateway on its own (``pulsegate gateway`` is the same)."""

from __future__ import annotations

import argparse
import logging
import sys

from pulsegate.core.errors import PulsegateError
from pulsegate.core.settings import load_settings
from pulsegate.gateway.server import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pulsegate.gateway", description=__doc__)
    parser.add_argument("--host", default=None, help="address to bind (default: GATEWAY_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: GATEWAY_PORT, 8800)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
        serve(
            settings, args.host or settings.gateway_host, args.port if args.port is not None else settings.gateway_port
        )
    except PulsegateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
