"""Stream a JSON-lines file of events into the service through its public ``POST /events``.

Memory stays bounded whatever the file size: a reader thread decompresses and cuts batches into a
queue of two, and at most ``concurrency`` batches are in flight. The reader runs in a daemon thread
so a stalled stdin can never keep the process alive after Ctrl-C.

Batches go through ``player_sessions.client.AsyncClient``, which owns the retry rules (503, 429,
5xx and transport errors, exponential backoff with jitter, ``Retry-After``, one request id per
batch); here a batch that keeps failing for ``give_up_after`` seconds stops the load, and other 4xx
answers stop it at once: retrying cannot help.

"How far did it get" has to respect concurrency: batches are acknowledged out of order, so the
reported line is the highest L such that every batch up to L was acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import os
import queue
import random
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Final, TextIO

import httpx
import orjson

from player_sessions.client import ApiError, AsyncClient, IngestResult, RetriesExhausted
from player_sessions.client.retry import RetryNotice, RetryPolicy
from player_sessions.datagen._io import CountingReader, Progress, format_duration, open_input
from player_sessions.domain.clock import try_parse_instant

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "LoadOptions",
    "LoadSummary",
    "LoadUsageError",
    "RejectedEvent",
    "format_rfc3339",
    "run_load",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_INTERRUPTED: Final = 130

_CONTENT_TYPE: Final = "application/x-ndjson"
_QUEUE_BATCHES: Final = 2


class _Stopped(Exception):
    """A stop was requested while a batch waited to be tried again."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LoadUsageError(ValueError):
    """The options cannot work (missing file, rebase on stdin without an anchor, ...)."""


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How to load; ``transport``, ``stdin``, ``clock``, ``stop`` and ``stderr`` are for tests."""

    input: str | os.PathLike[str]
    url: str = "http://127.0.0.1:8000"
    batch_size: int = 1000
    concurrency: int = 8
    rebase_to_now: bool = False
    # Shift so that this instant (rather than the newest ts in the file) becomes now. Needed for
    # stdin, and for generated files: their deliberately-future invalid events would otherwise be
    # the newest and turn into "now".
    rebase_anchor: datetime | None = None
    give_up_after: float = 300.0
    api_key: str | None = None
    timeout: float = 60.0
    progress: bool = True
    quiet: bool = False
    report_limit: int = 10
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    clock: Callable[[], datetime] = _utcnow
    transport: httpx.AsyncBaseTransport | None = None
    stdin: IO[bytes] | None = None
    stderr: TextIO | None = None
    stop: threading.Event | None = None
    handle_sigint: bool = True

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise LoadUsageError("batch size must be at least 1")
        if self.concurrency < 1:
            raise LoadUsageError("concurrency must be at least 1")
        if not self.give_up_after > 0:
            raise LoadUsageError("give-up-after must be greater than 0")
        if not self.timeout > 0:
            raise LoadUsageError("timeout must be greater than 0")

    @property
    def reads_stdin(self) -> bool:
        return os.fspath(self.input) == "-"


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    """An event the service rejected: its 1-based line in the input and the service's reason."""

    line: int
    field: str | None
    error: str


@dataclass(slots=True)
class LoadSummary:
    """Totals of one load. ``sent`` counts events in acknowledged batches: stored + expired + rejected."""

    lines: int = 0
    sent: int = 0
    stored: int = 0
    expired: int = 0
    rejected: int = 0
    not_json: int = 0
    blank: int = 0
    retries: int = 0
    batches: int = 0
    first_rejected: list[RejectedEvent] = field(default_factory=list)
    not_json_lines: list[int] = field(default_factory=list)
    acknowledged_through_line: int = 0
    duration_seconds: float = 0.0
    rebase_offset_seconds: float | None = None
    interrupted: bool = False
    gave_up: bool = False
    error: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.interrupted or self.gave_up or self.error)

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_OK if self.complete else EXIT_FAILED

    @property
    def events_per_second(self) -> float:
        return self.sent / self.duration_seconds if self.duration_seconds > 0 else 0.0

    def format(self) -> str:
        out = [
            f"load: {self.sent:,} events in {format_duration(self.duration_seconds)} "
            f"({self.events_per_second:,.0f} events/s): stored {self.stored:,}, expired {self.expired:,}, "
            f"rejected {self.rejected:,}; {self.batches:,} batches, {self.retries:,} retries, "
            f"{self.lines:,} lines read"
        ]
        if self.rebase_offset_seconds is not None:
            out.append(f"  timestamps shifted by {timedelta(seconds=self.rebase_offset_seconds)}")
        if self.not_json:
            shown = ", ".join(f"{n:,}" for n in self.not_json_lines)
            more = ", ..." if self.not_json > len(self.not_json_lines) else ""
            out.append(f"  not JSON, not sent: {self.not_json:,} lines: {shown}{more}")
        if self.blank:
            out.append(f"  blank lines skipped: {self.blank:,}")
        if self.first_rejected:
            out.append(f"  first {len(self.first_rejected)} rejected events:")
            out.extend(f"    line {r.line:,}: {r.error}" for r in self.first_rejected)
        out.extend(f"  warning: {w}" for w in self.warnings)
        if self.error:
            out.append(f"  error: {self.error}")
        if not self.complete:
            state = "interrupted" if self.interrupted else "stopped"
            through = self.acknowledged_through_line
            out.append(
                f"  {state}: every line up to {through:,} was acknowledged; "
                f"resume with `tail -n +{through + 1}` on the decompressed input"
            )
        return "\n".join(out)


def format_rfc3339(value: datetime) -> str:
    """``2016-11-22T20:37:47Z`` (microseconds only when present), in UTC."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _event_ts(obj: object) -> datetime | None:
    if isinstance(obj, dict):
        ts = obj.get("ts")
        if isinstance(ts, str):
            return try_parse_instant(ts)
    return None


def _rebase_line(obj: object, line: bytes, shift: timedelta) -> bytes:
    """The line with its ts moved by ``shift``; unchanged when it has no parseable ts."""
    ts = _event_ts(obj)
    if ts is None or not isinstance(obj, dict):
        return line
    try:
        obj["ts"] = format_rfc3339(ts + shift)
    except OverflowError:
        return line
    return orjson.dumps(obj)


@dataclass(slots=True)
class _Batch:
    seq: int
    last_line: int  # the batch accounts for every input line after the previous batch up to this one
    # The request body, built as lines arrive: orjson hands each re-serialised line back in a 4 KiB
    # allocation, so keeping lines as objects would cost 4 KiB per event.
    body: bytes
    line_numbers: list[int]

    @property
    def size(self) -> int:
        return len(self.line_numbers)

    @property
    def span(self) -> str:
        return f"lines {self.line_numbers[0]:,}-{self.line_numbers[-1]:,}"


class _Reader:
    """Reads, checks and batches lines in a daemon thread; the event loop takes batches from ``queue``."""

    def __init__(
        self, stream: Iterable[bytes], batch_size: int, shift: timedelta | None, report_limit: int
    ) -> None:
        self.stream = stream
        self.batch_size = batch_size
        self.shift = shift
        self.report_limit = report_limit
        self.queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=_QUEUE_BATCHES)
        self.closing = threading.Event()
        self.lines = 0
        self.not_json = 0
        self.not_json_lines: list[int] = []
        self.blank = 0
        self.finished = False
        self.error: BaseException | None = None

    def run(self, notify: Callable[[], None]) -> None:
        try:
            for batch in self._batches():
                if not self._put(batch, notify):
                    return
        except BaseException as exc:  # reported by the loader as a read error
            self.error = exc
        else:
            self.finished = True
        self._put(None, notify)

    def _put(self, item: _Batch | None, notify: Callable[[], None]) -> bool:
        while not self.closing.is_set():
            try:
                self.queue.put(item, timeout=0.1)
            except queue.Full:
                continue
            notify()
            return True
        return False

    def _batches(self) -> Iterator[_Batch]:
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        shift = self.shift
        seq = 0
        body = bytearray()
        numbers: list[int] = []
        number = 0
        for number, raw in enumerate(self.stream, 1):
            if self.closing.is_set():
                return
            self.lines = number
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                self.blank += 1
                continue
            try:
                obj = loads(line)
            except decode_error:
                self.not_json += 1
                if len(self.not_json_lines) < self.report_limit:
                    self.not_json_lines.append(number)
                continue
            if shift is not None:
                line = _rebase_line(obj, line, shift)
            body += line
            body += b"\n"
            numbers.append(number)
            if len(numbers) >= self.batch_size:
                yield _Batch(seq, number, bytes(body), numbers)
                seq += 1
                body, numbers = bytearray(), []
        if numbers:
            yield _Batch(seq, number, bytes(body), numbers)


def _newest_ts(options: LoadOptions, progress: Progress) -> datetime | None:
    """First pass of ``--rebase-to-now``: the newest parseable ts in the file."""
    newest: datetime | None = None
    started = time.monotonic()
    with open_input(options.input) as (stream, counter, size):
        for number, raw in enumerate(stream, 1):
            try:
                ts = _event_ts(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
            if ts is not None and (newest is None or ts > newest):
                newest = ts
            if number & 0x3FFF == 0:
                progress.update(lambda: _scan_text(counter, size, started))
    return newest


def _scan_text(counter: CountingReader, size: int | None, started: float) -> str:
    pct = f" ({counter.bytes_read / size:.0%})" if size else ""
    return f"rebase: scanning for the newest ts{pct}, {format_duration(time.monotonic() - started)}"


class _Loader:
    def __init__(
        self, options: LoadOptions, summary: LoadSummary, progress: Progress, stop: threading.Event
    ) -> None:
        self.options = options
        self.summary = summary
        self.progress = progress
        self.stop = stop
        self.spans: dict[str, str] = {}  # request id -> the batch's lines, for retry messages
        self.failed = False
        self.sigints = 0
        self.tasks: set[asyncio.Task[None]] = set()
        self.acked: set[int] = set()
        self.last_lines: dict[int, int] = {}
        self.watermark = -1
        # (-line, error, field) of the rejected events with the smallest line numbers.
        self.rejected_heap: list[tuple[int, str, str | None]] = []
        self.started = time.monotonic()
        self.random = random.Random()

    # --- acknowledgement bookkeeping -----------------------------------------------------------

    def _acknowledge(self, batch: _Batch, result: IngestResult) -> None:
        s = self.summary
        s.sent += batch.size
        s.stored += result.stored
        s.expired += result.expired
        s.rejected += result.rejected
        s.batches += 1
        if result.received != batch.size and len(s.warnings) < self.options.report_limit:
            s.warnings.append(f"{batch.span}: sent {batch.size} events, server received {result.received}")
        for error in result.errors:
            if not 0 <= error.index < len(batch.line_numbers):
                continue
            item = (-batch.line_numbers[error.index], error.error, error.field)
            if len(self.rejected_heap) < self.options.report_limit:
                heapq.heappush(self.rejected_heap, item)
            elif item > self.rejected_heap[0]:
                heapq.heapreplace(self.rejected_heap, item)
        self.acked.add(batch.seq)
        while self.watermark + 1 in self.acked:
            self.watermark += 1
            self.acked.discard(self.watermark)
            s.acknowledged_through_line = self.last_lines.pop(self.watermark)

    def _fail(self, message: str) -> None:
        self.failed = True
        if self.summary.error is None:
            self.summary.error = message

    def _refused(self, batch: _Batch, exc: ApiError) -> None:
        status = exc.status
        if status == 413:
            hint = (
                f"the server refused {batch.size} events ({len(batch.body):,} bytes) in one request: "
                "lower --batch-size"
            )
        elif status == 415:
            hint = f"the server does not accept {_CONTENT_TYPE}"
        elif status in (401, 403):
            hint = "not authorised: check --api-key"
        elif status in (404, 405):
            hint = f"no POST {self.options.url.rstrip('/')}/events: check --url"
        elif 200 <= status < 300:
            hint = "unexpected answer"
        else:
            hint = "the request was refused; retrying cannot help"
        detail = exc.error.strip()
        said = f" (server said: {detail})" if detail else ""
        self._fail(f"HTTP {status} for {batch.span}: {hint}{said}")

    # --- sending: the client retries; these hooks report and stop it ----------------------------

    async def _sleep(self, seconds: float) -> None:
        """The client's wait between tries; raises _Stopped when a stop is requested meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            if self.stop.is_set():
                raise _Stopped
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.1))

    def _on_retry(self, notice: RetryNotice) -> None:
        self.summary.retries += 1
        if notice.retry == 1 or notice.retry % 5 == 0:
            span = self.spans.get(notice.request_id, "a batch")
            self.progress.message(
                f"load: {span}: {notice.failure}; retry {notice.retry} in {notice.delay:.1f}s"
            )

    async def _send(self, client: AsyncClient, batch: _Batch) -> None:
        request_id = uuid.uuid4().hex
        self.spans[request_id] = batch.span
        try:
            result = await client.send_ndjson(batch.body, request_id)
        except _Stopped:
            return
        except ApiError as exc:
            self._refused(batch, exc)
            return
        except RetriesExhausted as exc:
            self.summary.gave_up = True
            self._fail(
                f"gave up on {batch.span} after {format_duration(exc.failing_for)} of failures "
                f"({exc.attempts} attempts), last: {exc.last_failure}"
            )
            return
        finally:
            del self.spans[request_id]
        self._acknowledge(batch, result)

    # --- main loop -------------------------------------------------------------------------------

    async def _next_batch(self, reader: _Reader, ready: asyncio.Event) -> _Batch | None:
        while True:
            ready.clear()
            try:
                return reader.queue.get_nowait()
            except queue.Empty:
                pass
            if self.stop.is_set():
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ready.wait(), 0.25)

    def _on_sigint(self) -> None:
        self.sigints += 1
        if self.sigints == 1:
            self.stop.set()
            self.progress.message(
                f"load: interrupted; waiting for {len(self.tasks)} batches in flight "
                "(Ctrl-C again to abandon them)"
            )
        else:
            for task in self.tasks:
                task.cancel()

    def _progress_text(self, counter: CountingReader, size: int | None) -> str:
        s = self.summary
        elapsed = time.monotonic() - self.started
        text = (
            f"load: {s.sent:,} events acknowledged, {s.sent / max(elapsed, 1e-9):,.0f}/s, "
            f"stored {s.stored:,}, expired {s.expired:,}, rejected {s.rejected:,}"
        )
        if size:
            done = min(1.0, counter.bytes_read / size)
            text += f", {done:.1%}"
            if done > 0.005:
                text += f", ETA {format_duration(elapsed * (1 - done) / done)}"
        return text

    async def _tick(self, counter: CountingReader, size: int | None) -> None:
        while True:
            self.progress.update(lambda: self._progress_text(counter, size))
            await asyncio.sleep(0.25)

    async def run(
        self, stream: Iterable[bytes], counter: CountingReader, size: int | None, shift: timedelta | None
    ) -> _Reader:
        self.started = time.monotonic()  # the rate excludes the rebase scan
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()

        def notify() -> None:
            with contextlib.suppress(RuntimeError):  # the loop may already be closed
                loop.call_soon_threadsafe(ready.set)

        reader = _Reader(stream, self.options.batch_size, shift, self.options.report_limit)
        thread = threading.Thread(target=reader.run, args=(notify,), name="load-reader", daemon=True)
        sigint = False
        if self.options.handle_sigint:
            try:
                loop.add_signal_handler(signal.SIGINT, self._on_sigint)
                sigint = True
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread, or no signal support: Ctrl-C then raises KeyboardInterrupt
        options = self.options
        policy = RetryPolicy(
            attempts=None,
            give_up_after=options.give_up_after,
            backoff_initial=options.backoff_initial,
            backoff_max=options.backoff_max,
        )
        # Plain bodies, as the file's own bytes: a load mostly runs next to the service, where
        # compressing would cost CPU on both sides and save nothing.
        client = AsyncClient(
            options.url,
            options.api_key,
            timeout=options.timeout,
            retry=policy,
            compress=None,
            max_connections=options.concurrency,
            on_retry=self._on_retry,
            transport=options.transport,
            sleep=self._sleep,
            rng=self.random,
        )
        ticker = asyncio.create_task(self._tick(counter, size))
        slots = asyncio.Semaphore(self.options.concurrency)
        thread.start()
        try:
            async with client:
                while not (self.stop.is_set() or self.failed):
                    await slots.acquire()
                    stopping = self.stop.is_set() or self.failed
                    batch = None if stopping else await self._next_batch(reader, ready)
                    if batch is None:
                        slots.release()
                        break
                    self.last_lines[batch.seq] = batch.last_line
                    task = asyncio.create_task(self._send(client, batch))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    task.add_done_callback(lambda _: slots.release())
                reader.closing.set()
                if self.tasks:
                    results = await asyncio.gather(*self.tasks, return_exceptions=True)
                    for result in results:
                        if isinstance(result, Exception):
                            self._fail(f"sending a batch failed: {type(result).__name__}: {result}")
        finally:
            reader.closing.set()
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            if sigint:
                loop.remove_signal_handler(signal.SIGINT)
        return reader


def run_load(options: LoadOptions) -> LoadSummary:
    """Load ``options.input`` into the service; prints progress and the summary to stderr.

    Raises ``LoadUsageError`` for options that cannot work; every other failure is reported in the
    returned summary, whose ``exit_code`` is 0 when every batch was acknowledged (rejected events
    included), 1 when it gave up or the server refused a request, 130 when interrupted.
    """
    err = options.stderr if options.stderr is not None else sys.stderr
    progress = Progress(options.progress and not options.quiet, err, messages=not options.quiet)
    summary = LoadSummary()
    stop = options.stop if options.stop is not None else threading.Event()
    started = time.monotonic()
    if not options.reads_stdin and not os.path.isfile(options.input):
        raise LoadUsageError(f"no such file: {os.fspath(options.input)}")
    if options.reads_stdin and options.rebase_to_now and options.rebase_anchor is None:
        raise LoadUsageError(
            "--rebase-to-now needs two passes over the input, so it cannot read stdin; "
            "give --rebase-anchor (the newest ts) or load from a file"
        )
    loader = _Loader(options, summary, progress, stop)
    reader: _Reader | None = None
    try:
        shift: timedelta | None = None
        if options.rebase_to_now:
            anchor = options.rebase_anchor
            if anchor is None:
                anchor = _newest_ts(options, progress)
                if anchor is None:
                    raise LoadUsageError("--rebase-to-now: no event in the input has a readable ts")
            elif anchor.tzinfo is None:
                anchor = anchor.replace(tzinfo=UTC)
            # Whole seconds keep second-precision input at second precision.
            shift = options.clock().astimezone(UTC).replace(microsecond=0) - anchor
            summary.rebase_offset_seconds = shift.total_seconds()
        with open_input(options.input, options.stdin) as (stream, counter, size):
            reader = asyncio.run(loader.run(stream, counter, size, shift))
    except KeyboardInterrupt:
        stop.set()
    progress.finish()
    summary.duration_seconds = time.monotonic() - started
    if reader is not None:
        summary.lines = reader.lines
        summary.not_json = reader.not_json
        summary.not_json_lines = list(reader.not_json_lines)
        summary.blank = reader.blank
        if reader.error is not None:
            loader._fail(f"reading the input failed after line {reader.lines:,}: {reader.error}")
        all_acked = reader.finished and not loader.last_lines and not loader.failed
        if all_acked:
            summary.acknowledged_through_line = reader.lines
        summary.interrupted = stop.is_set() and not all_acked
    else:
        summary.interrupted = stop.is_set()
    summary.first_rejected = sorted(
        (RejectedEvent(-neg_line, field, error) for neg_line, error, field in loader.rejected_heap),
        key=lambda r: r.line,
    )
    if not options.quiet:
        err.write(summary.format() + "\n")
        err.flush()
    return summary
