"""Writer processes that write events' rows straight to Cassandra (scenario 1, and bulk loading).

Four paths, all from validated `Event`s (validation itself is done before the clock starts in the
ceiling trials, and counted in bulk loads), all writing the same rows in the service's order (raw rows
acknowledged, then the minute, hour and day marks of `rollups.write_marks`, level by level):

- `store`: `services.ingest.store_events` on a `CassandraStore` (the service's own write code: its
  unlogged replica-grouped batches, rollup touches per request and `--max-in-flight` 256), on batches
  of 1,000 events, `concurrency` batches at a time per process;
- `raw`: one prepared statement per row (`rows.raw_rows`), sent with the driver's
  `cassandra.concurrent.execute_concurrent` at `concurrency` statements in flight per process;
- `raw-batched`: the same rows grouped into single-partition unlogged batches of <= 100 rows, sent the
  same way;
- `raw-grouped`: the same rows in unlogged batches of rows that share their replicas, cut at 4.5 KiB
  as Cassandra sizes them or 100 rows (`store.batching.replica_batches`, what the store sends), sent
  the same way.

How the raw paths' rows differ from the service's is stated once, in `bench/rows.py`. Their statement
count is requests sent: a batch counts as one.

Each writer is a spawned process with its own connections; the parent drives it over a pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import queue
import signal
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection
from typing import Any, Literal

from player_sessions.bench.dataset import ShardSpec, generate_lines, iter_line_chunks

__all__ = ["PATHS", "RAW_PATHS", "DbTarget", "LoadResult", "TrialResult", "WritePath", "WriterPool"]

WritePath = Literal["store", "raw", "raw-batched", "raw-grouped"]
RAW_PATHS: tuple[WritePath, ...] = ("raw", "raw-batched", "raw-grouped")
PATHS: tuple[WritePath, ...] = ("store", *RAW_PATHS)
STORE_BATCH = 1_000
CHUNK_EVENTS = 10_000
RETRIES = 5
log = logging.getLogger("player_sessions.bench")


@dataclass(frozen=True)
class DbTarget:
    contact_points: str
    cql_port: int
    keyspace: str
    now: datetime
    retention: timedelta = timedelta(days=365)
    consistency: str = "LOCAL_QUORUM"
    datacenter: str = "datacenter1"


@dataclass
class _Counts:
    lines: int = 0
    stored: int = 0
    expired: int = 0
    rejected: int = 0
    statements: int = 0
    retries: int = 0
    players: set[str] = field(default_factory=set)
    whales: set[str] = field(default_factory=set)


class _Writer:
    """Lives in a writer process: connections made on first use of each path."""

    def __init__(self, target: DbTarget) -> None:
        self.target = target
        self._loop: asyncio.AbstractEventLoop | None = None
        self._store: Any = None
        self._session: Any = None
        self._cluster: Any = None
        self._prepared: dict[str, Any] = {}
        from player_sessions.bench.rows import TouchState
        from player_sessions.domain.validation import ValidationRules

        self.state = TouchState()
        self.rules = ValidationRules()

    def new_stream(self) -> None:
        """A new stream of events (a ceiling trial, a bulk load): its rollups are touched afresh."""
        from player_sessions.bench.rows import TouchState

        self.state = TouchState()

    # --- connections --------------------------------------------------------------------------

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            try:
                import uvloop

                self._loop = uvloop.new_event_loop()
            except ImportError:  # pragma: no cover - uvloop is a dependency of uvicorn[standard]
                self._loop = asyncio.new_event_loop()
        return self._loop

    def store(self) -> Any:
        if self._store is None:
            from player_sessions.config import Settings
            from player_sessions.store.cassandra import CassandraStore
            from player_sessions.store.config import StoreConfig

            settings = Settings(
                contact_points=self.target.contact_points,
                cql_port=self.target.cql_port,
                keyspace=self.target.keyspace,
                consistency=self.target.consistency,
                datacenter=self.target.datacenter,
            )
            connect = CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=False)
            self._store = self.loop().run_until_complete(connect)
        return self._store

    def session(self) -> Any:
        if self._session is None:
            from player_sessions.bench.rows import STATEMENTS
            from player_sessions.store.connection import open_cluster
            from player_sessions.store.statements import Statements

            logging.getLogger("cassandra").setLevel(logging.ERROR)
            self._cluster = open_cluster(
                [p.strip() for p in self.target.contact_points.split(",") if p.strip()],
                self.target.cql_port,
                datacenter=self.target.datacenter,
                consistency=self.target.consistency,
            )
            self._session = self._cluster.connect()
            statements = Statements.prepare(self._session, self.target.keyspace)  # the store's own
            self._prepared = {name: getattr(statements, name) for name in STATEMENTS}
        return self._session

    def close(self) -> None:
        if self._store is not None:
            with contextlib.suppress(Exception):
                self.loop().run_until_complete(self._store.close())
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.shutdown()

    # --- events ---------------------------------------------------------------------------------

    def classify(self, lines: Sequence[bytes], counts: _Counts) -> list[Any]:
        import orjson

        from player_sessions.services.ingest import NotJson, classify

        raw: list[object] = []
        for number, line in enumerate(lines):
            try:
                raw.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                raw.append(NotJson(number))
        classified = classify(raw, self.target.now, self.target.retention, self.rules)
        counts.lines += classified.result.received
        counts.stored += classified.result.stored
        counts.expired += classified.result.expired
        counts.rejected += classified.result.rejected
        return classified.valid

    # --- the paths ----------------------------------------------------------------------------------

    def write(self, path: WritePath, events: Sequence[Any], concurrency: int, counts: _Counts) -> None:
        if not events:
            return
        if path == "store":
            self._write_store(events, concurrency, counts)
        else:
            self._write_raw(path, events, concurrency, counts)

    def _write_store(self, events: Sequence[Any], concurrency: int, counts: _Counts) -> None:
        from player_sessions.concurrency import gather_bounded
        from player_sessions.services.ingest import store_events
        from player_sessions.store.errors import StoreUnavailable

        store = self.store()
        target = self.target

        async def one(batch: Sequence[Any]) -> None:
            for attempt in range(RETRIES + 1):
                try:
                    await store_events(batch, store, target.now, target.retention)
                    return
                except StoreUnavailable:
                    if attempt == RETRIES:
                        raise
                    counts.retries += 1
                    await asyncio.sleep(0.5 * (attempt + 1))

        batches = [events[i : i + STORE_BATCH] for i in range(0, len(events), STORE_BATCH)]
        self.loop().run_until_complete(gather_bounded((partial(one, b) for b in batches), concurrency))

    def _write_raw(self, path: WritePath, events: Sequence[Any], concurrency: int, counts: _Counts) -> None:
        """Phase by phase, as the service: each phase's statements all acknowledged before the next."""
        from player_sessions.bench.rows import raw_rows

        session = self.session()
        rows = raw_rows(events, self.target.now, self.target.retention, self.state)
        for pending in self._phase_statements(path, rows):
            if pending:
                counts.statements += len(pending)
                self._execute(session, pending, concurrency, counts)

    def _phase_statements(self, path: WritePath, rows: Any) -> list[list[tuple[Any, Any]]]:
        """The (statement, parameters) to send, per write phase, for one of the raw paths."""
        from cassandra.query import BatchStatement, BatchType

        from player_sessions.bench.rows import phase_groups, phase_rows
        from player_sessions.store.batching import replica_batches

        prepared = self._prepared
        if path == "raw":
            return [[(prepared[name], params) for name, params in phase] for phase in phase_rows(rows)]
        if path == "raw-grouped":
            metadata = self._cluster.metadata
            keyspace = self.target.keyspace
            return [
                [
                    (statement, None)
                    for statement in replica_batches(
                        metadata, keyspace, ((prepared[name], params) for name, params in phase)
                    )
                ]
                for phase in phase_rows(rows)
            ]
        if path != "raw-batched":
            raise ValueError(f"unknown write path {path!r}")
        out: list[list[tuple[Any, Any]]] = []
        for groups in phase_groups(rows):
            pending: list[tuple[Any, Any]] = []
            for group in groups:
                if len(group) == 1:
                    pending.append((prepared[group[0][0]], group[0][1]))
                    continue
                batch = BatchStatement(batch_type=BatchType.UNLOGGED)
                batch.is_idempotent = True
                for name, params in group:
                    batch.add(prepared[name], params)
                pending.append((batch, None))
            out.append(pending)
        return out

    @staticmethod
    def _execute(session: Any, pending: list[tuple[Any, Any]], concurrency: int, counts: _Counts) -> None:
        """Send every statement (`concurrency` in flight); re-send the failed ones (idempotent writes)."""
        from cassandra.concurrent import execute_concurrent

        for attempt in range(RETRIES + 1):
            results = execute_concurrent(
                session, pending, concurrency=concurrency, raise_on_first_error=False
            )
            failed = [item for item, (ok, _) in zip(pending, results, strict=True) if not ok]
            if not failed:
                return
            if attempt == RETRIES:
                first = next(r for ok, r in results if not ok)
                raise RuntimeError(f"{len(failed)} statements failed after {RETRIES} retries: {first}")
            counts.retries += len(failed)
            time.sleep(0.5 * (attempt + 1))
            pending = failed


def _worker_main(conn: Connection, target: DbTarget, index: int, progress: Any, shard_queue: Any) -> None:
    """A writer process: obeys commands from the parent until 'stop' (or until the parent is gone)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("cassandra").setLevel(logging.ERROR)
    writer = _Writer(target)
    prepared: list[Any] = []
    try:
        while True:
            command, args = conn.recv()
            if command == "stop":
                break
            try:
                if command == "connect":
                    for path in args:
                        if path == "store":
                            writer.store()
                        else:
                            writer.session()
                    conn.send(("ok", None))
                elif command == "prepare":
                    counts = _Counts()
                    prepared = []
                    for spec in args:
                        prepared.extend(writer.classify(generate_lines(spec), counts))
                    conn.send(("ok", len(prepared)))
                elif command == "run":
                    path, concurrency = args
                    counts = _Counts()
                    writer.new_stream()  # each trial is a stream of its own: its rollups touched afresh
                    started = time.monotonic()
                    writer.write(path, prepared, concurrency, counts)
                    elapsed = time.monotonic() - started
                    conn.send(("ok", (len(prepared), counts.statements, counts.retries, elapsed)))
                    prepared = []
                elif command == "stream":
                    path, concurrency = args
                    writer.new_stream()
                    counts = _stream(writer, path, concurrency, shard_queue, progress, index)
                    counts.players.difference_update(counts.whales)
                    conn.send(("ok", counts))
                else:
                    conn.send(("error", f"unknown command {command!r}"))
            except Exception:
                conn.send(("error", traceback.format_exc()))
    except (EOFError, KeyboardInterrupt):
        pass
    finally:
        writer.close()


def _stream(
    writer: _Writer, path: WritePath, concurrency: int, shard_queue: Any, progress: Any, index: int
) -> _Counts:
    counts = _Counts()
    while True:
        try:
            spec: ShardSpec | None = shard_queue.get(timeout=5)
        except queue.Empty:
            break
        if spec is None:
            break
        buffer: list[bytes] = []

        def flush(spec: ShardSpec = spec, buffer: list[bytes] = buffer) -> None:
            events = writer.classify(buffer, counts)
            buffer.clear()
            players = counts.whales if spec.whales else counts.players
            players.update(e.player_id for e in events)
            writer.write(path, events, concurrency, counts)
            progress[index] = counts.lines

        def on_chunk(chunk: bytes, flush: Callable[[], None] = flush, buffer: list[bytes] = buffer) -> None:
            buffer.extend(chunk.splitlines())
            if len(buffer) >= CHUNK_EVENTS:
                flush()

        iter_line_chunks(spec, on_chunk)
        flush()
    return counts


@dataclass(frozen=True)
class TrialResult:
    path: WritePath
    processes: int
    concurrency: int
    events: int
    statements: int
    retries: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "processes": self.processes,
            "concurrency": self.concurrency,
            "events": self.events,
            "statements": self.statements,
            "retries": self.retries,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
        }


@dataclass
class LoadResult:
    path: WritePath
    processes: int
    concurrency: int
    lines: int
    stored: int
    expired: int
    rejected: int
    retries: int
    seconds: float
    players: list[str]
    whales: list[str]

    @property
    def events_per_second(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "processes": self.processes,
            "concurrency": self.concurrency,
            "events": self.lines,
            "stored": self.stored,
            "expired": self.expired,
            "rejected": self.rejected,
            "retries": self.retries,
            "seconds": self.seconds,
            "events_per_second": self.events_per_second,
            "players": len(self.players),
            "whales": len(self.whales),
        }


class WriterPool:
    """`processes` spawned writer processes; use as a context manager (always stopped)."""

    def __init__(self, target: DbTarget, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.target = target
        self.size = processes
        self._progress: Any = ctx.Array("q", processes)
        self._shards: Any = ctx.Queue()
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        for index in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_worker_main,
                name=f"bench-writer-{index}",
                daemon=True,
                args=(child, target, index, self._progress, self._shards),
            )
            proc.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(proc)

    def _call(
        self,
        indexes: Sequence[int],
        command: str,
        args: Sequence[Any],
        on_wait: Callable[[], None] | None = None,
    ) -> list[Any]:
        for i, arg in zip(indexes, args, strict=True):
            self._conns[i].send((command, arg))
        results: dict[int, Any] = {}
        while len(results) < len(indexes):
            for i in indexes:
                if i in results:
                    continue
                if self._conns[i].poll(0.2):
                    status, value = self._conns[i].recv()
                    if status != "ok":
                        raise RuntimeError(f"writer {i} failed during {command}:\n{value}")
                    results[i] = value
                elif not self._procs[i].is_alive():
                    raise RuntimeError(f"writer {i} died during {command} (exit {self._procs[i].exitcode})")
            if on_wait is not None:
                on_wait()
        return [results[i] for i in indexes]

    def connect(self, paths: Sequence[WritePath]) -> None:
        self._call(range(self.size), "connect", [list(paths)] * self.size)

    def trial(
        self,
        path: WritePath,
        processes: int,
        concurrency: int,
        shards_per_process: Sequence[Sequence[ShardSpec]],
    ) -> TrialResult:
        """Generate and validate each process's events (untimed), then time writing them all."""
        active = list(range(processes))
        self._call(active, "prepare", [list(s) for s in shards_per_process])
        started = time.monotonic()
        outcomes = self._call(active, "run", [(path, concurrency)] * processes)
        wall = time.monotonic() - started
        return TrialResult(
            path,
            processes,
            concurrency,
            sum(o[0] for o in outcomes),
            sum(o[1] for o in outcomes),
            sum(o[2] for o in outcomes),
            wall,
        )

    def load(
        self,
        shards: Sequence[ShardSpec],
        path: WritePath,
        concurrency: int,
        report: Callable[[int, float], None] | None = None,
    ) -> LoadResult:
        """Generate, validate and write every shard (timed as a whole), shards pulled by free writers."""
        for spec in shards:
            self._shards.put(spec)
        for _ in range(self.size):
            self._shards.put(None)
        for i in range(self.size):
            self._progress[i] = 0
        started = time.monotonic()
        last = [started]

        def tick() -> None:
            now = time.monotonic()
            if report is not None and now - last[0] >= 3.0:
                last[0] = now
                report(sum(self._progress[:]), now - started)

        counts: list[_Counts] = self._call(
            range(self.size), "stream", [(path, concurrency)] * self.size, on_wait=tick
        )
        wall = time.monotonic() - started
        players: set[str] = set()
        whales: set[str] = set()
        for c in counts:
            players |= c.players
            whales |= c.whales
        return LoadResult(
            path,
            self.size,
            concurrency,
            sum(c.lines for c in counts),
            sum(c.stored for c in counts),
            sum(c.expired for c in counts),
            sum(c.rejected for c in counts),
            sum(c.retries for c in counts),
            wall,
            sorted(players),
            sorted(whales),
        )

    def close(self) -> None:
        for conn in self._conns:
            with contextlib.suppress(OSError, BrokenPipeError):
                conn.send(("stop", None))
        deadline = time.monotonic() + 15
        for proc in self._procs:
            proc.join(timeout=max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()

    def __enter__(self) -> WriterPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
