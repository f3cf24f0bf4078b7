"""The Calls page's CSV export, streamed over HTTP: every matching row, never the whole file in memory.

Why not ``st.download_button``: Streamlit keeps a download's bytes in its in-memory media store — even with a callable
``data`` (deferred generation), whose result is converted to one ``bytes`` object and stored — and hands them out from
there. A million rows are about 250 MB of CSV (about 63 MB gzipped: the ids are random), held at least once and copied
on the way out. So the export is an HTTP route of the dashboard's own server (:mod:`pulsegate.dashboard.server`, which
``pulsegate dashboard`` runs): the rows come from a server-side cursor a chunk at a time
(:mod:`pulsegate.core.queries.attempt_export`) and each chunk is sent before the next is read — memory stays at a chunk.

The page (a session past the password gate) counts the rows on click, refuses over the cap, and otherwise
registers an :class:`ExportRequest` under a random one-time token; the link it shows carries the token. The route
accepts each token once, within :data:`TOKEN_TTL_S`, and runs at most :data:`MAX_RUNNING` exports at a time.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from pulsegate.core.queries.attempt_export import csv_chunks, export_columns, stream_attempts
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store import create_store_engine

PATH = "/export/calls.csv"
TOKEN_TTL_S = 600.0
MAX_PENDING = 64
MAX_RUNNING = 2
#: gzip level of the transfer when the browser accepts it. Measured on the demo's calls: level 1 shrinks this CSV
#: 3.3× at 130 MB/s of one CPU; level 9 (a generic gzip middleware's default) 4.0× at 27 MB/s.
GZIP_LEVEL = 1


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """What one link exports: the store, the filter, and whether ``user_id`` may be in the file."""

    url: str
    flt: QueryFilter
    outcome: str | None
    error_class: str | None
    include_user_id: bool
    rows: int
    file_name: str


_lock = threading.Lock()
_pending: dict[str, tuple[float, ExportRequest]] = {}
_running = 0
_served = False


def served() -> bool:
    """Whether this process serves :data:`PATH` (the dashboard runs under :mod:`pulsegate.dashboard.server`)."""
    return _served


def file_name(flt: QueryFilter) -> str:
    return f"pulsegate-calls-{flt.start:%Y%m%d-%H%M}-{flt.end:%Y%m%d-%H%M}.csv"


def register(request: ExportRequest, *, now: float | None = None) -> str:
    """A one-time token for ``request`` (the oldest pending ones make room beyond :data:`MAX_PENDING`)."""
    now = time.monotonic() if now is None else now
    token = secrets.token_urlsafe(32)
    with _lock:
        for old in [t for t, (at, _) in _pending.items() if now - at > TOKEN_TTL_S]:
            del _pending[old]
        while len(_pending) >= MAX_PENDING:
            del _pending[next(iter(_pending))]
        _pending[token] = (now, request)
    return token


def link(token: str) -> str:
    return f"{PATH}?token={token}"


def claim(token: str, *, now: float | None = None) -> ExportRequest | None:
    """The request of a live token, which is used up; ``None`` for an unknown, used or expired one."""
    now = time.monotonic() if now is None else now
    with _lock:
        entry = _pending.pop(token, None)
    if entry is None or now - entry[0] > TOKEN_TTL_S:
        return None
    return entry[1]


def _gzipped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: the gzip wrapper
    for chunk in chunks:
        data = compressor.compress(chunk)
        if data:
            yield data
    yield compressor.flush()


def _body(request: ExportRequest) -> Iterator[bytes]:
    """The CSV bytes; the engine is this export's own (a long read must not hold one of the page's connections)."""
    global _running
    engine = create_store_engine(request.url)
    try:
        rows = stream_attempts(
            engine,
            request.flt,
            outcome=request.outcome,
            error_class=request.error_class,
            include_user_id=request.include_user_id,
        )
        try:
            yield from csv_chunks(export_columns(request.include_user_id), rows)
        finally:
            rows.close()
    finally:
        engine.dispose()
        with _lock:
            _running -= 1


def _accepts_gzip(request: Request) -> bool:
    return any(part.split(";")[0].strip() == "gzip" for part in request.headers.get("accept-encoding", "").split(","))


async def endpoint(request: Request) -> Response:
    global _running
    export = claim(request.query_params.get("token", ""))
    if export is None:
        return PlainTextResponse(
            "This export link is unknown, used already or expired (links work once, for "
            f"{TOKEN_TTL_S / 60:.0f} minutes): press Export CSV on the Calls page again.",
            status_code=410,
        )
    with _lock:
        if _running >= MAX_RUNNING:
            busy = True
        else:
            busy = False
            _running += 1
    if busy:
        return PlainTextResponse(
            f"{MAX_RUNNING} exports are running already: try again when one has finished.", status_code=429
        )
    body = _body(export)
    header = next(body)  # started, so its ``finally`` frees the slot however the response ends
    body = itertools.chain([header], body)
    headers = {
        "Content-Disposition": f'attachment; filename="{export.file_name}"',
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }
    if _accepts_gzip(request):
        headers["Content-Encoding"] = "gzip"
        body = _gzipped(body)
    else:
        headers["Content-Encoding"] = "identity"  # and no generic middleware compresses it again
    return StreamingResponse(body, media_type="text/csv; charset=utf-8", headers=headers)


def routes() -> list[Route]:
    """The export route, for the server to mount; from then on :func:`served` is true in this process."""
    global _served
    _served = True
    return [Route(PATH, endpoint, methods=["GET"])]
