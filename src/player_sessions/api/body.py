"""Reading a POST /events body within limits: bytes on the wire, bytes once decompressed, time (a body
that pauses or trickles in is refused with 408), and how many bodies one process holds at once
(`ingest_slot`: the memory bound, 503 + Retry-After when every slot stays busy). Decoding it within the
event limit: `event_pieces`."""

from __future__ import annotations

import asyncio
import math
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import ClientDisconnect

from player_sessions.api.errors import (
    BadRequest,
    Busy,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMedia,
)
from player_sessions.api.event_pieces import event_pieces

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset(
    {
        "application/x-ndjson",
        "application/ndjson",
        "application/jsonl",
        "application/x-jsonlines",
        "application/jsonlines",
    }
)


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind in NDJSON_TYPES:
        return kind
    raise UnsupportedMedia(
        "content-type",
        f'{kind or "missing"}: send application/json (an array or {{"events": [...]}}) '
        "or application/x-ndjson (one event per line)",
    )


class IngestGate:
    """Bounds what this process's POST /events requests hold at once: at most `slots` requests, whose
    bodies weigh at most `budget` bytes together.

    A 100,000-event body (~13 MB of JSON) costs ~200 MB once parsed and while it is written, so the
    bytes of the bodies in progress, not the number of connections, are what bound the process's
    memory; weighing each request by its size lets many small batches run side by side while only a
    couple of huge ones do. A request whose size is unknown before it is read (chunked, or compressed:
    weighed by what it may decompress to) weighs the most its body may be, up to the whole budget,
    until it is read; then only its size (`IngestLease.shrink_to`). Waiters are admitted in arrival
    order, so a large batch is not starved by a stream of small ones. A request not admitted within
    `wait_s` gets 503 + Retry-After before its body is read: nothing was stored and the retry is safe.
    Waiting requests hold no body (the socket's flow control stops the sender).
    """

    def __init__(self, slots: int, budget: int, wait_s: float) -> None:
        self.slots = slots
        self.budget = budget
        self.wait_s = wait_s
        self._requests = 0
        self._bytes = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    def weigh(self, content_length: str | None, encoding: str | None, max_decoded: int) -> int:
        """What a request weighs until its body is read: its declared length if it is plain, else the
        most it may decompress to; at least MIN_WEIGHT, at most the whole budget."""
        declared = (content_length or "").strip()
        identity = (encoding or "identity").strip().lower() == "identity"
        size = int(declared) if identity and declared.isascii() and declared.isdigit() else max_decoded
        return min(max(size, MIN_WEIGHT), self.budget)

    def _fits(self, weight: int) -> bool:
        return self._requests < self.slots and self._bytes + weight <= self.budget

    def _take(self, weight: int) -> None:
        self._requests += 1
        self._bytes += weight

    async def acquire(self, weight: int) -> None:
        if not self._waiters and self._fits(weight):
            self._take(weight)
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((weight, waiter))
        try:
            async with asyncio.timeout(self.wait_s):
                await waiter
        except BaseException as exc:
            # Timed out or cancelled (the client went away): give back a grant that raced in, or
            # leave the queue, and let whoever is next in.
            if waiter.done() and not waiter.cancelled():
                self.release(weight)
            else:
                waiter.cancel()
                self._waiters = deque(w for w in self._waiters if w[1] is not waiter)
                self._admit()
            if isinstance(exc, TimeoutError):
                raise Busy(
                    "request",
                    f"this process's ingest stayed at its limit ({self.slots} requests, "
                    f"{self.budget} body bytes) for {self.wait_s:g}s; nothing was stored, "
                    "retry later",
                ) from None
            raise

    def shrink(self, extra: int) -> None:
        self._bytes -= extra
        self._admit()

    def release(self, weight: int) -> None:
        self._requests -= 1
        self._bytes -= weight
        self._admit()

    def _admit(self) -> None:
        while self._waiters:
            weight, waiter = self._waiters[0]
            if waiter.done():
                self._waiters.popleft()
                continue
            if not self._fits(weight):
                return
            self._waiters.popleft()
            self._take(weight)
            waiter.set_result(None)


MIN_WEIGHT = 64 * 1024  # a small batch still costs its request's working set
INFLATE_STEP = 1024 * 1024


class IngestLease:
    """One request's share of the gate: its weight, grown to cover its body as the body grows."""

    def __init__(self, gate: IngestGate, weight: int) -> None:
        self.gate = gate
        self.weight = weight

    def shrink_to(self, size: int) -> None:
        """The body is read and weighs `size`: give back the rest of what it was weighed at."""
        target = min(max(size, MIN_WEIGHT), self.weight)
        self.gate.shrink(self.weight - target)
        self.weight = target


async def ingest_slot(request: Request) -> AsyncIterator[IngestLease]:
    """FastAPI dependency: holds this request's share of the process's ingest limits while it runs."""
    state = request.app.state
    gate: IngestGate | None = getattr(state, "ingest_gate", None)
    if gate is None:
        settings = state.runtime.settings
        gate = state.ingest_gate = IngestGate(
            settings.max_ingest_requests, settings.ingest_budget_bytes, settings.queue_timeout
        )
    settings = state.runtime.settings
    lease = IngestLease(
        gate,
        gate.weigh(
            request.headers.get("content-length"),
            request.headers.get("content-encoding"),
            min(settings.max_decoded_bytes, settings.max_body_bytes),
        ),
    )
    await gate.acquire(lease.weight)
    try:
        yield lease
    finally:
        gate.release(lease.weight)


IngestSlot = Annotated[IngestLease, Depends(ingest_slot)]


async def read_limited(
    chunks: AsyncIterator[bytes],
    content_length: str | None,
    encoding: str | None,
    max_bytes: int,
    *,
    max_decoded: int | None = None,
    body_timeout: float | None = None,
    min_rate: float = 0.0,
) -> bytearray:
    """The body, refused with 413 as soon as it passes max_bytes on the wire or `max_decoded` (default
    max_bytes) once decompressed.

    With `body_timeout`, 408 when the next chunk takes longer than that, or when the body falls below
    an average of `min_rate` bytes/s after a grace of `body_timeout` seconds (n bytes may take
    body_timeout + n / min_rate seconds): a client that trickles its body cannot hold a slot forever.
    """
    enc = (encoding or "identity").strip().lower()
    # Once decompressed, a body must pass both limits; a plain body is parsed as it comes.
    limit = min(max_decoded or max_bytes, max_bytes)
    wire_limit = limit if enc == "identity" else max_bytes
    declared = (content_length or "").strip()
    if declared.isascii() and declared.isdigit() and int(declared) > wire_limit:
        raise PayloadTooLarge("body", f"larger than {wire_limit} bytes")
    if enc not in ("identity", "gzip", "deflate"):
        raise UnsupportedMedia("content-encoding", f"{enc}: only gzip and deflate are accepted")
    inflater = (
        zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS)
        if enc != "identity"
        else None
    )
    once = "" if inflater is None else " once decompressed"
    body = bytearray()
    size = 0
    raw_size = 0
    iterator = aiter(chunks)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        while True:
            try:
                if body_timeout is None:
                    chunk = await anext(iterator)
                else:
                    deadline = started + body_timeout + (raw_size / min_rate if min_rate > 0 else math.inf)
                    wait = min(body_timeout, deadline - loop.time())
                    if wait <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(wait):
                        chunk = await anext(iterator)
            except StopAsyncIteration:
                break
            except TimeoutError:
                rate = (
                    f", at least {min_rate:g} bytes/s after the first {body_timeout:g}s"
                    if min_rate > 0
                    else ""
                )
                raise RequestTimeout(
                    "body",
                    f"arrived too slowly ({raw_size} bytes in {loop.time() - started:.1f}s): "
                    f"no pause over {body_timeout:g}s{rate}",
                ) from None
            except ClientDisconnect:
                raise BadRequest("body", "the client disconnected before sending the whole body") from None
            raw_size += len(chunk)
            if raw_size > max_bytes:
                raise PayloadTooLarge("body", f"larger than {max_bytes} bytes")
            pending = chunk
            while pending:
                if inflater is None:
                    data, pending = pending, b""
                else:
                    # Inflate no more than the room left (a bomb stops at limit + 1), a step at a time:
                    # 64 KiB of gzip can inflate to 64 MiB, tens of milliseconds of other requests'.
                    data = inflater.decompress(pending, min(limit - size + 1, INFLATE_STEP))
                    pending = inflater.unconsumed_tail
                size += len(data)
                if size > limit:
                    raise PayloadTooLarge("body", f"larger than {limit} bytes{once}")
                body += data
                if pending:
                    await asyncio.sleep(0)
        if inflater is not None:
            tail = inflater.flush()
            size += len(tail)
            if size > limit:
                raise PayloadTooLarge("body", f"larger than {limit} bytes{once}")
            if not inflater.eof:
                raise BadRequest("body", f"truncated {enc} data")
            body += tail
    except zlib.error as exc:
        raise BadRequest("body", f"not valid {enc} data") from exc
    return body


def decode_events(body: bytes | bytearray, kind: str, max_events: int) -> list[object]:
    """The whole body's events at once: for tests and small bodies (the route takes them in pieces)."""
    return [event for piece in event_pieces(body, kind in NDJSON_TYPES, max_events) for event in piece]
