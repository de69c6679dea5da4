"""CassandraStore, the SessionStore on Cassandra: which statements each operation runs with which
values (statements.py prepares them, batching.py groups the rows of a write, rows.py decodes what comes
back), and how they run. Statements go through the driver's own I/O thread; a process-wide semaphore
bounds the statements in flight (back-pressure: a request that cannot get a slot in --queue-timeout
fails with StoreUnavailable), and every driver failure is translated at this edge (errors.py).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from cassandra import DriverException
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import UNSET_VALUE, PreparedStatement

from player_sessions import metrics
from player_sessions.concurrency import gather_bounded
from player_sessions.domain.sessions import StoredEvent
from player_sessions.domain.windows import day_floor, hour_floor, minute_floor
from player_sessions.store import connection, migrations, schema
from player_sessions.store.base import (
    BoundWrites,
    CountRow,
    DayMark,
    EventWrite,
    HourMark,
    MinuteMark,
    StartRow,
    StartWrite,
    StoredEventKey,
)
from player_sessions.store.batching import replica_batches
from player_sessions.store.config import StoreConfig
from player_sessions.store.connection import STATEMENT_TIMEOUT_S
from player_sessions.store.errors import SchemaError, StoreUnavailable, translate
from player_sessions.store.rows import as_utc, countries_of, counts_blob, counts_of
from player_sessions.store.statements import Statements

_LAST_HOUR_OF_DAY = timedelta(hours=23)


class CassandraStore:
    """Open with `await CassandraStore.connect(config)`; close with `await store.close()`."""

    def __init__(self, cluster: Cluster, session: Session, config: StoreConfig) -> None:
        self._cluster = cluster
        self._session = session
        self._config = config
        self._in_flight = asyncio.Semaphore(config.max_in_flight)
        # Ingested rows take their slots here first: the node then holds at most this many of them
        # queued ahead of a query's reads (docs/design.md, "Ingest and queries at once").
        self._ingest_in_flight = asyncio.Semaphore(min(config.max_ingest_in_flight, config.max_in_flight))
        self._cql = Statements.prepare(session, config.keyspace)
        metrics.instrument_session(session)

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, config: StoreConfig, ensure_schema: bool = True) -> CassandraStore:
        loop = asyncio.get_running_loop()
        try:
            cluster, session = await loop.run_in_executor(None, connection.connect, config)
            if ensure_schema:
                await loop.run_in_executor(None, _ensure_schema, session, config)
            return cls(cluster, session, config)
        except NoHostAvailable as exc:
            raise connection.unreachable(exc, config) from exc
        except DriverException as exc:
            raise SchemaError(f"could not create the schema: {exc}") from exc

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._cluster.shutdown)

    # --- execution ------------------------------------------------------------------------------

    async def _slot(self, slots: asyncio.Semaphore, limit: int, what: str) -> None:
        """Back-pressure: wait at most --queue-timeout for one of `slots`.

        When Cassandra is slow every slot stays taken; the request then fails with 503 + Retry-After
        (its writes are idempotent, the retry is safe) instead of queueing without bound.
        """
        if not slots.locked():
            await slots.acquire()
            return
        wait_s = self._config.queue_timeout
        try:
            async with asyncio.timeout(wait_s):
                await slots.acquire()
        except TimeoutError:
            raise StoreUnavailable(
                f"overloaded: all {limit} {what} slots stayed busy for {wait_s:g}s"
            ) from None

    def _release_slot(self, answered: asyncio.Future[list[Any]]) -> None:
        if not answered.cancelled():
            answered.exception()  # retrieved here too: its waiter may have been cancelled
        self._in_flight.release()

    def _release_ingest_slot(self, answered: asyncio.Future[list[Any]]) -> None:
        self._ingest_in_flight.release()

    async def _execute(
        self, statement: Any, params: Sequence[Any] | None = None, ingest: bool = False
    ) -> list[Any]:
        loop = asyncio.get_running_loop()
        config = self._config
        if ingest:
            await self._slot(self._ingest_in_flight, config.max_ingest_in_flight, "ingest write")
        try:
            await self._slot(self._in_flight, config.max_in_flight, "Cassandra statement")
        except BaseException:
            if ingest:
                self._ingest_in_flight.release()
            raise
        future: asyncio.Future[list[Any]] = loop.create_future()
        # Slots are given back when the driver answers, not when the waiter gives up: a timed-out
        # request's statements keep occupying Cassandra until they finish, and so keep their slots.
        future.add_done_callback(self._release_slot)
        if ingest:
            future.add_done_callback(self._release_ingest_slot)

        pages: list[Any] = []
        # The response future holds these callbacks and they need the response: held through a list
        # emptied once answered, so no reference cycle is left for the garbage collector per statement.
        holder: list[Any] = []

        def ok(rows: Any) -> None:
            # A result over the fetch size (5,000 rows, e.g. a player's whole partition) comes in pages: the
            # callback gets one page at a time and must ask for the next, or the rest is silently lost.
            pages.extend(rows or ())
            response = holder[0]
            if response.has_more_pages:
                response.start_fetching_next_page()
            else:
                holder.clear()
                loop.call_soon_threadsafe(_resolve, future, pages)

        def failed(exc: BaseException) -> None:
            holder.clear()
            loop.call_soon_threadsafe(_reject, future, exc)

        # The driver raises outside its DriverException tree too (NoHostAvailable,
        # OperationTimedOut, ConnectionException): every failure is translated here, once.
        try:
            response = self._session.execute_async(statement, params, timeout=STATEMENT_TIMEOUT_S)
            holder.append(response)
            response.add_callbacks(ok, failed)
        except Exception as exc:
            future.cancel()
            raise translate(exc) from exc
        try:
            return await asyncio.shield(future)
        except Exception as exc:
            raise translate(exc) from exc

    async def _execute_all(
        self, calls: Iterable[tuple[Any, Sequence[Any] | None]], ingest: bool = False
    ) -> None:
        """Run every statement, at most max_in_flight_per_request at once; the first failure fails the whole.

        Each answer wakes one of the request's workers, which binds and encodes its next batch on the
        event loop. With 256 workers a 100,000-event request kept ~256 such steps queued ahead of every
        other request's next step (GET / waited up to 0.5 s); 32 keep that queue short while still
        covering a local node's write latency many times over (docs/reliability.md)."""
        await gather_bounded(
            (partial(self._execute, s, p, ingest) for s, p in calls),
            min(self._config.max_in_flight_per_request, self._config.max_in_flight),
        )

    def _replica_batches(
        self, rows: Iterable[tuple[PreparedStatement, Sequence[Any]]]
    ) -> Iterator[tuple[Any, None]]:
        batches = replica_batches(self._cluster.metadata, self._config.keyspace, rows)
        return ((batch, None) for batch in batches)

    # --- ingest ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._execute(self._cql.ping)

    async def ready(self) -> None:
        """A read of our keyspace at the configured consistency: it answers only when enough replicas
        of a real partition (the schema version's) do."""
        await self._execute(migrations.version_statement(self._config.keyspace))

    async def put_events(self, events: Sequence[EventWrite], starts: Sequence[StartWrite]) -> None:
        """Each event's row in its player's partition and each start's raw row, in replica batches,
        bound as they are sent (a few dozen at a time: memory stays flat whatever the batch)."""
        await self._execute_all(self._replica_batches(self._event_rows(events, starts)), ingest=True)

    async def put_bound(self, bound: BoundWrites) -> None:
        await self._execute_all(cast(list[tuple[Any, None]], bound), ingest=True)

    def bind_events(self, events: Sequence[EventWrite], starts: Sequence[StartWrite]) -> BoundWrites:
        """put_events' replica batches, all bound now: binding is most of ingest's CPU in the driver,
        and done here it can run outside the event loop."""
        return list(self._replica_batches(self._event_rows(events, starts)))

    def _event_rows(
        self, events: Sequence[EventWrite], starts: Sequence[StartWrite]
    ) -> Iterator[tuple[PreparedStatement, Sequence[Any]]]:
        """An end's country is not stored (UNSET, not null: a null would write a tombstone)."""
        cql = self._cql
        return itertools.chain(
            (
                (
                    cql.put_event,
                    (
                        e.player_id,
                        e.ts,
                        e.session_id,
                        e.is_start,
                        e.country if e.is_start and e.country is not None else UNSET_VALUE,
                        e.ttl,
                    ),
                )
                for e in events
            ),
            ((cql.put_start, (w.country, w.hour, w.ts, w.session_id, w.player_id, w.ttl)) for w in starts),
            (
                (
                    cql.put_minute_start,
                    (
                        minute_floor(w.ts),
                        schema.minute_shard(w.session_id),
                        w.country,
                        w.ts,
                        w.session_id,
                        w.ttl,
                    ),
                )
                for w in starts
            ),
        )

    async def mark_minutes(self, marks: Sequence[MinuteMark], token: uuid.UUID) -> None:
        await self._execute_all(
            self._replica_batches(
                (self._cql.touch_minute, (m.ttl, token, hour_floor(m.minute), m.minute)) for m in marks
            )
        )

    async def mark_hours(self, marks: Sequence[HourMark], token: uuid.UUID) -> None:
        hour_rows = (
            (self._cql.touch_hour, (m.ttl, token, set(m.countries), day_floor(m.hour), m.hour)) for m in marks
        )
        country_rows = (
            (self._cql.put_country_hour, (country, m.hour, m.ttl))
            for m in marks
            for country in sorted(m.countries)
        )
        await self._execute_all(self._replica_batches(itertools.chain(hour_rows, country_rows)))

    async def mark_days(self, marks: Sequence[DayMark], token: uuid.UUID) -> None:
        await self._execute_all(
            self._replica_batches((self._cql.touch_day, (m.ttl, token, m.day.year, m.day)) for m in marks)
        )

    # --- sessions -------------------------------------------------------------------------------

    async def player_events(
        self, player_id: str, before: StoredEventKey | None, limit: int
    ) -> list[StoredEvent]:
        if before is None:
            rows = await self._execute(self._cql.get_events, (player_id, limit))
        else:
            ts_ms, session_id, is_start = before  # the driver binds a timestamp from epoch ms as is
            rows = await self._execute(
                self._cql.get_events_after, (player_id, ts_ms, uuid.UUID(bytes=session_id), is_start, limit)
            )
        return rows  # StoredEvent rows (cached_named_tuple_factory)

    # --- counts ---------------------------------------------------------------------------------

    async def hour_rows(
        self, day: datetime, first_hour: datetime | None = None, last_hour: datetime | None = None
    ) -> list[CountRow]:
        lo = first_hour if first_hour is not None else day
        hi = last_hour if last_hour is not None else day + _LAST_HOUR_OF_DAY
        return await self.hour_rows_of_days([day], lo, hi)

    async def hour_rows_of_days(
        self, days: Sequence[datetime], first_hour: datetime, last_hour: datetime
    ) -> list[CountRow]:
        if not days:
            return []
        if len(days) == 1:  # `day = ?`: the driver routes it to a replica of the partition
            rows = await self._execute(self._cql.get_hour_rows, (days[0], first_hour, last_hour))
        else:
            rows = await self._execute(self._cql.get_hour_rows_of_days, (list(days), first_hour, last_hour))
        return [
            CountRow(
                as_utc(r.hour), counts_of(r.counts_json), r.touched, r.counted, countries_of(r.countries_json)
            )
            for r in rows
        ]

    async def day_rows(self, year: int, first_day: datetime, last_day: datetime) -> list[CountRow]:
        rows = await self._execute(self._cql.get_day_rows, (year, first_day, last_day))
        return [CountRow(as_utc(r.day), counts_of(r.counts_json), r.touched, r.counted) for r in rows]

    async def minute_rows(
        self, hours: Sequence[datetime], first_minute: datetime, last_minute: datetime
    ) -> list[CountRow]:
        if not hours:
            return []
        rows = await self._execute(self._cql.get_minute_rows, (list(hours), first_minute, last_minute))
        return [CountRow(as_utc(r.minute), counts_of(r.counts_json), r.touched, r.counted) for r in rows]

    async def save_minute_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None:
        await self._execute_all(
            self._replica_batches(
                (
                    self._cql.save_minute,
                    (ttl, counts_blob(row.counts), row.counted, hour_floor(row.start), row.start),
                )
                for row, ttl in rows
            )
        )

    async def count_minutes(self, minutes: Sequence[datetime]) -> dict[tuple[str, datetime], int]:
        if not minutes:
            return {}
        rows = await self._execute(
            self._cql.count_minutes, (list(minutes), list(range(schema.MINUTE_SHARDS)))
        )
        counts: dict[tuple[str, datetime], int] = {}
        for r in rows:  # one row per shard
            key = (r.country, as_utc(r.minute))
            counts[key] = counts.get(key, 0) + int(r.n)
        return counts

    async def count_starts_between(
        self, minutes: Sequence[datetime], lo: datetime, hi: datetime
    ) -> dict[str, int]:
        if not minutes:
            return {}
        rows = await self._execute(
            self._cql.count_starts_between, (list(minutes), list(range(schema.MINUTE_SHARDS)), lo, hi)
        )
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.country] = counts.get(r.country, 0) + int(r.n)
        return counts

    async def count_starts(
        self, countries: Sequence[str], hours: Sequence[datetime]
    ) -> dict[tuple[str, datetime], int]:
        if not countries or not hours:
            return {}
        rows = await self._execute(self._cql.count_starts, (list(countries), list(hours)))
        return {(r.country, as_utc(r.hour)): int(r.n) for r in rows}

    async def save_hour_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None:
        await self._execute_all(
            self._replica_batches(
                (
                    self._cql.save_hour,
                    (ttl, counts_blob(row.counts), row.counted, day_floor(row.start), row.start),
                )
                for row, ttl in rows
            )
        )

    async def save_day_counts(self, rows: Sequence[tuple[CountRow, int]]) -> None:
        await self._execute_all(
            self._replica_batches(
                (self._cql.save_day, (ttl, counts_blob(row.counts), row.counted, row.start.year, row.start))
                for row, ttl in rows
            )
        )

    # --- pagination -----------------------------------------------------------------------------

    async def country_hours(
        self, country: str, newest: datetime, oldest: datetime, limit: int
    ) -> list[datetime]:
        rows = await self._execute(self._cql.get_country_hours, (country, newest, oldest, limit))
        return [as_utc(r.hour) for r in rows]

    async def starts_page(
        self,
        country: str,
        hour: datetime,
        lo: datetime,
        hi: datetime,
        before: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[StartRow]:
        if before is None:
            rows = await self._execute(self._cql.get_starts, (country, hour, lo, hi, limit))
        else:
            rows = await self._execute(
                self._cql.get_starts_before, (country, hour, lo, before[0], before[1], limit)
            )
        return [StartRow(hour, as_utc(r.ts), r.session_id, r.player_id) for r in rows]

    # --- erasing a player ----------------------------------------------------------------------

    async def erase_player_rows(
        self, player_id: str, starts: Sequence[tuple[str, datetime, uuid.UUID]]
    ) -> None:
        """Delete raw start rows of the player (player_events goes last, in drop_player_events, so a
        failed erase can be retried and still finds everything)."""
        await self._execute_all(
            self._replica_batches(
                itertools.chain(
                    (
                        (self._cql.del_start, (country, hour_floor(ts), ts, session_id))
                        for country, ts, session_id in starts
                    ),
                    (
                        (
                            self._cql.del_minute_start,
                            (minute_floor(ts), schema.minute_shard(session_id), country, ts, session_id),
                        )
                        for country, ts, session_id in starts
                    ),
                )
            )
        )

    async def drop_player_events(self, player_id: str) -> None:
        await self._execute(self._cql.del_events, (player_id,))


# --- helpers ------------------------------------------------------------------------------------


def _resolve(future: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    if not future.done():
        future.set_result(rows)


def _reject(future: asyncio.Future[list[Any]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _ensure_schema(session: Session, config: StoreConfig) -> None:
    admin = migrations.SchemaAdmin(session.cluster, session, config.keyspace)
    requested, default = migrations.replication_of(config)
    migrations.migrate(admin, requested, default, config.create_keyspace, say=lambda _line: None)
