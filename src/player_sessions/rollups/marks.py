"""The marks that make rollups stale, in their order, and concurrent requests' marks written together.

Every request that stored starts must mark the rollups it made stale: minutes, then hours, then days,
each level acknowledged before the next (write_marks). That is three round trips and
three small batches per request whatever its size, so a 10-event request paid for its marks about what
it paid for its rows. Here a request hands its touches over once its rows are acknowledged and waits:
while one group of marks is being written, the touches of the requests that arrive meanwhile gather,
and go out as the next group with one token. Under load, one set of three writes serves every request
that arrived during the previous set; alone, a request's marks go out at once.

Correctness is the single-request rule applied to the union: every touch in a group belongs to a
request whose rows were acknowledged before it joined, and the group writes its levels in order. A
request answers only after the group holding its touches is acknowledged; if that write fails, every
request of the group fails (503, and the client's retry is safe).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

from player_sessions.rollups.touches import CountTouch, level_marks
from player_sessions.store.base import SessionStore


async def write_marks(store: SessionStore, touches: Sequence[CountTouch], token: uuid.UUID) -> None:
    """Mark stale every rollup the touches name, under one new `touched` token.

    Only once the rows that made them stale are acknowledged. Minutes, then hours, then days, each
    level acknowledged before the next is sent: a recount that reads a level's new token must then
    find the level below stale too (an hour is recounted from its minute rollups, a day from its
    hours). Written together, a recount between the writes could store the old total under the new
    token, and it would look fresh. An hour's mark carries its countries: an hour recounted from raw
    rows counts them.
    """
    marks = level_marks(touches)
    if marks.minutes:
        await store.mark_minutes(marks.minutes, token)
    if marks.hours:
        await store.mark_hours(marks.hours, token)
    if marks.days:
        await store.mark_days(marks.days, token)


MarksWriter = Callable[[SessionStore, Sequence[CountTouch], uuid.UUID], Awaitable[None]]


class MarkCoalescer:
    """One per process (and event loop): `await coalescer.mark(store, touches)`. `write` writes one
    group's marks (write_marks; tests replace it)."""

    def __init__(self, write: MarksWriter = write_marks) -> None:
        self._write = write
        self._pending: list[CountTouch] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._writing: asyncio.Future[None] | None = None
        self.groups = 0  # groups written, for tests and metrics

    async def mark(self, store: SessionStore, touches: Sequence[CountTouch]) -> None:
        if not touches:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.extend(touches)
        self._waiters.append(waiter)
        if self._writing is None:
            self._writing = asyncio.ensure_future(self._write_groups(store))
        await waiter

    async def _write_groups(self, store: SessionStore) -> None:
        try:
            while self._pending:
                touches, waiters = self._pending, self._waiters
                self._pending, self._waiters = [], []
                self.groups += 1
                try:
                    await self._write(store, touches, uuid.uuid4())
                except Exception as exc:  # every waiter of the group gets the failure; the next group goes on
                    _fail(waiters, exc)
                except BaseException as exc:  # cancelled at shutdown: no waiter is left hanging
                    _fail(waiters + self._waiters, exc)
                    self._pending, self._waiters = [], []
                    raise
                else:
                    for waiter in waiters:
                        if not waiter.done():
                            waiter.set_result(None)
        finally:
            self._writing = None


def _fail(waiters: list[asyncio.Future[None]], exc: BaseException) -> None:
    for waiter in waiters:
        if not waiter.done():
            waiter.set_exception(exc)
