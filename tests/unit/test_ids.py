"""Attempt and call ids: RFC 9562 version 7, time-ordered, unique."""

from __future__ import annotations

import uuid

from pulsegate.core.ids import uuid7, uuid7_batch, uuid7_from_ms


def test_version_variant_and_time_prefix() -> None:
    made = uuid7_from_ms(1_700_000_000_123, bytes(range(10)))
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert made.int >> 80 == 1_700_000_000_123
    assert uuid7(5).int >> 80 == 5


def test_ids_sort_by_their_millisecond_and_never_repeat() -> None:
    times = [1_000, 1_000, 999, 2_000, 1_500] * 2_000
    ids = uuid7_batch(times)
    assert len(set(ids)) == len(ids) == 10_000
    assert [i.int >> 80 for i in sorted(ids)] == sorted(times)
    assert all(i.version == 7 for i in ids)


def test_ids_from_the_random_block_never_repeat_across_blocks_threads_and_a_fork() -> None:
    import os
    import threading

    made: list[uuid.UUID] = []
    lock = threading.Lock()

    def many() -> None:
        ids = [uuid7(7) for _ in range(2_000)]  # one millisecond: only the random bits tell them apart
        with lock:
            made.extend(ids)

    threads = [threading.Thread(target=many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(made)) == 8_000  # 8,000 × 10 bytes spans several 4 KiB blocks

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.write(write, b"".join(uuid7(7).bytes for _ in range(50)))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16 * 50)
    os.waitpid(pid, 0)
    parent = b"".join(uuid7(7).bytes for _ in range(50))
    assert len(child) == 800 and {child[i : i + 16] for i in range(0, 800, 16)}.isdisjoint(
        {parent[i : i + 16] for i in range(0, 800, 16)}
    )
