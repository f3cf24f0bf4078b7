"""Memory and CPU of the soak's processes, read from ``/proc`` (Linux): no sampling library, nothing injected.

A demo child leads its own process group (``start_new_session``), so a component is measured as every live process
of that group — the dashboard's ``pulsegate dashboard`` execs Streamlit in place, and any helper process a component
starts is counted with it. Chromium is a tree of processes under Playwright's driver; its memory is summed as PSS
(shared pages split between the processes sharing them) because RSS would count the shared renderer code once per
process.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Usage:
    """Memory (bytes) and CPU time (seconds, user + system, since each process started) of a set of processes."""

    memory: int
    cpu_s: float
    processes: int


def _stat(pid: int) -> tuple[int, int, float] | None:
    """(parent pid, process group, user + system CPU seconds) from ``/proc/<pid>/stat``; None when it is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: the fields after it follow the last ')'
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie holds no memory and spends no CPU
        return None
    ppid, pgrp = int(fields[1]), int(fields[2])
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return ppid, pgrp, cpu


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def _status_kib(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def group_usage(pgid: int) -> Usage:
    """RSS and CPU of every live process in process group ``pgid``."""
    rss, cpu, count = 0, 0.0, 0
    for pid in _pids():
        stat = _stat(pid)
        if stat is None or stat[1] != pgid:
            continue
        rss += _status_kib(pid, "VmRSS") * 1024
        cpu += stat[2]
        count += 1
    return Usage(rss, cpu, count)


def descendants(root: int) -> list[int]:
    """Every live process below ``root`` in the process tree."""
    children: dict[int, list[int]] = {}
    for pid in _pids():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[0], []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _is_chromium(pid: int) -> bool:
    try:
        return "chrom" in os.readlink(PROC / str(pid) / "exe")
    except OSError:
        return False


def chromium_usage(root: int | None = None) -> Usage:
    """PSS and CPU of the Chromium processes started under ``root`` (default: this process, via Playwright)."""
    pss, cpu, count = 0, 0.0, 0
    for pid in descendants(os.getpid() if root is None else root):
        if not _is_chromium(pid):
            continue
        stat = _stat(pid)
        if stat is None:
            continue
        pss += _pss_kib(pid) * 1024
        cpu += stat[2]
        count += 1
    return Usage(pss, cpu, count)
