"""The ingest gate: requests weighed by body size, admitted in order, 503 after the queue timeout."""

from __future__ import annotations

import asyncio

import pytest

from player_sessions.api.body import MIN_WEIGHT, IngestGate, IngestLease
from player_sessions.api.errors import Busy

MIB = 1024 * 1024


def test_a_plain_body_weighs_its_declared_length_within_bounds() -> None:
    gate = IngestGate(slots=64, budget=32 * MIB, wait_s=1)
    assert gate.weigh("13000000", None, 24 * MIB) == 13_000_000
    assert gate.weigh("200", "identity", 24 * MIB) == MIN_WEIGHT
    assert gate.weigh(str(100 * MIB), None, 24 * MIB) == 32 * MIB


@pytest.mark.parametrize(("length", "encoding"), [(None, None), ("1000", "gzip"), ("x", None), ("-5", None)])
def test_a_body_of_unknown_size_weighs_what_it_may_decompress_to(
    length: str | None, encoding: str | None
) -> None:
    gate = IngestGate(slots=64, budget=32 * MIB, wait_s=1)
    assert gate.weigh(length, encoding, 24 * MIB) == 24 * MIB
    assert gate.weigh(length, encoding, 64 * MIB) == 32 * MIB  # never more than the whole budget


async def test_once_read_a_body_weighs_only_its_size() -> None:
    gate = IngestGate(slots=64, budget=32 * MIB, wait_s=0.05)
    lease = IngestLease(gate, gate.weigh("1000", "gzip", 24 * MIB))
    await gate.acquire(lease.weight)
    with pytest.raises(Busy):
        await gate.acquire(13 * MIB)  # a second compressed body waits while the first is read
    lease.shrink_to(2 * MIB)
    await gate.acquire(13 * MIB)
    assert lease.weight == 2 * MIB


async def test_many_small_batches_run_together_but_only_two_huge_ones() -> None:
    gate = IngestGate(slots=64, budget=32 * MIB, wait_s=0.05)
    for _ in range(64):
        await gate.acquire(MIN_WEIGHT)  # 64 batches of 10 events at once: all admitted
    with pytest.raises(Busy):
        await gate.acquire(MIN_WEIGHT)  # the 65th: the request count is the limit
    for _ in range(64):
        gate.release(MIN_WEIGHT)

    big = 13 * MIB
    await gate.acquire(big)
    await gate.acquire(big)
    with pytest.raises(Busy) as refused:
        await gate.acquire(big)
    assert "nothing was stored" in str(refused.value)
    gate.release(big)
    await gate.acquire(big)  # room again


async def test_waiters_are_admitted_in_arrival_order_so_a_big_one_is_not_starved() -> None:
    gate = IngestGate(slots=64, budget=10 * MIB, wait_s=5)
    await gate.acquire(6 * MIB)
    admitted: list[str] = []

    async def request(name: str, weight: int) -> None:
        await gate.acquire(weight)
        admitted.append(name)

    big = asyncio.create_task(request("big", 8 * MIB))
    await asyncio.sleep(0)
    small = asyncio.create_task(request("small", MIB))  # would fit now, but queues behind the big one
    await asyncio.sleep(0.01)
    assert admitted == []
    gate.release(6 * MIB)
    await asyncio.gather(big, small)
    assert admitted == ["big", "small"]


async def test_a_cancelled_waiter_leaves_the_queue_and_lets_the_next_in() -> None:
    gate = IngestGate(slots=64, budget=10 * MIB, wait_s=5)
    await gate.acquire(9 * MIB)
    leaving = asyncio.create_task(gate.acquire(5 * MIB))
    await asyncio.sleep(0)
    staying = asyncio.create_task(gate.acquire(MIB))
    await asyncio.sleep(0)
    leaving.cancel()  # the client disconnected while queued
    await asyncio.wait_for(staying, 1)  # fits beside the 9 MiB once the queue head is gone
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.release(9 * MIB)
    gate.release(MIB)
    await asyncio.wait_for(gate.acquire(10 * MIB), 1)  # nothing leaked: the whole budget is free
