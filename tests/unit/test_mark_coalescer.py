"""MarkCoalescer: the marks of concurrent requests go out together, in order, and failures reach
every request of their group (the store is a fake: only the grouping logic is tested here; the
rollup concurrency test runs it against the real database)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from player_sessions.rollups import CountTouch, MarkCoalescer

HOUR = datetime(2016, 12, 1, 12, tzinfo=UTC)


def touch(country: str, minute: int) -> CountTouch:
    return CountTouch(country, HOUR, ttl=100, day_ttl=100, minutes=frozenset({HOUR.replace(minute=minute)}))


class RecordingStore:
    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[list[CountTouch], uuid.UUID]] = []
        self.fail_first = fail_first
        self.gate = asyncio.Event()

    async def write(self, store: object, touches: Sequence[CountTouch], token: uuid.UUID) -> None:
        self.calls.append((list(touches), token))
        await self.gate.wait()
        if len(self.calls) <= self.fail_first:
            raise ConnectionError("node down")


async def test_a_lone_request_is_written_at_once() -> None:
    store = RecordingStore()
    store.gate.set()
    coalescer = MarkCoalescer(write=store.write)
    await coalescer.mark(store, [touch("FI", 1)])  # type: ignore[arg-type]
    assert [t for t, _ in store.calls] == [[touch("FI", 1)]]


async def test_requests_arriving_during_a_write_go_out_together_as_the_next_group() -> None:
    store = RecordingStore()
    coalescer = MarkCoalescer(write=store.write)
    first = asyncio.ensure_future(coalescer.mark(store, [touch("FI", 1)]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    others = [
        asyncio.ensure_future(coalescer.mark(store, [touch(c, 2)]))  # type: ignore[arg-type]
        for c in ("SE", "NO", "DK")
    ]
    await asyncio.sleep(0)
    assert len(store.calls) == 1 and not first.done()
    store.gate.set()
    await asyncio.gather(first, *others)
    assert [sorted(t.country for t in touches) for touches, _ in store.calls] == [["FI"], ["DK", "NO", "SE"]]
    assert store.calls[0][1] != store.calls[1][1]  # each group has its own token
    assert coalescer.groups == 2


async def test_a_failed_group_fails_each_of_its_requests_and_the_next_group_still_goes() -> None:
    store = RecordingStore(fail_first=1)
    coalescer = MarkCoalescer(write=store.write)
    first = asyncio.ensure_future(coalescer.mark(store, [touch("FI", 1)]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    second = asyncio.ensure_future(coalescer.mark(store, [touch("SE", 1)]))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    store.gate.set()
    with pytest.raises(ConnectionError):
        await first
    await second
    assert len(store.calls) == 2


async def test_a_request_without_touches_writes_nothing() -> None:
    store = RecordingStore()
    await MarkCoalescer(write=store.write).mark(store, [])  # type: ignore[arg-type]
    assert store.calls == []
