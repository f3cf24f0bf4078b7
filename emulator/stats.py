"""Request counters per route x status x key fingerprint, read by tests and the admin API."""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

NO_KEY = "-"


def fingerprint(key: str | None) -> str:
    """The project-wide key fingerprint: the first 12 hex digits of sha256(key); `-` when there is no key."""
    if not key:
        return NO_KEY
    return hashlib.sha256(key.encode()).hexdigest()[:12]


class Stats:
    """Counts every API response (status 0 = connection reset, no response) and every injected fault."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, int, str]] = Counter()
        self.faults: Counter[str] = Counter()
        self.end_users: Counter[str] = Counter()  # the end-user ids requests carried (tests check what leaves)
        self._fp_cache: dict[str, str] = {}

    def fp(self, key: str | None) -> str:
        if not key:
            return NO_KEY
        fp = self._fp_cache.get(key)
        if fp is None:
            if len(self._fp_cache) > 10_000:
                self._fp_cache.clear()
            fp = self._fp_cache[key] = fingerprint(key)
        return fp

    def record(self, route: str, status: int, key: str | None, fault: str | None) -> None:
        self.counts[(route, status, self.fp(key))] += 1
        if fault:
            self.faults[fault] += 1

    def clear(self) -> None:
        self.counts.clear()
        self.faults.clear()
        self.end_users.clear()

    def snapshot(self) -> dict[str, Any]:
        """`{"total", "routes": {route: {status: {fp: n}}}, "counts": [rows], "faults": {kind: n},
        "end_users": {id: n}}`."""
        routes: dict[str, dict[str, dict[str, int]]] = {}
        rows = []
        for (route, status, fp), n in sorted(self.counts.items()):
            routes.setdefault(route, {}).setdefault(str(status), {})[fp] = n
            rows.append({"route": route, "status": status, "key": fp, "count": n})
        return {
            "total": sum(self.counts.values()),
            "routes": routes,
            "counts": rows,
            "faults": dict(sorted(self.faults.items())),
            "end_users": dict(sorted(self.end_users.items())),
        }
