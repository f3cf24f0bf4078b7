"""A new leader takes over the keys its predecessor's probes had disabled.

A key refused by the provider is disabled in the process that saw the refusal; without Redis no other process
knows. The worker calls :func:`adopt_disabled_keys` when elected, before any job runs (see
``Worker._adopt_disabled_keys`` in :mod:`pulsegate.jobs.service.worker` for why).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from pulsegate.jobs.service.leadership import LeaderInfo


def adopt_disabled_keys(
    engine: sa.Engine, client: Any, claims: Mapping[str, LeaderInfo], instance_id: str
) -> list[str]:
    """For each ``probe:<provider>:<label>`` job last run by another worker: if that worker's latest snapshot of
    the key says ``disabled``, disable it in ``client`` with the same reason. Returns ``provider:label`` of each."""
    from pulsegate.core.provider import Provider
    from pulsegate.core.store.tables import key_health_snapshots as t

    adopted: list[str] = []
    for job_id, claim in sorted(claims.items()):
        kind, _, rest = job_id.partition(":")
        provider_name, _, label = rest.partition(":")
        if kind != "probe" or not label or claim.holder in (None, instance_id):
            continue
        try:
            pool = client.pools[Provider(provider_name)]
        except (ValueError, KeyError):
            continue
        key = pool.by_label(label)
        if key is None or pool.state(key).disabled_reason is not None:
            continue
        query = (
            sa.select(t.c.status, t.c.disabled_reason)
            .where(t.c.instance_id == claim.holder, t.c.key_fingerprint == key.fingerprint)
            .order_by(t.c.ts.desc())
            .limit(1)
        )
        with engine.connect() as connection:
            row = connection.execute(query).first()
        if row is not None and row.status == "disabled":
            pool.state(key).disable(row.disabled_reason or "disabled by the previous leader")
            adopted.append(f"{provider_name}:{label}")
    return adopted
