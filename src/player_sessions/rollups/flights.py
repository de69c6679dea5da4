"""Recounts shared between the queries and passes of one process (single flight)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class RecountFlights:
    """The recounts running in this process, shared: a query (or the background refresher) that needs
    a rollup another is already recounting awaits that recount instead of repeating it.

    Two ways to share. By `key`, the rollups and their `touched` tokens: the same tokens mean no
    ingest was acknowledged on them in between, whenever the recount began. By `group`, the rollups
    without their tokens, for a query asked at `asked` (time.monotonic()): a recount of the same
    rollups that began at or after `asked` does every read it counts after that moment, so it holds
    every start acknowledged before the query was asked, which is all the query's answer needs. During
    ingest the tokens change between any two queries, and only the second way shares."""

    def __init__(self) -> None:
        self._running: dict[tuple[object, ...], asyncio.Future[Any]] = {}
        self._latest: dict[tuple[object, ...], tuple[float, asyncio.Future[Any]]] = {}

    async def run(
        self,
        key: tuple[object, ...],
        recount: Callable[[], Awaitable[T]],
        *,
        group: tuple[object, ...] | None = None,
        asked: float | None = None,
    ) -> T:
        running = self._running.get(key)
        if running is None and group is not None and asked is not None:
            latest = self._latest.get(group)
            if latest is not None and latest[0] >= asked and not latest[1].done():
                running = latest[1]
        if running is None:
            started = time.monotonic()  # the recount's first read comes after this
            running = asyncio.ensure_future(recount())
            self._running[key] = running
            running.add_done_callback(lambda _: self._running.pop(key, None))
            if group is not None:
                flight = running
                self._latest[group] = (started, flight)
                running.add_done_callback(lambda _: self._forget(group, flight))
        # Shielded: a waiter that gives up (its client went away) does not cancel the others' recount.
        result: T = await asyncio.shield(running)
        return result

    def _forget(self, group: tuple[object, ...], flight: asyncio.Future[Any]) -> None:
        latest = self._latest.get(group)
        if latest is not None and latest[1] is flight:
            del self._latest[group]

    def __len__(self) -> int:
        return len(self._running)
