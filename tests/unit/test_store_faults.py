"""Timeouts inside Cassandra, injected at the driver boundary: the real CassandraStore over a fake
session whose `execute_async` fails chosen statements with WriteTimeout / ReadTimeout / a client-side
timeout. A failure anywhere fails the whole batch with StoreUnavailable (HTTP 503 + Retry-After, never
a 200 that hides a partial write), every statement sent is marked idempotent (so the driver and the
client may retry it), and the statement slots bound what is in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections import namedtuple
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from cassandra import ConsistencyLevel, OperationTimedOut, ReadTimeout, WriteTimeout, WriteType
from cassandra.protocol import ColumnMetadata
from cassandra.query import BatchStatement, BoundStatement, PreparedStatement

from player_sessions.api.app import create_app
from player_sessions.bootstrap import build_runtime
from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.validation import ValidationRules
from player_sessions.rollups import CountTouch, write_marks
from player_sessions.services.ingest import ingest_batch
from player_sessions.store.cassandra import CassandraStore
from player_sessions.store.config import StoreConfig
from player_sessions.store.errors import StoreUnavailable
from tests.support.clock import NOW

RETENTION = timedelta(days=365)


class AnyType:
    """Serialises any bound value (the fake never decodes it)."""

    @staticmethod
    def serialize(value: object, protocol_version: int) -> bytes:
        return repr(value).encode()


class FakeFuture:
    """The driver's ResponseFuture as `_execute` uses it; `pages` emulates a result over the fetch size."""

    def __init__(
        self,
        rows: list[Any] | None = None,
        error: BaseException | None = None,
        pending: bool = False,
        pages: list[list[Any]] | None = None,
    ) -> None:
        self.rows, self.error, self.pending = rows or [], error, pending
        self.more = list(pages or [])
        self.callbacks: tuple[Callable[[Any], None], Callable[[BaseException], None]] | None = None

    @property
    def has_more_pages(self) -> bool:
        return bool(self.more)

    def start_fetching_next_page(self) -> None:
        self.rows = self.more.pop(0)
        self.answer()

    def add_callbacks(
        self, callback: Callable[[Any], None], errback: Callable[[BaseException], None]
    ) -> None:
        self.callbacks = (callback, errback)
        if not self.pending:
            self.answer()

    def answer(self) -> None:
        assert self.callbacks is not None
        if self.error is not None:
            self.callbacks[1](self.error)
        else:
            self.callbacks[0](self.rows)


class FakeSession:
    """Records what would be sent; `fail(cql)` picks the error for a statement (None: it succeeds)."""

    def __init__(
        self,
        fail: Callable[[str], BaseException | None] = lambda cql: None,
        pending: bool = False,
        pages: Callable[[str], list[list[Any]]] = lambda cql: [],
    ) -> None:
        self.fail = fail
        self.pending = pending
        self.pages = pages
        self.sent: list[tuple[list[str], bool]] = []  # (the CQL inside, is_idempotent)
        self.futures: list[FakeFuture] = []
        self._cql: dict[bytes, str] = {}

    @property
    def metadata(self) -> FakeSession:
        return self  # the cluster's metadata, as far as `_replica_batches` asks

    def get_replicas(self, keyspace: str, routing_key: bytes | None) -> list[Any]:
        return []  # no token map: every row in one group

    def add_request_init_listener(self, listener: Callable[..., None]) -> None:
        pass  # metrics hook of the real Session

    def prepare(self, cql: str) -> PreparedStatement:
        query_id = hashlib.sha1(cql.encode()).digest()
        self._cql[query_id] = cql
        columns = [ColumnMetadata("ks", "t", f"c{i}", AnyType) for i in range(cql.count("?"))]
        return PreparedStatement(columns, query_id, None, cql, "ks", 4, None, None)

    def execute_async(self, statement: Any, params: Any = None, timeout: float | None = None) -> FakeFuture:
        if isinstance(statement, BatchStatement):
            cql = [self._cql[query_id] for _, query_id, _ in statement._statements_and_parameters]
        elif isinstance(statement, BoundStatement):
            cql = [statement.prepared_statement.query_string]
        else:
            cql = [statement.query_string]
        self.sent.append((cql, bool(statement.is_idempotent)))
        error = next((e for e in map(self.fail, cql) if e is not None), None)
        pages = self.pages(cql[0])
        future = FakeFuture(
            rows=pages[0] if pages else [], error=error, pending=self.pending, pages=pages[1:]
        )
        self.futures.append(future)
        return future


def store_over(session: FakeSession, **settings: Any) -> CassandraStore:
    fake: Any = session
    return CassandraStore(
        cluster=fake, session=fake, config=StoreConfig.from_settings(Settings(keyspace="ks", **settings))
    )


def events(sessions: int = 30) -> list[dict[str, str]]:
    out = []
    for i in range(sessions):
        sid, player = str(uuid.uuid4()), f"p{i % 7}"
        began = NOW - timedelta(hours=i + 1)
        out.append(
            {
                "event": "start",
                "player_id": player,
                "session_id": sid,
                "country": "FI",
                "ts": began.isoformat(),
            }
        )
        if i % 3:  # some sessions end in this batch, the others stay open
            out.append(
                {
                    "event": "end",
                    "player_id": player,
                    "session_id": sid,
                    "ts": (began + timedelta(minutes=5)).isoformat(),
                }
            )
    return out


async def ingest(store: CassandraStore, raw: list[dict[str, str]]) -> Any:
    return await ingest_batch(raw, store, FixedClock(NOW), RETENTION, ValidationRules())


def write_timeout() -> WriteTimeout:
    return WriteTimeout(
        "Operation timed out - received only 1 responses.",
        consistency=ConsistencyLevel.QUORUM,
        required_responses=2,
        received_responses=1,
        write_type=WriteType.UNLOGGED_BATCH,
    )


async def test_every_prepared_statement_and_every_batch_sent_is_idempotent() -> None:
    session = FakeSession()
    store = store_over(session)
    prepared = [v for v in vars(store._cql).values() if isinstance(v, PreparedStatement)]
    assert len(prepared) >= 15 and all(p.is_idempotent for p in prepared)
    result = await ingest(store, events())
    assert result.stored == len(events())
    # Rows, then hour marks, then day marks: at least 3 requests, each a batch of many rows.
    assert len(session.sent) >= 3
    assert all(idempotent for _, idempotent in session.sent), [c for c, i in session.sent if not i]
    rows = sum(len(cql) for cql, _ in session.sent)
    assert rows >= len(events()) and len(session.sent) < rows / 4, "rows go in batches, not one by one"


@pytest.mark.parametrize(
    "table",
    [
        "player_events",
        "starts_by_country_hour",
        "starts_by_minute",
        "hour_starts",
        "minute_starts",
        "day_starts",
        "country_hours",
    ],
)
async def test_a_write_timeout_in_any_table_fails_the_whole_batch(table: str) -> None:
    session = FakeSession(
        lambda cql: (
            write_timeout() if cql.startswith(("UPDATE", "INSERT")) and f"ks.{table} " in cql else None
        )
    )
    with pytest.raises(StoreUnavailable, match="WriteTimeout"):
        await ingest(store_over(session), events())
    assert any(f"ks.{table} " in c for cql, _ in session.sent for c in cql), "the failing table was written"


async def test_ingest_reads_nothing_so_a_read_timeout_cannot_fail_it() -> None:
    session = FakeSession(
        lambda cql: (
            ReadTimeout(
                "timed out",
                consistency=ConsistencyLevel.QUORUM,
                required_responses=2,
                received_responses=1,
                data_retrieved=False,
            )
            if cql.startswith("SELECT")
            else None
        )
    )
    result = await ingest(store_over(session), events())
    assert result.stored == len(events())
    assert not [c for cql, _ in session.sent for c in cql if c.startswith("SELECT")]


async def test_a_client_side_timeout_fails_the_batch() -> None:
    session = FakeSession(
        lambda cql: (
            OperationTimedOut("errors={}, last_host=127.0.0.1:9042") if "player_events" in cql else None
        )
    )
    with pytest.raises(StoreUnavailable, match="OperationTimedOut"):
        await ingest(store_over(session), events())


async def test_the_route_answers_503_with_retry_after_never_a_partial_200() -> None:
    session = FakeSession(lambda cql: write_timeout() if "starts_by_country_hour" in cql else None)
    settings = Settings(keyspace="ks", clock=NOW)
    runtime = build_runtime(settings)
    runtime.store = store_over(session)
    app = create_app(settings, runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        r = await client.post("/events", json=events())
    assert r.status_code == 503, r.text
    assert int(r.headers["retry-after"]) > 0
    assert "retry" in r.json()["error"]
    assert "stored" not in r.json()


async def test_statement_slots_bound_what_is_in_flight_and_then_answer_503() -> None:
    session = FakeSession(pending=True)  # Cassandra takes the statements and does not answer yet
    store = store_over(session, max_in_flight=2, queue_timeout=0.2)
    first = [asyncio.ensure_future(store.ping()) for _ in range(2)]
    await asyncio.sleep(0.01)
    assert len(session.futures) == 2
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(StoreUnavailable, match="overloaded"):
        await store.ping()
    assert 0.15 < loop.time() - began < 1.0
    assert len(session.futures) == 2, "nothing beyond max_in_flight was sent"

    # A waiter that gives up does not free its slot: the statement is still in Cassandra.
    first[0].cancel()
    await asyncio.sleep(0.01)
    with pytest.raises(StoreUnavailable, match="overloaded"):
        await store.ping()
    # The answers free the slots.
    for future in session.futures:
        future.answer()
    await asyncio.sleep(0.01)
    assert first[1].done() and first[1].result() is None
    session.pending = False
    await store.ping()


async def test_ingest_batches_take_at_most_their_slots_and_reads_go_around_them() -> None:
    """A query's reads must not queue on the node behind every batch of every request being ingested:
    batches of rows wait for one of --max-ingest-in-flight slots, reads and marks do not."""
    session = FakeSession(pending=True)
    store = store_over(session, max_ingest_in_flight=2)
    task = asyncio.ensure_future(ingest(store, events(300)))  # ~1,000 rows: a dozen batches
    await asyncio.sleep(0.01)
    assert len(session.futures) == 2, "two batches of rows in flight, the others wait for a slot"
    read = asyncio.ensure_future(store.player_events("p1", None, 10))
    await asyncio.sleep(0.01)
    assert len(session.futures) == 3 and ".player_events " in session.sent[-1][0][0]
    session.futures[-1].answer()
    assert await asyncio.wait_for(read, 1) == []

    answered = {id(session.futures[-1])}
    most_rows_in_flight = 0
    while not task.done():
        waiting = [f for f in session.futures if id(f) not in answered]
        rows_in_flight = [
            f
            for f, (cql, _) in zip(session.futures, session.sent, strict=True)
            if id(f) not in answered and _is_ingested_row(cql[0])
        ]
        most_rows_in_flight = max(most_rows_in_flight, len(rows_in_flight))
        for future in waiting[:1]:
            answered.add(id(future))
            future.answer()
        await asyncio.sleep(0.001)
    assert task.result().stored > 0
    assert most_rows_in_flight == 2
    assert sum(1 for cql, _ in session.sent if _is_ingested_row(cql[0])) > 10


def _is_ingested_row(cql: str) -> bool:
    return cql.startswith("INSERT") and any(
        f".{table} " in cql for table in ("player_events", "starts_by_country_hour", "starts_by_minute")
    )


async def test_minute_then_hour_then_day_marks_each_wait_for_the_acks_of_the_level_below() -> None:
    """A recount that sees a level's new token must find the level below stale as well: an hour is
    recounted from its minute rollups, a day from its hours."""
    session = FakeSession(pending=True)
    store = store_over(session)
    hours = [NOW - timedelta(hours=h) for h in (1, 2, 30)]
    touches = [
        CountTouch(c, h, ttl=3600, day_ttl=7200, minutes=frozenset({h, h + timedelta(minutes=5)}))
        for c in ("FI", "SE")
        for h in hours
    ]
    task = asyncio.ensure_future(write_marks(store, touches, uuid.uuid4()))
    levels = []
    answered = 0
    for _ in range(3):
        await asyncio.sleep(0.01)
        levels.append([c for cql, _ in session.sent[answered:] for c in cql])
        sent = len(session.futures)
        for future in session.futures[answered:]:
            future.answer()
        answered = sent
    await asyncio.wait_for(task, 1)
    minutes, hours_sent, days = levels
    assert minutes and all(".minute_starts " in c for c in minutes), minutes
    assert sum(".minute_starts " in c for c in minutes) == 6  # one per minute, whatever its countries
    assert hours_sent and all(".hour_starts " in c or ".country_hours " in c for c in hours_sent)
    assert sum(".hour_starts " in c for c in hours_sent) == 3  # one per hour, with its countries
    assert days and all(".day_starts " in c for c in days)
    assert sum(".day_starts " in c for c in days) == 2


DayRow = namedtuple("DayRow", "day counts_json touched counted")


async def test_a_result_over_the_fetch_size_is_read_to_its_last_page() -> None:
    """The driver hands `add_callbacks` one page (5,000 rows) at a time; a year of day rollups of
    every country is far more than one page."""
    day = datetime(2016, 1, 1)
    page = [DayRow(day, orjson.dumps({f"C{i}": i}), None, None) for i in range(5000)]
    session = FakeSession(pages=lambda cql: [page, page, page[:7]] if "FROM ks.day_starts" in cql else [])
    rows = await store_over(session).day_rows(2016, day, day + timedelta(days=365))
    assert len(rows) == 10_007
