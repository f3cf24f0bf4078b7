"""Children that do not outlive their launcher: on Linux, ``PR_SET_PDEATHSIG`` makes the kernel SIGTERM a child the
moment the process that started it dies, even by SIGKILL, when no handler of ours can run.

The signal follows the *thread* that forked, so children must be started from a thread that lives as long as the
launcher (``pulsegate up`` and ``pulsegate demo`` start them from the main thread). ``preexec_fn`` runs between
fork and exec, where another thread's held lock would deadlock the child: both launchers fork before starting any
thread of their own.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def exit_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that asks Linux to SIGTERM the child when this process dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the launcher died between fork and prctl: do not outlive it
            os._exit(1)

    return preexec
