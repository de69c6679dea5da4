"""RecountFlights: one recount per rollup and token however many queries need it at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from player_sessions.rollups import RecountFlights


async def test_concurrent_needs_of_one_rollup_share_one_recount() -> None:
    flights = RecountFlights()
    calls = 0
    release = asyncio.Event()

    async def recount() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(flights.run(("hour", "FI", 1, "t1"), recount)) for _ in range(5)]
    await asyncio.sleep(0)
    assert len(flights) == 1
    release.set()
    assert await asyncio.gather(*waiters) == [42] * 5
    assert calls == 1
    assert len(flights) == 0  # forgotten once done: a later need recounts (the rollup may be stale again)
    assert await flights.run(("hour", "FI", 1, "t1"), recount) == 42
    assert calls == 2


async def test_a_new_touch_token_is_a_new_recount() -> None:
    flights = RecountFlights()
    seen: list[str] = []

    async def recount(token: str) -> int:
        seen.append(token)
        await asyncio.sleep(0.01)
        return len(seen)

    await asyncio.gather(
        flights.run(("day", "SE", 1, "a"), lambda: recount("a")),
        flights.run(("day", "SE", 1, "b"), lambda: recount("b")),
    )
    assert sorted(seen) == ["a", "b"]


async def test_a_waiter_that_gives_up_does_not_cancel_the_others() -> None:
    flights = RecountFlights()
    release = asyncio.Event()

    async def recount() -> int:
        await release.wait()
        return 7

    impatient = asyncio.create_task(flights.run(("hour", "US", 2, "t"), recount))
    patient = asyncio.create_task(flights.run(("hour", "US", 2, "t"), recount))
    await asyncio.sleep(0)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    release.set()
    assert await patient == 7


async def test_a_failed_recount_fails_its_waiters_and_is_not_kept() -> None:
    flights = RecountFlights()

    async def broken() -> int:
        raise RuntimeError("Cassandra went away")

    with pytest.raises(RuntimeError):
        await flights.run(("day", "FI", 3, "t"), broken)
    assert len(flights) == 0


class HeldRecount:
    """A recount that answers its call number once released."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.calls += 1
        call = self.calls
        await self.release.wait()
        return call


async def test_a_query_joins_a_recount_of_the_same_rollups_begun_after_it_was_asked() -> None:
    flights = RecountFlights()
    recount = HeldRecount()

    asked = time.monotonic()
    first = asyncio.create_task(flights.run(("minutes", 1, "t1"), recount, group=("minutes", 1), asked=asked))
    await asyncio.sleep(0)
    # Other tokens (an ingest touched the minutes in between), but the recount began after `asked`.
    second = asyncio.create_task(
        flights.run(("minutes", 1, "t2"), recount, group=("minutes", 1), asked=asked)
    )
    await asyncio.sleep(0)
    recount.release.set()
    assert await asyncio.gather(first, second) == [1, 1]
    assert recount.calls == 1


async def test_a_query_asked_after_a_recount_began_does_not_join_it() -> None:
    flights = RecountFlights()
    recount = HeldRecount()

    first = asyncio.create_task(
        flights.run(("minutes", 1, "t1"), recount, group=("minutes", 1), asked=time.monotonic())
    )
    await asyncio.sleep(0.01)
    # Asked after the first recount began: starts acknowledged in between may be missing from it.
    second = asyncio.create_task(
        flights.run(("minutes", 1, "t2"), recount, group=("minutes", 1), asked=time.monotonic())
    )
    await asyncio.sleep(0)
    recount.release.set()
    assert sorted(await asyncio.gather(first, second)) == [1, 2]
    assert recount.calls == 2
