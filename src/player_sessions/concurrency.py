"""Bounded concurrency for asyncio, shared by the store and the services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


async def gather_bounded(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await every factory's coroutine with at most `limit` pending; results keep the input order.

    Workers pull from one iterator, so a 100,000-statement batch never creates 100,000 tasks (only
    100,000 small callables), and the first failure cancels the rest and propagates.
    """
    pending = list(factories)
    indexed = enumerate(pending)
    results: dict[int, T] = {}

    async def worker() -> None:
        for index, factory in indexed:
            results[index] = await factory()

    # Never more workers than work: three statements must not cost 256 task creations.
    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(limit, len(pending))))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return [results[i] for i in range(len(results))]
