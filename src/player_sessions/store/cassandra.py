"""The Cassandra implementation of SessionStore: all CQL lives here, prepared and marked idempotent.

Concurrency: statements run through the driver's own I/O thread; a process-wide semaphore bounds the
statements in flight (back-pressure), and every driver failure becomes StoreUnavailable at this edge.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from cassandra import AuthenticationFailed, ConsistencyLevel, DriverException, InvalidRequest
from cassandra.auth import PlainTextAuthProvider
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from player_sessions import metrics
from player_sessions.concurrency import gather_bounded
from player_sessions.config import Settings
from player_sessions.domain.sessions import Session as PlayerSession
from player_sessions.domain.sessions import SessionHalves
from player_sessions.store import schema
from player_sessions.store.base import (
    CountRow,
    CountTouch,
    HalfWrite,
    PlayerFootprint,
    SessionWrite,
    StartRow,
    StartWrite,
)
from player_sessions.store.errors import SchemaError, StoreAuthFailed, StoreError, StoreUnavailable

log = logging.getLogger(__name__)

# Rows of one partition written as one unlogged batch: one mutation on one replica set, and well
# under Cassandra's batch_size_fail_threshold (50 KiB) at ~100 bytes a row.
PARTITION_BATCH_ROWS = 100
STATEMENT_TIMEOUT_S = 10.0


def _utc(value: datetime | None) -> datetime | None:
    # The driver returns naive datetimes that are UTC.
    return value.replace(tzinfo=UTC) if value is not None else None


def _must_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def _day_of(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


class CassandraStore:
    """Open with `await CassandraStore.connect(settings)`; close with `await store.close()`."""

    def __init__(self, cluster: Cluster, session: Session, settings: Settings) -> None:
        self._cluster = cluster
        self._session = session
        self._settings = settings
        self._in_flight = asyncio.Semaphore(settings.max_in_flight)
        self._prepare(settings.keyspace)
        self._prepare_erase(settings.keyspace)
        metrics.instrument_session(session)

    # --- lifecycle ------------------------------------------------------------------------------

    @classmethod
    async def connect(cls, settings: Settings, ensure_schema: bool = True) -> CassandraStore:
        loop = asyncio.get_running_loop()
        try:
            cluster, session = await loop.run_in_executor(None, _open_cluster, settings)
            if ensure_schema:
                await loop.run_in_executor(None, _ensure_schema, session, settings)
            return cls(cluster, session, settings)
        except NoHostAvailable as exc:
            _raise_if_auth_failed(exc, settings)
            raise StoreUnavailable(f"Cassandra at {settings.contact_points} is not reachable: {exc}") from exc
        except DriverException as exc:
            raise SchemaError(f"could not create the schema: {exc}") from exc

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._cluster.shutdown)

    def _prepare(self, ks: str) -> None:
        p = self._session.prepare

        def idem(cql: str) -> PreparedStatement:
            stmt = p(cql)
            stmt.is_idempotent = True  # every write is an upsert keyed by the natural key
            return stmt

        self._put_start_half = idem(
            f"UPDATE {ks}.session_halves USING TTL ? SET start_ts = ?, country = ? "
            "WHERE player_id = ? AND session_id = ?")
        self._put_end_half = idem(
            f"UPDATE {ks}.session_halves USING TTL ? SET end_ts = ? WHERE player_id = ? AND session_id = ?")
        self._get_halves = idem(
            f"SELECT start_ts, end_ts, country FROM {ks}.session_halves "
            "WHERE player_id = ? AND session_id = ?")
        self._put_session = idem(
            f"INSERT INTO {ks}.sessions_by_player (player_id, start_ts, session_id, end_ts, country) "
            "VALUES (?, ?, ?, ?, ?) USING TTL ?")
        self._get_sessions = idem(
            f"SELECT start_ts, session_id, end_ts, country FROM {ks}.sessions_by_player "
            "WHERE player_id = ? AND start_ts >= ? LIMIT ?")
        self._put_start = idem(
            f"INSERT INTO {ks}.starts_by_country_hour (country, hour, ts, session_id, player_id) "
            "VALUES (?, ?, ?, ?, ?) USING TTL ?")
        self._put_country_hour = idem(
            f"INSERT INTO {ks}.country_hours (country, hour) VALUES (?, ?) USING TTL ?")
        self._touch_hour = idem(
            f"UPDATE {ks}.hour_counts USING TTL ? SET touched = ? WHERE day = ? AND hour = ? AND country = ?")
        self._touch_day = idem(
            f"UPDATE {ks}.day_counts USING TTL ? SET touched = ? WHERE year = ? AND day = ? AND country = ?")
        self._get_hour_rows = idem(
            f"SELECT hour, country, n, touched, counted FROM {ks}.hour_counts WHERE day = ?")
        self._get_day_rows = idem(
            f"SELECT day, country, n, touched, counted FROM {ks}.day_counts "
            "WHERE year = ? AND day >= ? AND day <= ?")
        self._save_hour = idem(
            f"UPDATE {ks}.hour_counts USING TTL ? SET n = ?, counted = ? "
            "WHERE day = ? AND hour = ? AND country = ?")
        self._save_day = idem(
            f"UPDATE {ks}.day_counts USING TTL ? SET n = ?, counted = ? "
            "WHERE year = ? AND day = ? AND country = ?")
        self._count_raw = idem(
            f"SELECT count(*) FROM {ks}.starts_by_country_hour "
            "WHERE country = ? AND hour = ? AND ts >= ? AND ts <= ?")
        self._get_country_hours = idem(
            f"SELECT hour FROM {ks}.country_hours WHERE country = ? AND hour <= ? AND hour >= ? LIMIT ?")
        self._get_starts = idem(
            f"SELECT ts, session_id, player_id FROM {ks}.starts_by_country_hour "
            "WHERE country = ? AND hour = ? AND ts >= ? AND ts <= ? LIMIT ?")
        self._get_starts_before = idem(
            f"SELECT ts, session_id, player_id FROM {ks}.starts_by_country_hour "
            "WHERE country = ? AND hour = ? AND ts >= ? AND (ts, session_id) < (?, ?) LIMIT ?")
        self._ping = idem("SELECT release_version FROM system.local")

    def _prepare_erase(self, ks: str) -> None:
        """The player index (written at ingest) and the statements of DELETE /players/{player_id}."""

        def idem(cql: str, unpaged: bool = False) -> PreparedStatement:
            stmt = self._session.prepare(cql)
            stmt.is_idempotent = True
            if unpaged:
                # One player's partition, bounded by the TTL to one retention of that player's sessions.
                stmt.fetch_size = None
            return stmt

        self._index_start = idem(
            f"UPDATE {ks}.player_sessions_index USING TTL ? SET starts[?] = ? "
            "WHERE player_id = ? AND session_id = ?")
        self._index_end = idem(
            f"UPDATE {ks}.player_sessions_index USING TTL ? SET end_ts = ? "
            "WHERE player_id = ? AND session_id = ?")
        # Both halves in one request: one statement. TTL = the longer of the two, so the index row
        # outlives neither half (a start entry may outlive its raw row by the session's length: harmless).
        self._index_both = idem(
            f"UPDATE {ks}.player_sessions_index USING TTL ? SET starts[?] = ?, end_ts = ? "
            "WHERE player_id = ? AND session_id = ?")
        self._get_index = idem(
            f"SELECT session_id, starts FROM {ks}.player_sessions_index WHERE player_id = ?", unpaged=True)
        self._get_all_sessions = idem(
            f"SELECT start_ts, session_id, country FROM {ks}.sessions_by_player WHERE player_id = ?",
            unpaged=True)
        self._del_halves = idem(f"DELETE FROM {ks}.session_halves WHERE player_id = ? AND session_id = ?")
        self._del_start = idem(
            f"DELETE FROM {ks}.starts_by_country_hour "
            "WHERE country = ? AND hour = ? AND ts = ? AND session_id = ?")
        self._del_sessions = idem(f"DELETE FROM {ks}.sessions_by_player WHERE player_id = ?")
        self._del_index = idem(f"DELETE FROM {ks}.player_sessions_index WHERE player_id = ?")

    # --- execution ------------------------------------------------------------------------------

    async def _slot(self) -> None:
        """Back-pressure: wait at most --queue-timeout for one of the --max-in-flight statement slots.

        When Cassandra is slow every slot stays taken; the request then fails with 503 + Retry-After
        (its writes are idempotent, the retry is safe) instead of queueing without bound.
        """
        if not self._in_flight.locked():
            await self._in_flight.acquire()
            return
        wait_s = self._settings.queue_timeout
        try:
            async with asyncio.timeout(wait_s):
                await self._in_flight.acquire()
        except TimeoutError:
            raise StoreUnavailable(f"overloaded: all {self._settings.max_in_flight} Cassandra statement "
                                   f"slots stayed busy for {wait_s:g}s") from None

    def _release_slot(self, answered: asyncio.Future[list[Any]]) -> None:
        if not answered.cancelled():
            answered.exception()  # retrieved here too: its waiter may have been cancelled
        self._in_flight.release()

    async def _execute(self, statement: Any, params: Sequence[Any] | None = None) -> list[Any]:
        loop = asyncio.get_running_loop()
        await self._slot()
        future: asyncio.Future[list[Any]] = loop.create_future()
        # The slot is given back when the driver answers, not when the waiter gives up: a timed-out
        # request's statements keep occupying Cassandra until they finish, and so keep their slots.
        future.add_done_callback(self._release_slot)

        pages: list[Any] = []

        def ok(rows: Any) -> None:
            # A result over the fetch size (5,000 rows, e.g. a year of day_counts) comes in pages: the
            # callback gets one page at a time and must ask for the next, or the rest is silently lost.
            pages.extend(rows or ())
            if response.has_more_pages:
                response.start_fetching_next_page()
            else:
                loop.call_soon_threadsafe(_resolve, future, pages)

        def failed(exc: BaseException) -> None:
            loop.call_soon_threadsafe(_reject, future, exc)

        # The driver raises outside its DriverException tree too (NoHostAvailable,
        # OperationTimedOut, ConnectionException): every failure is translated here, once.
        try:
            response = self._session.execute_async(statement, params, timeout=STATEMENT_TIMEOUT_S)
            response.add_callbacks(ok, failed)
        except Exception as exc:
            future.cancel()
            raise _translate(exc) from exc
        try:
            return await asyncio.shield(future)
        except Exception as exc:
            raise _translate(exc) from exc

    async def _execute_all(self, calls: Iterable[tuple[Any, Sequence[Any] | None]]) -> None:
        """Run every statement, at most max_in_flight at once; the first failure fails the whole."""
        await gather_bounded(
            (partial(self._execute, s, p) for s, p in calls),
            self._settings.max_in_flight,
        )

    def _partition_batches(
        self, rows: Iterable[tuple[Any, tuple[Any, ...]]], statement: PreparedStatement
    ) -> Iterator[tuple[Any, None]]:
        """Group bound rows by partition key into unlogged single-partition batches, built lazily:
        a batch is bound (its values serialised) only when its turn to be sent comes."""
        for params in _chunks_by_key(rows, PARTITION_BATCH_ROWS):
            if len(params) == 1:
                yield statement.bind(params[0]), None
                continue
            batch = BatchStatement(batch_type=BatchType.UNLOGGED)
            batch.is_idempotent = True
            for p in params:
                batch.add(statement, p)
            yield batch, None

    # --- ingest ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        await self._execute(self._ping)

    async def put_halves(self, writes: Sequence[HalfWrite]) -> None:
        # Within a request only the last write of each half counts (they set the same cells); a
        # session's start and end then go as one single-partition batch: one round trip, each half
        # keeping its own TTL.
        last = {(w.player_id, w.session_id, w.is_start): w for w in writes}
        grouped: dict[tuple[str, uuid.UUID], list[tuple[PreparedStatement, tuple[Any, ...]]]] = (
            defaultdict(list))
        for w in last.values():
            if w.is_start:
                grouped[(w.player_id, w.session_id)].append(
                    (self._put_start_half, (w.ttl, w.ts, w.country, w.player_id, w.session_id)))
            else:
                grouped[(w.player_id, w.session_id)].append(
                    (self._put_end_half, (w.ttl, w.ts, w.player_id, w.session_id)))
        await self._execute_all(_as_batch(group) for group in grouped.values())

    async def read_halves(self, keys: Sequence[tuple[str, uuid.UUID]]) -> list[SessionHalves | None]:
        async def one(key: tuple[str, uuid.UUID]) -> SessionHalves | None:
            rows = await self._execute(self._get_halves, key)
            if not rows:
                return None
            row = rows[0]
            return SessionHalves(start=_utc(row.start_ts), end=_utc(row.end_ts), country=row.country)

        return await gather_bounded(
            (partial(one, k) for k in keys), self._settings.max_in_flight
        )

    async def put_sessions(self, writes: Sequence[SessionWrite]) -> None:
        rows = (
            (w.session.player_id,
             (w.session.player_id, w.session.start, w.session.session_id, w.session.end,
              w.session.country, w.ttl))
            for w in writes
        )
        await self._execute_all(self._partition_batches(rows, self._put_session))

    async def put_starts(self, writes: Sequence[StartWrite]) -> None:
        rows = (
            ((w.country, w.hour), (w.country, w.hour, w.ts, w.session_id, w.player_id, w.ttl))
            for w in writes
        )
        await self._execute_all(self._partition_batches(rows, self._put_start))

    async def touch_counts(self, touches: Sequence[CountTouch], token: uuid.UUID) -> None:
        hours = {(t.country, t.hour): t for t in touches}
        days: dict[tuple[str, datetime], int] = {}
        for t in hours.values():
            key = (t.country, _day_of(t.hour))
            days[key] = max(days.get(key, 0), t.day_ttl)
        hour_rows = (
            (_day_of(t.hour), (t.ttl, token, _day_of(t.hour), t.hour, t.country)) for t in hours.values()
        )
        day_rows = ((day.year, (ttl, token, day.year, day, country)) for (country, day), ttl in days.items())
        country_rows = ((t.country, (t.country, t.hour, t.ttl)) for t in hours.values())
        # Hours strictly before days: a day recount that reads the day's new token must then find its
        # hours stale too (services/counts.py). Written together, a recount between the two writes
        # could store the day's old total under its new token, and the day would look fresh.
        await self._execute_all([
            *self._partition_batches(hour_rows, self._touch_hour),
            *self._partition_batches(country_rows, self._put_country_hour),
        ])
        await self._execute_all(self._partition_batches(day_rows, self._touch_day))

    # --- sessions -------------------------------------------------------------------------------

    async def last_sessions(self, player_id: str, horizon: datetime, limit: int) -> list[PlayerSession]:
        rows = await self._execute(self._get_sessions, (player_id, horizon, limit))
        return [
            PlayerSession(session_id=r.session_id, player_id=player_id, country=r.country,
                          start=_must_utc(r.start_ts), end=_must_utc(r.end_ts))
            for r in rows
        ]

    # --- counts ---------------------------------------------------------------------------------

    async def hour_rows(self, day: datetime) -> list[CountRow]:
        rows = await self._execute(self._get_hour_rows, (day,))
        return [CountRow(_must_utc(r.hour), r.country, r.n, r.touched, r.counted) for r in rows]

    async def day_rows(self, year: int, first_day: datetime, last_day: datetime) -> list[CountRow]:
        rows = await self._execute(self._get_day_rows, (year, first_day, last_day))
        return [CountRow(_must_utc(r.day), r.country, r.n, r.touched, r.counted) for r in rows]

    async def count_raw(self, country: str, hour: datetime, lo: datetime, hi: datetime) -> int:
        rows = await self._execute(self._count_raw, (country, hour, lo, hi))
        return int(rows[0].count) if rows else 0

    async def save_hour_count(self, row: CountRow, ttl: int) -> None:
        await self._execute(self._save_hour, (ttl, row.n, row.counted, _day_of(row.start), row.start,
                                              row.country))

    async def save_day_count(self, row: CountRow, ttl: int) -> None:
        await self._execute(self._save_day, (ttl, row.n, row.counted, row.start.year, row.start,
                                             row.country))

    # --- pagination -----------------------------------------------------------------------------

    async def country_hours(self, country: str, newest: datetime, oldest: datetime,
                            limit: int) -> list[datetime]:
        rows = await self._execute(self._get_country_hours, (country, newest, oldest, limit))
        return [_must_utc(r.hour) for r in rows]

    async def starts_page(self, country: str, hour: datetime, lo: datetime, hi: datetime,
                          before: tuple[datetime, uuid.UUID] | None, limit: int) -> list[StartRow]:
        if before is None:
            rows = await self._execute(self._get_starts, (country, hour, lo, hi, limit))
        else:
            rows = await self._execute(self._get_starts_before,
                                       (country, hour, lo, before[0], before[1], limit))
        return [StartRow(hour, _must_utc(r.ts), r.session_id, r.player_id) for r in rows]

    # --- the player index and erasing a player --------------------------------------------------

    async def index_sessions(self, writes: Sequence[HalfWrite]) -> None:
        """Record every session id of each player, and each start's ts -> country, in
        player_sessions_index: one statement per session (more only for a start re-sent with another
        ts), one unlogged batch per player partition of at most 100 statements."""
        starts: dict[tuple[str, uuid.UUID], dict[datetime, HalfWrite]] = defaultdict(dict)
        ends: dict[tuple[str, uuid.UUID], HalfWrite] = {}
        for w in writes:
            if w.is_start:
                starts[(w.player_id, w.session_id)][w.ts] = w
            else:
                ends[(w.player_id, w.session_id)] = w
        by_player: dict[str, list[tuple[PreparedStatement, tuple[Any, ...]]]] = defaultdict(list)
        for key in starts.keys() | ends.keys():
            player_id, session_id = key
            end = ends.get(key)
            pending = list(starts.get(key, {}).values())
            if end is not None and pending:
                first = pending.pop()
                by_player[player_id].append((self._index_both, (
                    max(first.ttl, end.ttl), first.ts, first.country, end.ts, player_id, session_id)))
            elif end is not None:
                by_player[player_id].append((self._index_end, (end.ttl, end.ts, player_id, session_id)))
            for w in pending:
                by_player[player_id].append(
                    (self._index_start, (w.ttl, w.ts, w.country, player_id, session_id)))
        await self._execute_all(
            _as_batch(group[i:i + PARTITION_BATCH_ROWS])
            for group in by_player.values() for i in range(0, len(group), PARTITION_BATCH_ROWS))

    async def player_footprint(self, player_id: str) -> PlayerFootprint:
        indexed, complete = await asyncio.gather(
            self._execute(self._get_index, (player_id,)),
            self._execute(self._get_all_sessions, (player_id,)))
        sessions: set[uuid.UUID] = set()
        starts: set[tuple[str, datetime, uuid.UUID]] = set()
        for r in indexed:
            sessions.add(r.session_id)
            for ts, country in (r.starts or {}).items():
                starts.add((country, _must_utc(ts), r.session_id))
        # Sessions stored before the index existed are known here (with their start) too.
        for r in complete:
            sessions.add(r.session_id)
            if r.country is not None:
                starts.add((r.country, _must_utc(r.start_ts), r.session_id))
        return PlayerFootprint(len(indexed), len(complete), frozenset(sessions), frozenset(starts))

    async def erase_player_rows(self, player_id: str, footprint: PlayerFootprint) -> None:
        """Delete the player's halves, raw starts and complete sessions (the index goes last, in
        drop_player_index, so a failed erase can be retried and still finds everything)."""
        start_rows = (
            ((country, _hour_of(ts)), (country, _hour_of(ts), ts, session_id))
            for country, ts, session_id in footprint.starts
        )
        await self._execute_all([
            *((self._del_halves, (player_id, session_id)) for session_id in footprint.session_ids),
            *self._partition_batches(start_rows, self._del_start),
            (self._del_sessions, (player_id,)),
        ])

    async def drop_player_index(self, player_id: str) -> None:
        await self._execute(self._del_index, (player_id,))


# --- helpers ------------------------------------------------------------------------------------

def _resolve(future: asyncio.Future[list[Any]], rows: list[Any]) -> None:
    if not future.done():
        future.set_result(rows)


def _reject(future: asyncio.Future[list[Any]], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def _as_batch(statements: list[tuple[PreparedStatement, tuple[Any, ...]]]) -> tuple[Any, Any]:
    """Statements of ONE partition (a handful) as an unlogged batch."""
    if len(statements) == 1:
        return statements[0]
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    batch.is_idempotent = True
    for statement, params in statements:
        batch.add(statement, params)
    return batch, None


def _hour_of(ts: datetime) -> datetime:
    return ts.replace(minute=0, second=0, microsecond=0)


def _raise_if_auth_failed(exc: NoHostAvailable, settings: Settings) -> None:
    errors = getattr(exc, "errors", None) or {}
    refused = [e for e in errors.values() if isinstance(e, AuthenticationFailed)]
    if refused:
        who = f"user {settings.username!r}" if settings.username else "no credentials"
        raise StoreAuthFailed(
            f"Cassandra at {settings.contact_points} refused the login ({who}): {refused[0]}; "
            "check --username/--password (PLAYER_SESSIONS_USERNAME/PLAYER_SESSIONS_PASSWORD)") from exc


def _translate(exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, InvalidRequest):
        return StoreError(f"Cassandra rejected a statement: {exc}")
    return StoreUnavailable(f"Cassandra could not complete the request: {type(exc).__name__}: {exc}")


def _chunks_by_key(rows: Iterable[tuple[Any, tuple[Any, ...]]], size: int) -> list[list[tuple[Any, ...]]]:
    grouped: dict[Any, list[tuple[Any, ...]]] = defaultdict(list)
    for key, params in rows:
        grouped[key].append(params)
    return [group[i:i + size] for group in grouped.values() for i in range(0, len(group), size)]


def _open_cluster(settings: Settings) -> tuple[Cluster, Session]:
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    level = getattr(ConsistencyLevel, settings.consistency)
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=settings.datacenter)),
        consistency_level=level,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=STATEMENT_TIMEOUT_S,
    )
    auth = (PlainTextAuthProvider(settings.username, settings.password or "")
            if settings.username else None)
    ssl_context = None
    if settings.tls:
        ssl_context = ssl.create_default_context(cafile=settings.tls_ca_file)
        if not settings.tls_verify:
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
    cluster = Cluster(
        contact_points=settings.contact_point_list,
        port=settings.cql_port,
        execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        auth_provider=auth,
        ssl_context=ssl_context,
        # Come back quickly after an outage: the service must recover by itself within seconds.
        reconnection_policy=ExponentialReconnectionPolicy(base_delay=0.5, max_delay=5.0),
        connect_timeout=5,
        control_connection_timeout=5,
        idle_heartbeat_interval=5,
        protocol_version=4,
    )
    session = cluster.connect()
    return cluster, session


def _ensure_schema(session: Session, settings: Settings) -> None:
    if settings.create_keyspace:
        session.execute(schema.keyspace_cql(settings.keyspace, settings.datacenter,
                                            settings.replication_factor), timeout=60)
    for cql in schema.table_cql(settings.keyspace):
        session.execute(cql, timeout=60)
    # DDL is applied by one coordinator; wait until every node agrees before preparing statements.
    session.cluster.control_connection.wait_for_schema_agreement(wait_time=30)
