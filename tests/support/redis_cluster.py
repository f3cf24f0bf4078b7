"""A real three-master Redis Cluster on loopback, started by the tests themselves (``redis-server`` and ``redis-cli``
must be installed): no shared server to collide with, and nodes a test may stop and start again.

Each node gets a free port ``P`` whose cluster-bus port ``P + 10000`` is free too, runs without persistence in a
temporary directory, and keeps its ``nodes-P.conf`` there, so a node restarted on the same port rejoins the same
cluster with the same slots (an outage and a recovery, not a new cluster).
"""

from __future__ import annotations

import random
import shutil
import subprocess
import time
from pathlib import Path

import redis

from pulsegate.jobs.cli.demo.setup import port_is_free

MASTERS = 3
BUS_OFFSET = 10_000


def cluster_ports(count: int = MASTERS) -> list[int]:
    """``count`` free ports below the ephemeral range whose bus ports (``+ 10000``) are free as well."""
    ports: list[int] = []
    candidates = random.sample(range(20_000, 30_000), 2_000)
    for port in candidates:
        if port not in ports and port_is_free(port) and port_is_free(port + BUS_OFFSET):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free ports for a Redis Cluster")


class RedisClusterProcesses:
    """Three ``redis-server --cluster-enabled yes`` processes joined by ``redis-cli --cluster create``."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ports = cluster_ports()
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """Any one node's URL: the client discovers the others."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    @staticmethod
    def missing_tools() -> str | None:
        missing = [tool for tool in ("redis-server", "redis-cli") if shutil.which(tool) is None]
        return f"{' and '.join(missing)} not installed" if missing else None

    def start(self) -> None:
        """Start the nodes; the first time, join them into one cluster. Returns once ``cluster_state:ok``."""
        new = not any((self.directory / f"nodes-{port}.conf").exists() for port in self.ports)
        for port in self.ports:
            self._start_node(port)
        for port in self.ports:
            self._wait_answers(port)
        if new:
            nodes = [f"127.0.0.1:{port}" for port in self.ports]
            subprocess.run(
                ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
        self.wait_ok()

    def _start_node(self, port: int) -> None:
        command = [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
            "--cluster-config-file", f"nodes-{port}.conf", "--dir", str(self.directory), "--save", "",
            "--appendonly", "no", "--cluster-node-timeout", "2000", "--logfile", f"redis-{port}.log",
        ]  # fmt: skip
        self.processes[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _wait_answers(self, port: int, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            process = self.processes[port]
            if process.poll() is not None:
                log = (self.directory / f"redis-{port}.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server on port {port} exited with {process.returncode}:\n{log}")
            client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
            try:
                client.ping()
                return
            except redis.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                client.close()

    def wait_ok(self, timeout_s: float = 30.0) -> None:
        """Until every node says ``cluster_state:ok`` and they agree on the slots."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = [self.info(port) for port in self.ports]
            if all(s.get("cluster_state") == "ok" and str(s.get("cluster_slots_ok")) == "16384" for s in states):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Redis Cluster did not come up: {states}")
            time.sleep(0.1)

    def info(self, port: int) -> dict[str, object]:
        client = redis.Redis(port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return dict(client.cluster("INFO"))
        except redis.RedisError:
            return {}
        finally:
            client.close()

    def keys_per_node(self, pattern: str) -> dict[int, int]:
        """How many keys matching ``pattern`` each node holds."""
        counts = {}
        for port in self.ports:
            client = redis.Redis(port=port)
            try:
                counts[port] = sum(1 for _ in client.scan_iter(match=pattern, count=1000))
            finally:
                client.close()
        return counts

    def stop(self) -> None:
        """Stop every node (their cluster config stays on disk for :meth:`start`)."""
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
