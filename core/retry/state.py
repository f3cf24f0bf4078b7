"""What a retry decision looks at: how many attempts so far, the last failure, and the time left."""

from __future__ import annotations

from dataclasses import dataclass

from pulsegate.core.errors import CallError


@dataclass(frozen=True, slots=True)
class RetryState:
    attempts: int  # attempts made so far on this provider, >= 1
    error: CallError  # the failure being considered
    elapsed_s: float  # since the call started
    remaining_s: float | None  # until the call's deadline; None = no deadline
    same_class_streak: int = 1  # consecutive failures of error.error_class, this one included
