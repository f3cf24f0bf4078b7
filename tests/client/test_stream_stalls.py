"""A stream that stalls, through ``AIClient.stream_response`` and the real SDKs.

Before the first delta the call's deadline (``timeout_s``) bounds it: the attempt is a ``timeout`` row and the call
ends with ``deadline_exceeded``. After the first delta ``stream_idle_timeout_s`` bounds each gap and
``stream_total_timeout_s`` the whole stream: either ends it with ``stream_interrupted`` holding the partial text, and
the row holds the usage reported so far plus an estimate. Pulsegate enforces these bounds itself (the SDKs' read
timeouts are set past them), so they hold the same way on every SDK version ``make test`` runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pulsegate import AIClient, CallError, CallOptions, DeadlineExceededError, ErrorClass, StreamInterruptedError
from pulsegate.emulator import EmulatorServer
from tests.client.conftest import sqlite_only
from tests.client.test_streaming import (
    EVENTS_BEFORE_TEXT,
    EXPECTED_TEXT,
    MESSAGES,
    NO_WAIT,
    both_providers,
    config,
    pieces,
    sorted_rows,
)

#: The call's whole deadline; each attempt's read timeout is what is left of it.
DEADLINE_S = 0.8
#: Longer than the deadline: the client gives up long before the stream would carry on.
STALL_S = 5.0


@sqlite_only
@both_providers
async def test_a_stall_before_the_first_delta_is_a_timeout(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.add_fault(
        {"kind": "stall_stream", "provider": provider, "after_events": EVENTS_BEFORE_TEXT[provider], "seconds": STALL_S}
    )
    client = make_client(store=store, retry_policy=NO_WAIT)
    started = time.monotonic()
    with pytest.raises(CallError) as caught:
        async with client.stream_response(config(provider), MESSAGES, options=CallOptions(timeout_s=DEADLINE_S)):
            pytest.fail("the stream opened although it stalled before any text")

    assert time.monotonic() - started < DEADLINE_S + 0.1  # the deadline cut the wait; nobody waited for the stall
    assert type(caught.value) is DeadlineExceededError
    assert caught.value.error_class is ErrorClass.DEADLINE_EXCEEDED
    assert caught.value.provider == provider
    (row,) = sorted_rows(store, client)  # the stall ate the whole deadline: no time left for a second attempt
    assert (row["outcome"], row["error_class"], row["is_final"], row["streamed"]) == ("error", "timeout", True, True)
    assert row["ttft_ms"] is None
    assert emu.stats()["faults"] == {"stall_stream": 1}


@sqlite_only
@both_providers
async def test_a_stall_after_the_first_delta_interrupts_the_stream_with_the_timeout_as_cause(
    emu: EmulatorServer, make_client: Callable[..., AIClient], store: sa.Engine, provider: str
) -> None:
    emu.add_fault(
        {
            "kind": "stall_stream",
            "provider": provider,
            "after_events": EVENTS_BEFORE_TEXT[provider] + 3,
            "seconds": STALL_S,
        }
    )
    client = make_client(store=store, retry_policy=NO_WAIT)
    received: list[str] = []
    started = time.monotonic()
    with pytest.raises(StreamInterruptedError) as caught:
        async with client.stream_response(
            config(provider), MESSAGES, options=CallOptions(timeout_s=30, stream_idle_timeout_s=DEADLINE_S)
        ) as stream:
            async for delta in stream:
                received.append(delta)

    assert time.monotonic() - started < STALL_S
    assert received == pieces(EXPECTED_TEXT)[:3]
    error = caught.value
    assert error.error_class is ErrorClass.STREAM_INTERRUPTED
    assert error.partial_text == "This is an"
    assert (
        str(error)
        == f"{provider} stream broke after 10 characters (timeout: no delta for 0.8 s (stream_idle_timeout_s))"
    )
    assert stream.response is None
    (row,) = sorted_rows(store, client)
    assert (row["outcome"], row["error_class"], row["is_final"]) == ("error", "stream_interrupted", True)
    assert row["ttft_ms"] is not None
