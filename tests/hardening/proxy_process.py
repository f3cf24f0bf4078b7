"""``python -m tests.hardening.proxy_process <host> <port>``: a :class:`~benchmarks.support.tcp_proxy.TcpProxy`
in its own process (so its forwarding never waits for the test process's threads, e.g. an in-process emulator
under load).

Prints its port as one line, then obeys stdin lines ``cut`` / ``restore`` (answering ``ok``); EOF closes it.
"""

from __future__ import annotations

import sys

from benchmarks.support.tcp_proxy import TcpProxy


def main(host: str, port: int) -> None:
    proxy = TcpProxy(host, port)
    print(proxy.port, flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "cut":
            proxy.cut()
        elif command == "restore":
            proxy.restore()
        print("ok", flush=True)
    proxy.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
