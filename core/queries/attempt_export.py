"""The Calls page's CSV export: every attempt matching a filter, counted first, then streamed in chunks.

An export may hold a million rows (about 250 MB of CSV), so it is never built in memory: the rows come from a
server-side cursor (``yield_per``: a named cursor on PostgreSQL, SQLite's own stepping cursor) a chunk at a time,
and each chunk is encoded to CSV bytes and handed on before the next is read. Memory stays at one chunk whatever
the size of the export. :data:`MAX_EXPORT_ROWS` bounds an export; a filter matching more is refused by the caller
(see :func:`count_attempts`), and the query itself stops there too.

The columns are the raw table's (:data:`EXPORT_COLUMNS`), full ids included; no secret is stored in that table, and
``user_id`` is a column only when asked for (an operator signed in).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import sqlalchemy as sa

from pulsegate.core.queries.attempts import ATTEMPT_COLUMNS, attempt_conditions
from pulsegate.core.queries.filters import QueryFilter
from pulsegate.core.store.tables import api_usage_metrics

MAX_EXPORT_ROWS = 1_000_000
#: Rows read from the cursor and encoded per chunk: big enough that the per-chunk overhead vanishes, small enough
#: that a chunk is about 1.3 MB of CSV (the demo's calls: 253 bytes a row).
CHUNK_ROWS = 5_000
EXPORT_COLUMNS: tuple[str, ...] = ATTEMPT_COLUMNS


def count_attempts(
    engine: sa.Engine, flt: QueryFilter, *, outcome: str | None = None, error_class: str | None = None
) -> int:
    """How many attempts an export of this filter would hold (exact: the refusal message states it)."""
    statement = sa.select(sa.func.count()).select_from(api_usage_metrics)
    statement = statement.where(*attempt_conditions(flt, outcome, error_class))
    with engine.connect() as connection:
        return int(connection.execute(statement).scalar_one())


def export_columns(include_user_id: bool) -> tuple[str, ...]:
    return (*EXPORT_COLUMNS, "user_id") if include_user_id else EXPORT_COLUMNS


def stream_attempts(
    engine: sa.Engine,
    flt: QueryFilter,
    *,
    outcome: str | None = None,
    error_class: str | None = None,
    include_user_id: bool = False,
    limit: int = MAX_EXPORT_ROWS,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[list[tuple]]:
    """The matching attempts, newest first (``ts``, then ``id``, descending — the Calls page's order), as lists of
    at most ``chunk_rows`` row tuples in :func:`export_columns` order; at most ``limit`` rows in all. The
    connection is held until the iterator is exhausted or closed."""
    t = api_usage_metrics
    statement = (
        sa.select(*(t.c[name] for name in export_columns(include_user_id)))
        .where(*attempt_conditions(flt, outcome, error_class))
        .order_by(t.c.ts.desc(), t.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=chunk_rows).execute(statement)
        for partition in result.partitions():
            yield [tuple(row) for row in partition]


def csv_chunks(header: tuple[str, ...], chunks: Iterator[list[tuple]]) -> Iterator[bytes]:
    """UTF-8 CSV: the header line, then one ``bytes`` per chunk of rows. NULL is an empty field; times are
    ``2026-03-10 12:00:00.123456+00:00`` (UTC); ids are dashed uuids; booleans ``True``/``False``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield buffer.getvalue().encode("utf-8")
    for rows in chunks:
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue().encode("utf-8")
