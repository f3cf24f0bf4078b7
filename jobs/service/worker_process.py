"""``pulsegate worker``: the process around one :class:`~pulsegate.jobs.service.worker.Worker`.

Checks the store and the alert rules before anything starts (each problem one :class:`WorkerError` line, exit 2),
turns SIGTERM/SIGINT into the worker's graceful stop, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from pulsegate.core.settings import Settings
from pulsegate.jobs.service.worker import Worker
from pulsegate.jobs.service.worker_error import WorkerError

log = logging.getLogger("pulsegate.worker")


def run_worker(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    """``pulsegate worker``: check the store, run until SIGTERM/SIGINT, exit 0."""
    from pulsegate.core.store import create_store_engine, describe_url, store_status

    engine = create_store_engine(settings.database_url)
    try:
        status = store_status(engine)
        if not status.reachable:
            raise WorkerError(status.problem or f"cannot reach {status.description}")
        if status.revision is None:
            raise WorkerError(f"the store ({status.description}) has no tables: run `pulsegate migrate` first")
        from pulsegate.core.alerts.config import AlertConfigLoader

        alerts = AlertConfigLoader(settings)  # a bad rules file stops the start with its one-line error
        worker = Worker(settings, engine, host=host, port=port)
        worker.context.alerts = alerts
        asyncio.run(_main(worker, describe_url(engine.url)))
    finally:
        engine.dispose()
    return 0


async def _main(worker: Worker, where: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await worker.start()
    except BaseException:
        await worker.stop()
        raise
    log.info(
        "worker started on %s: instance %s, %s, API on http://%s:%s — SIGTERM stops it",
        where,
        worker.instance_id,
        worker.election.role,
        worker.host,
        worker.port,
    )
    try:
        await stop.wait()
    finally:
        log.info("worker stopping (%s)", worker.election.role)
        await worker.stop()
