"""Ingest a batch: validate every event, store the valid ones idempotently.

Order of writes:
1. every event's row in its player's partition (player_events) and every start's raw row
   (starts_by_country_hour), all acknowledged before anything else starts;
2. then the minute count marks, then the hour marks, then the day marks, each level acknowledged
   before the next (a recount that sees a level's new mark must also find the level below stale; raw
   rows first: see the rollups package).
Only then is the response sent, so a 200 means everything stored is durable at the consistency level.

There is no read before a write: a session's start and end are paired when its player's sessions are
read (domain.sessions.LatestSessions), so two halves arriving at once in different requests, in any
order, need no coordination.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from player_sessions.domain.clock import Clock
from player_sessions.domain.events import Event, EventError, EventKind, InvalidEvent
from player_sessions.domain.retention import is_expired, ttl_seconds
from player_sessions.domain.validation import ValidationRules, validate_event
from player_sessions.domain.windows import hour_floor
from player_sessions.rollups import CountTouch, MarkCoalescer, count_touches, write_marks
from player_sessions.store.base import BoundWrites, EventWrite, SessionStore, StartWrite

OFFLOAD_EVENTS = 5_000
# Up to this many events a request's statements are bound before any is sent (in the decoding thread
# for a large body). Bound all at once, 100,000 events held ~140 MB of statements; past it they are
# bound as they are sent, a few dozen batches at a time.
BIND_AHEAD_EVENTS = 5_000
# One thread per process decodes and validates large bodies, one body at a time. The GIL lets one
# thread run at once anyway, so a second decoding thread adds no throughput; it only makes the event
# loop wait for the GIL behind more threads (eight hostile bodies decoded at once delayed every other
# request by over 100 ms; one at a time, the loop competes with a single thread).
_DECODER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-decode")


class NotJson:
    """Stands for an NDJSON line that is not JSON: it becomes that event's error, not the request's."""

    __slots__ = ("line",)

    def __init__(self, line: int) -> None:
        self.line = line


NOT_JSON_ERROR = EventError("event", "not valid JSON")


class TooLarge:
    """Stands for an event of more than `limit` bytes, which is not decoded: it becomes that event's
    error."""

    __slots__ = ("error",)

    def __init__(self, limit: int) -> None:
        self.error = EventError("event", f"larger than {limit} bytes")


@dataclass
class IngestResult:
    received: int = 0
    stored: int = 0
    expired: int = 0
    rejected: int = 0
    errors: list[tuple[int, EventError]] = field(default_factory=list)


@dataclass(frozen=True)
class Classified:
    valid: list[Event]
    result: IngestResult


def classify(
    raw_events: Sequence[object], now: datetime, retention: timedelta, rules: ValidationRules
) -> Classified:
    """Pure: split a request's events into valid, expired and rejected (with index and reason)."""
    return classify_pieces((raw_events,), now, retention, rules)


def classify_pieces(
    pieces: Iterable[Sequence[object]], now: datetime, retention: timedelta, rules: ValidationRules
) -> Classified:
    """Pure: `classify` over a request's events given in consecutive pieces. A piece is dropped once
    validated, so only the compact events outlive it, not their decoded JSON."""
    result = IngestResult()
    valid: list[Event] = []
    index = 0
    for piece in pieces:
        _classify_into(piece, index, now, retention, rules, valid, result)
        index += len(piece)
    result.received = index
    result.rejected = len(result.errors)
    result.stored = len(valid)
    return Classified(valid, result)


def _classify_into(
    raw_events: Sequence[object],
    first: int,
    now: datetime,
    retention: timedelta,
    rules: ValidationRules,
    valid: list[Event],
    result: IngestResult,
) -> None:
    for index, raw in enumerate(raw_events, first):
        if isinstance(raw, NotJson):
            result.errors.append((index, NOT_JSON_ERROR))
            continue
        if isinstance(raw, TooLarge):
            result.errors.append((index, raw.error))
            continue
        try:
            event = validate_event(raw, now, rules)
        except InvalidEvent as exc:
            result.errors.append((index, exc.error))
            continue
        if is_expired(event.ts, now, retention):
            result.expired += 1
        else:
            valid.append(event)


async def ingest_batch(
    raw_events: Sequence[object],
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    rules: ValidationRules,
    consume: bool = False,
) -> IngestResult:
    """Validate and store a request's events. With `consume`, a list of raw events is emptied once
    validated: its parsed JSON (~70 MB for 100,000 events) is not held while the batch is written."""
    now = clock.now()
    if len(raw_events) < OFFLOAD_EVENTS:
        classified = classify(raw_events, now, retention, rules)
    else:
        # Validating 100,000 events takes ~0.4 s of CPU: in a thread, the event loop keeps serving
        # other requests in between (the GIL is handed over every few milliseconds).
        classified = await asyncio.get_running_loop().run_in_executor(
            _DECODER, classify, raw_events, now, retention, rules
        )
    if consume and isinstance(raw_events, list):
        raw_events.clear()
    return await store_classified(classified, store, now, retention)


async def ingest_pieces(
    pieces: Iterable[Sequence[object]],
    store: SessionStore,
    clock: Clock,
    retention: timedelta,
    rules: ValidationRules,
    *,
    in_thread: bool,
    marks: MarkCoalescer | None = None,
) -> IngestResult:
    """Validate a request's events, given as pieces that are decoded as they are taken, and store the
    valid ones. `in_thread` for a large body: decoding, validating and planning the writes of 100,000
    events take ~1 s of CPU, and in a thread the event loop keeps serving other requests meanwhile
    (the GIL changes hands every few milliseconds). `marks`: the process's coalescer, which writes
    the rollup marks of concurrent requests together (without it, each request writes its own)."""
    now = clock.now()
    if in_thread:
        result, writes, bound = await asyncio.get_running_loop().run_in_executor(
            _DECODER, _prepare, pieces, now, retention, rules, store
        )
    else:
        result, writes, bound = _prepare(pieces, now, retention, rules, store)
    if writes is not None:
        if bound is not None:
            await store.put_bound(bound)
        else:
            await store.put_events(writes.rows, writes.starts)
        if marks is not None:
            await marks.mark(store, writes.touches)
        else:
            await mark(writes, store)
    return result


def _prepare(
    pieces: Iterable[Sequence[object]],
    now: datetime,
    retention: timedelta,
    rules: ValidationRules,
    store: SessionStore,
) -> tuple[IngestResult, Writes | None, BoundWrites | None]:
    """Everything a request costs in CPU before its writes are sent: decoding, validation, planning
    and binding the statements (in the decoding thread, the event loop meanwhile serves queries)."""
    classified = classify_pieces(pieces, now, retention, rules)
    if not classified.valid:
        return classified.result, None, None
    writes = plan_writes(classified.valid, now, retention)
    if len(writes.rows) > BIND_AHEAD_EVENTS:
        return classified.result, writes, None
    return classified.result, writes, store.bind_events(writes.rows, writes.starts)


async def store_classified(
    classified: Classified, store: SessionStore, now: datetime, retention: timedelta
) -> IngestResult:
    if classified.valid:
        await store_events(classified.valid, store, now, retention)
    return classified.result


@dataclass(frozen=True)
class Writes:
    rows: list[EventWrite]
    starts: list[StartWrite]
    touches: list[CountTouch]


def plan_writes(events: Sequence[Event], now: datetime, retention: timedelta) -> Writes:
    """Pure: the rows a batch of valid events writes, and the rollups it makes stale."""
    rows: list[EventWrite] = []
    starts: list[StartWrite] = []
    start_kind = EventKind.START
    for e in events:
        ttl = ttl_seconds(e.ts, now, retention)
        is_start = e.kind is start_kind
        rows.append(EventWrite(e.player_id, e.session_id, is_start, e.ts, e.country, ttl))
        if is_start and e.country is not None:
            starts.append(StartWrite(e.country, hour_floor(e.ts), e.ts, e.session_id, e.player_id, ttl))
    touches = count_touches(((s.country, s.ts) for s in starts), now, retention) if starts else []
    return Writes(rows, starts, touches)


async def store_events(
    events: Sequence[Event], store: SessionStore, now: datetime, retention: timedelta
) -> None:
    await write(plan_writes(events, now, retention), store)


async def write(writes: Writes, store: SessionStore) -> None:
    await store.put_events(writes.rows, writes.starts)
    await mark(writes, store)


async def mark(writes: Writes, store: SessionStore) -> None:
    """The rollups the acknowledged rows made stale: only after those rows (rollups.write_marks)."""
    if writes.touches:
        await write_marks(store, writes.touches, uuid.uuid4())
