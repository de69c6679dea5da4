"""HTTP load from separate client processes, so the load generator never shares the service's loop.

Requests are pre-serialised HTTP/1.1 messages (bytes): a client thread only writes them to a
keep-alive socket and reads the answer's head and `content-length` body, which costs tens of
microseconds per request — cheap next to the service. `concurrency` threads in total are spread over
`processes` spawned processes (each thread = one connection = one request in flight: a closed loop).

Every process records per-request latency and completion time (time.monotonic is system-wide on
Linux, so the parent can combine them) and sends them back at the end.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import multiprocessing as mp
import os
import queue
import resource
import signal
import socket
import threading
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

__all__ = [
    "Connection",
    "HttpError",
    "LoadOutcome",
    "LoadRun",
    "get_request",
    "post_request",
    "run_load",
]

CONNECT_TIMEOUT_S = 10.0


class HttpError(Exception):
    """The server closed the connection or sent something that is not an HTTP/1.1 answer."""


def post_request(
    host: str, port: int, path: str, body: bytes, content_type: str = "application/json"
) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def get_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii")


class Connection:
    """One keep-alive HTTP/1.1 connection; reconnects once if the server closed it while idle."""

    def __init__(self, host: str, port: int, timeout: float) -> None:
        self._address = (host, port)
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self._address, timeout=CONNECT_TIMEOUT_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._timeout)
        self._sock = sock
        self._buffer = b""
        return sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """(status, body). An idle keep-alive connection the server closed is retried once, anew."""
        reused = self._sock is not None
        sock = self._sock or self._connect()
        try:
            sock.sendall(raw)
            return self._read(sock)
        except (_ClosedEarly, ConnectionResetError, BrokenPipeError):
            self.close()
            if not reused:
                raise
            sock = self._connect()
            try:
                sock.sendall(raw)
                return self._read(sock)
            except (OSError, HttpError):
                self.close()
                raise
        except (OSError, HttpError):
            self.close()
            raise

    def _read(self, sock: socket.socket) -> tuple[int, bytes]:
        buffer = self._buffer
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise (
                    _ClosedEarly("connection closed before the answer")
                    if not buffer
                    else HttpError("connection closed in the middle of the answer's head")
                )
            buffer += chunk
        head = buffer[:end]
        rest = buffer[end + 4 :]
        if not head.startswith(b"HTTP/1."):
            raise HttpError(f"not an HTTP answer: {head[:40]!r}")
        status = int(head[9:12])
        length = -1
        close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            lowered = name.strip().lower()
            if lowered == b"content-length":
                length = int(value.strip())
            elif lowered == b"connection" and value.strip().lower() == b"close":
                close = True
            elif lowered == b"transfer-encoding":
                raise HttpError("chunked answers are not supported by this client")
        if length < 0:
            raise HttpError("answer without content-length")
        while len(rest) < length:
            chunk = sock.recv(max(65536, length - len(rest)))
            if not chunk:
                raise HttpError("connection closed in the middle of the body")
            rest += chunk
        body, self._buffer = rest[:length], rest[length:]
        if close:
            self.close()
        return status, body


class _ClosedEarly(ConnectionError):
    pass


@dataclass
class LoadOutcome:
    """What a load run measured. Latencies of successful (2xx) requests only; errors by kind."""

    latencies: array[float] = field(default_factory=lambda: array("d"))
    started: float = math.inf  # monotonic time the first client began
    finished: float = 0.0  # monotonic time the last request completed
    requests: int = 0  # 2xx answers
    weight: int = 0  # sum of the weights (events) of 2xx answers
    errors: dict[str, int] = field(default_factory=dict)
    wrapped: bool = False  # the request list was used more than once
    client_cpu_seconds: float = 0.0
    first_error: str = ""

    @property
    def seconds(self) -> float:
        return max(0.0, self.finished - self.started) if self.finished else 0.0

    def merge(self, other: LoadOutcome) -> None:
        self.latencies.extend(other.latencies)
        self.started = min(self.started, other.started)
        self.finished = max(self.finished, other.finished)
        self.requests += other.requests
        self.weight += other.weight
        for key, n in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + n
        self.wrapped = self.wrapped or other.wrapped
        self.client_cpu_seconds += other.client_cpu_seconds
        self.first_error = self.first_error or other.first_error


@dataclass(frozen=True)
class _Plan:
    host: str
    port: int
    threads: int
    duration: float | None  # None: until stopped (or max_requests)
    max_requests: int | None
    pace_per_second: float | None  # per process; None = as fast as the answers come
    timeout: float


def _client_main(
    plan: _Plan,
    requests: Sequence[bytes],
    weights: Sequence[int],
    go: MpEvent,
    stop: MpEvent,
    ready: Any,
    results: Any,
) -> None:
    """A client process: `plan.threads` closed-loop connections over its share of the requests."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    parent = os.getppid()
    outcome = LoadOutcome()
    lock = threading.Lock()
    counter = itertools.count()
    total = len(requests)
    ready.put(1)
    go.wait()
    t0 = time.monotonic()
    outcome.started = t0
    deadline = t0 + plan.duration if plan.duration is not None else math.inf
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)

    def thread_main() -> None:
        local = LoadOutcome(started=t0)
        conn = Connection(plan.host, plan.port, plan.timeout)
        latencies = local.latencies
        perf = time.perf_counter
        try:
            while True:
                if time.monotonic() >= deadline or stop.is_set() or os.getppid() != parent:
                    break
                i = next(counter)
                if plan.max_requests is not None and i >= plan.max_requests:
                    break
                if plan.pace_per_second:
                    due = t0 + i / plan.pace_per_second
                    pause = due - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)
                if i >= total:
                    local.wrapped = True
                index = i % total
                started = perf()
                try:
                    status, body = conn.request(requests[index])
                except (OSError, HttpError) as exc:
                    key = type(exc).__name__
                    local.errors[key] = local.errors.get(key, 0) + 1
                    local.first_error = local.first_error or f"{key}: {exc}"
                    conn.close()
                    time.sleep(0.05)
                    continue
                elapsed = perf() - started
                if 200 <= status < 300:
                    latencies.append(elapsed)
                    local.requests += 1
                    local.weight += weights[index]
                else:
                    key = f"HTTP {status}"
                    local.errors[key] = local.errors.get(key, 0) + 1
                    local.first_error = local.first_error or f"{key}: {body[:200]!r}"
                    if status in (429, 503):  # shed load: do not hammer it (retrying is the client's job)
                        time.sleep(0.2)
                local.finished = time.monotonic()
        finally:
            conn.close()
            with lock:
                outcome.merge(local)

    threads = [threading.Thread(target=thread_main, daemon=True) for _ in range(plan.threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    outcome.client_cpu_seconds = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    results.put(outcome)


class LoadRun:
    """Client processes sending `requests` (cycled) until `duration` passes, `stop()` or max_requests.

    Usage: `run = LoadRun(...); run.start(); ...; outcome = run.join()`. Always `join()` or
    `terminate()` (a context manager does the latter on error).
    """

    def __init__(
        self,
        host: str,
        port: int,
        requests: Sequence[bytes],
        weights: Sequence[int] | None = None,
        *,
        concurrency: int = 1,
        processes: int = 1,
        duration: float | None = None,
        max_requests: int | None = None,
        pace_per_second: float | None = None,
        timeout: float = 120.0,
    ) -> None:
        if not requests:
            raise ValueError("no requests to send")
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        weights = list(weights) if weights is not None else [1] * len(requests)
        processes = max(1, min(processes, concurrency))
        ctx = mp.get_context("spawn")
        self._go = ctx.Event()
        self._stop = ctx.Event()
        self._ready: Any = ctx.Queue()
        self._results: Any = ctx.Queue()
        self._procs: list[Any] = []
        per_process_max = None if max_requests is None else math.ceil(max_requests / processes)
        pace = None if pace_per_second is None else pace_per_second / processes
        for p in range(processes):
            threads = concurrency // processes + (1 if p < concurrency % processes else 0)
            plan = _Plan(host, port, threads, duration, per_process_max, pace, timeout)
            # Each process gets a distinct share of the requests (a stride), so nothing is sent twice
            # before the list wraps.
            share = list(requests[p::processes]) or list(requests)
            share_weights = list(weights[p::processes]) or list(weights)
            proc = ctx.Process(
                target=_client_main,
                name=f"bench-client-{p}",
                daemon=True,
                args=(plan, share, share_weights, self._go, self._stop, self._ready, self._results),
            )
            self._procs.append(proc)

    def start(self, ready_timeout: float = 60.0) -> None:
        for proc in self._procs:
            proc.start()
        deadline = time.monotonic() + ready_timeout
        for _ in self._procs:
            try:
                self._ready.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                self.terminate()
                raise RuntimeError("client processes did not start in time") from None
        self._go.set()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> LoadOutcome:
        outcome = LoadOutcome()
        deadline = math.inf if timeout is None else time.monotonic() + timeout
        try:
            for _ in self._procs:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError("client processes did not finish in time")
                # Poll so Ctrl-C reaches us promptly.
                while True:
                    try:
                        outcome.merge(self._results.get(timeout=min(1.0, max(0.01, remaining))))
                        break
                    except queue.Empty:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError("client processes did not finish in time") from None
                        if not any(p.is_alive() for p in self._procs) and self._results.empty():
                            raise RuntimeError("a client process died without reporting") from None
        finally:
            for proc in self._procs:
                proc.join(timeout=5)
            self.terminate()
        return outcome

    def terminate(self) -> None:
        self._stop.set()
        self._go.set()
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)

    def __enter__(self) -> LoadRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.terminate()


def run_load(
    host: str, port: int, requests: Sequence[bytes], weights: Sequence[int] | None = None, **kwargs: Any
) -> LoadOutcome:
    """Start, wait for the end (duration or max_requests), return what was measured."""
    with LoadRun(host, port, requests, weights, **kwargs) as run:
        run.start()
        return run.join()
