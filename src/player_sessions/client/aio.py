"""``AsyncClient``: the asyncio client, and its ``AsyncBatcher``. Same rules as ``Client``."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import httpx

from player_sessions.client import wire
from player_sessions.client.errors import ClientError, QueueFull, RetriesExhausted
from player_sessions.client.models import ErasedPlayer, IngestResult, Session, Start, StartCounts
from player_sessions.client.retry import Attempts, RetryNotice, RetryPolicy, parse_retry_after
from player_sessions.client.wire import EventLike


class AsyncClient:
    """The asyncio twin of ``Client`` (``async with AsyncClient(url) as client``). ``max_connections``
    bounds the requests in flight at once; ``sleep`` waits between tries (a test, or a loader that
    stops on Ctrl-C, passes its own)."""

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
        max_connections: int = 16,
        on_retry: Callable[[RetryNotice], None] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
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
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=wire.base_headers(api_key),
            timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
            transport=transport,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        request_id: str | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        request_id = request_id or wire.new_request_id()
        headers = {**(headers or {}), "X-Request-ID": request_id}
        attempts = Attempts(self.retry, self._rng)
        while True:
            status: int | None = None
            retry_after: float | None = None
            try:
                response = await self._http.request(
                    method, path, content=content, headers=headers, params=params
                )
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
            await self._sleep(delay)

    async def send(self, events: Iterable[EventLike], request_id: str | None = None) -> IngestResult:
        return await self.send_lines([wire.encode_event(e) for e in events], request_id)

    async def send_lines(self, lines: list[bytes], request_id: str | None = None) -> IngestResult:
        total = IngestResult()
        ranges = list(wire.split(lines, self.max_request_events, self.max_request_bytes))
        for n, (start, stop) in enumerate(ranges):
            rid = wire.part_id(request_id, n, len(ranges))
            try:
                part = await self.send_ndjson(wire.ndjson(lines[start:stop]), rid)
            except ClientError as exc:
                exc.partial, exc.acknowledged = total, start
                raise
            total = total.merged(part, start)
        return total

    async def send_ndjson(self, body: bytes, request_id: str | None = None) -> IngestResult:
        request_id = request_id or wire.new_request_id()
        content, headers = wire.events_request(body, request_id, self.compress)
        response = await self._request(
            "POST", "/events", request_id=request_id, content=content, headers=headers
        )
        return wire.parse_with(response, IngestResult.from_json)

    def batcher(
        self,
        max_events: int = 1000,
        max_seconds: float = 1.0,
        max_bytes: int = 1 << 20,
        queue_size: int = 10_000,
        block: bool = True,
        on_error: Callable[[ClientError, int, int], None] | None = None,
    ) -> AsyncBatcher:
        return AsyncBatcher(self, max_events, max_seconds, max_bytes, queue_size, block, on_error)

    async def sessions(self, player_id: str, limit: int = 20) -> list[Session]:
        response = await self._request(
            "GET", wire.player_path(player_id, "/sessions"), params={"limit": limit}
        )
        return wire.parse_with(response, lambda body: [Session.from_json(s) for s in body["sessions"]])

    async def session_starts(self, hours: float) -> StartCounts:
        response = await self._request("GET", "/session-starts", params={"hours": hours})
        return wire.parse_with(response, StartCounts.from_json)

    async def country_starts(
        self, country: str, hours: float | None = None, page_size: int = 100
    ) -> AsyncIterator[Start]:
        params: dict[str, Any] = {"limit": page_size}
        if hours is not None:
            params["hours"] = hours
        while True:
            response = await self._request("GET", f"/session-starts/{country}", params=params)
            starts, cursor = wire.parse_with(
                response, lambda b: ([Start.from_json(s) for s in b["starts"]], b.get("next"))
            )
            for start in starts:
                yield start
            if not cursor:
                return
            params["cursor"] = cursor

    async def erase(self, player_id: str) -> ErasedPlayer:
        response = await self._request("DELETE", wire.player_path(player_id))
        return wire.parse_with(response, ErasedPlayer.from_json)


class AsyncBatcher:
    """The asyncio twin of ``Batcher``: ``await add(event)``, ``async with`` / ``await aclose()``.
    Start it inside a running event loop (its sender is a task)."""

    def __init__(
        self,
        client: AsyncClient,
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
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=queue_size)
        self._closed = False
        self._sent = 0
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def add(self, event: EventLike) -> None:
        if self._closed:
            raise RuntimeError("the batcher is closed")
        line = wire.encode_event(event)
        if self.block:
            await self._queue.put(line)
            return
        try:
            self._queue.put_nowait(line)
        except asyncio.QueueFull:
            raise QueueFull(f"{self._queue.maxsize} events are waiting to be sent") from None

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._queue.put(None)
            await self._task
        if self.failures and self.on_error is None:
            raise self.failures[0]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending: list[bytes] = []
        size = 0
        deadline = 0.0
        while True:
            line: bytes | None = b""  # b"": max_seconds passed, send what is pending
            if pending:
                with contextlib.suppress(TimeoutError):
                    line = await asyncio.wait_for(self._queue.get(), max(0.0, deadline - loop.time()))
            else:
                line = await self._queue.get()
            if line is None or not line:
                if pending:
                    await self._send(pending)
                    pending, size = [], 0
                if line is None:
                    return
                continue
            if pending and size + len(line) + 1 > self.max_bytes:
                await self._send(pending)
                pending, size = [], 0
            if not pending:
                deadline = loop.time() + self.max_seconds
            pending.append(line)
            size += len(line) + 1
            if len(pending) >= self.max_events or size >= self.max_bytes:
                await self._send(pending)
                pending, size = [], 0

    async def _send(self, lines: list[bytes]) -> None:
        first, self._sent = self._sent, self._sent + len(lines)
        try:
            part = await self.client.send_lines(lines)
        except ClientError as exc:
            if self.on_error is not None:
                self.on_error(exc, first, len(lines))
            else:
                self.failures.append(exc)
            return
        self.result = self.result.merged(part, first)
