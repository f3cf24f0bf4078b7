"""The limit fields of :meth:`AIClient.snapshot`: effective vs configured, and why the effective limit changed.

Per provider, ``limits[kind]`` is the limiter's state of the effective spec plus ``configured`` (the ceiling),
``reason`` and ``changed_at``; ``limit_reason`` is the reason of the provider limit that changed last. Each key
with limits of its own gets ``limits[kind] = {"effective", "configured", "reason"}`` (``configured`` is None for a
limit learned from the provider's headers).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulsegate.core.limits.base import LimitSpec
from pulsegate.core.provider_runtime import ProviderRuntime

StateOf = Callable[[str, LimitSpec], dict[str, float]]


def provider_limits(runtime: ProviderRuntime, state_of: StateOf) -> dict[str, Any]:
    """``{"limits": …, "limit_reason": …}`` for one provider's snapshot entry."""
    limits: dict[str, Any] = {}
    latest: tuple[str, str] | None = None
    for kind, name, ceiling in (("rpm", runtime.rpm_key, runtime.rpm), ("tpm", runtime.tpm_key, runtime.tpm)):
        if ceiling is None:
            continue
        entry: dict[str, Any] = dict(state_of(name, runtime.effective(name, ceiling)))
        if runtime.tuner is not None:
            entry.update(runtime.tuner.describe(name, ceiling))
        else:
            entry.update({"configured": ceiling.limit, "reason": None, "changed_at": None})
        limits[kind] = entry
        if entry["changed_at"] is not None and (latest is None or entry["changed_at"] > latest[0]):
            latest = (entry["changed_at"], entry["reason"])
    return {"limits": limits, "limit_reason": latest[1] if latest else None}


def with_key_limits(runtime: ProviderRuntime, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pool's key rows, each with ``limits`` when the key has limits of its own."""
    by_fingerprint = {key.fingerprint: key for key in runtime.pool.keys}
    for row in keys:
        key = by_fingerprint.get(str(row["fingerprint"]))
        own = runtime.key_limits.get(key.fingerprint) if key is not None else None
        if key is None or own is None:
            continue
        limits = {}
        for kind, ceiling in (("rpm", own.rpm), ("tpm", own.tpm)):
            if ceiling is None:
                continue
            name = runtime.key_limit_name(key, kind)
            tuned = runtime.tuner.state(name) if runtime.tuner is not None else None
            limits[kind] = {
                "effective": runtime.effective(name, ceiling).limit,
                "configured": None if own.learned else ceiling.limit,
                "reason": tuned.reason if tuned is not None else None,
            }
        row["limits"] = limits
    return keys


def configured_limits(runtimes: dict[Any, ProviderRuntime]) -> dict[str, dict[str, float | None]]:
    """``{provider: {"rpm": n, "tpm": n}}`` as configured."""
    return {
        runtime.provider.value: {"rpm": runtime.rpm.limit, "tpm": runtime.tpm.limit if runtime.tpm else None}
        for runtime in runtimes.values()
    }
