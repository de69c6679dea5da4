"""Bounded concurrency for asyncio, shared by the store and the services."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from itertools import chain, islice
from typing import TypeVar

T = TypeVar("T")


async def gather_bounded(factories: Iterable[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await every factory's coroutine with at most `limit` pending; results keep the input order.

    Workers pull from one iterator, so a 100,000-statement batch never creates 100,000 tasks nor
    holds 100,000 callables, and the first failure cancels the rest and propagates.
    """
    # Pulled lazily: a factory (and the statement it builds) exists only shortly before it runs, so
    # a 100,000-event request never holds all its bound statements at once.
    iterator = iter(factories)
    head = list(islice(iterator, limit))
    indexed = enumerate(chain(head, iterator))
    results: dict[int, T] = {}

    async def worker() -> None:
        for index, factory in indexed:
            results[index] = await factory()

    # Never more workers than work: three statements must not cost 256 task creations.
    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, len(head)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return [results[i] for i in range(len(results))]
