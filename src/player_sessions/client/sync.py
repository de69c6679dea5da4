"""``Client``: the blocking client, and its background ``Batcher``."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from player_sessions.client import wire
from player_sessions.client.errors import ClientError, QueueFull, RetriesExhausted
from player_sessions.client.models import ErasedPlayer, IngestResult, Session, Start, StartCounts
from player_sessions.client.retry import Attempts, RetryNotice, RetryPolicy, parse_retry_after
from player_sessions.client.wire import EventLike


class Client:
    """A blocking client of one service; use it as a context manager (it holds a connection pool).

    ``api_key`` is sent as ``Authorization: Bearer``; ``compress`` is a gzip level for POST bodies
    (None: plain); ``max_request_events`` / ``max_request_bytes`` are where ``send`` cuts a sequence
    into several requests (the service's limits by default); ``on_retry`` hears of every retry.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        compress: int | None = 1,
        max_request_events: int = wire.SERVER_MAX_EVENTS,
        max_request_bytes: int = wire.SERVER_MAX_BYTES,
        on_retry: Callable[[RetryNotice], None] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_request_events < 1 or max_request_bytes < 1:
            raise ValueError("max_request_events and max_request_bytes must be at least 1")
        self.retry = retry or RetryPolicy()
        self.compress = compress
        self.max_request_events = max_request_events
        self.max_request_bytes = max_request_bytes
        self.on_retry = on_retry
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=wire.base_headers(api_key),
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- the one request loop -------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """A 2xx answer, trying again on retryable failures with the same X-Request-ID each time."""
        request_id = request_id or wire.new_request_id()
        headers = {**(headers or {}), "X-Request-ID": request_id}
        attempts = Attempts(self.retry, self._rng)
        while True:
            status: int | None = None
            retry_after: float | None = None
            try:
                response = self._http.request(method, path, content=content, headers=headers, params=params)
            except httpx.TransportError as exc:
                failure = wire.transport_failure(exc)
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return response
                if not wire.is_retryable(status):
                    raise wire.refusal(response)
                failure = f"HTTP {status}"
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            delay = attempts.next_delay(retry_after)
            if delay is None:
                raise RetriesExhausted(attempts.tries, attempts.failing_for, failure, status, request_id)
            if self.on_retry is not None:
                self.on_retry(RetryNotice(request_id, attempts.tries, failure, delay))
            self._sleep(delay)

    # --- ingest ---------------------------------------------------------------------------------

    def send(self, events: Iterable[EventLike], request_id: str | None = None) -> IngestResult:
        """Send events; more than one request when they exceed the limits, merged into one result whose
        ``errors[].index`` count from 0 in ``events``. On failure the exception carries ``partial`` and
        ``acknowledged`` (events before that index were acknowledged)."""
        return self.send_lines([wire.encode_event(e) for e in events], request_id)

    def send_lines(self, lines: list[bytes], request_id: str | None = None) -> IngestResult:
        """Like ``send`` for events already encoded as JSON (one per item, no newline)."""
        total = IngestResult()
        ranges = list(wire.split(lines, self.max_request_events, self.max_request_bytes))
        for n, (start, stop) in enumerate(ranges):
            rid = wire.part_id(request_id, n, len(ranges))
            try:
                part = self.send_ndjson(wire.ndjson(lines[start:stop]), rid)
            except ClientError as exc:
                exc.partial, exc.acknowledged = total, start
                raise
            total = total.merged(part, start)
        return total

    def send_ndjson(self, body: bytes, request_id: str | None = None) -> IngestResult:
        """One POST /events of an NDJSON body as it is (not split): the caller keeps it within the limits."""
        request_id = request_id or wire.new_request_id()
        content, headers = wire.events_request(body, request_id, self.compress)
        response = self._request("POST", "/events", request_id=request_id, content=content, headers=headers)
        return wire.parse_with(response, IngestResult.from_json)

    def batcher(
        self,
        max_events: int = 1000,
        max_seconds: float = 1.0,
        max_bytes: int = 1 << 20,
        queue_size: int = 10_000,
        block: bool = True,
        on_error: Callable[[ClientError, int, int], None] | None = None,
    ) -> Batcher:
        """A background sender for a stream of events; see ``Batcher``."""
        return Batcher(self, max_events, max_seconds, max_bytes, queue_size, block, on_error)

    # --- reads and erase ------------------------------------------------------------------------

    def sessions(self, player_id: str, limit: int = 20) -> list[Session]:
        """The player's last ``limit`` complete sessions, newest start first."""
        response = self._request("GET", wire.player_path(player_id, "/sessions"), params={"limit": limit})
        return wire.parse_with(response, lambda body: [Session.from_json(s) for s in body["sessions"]])

    def session_starts(self, hours: float) -> StartCounts:
        """Session starts per country in the last ``hours`` hours."""
        response = self._request("GET", "/session-starts", params={"hours": hours})
        return wire.parse_with(response, StartCounts.from_json)

    def country_starts(
        self, country: str, hours: float | None = None, page_size: int = 100
    ) -> Iterator[Start]:
        """Every start in ``country`` in the window (default: the whole retention), newest first,
        fetched a page at a time by following ``next``."""
        params: dict[str, Any] = {"limit": page_size}
        if hours is not None:
            params["hours"] = hours
        while True:
            response = self._request("GET", f"/session-starts/{country}", params=params)
            starts, cursor = wire.parse_with(
                response, lambda b: ([Start.from_json(s) for s in b["starts"]], b.get("next"))
            )
            yield from starts
            if not cursor:
                return
            params["cursor"] = cursor

    def erase(self, player_id: str) -> ErasedPlayer:
        """Remove the player's events and sessions everywhere (idempotent)."""
        response = self._request("DELETE", wire.player_path(player_id))
        return wire.parse_with(response, ErasedPlayer.from_json)


class Batcher:
    """Collects events from ``add`` and sends them from a background thread in batches of at most
    ``max_events`` events or ``max_bytes`` bytes, or whatever arrived within ``max_seconds`` of the
    first event of a batch. ``close`` (or leaving the ``with`` block) sends the rest and waits.

    The queue holds at most ``queue_size`` events: when it is full ``add`` waits (``block=True``) or
    raises ``QueueFull``. A batch that fails after the client's retries goes to
    ``on_error(error, first_index, count)``; without ``on_error`` failures are kept in ``failures``
    and ``close`` raises the first. ``result`` sums the acknowledged batches, indices counting ``add``
    calls from 0.
    """

    def __init__(
        self,
        client: Client,
        max_events: int,
        max_seconds: float,
        max_bytes: int,
        queue_size: int,
        block: bool,
        on_error: Callable[[ClientError, int, int], None] | None,
    ) -> None:
        if max_events < 1 or max_bytes < 1 or queue_size < 1 or not max_seconds > 0:
            raise ValueError("max_events, max_bytes and queue_size must be >= 1, max_seconds > 0")
        self.client = client
        self.max_events = min(max_events, client.max_request_events)
        self.max_seconds = max_seconds
        self.max_bytes = min(max_bytes, client.max_request_bytes)
        self.block = block
        self.on_error = on_error
        self.result = IngestResult()
        self.failures: list[ClientError] = []
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=queue_size)
        self._closed = False
        self._sent = 0
        self._thread = threading.Thread(target=self._run, name="player-sessions-batcher", daemon=True)
        self._thread.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def add(self, event: EventLike, timeout: float | None = None) -> None:
        """Queue one event; waits for room (at most ``timeout`` s) or raises ``QueueFull``."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        line = wire.encode_event(event)
        try:
            self._queue.put(line, block=self.block, timeout=timeout if self.block else None)
        except queue.Full:
            raise QueueFull(f"{self._queue.maxsize} events are waiting to be sent") from None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
        if self.failures and self.on_error is None:
            raise self.failures[0]

    def _run(self) -> None:
        pending: list[bytes] = []
        size = 0
        deadline = 0.0
        while True:
            timeout = None if not pending else max(0.0, deadline - time.monotonic())
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                line = b""  # max_seconds passed: send what is pending
            if line is None or not line:
                if pending:
                    self._send(pending)
                    pending, size = [], 0
                if line is None:
                    return
                continue
            if pending and size + len(line) + 1 > self.max_bytes:
                self._send(pending)
                pending, size = [], 0
            if not pending:
                deadline = time.monotonic() + self.max_seconds
            pending.append(line)
            size += len(line) + 1
            if len(pending) >= self.max_events or size >= self.max_bytes:
                self._send(pending)
                pending, size = [], 0

    def _send(self, lines: list[bytes]) -> None:
        first, self._sent = self._sent, self._sent + len(lines)
        try:
            part = self.client.send_lines(lines)
        except ClientError as exc:
            if self.on_error is not None:
                self.on_error(exc, first, len(lines))
            else:
                self.failures.append(exc)
            return
        self.result = self.result.merged(part, first)
