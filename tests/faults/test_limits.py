"""Request limits over real sockets: a body over the byte limit is refused while it is still being sent
(and never held whole), a body that pauses or trickles gets 408, gzip/deflate bodies are accepted and
a decompression bomb is refused by its decompressed size, without the service's memory following.
"""

from __future__ import annotations

import gzip
import select
import socket
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.faults.harness import FULL, fault_service, memory_kb, say
from tests.support.clock import NOW
from tests.support.factories import session_pair
from tests.support.service import ServiceProcess

MAX_BODY = 64 * 1024 * 1024  # the default --max-body-bytes
BODY_TIMEOUT_S = 2.0
MIN_RATE = 1000  # bytes/s after BODY_TIMEOUT_S
HEADER_TIMEOUT_S = 10.0 if FULL else 3.0
HALF_OPEN = 1000


@pytest.fixture(scope="module")
def limits_service(cassandra_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    service = fault_service(
        f"ps_faults_limits_{uuid.uuid4().hex[:8]}",
        tmp_path_factory.mktemp("limits"),
        {
            "--body-timeout": str(BODY_TIMEOUT_S),
            "--body-min-rate": str(MIN_RATE),
            "--header-timeout": str(HEADER_TIMEOUT_S),
        },
    )
    service.start()
    try:
        yield service
    finally:
        service.stop()


def connect(service: ServiceProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    return sock


def head(
    length: int | None = None, encoding: str | None = None, content_type: str = "application/json"
) -> bytes:
    lines = ["POST /events HTTP/1.1", "Host: test", f"Content-Type: {content_type}"]
    lines.append(f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked")
    if encoding:
        lines.append(f"Content-Encoding: {encoding}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket, timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    header, _, rest = data.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:length]


def events_json() -> bytes:
    return orjson.dumps(list(session_pair(uuid.uuid4().hex, NOW - timedelta(minutes=90))))


def test_an_endless_chunked_body_gets_413_while_it_is_still_being_sent(
    limits_service: ServiceProcess,
) -> None:
    """1 GiB offered in chunks: the 413 arrives after ~64 MiB, and the service never holds much more."""
    _, hwm_before = memory_kb(limits_service)
    rss_before, _ = memory_kb(limits_service)
    piece = b" " * (1024 * 1024)
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    offered = 1024 * 1024 * 1024
    sent = 0
    began = time.monotonic()
    with connect(limits_service) as sock:
        sock.sendall(head(None) + b"1\r\n[\r\n")
        answered = False
        while sent < offered:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                answered = True
                break
            assert writable, "the service neither reads nor answers"
            try:
                sock.sendall(chunk)
            except (ConnectionResetError, BrokenPipeError):
                # It answered and closed while this chunk was on its way; the answer is still in
                # this socket's receive queue.
                answered = True
                break
            sent += len(piece)
        assert answered, f"no answer after sending all {offered} bytes"
        status, _, body = read_response(sock)
    seconds = time.monotonic() - began
    rss_after, hwm_after = memory_kb(limits_service)
    say(
        f"413 after {sent / 2**20:.0f} MiB sent of {offered / 2**20:.0f} MiB offered, in {seconds:.1f}s; "
        f"RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB, VmHWM {hwm_before / 1024:.0f} -> "
        f"{hwm_after / 1024:.0f} MiB"
    )
    assert status == 413, body
    assert orjson.loads(body)["field"] == "body"
    assert sent < MAX_BODY + 32 * 2**20, "the service should answer soon after the limit"
    # It keeps at most the limit (the body so far) plus its working set; never the gigabyte.
    assert (hwm_after - hwm_before) / 1024 < MAX_BODY / 2**20 + 64


def test_a_declared_length_over_the_limit_is_refused_before_any_body(limits_service: ServiceProcess) -> None:
    with connect(limits_service) as sock:
        sock.sendall(head(10 * 1024**3))
        status, _, body = read_response(sock, timeout=10)
    assert status == 413 and b"larger than" in body


def test_a_body_that_stops_gets_408_and_the_connection_is_closed(limits_service: ServiceProcess) -> None:
    with connect(limits_service) as sock:
        sock.sendall(head(1000) + b"[{")
        began = time.monotonic()
        status, headers, body = read_response(sock, timeout=BODY_TIMEOUT_S * 5)
        waited = time.monotonic() - began
        assert sock.recv(1) == b"", "the connection should be closed after a 408"
    say(f"408 after {waited:.1f}s of silence: {body.decode()}")
    assert status == 408
    assert headers["connection"] == "close"
    assert orjson.loads(body)["field"] == "body"
    assert BODY_TIMEOUT_S * 0.9 <= waited < BODY_TIMEOUT_S + 2


def test_a_trickling_body_gets_408(limits_service: ServiceProcess) -> None:
    """One byte every 0.2 s: never a pause over --body-timeout, but far below --body-min-rate."""
    with connect(limits_service) as sock:
        sock.sendall(head(100_000) + b"[")
        began = time.monotonic()
        answered = False
        while time.monotonic() - began < BODY_TIMEOUT_S * 5:
            if select.select([sock], [], [], 0.2)[0]:
                answered = True
                break
            sock.sendall(b" ")
        assert answered, "a trickle must not hold the request open"
        waited = time.monotonic() - began
        status, _, body = read_response(sock)
    say(f"trickle refused after {waited:.1f}s: {body.decode()}")
    assert status == 408
    assert waited < BODY_TIMEOUT_S + 2


def test_a_slow_but_steady_body_is_accepted(limits_service: ServiceProcess) -> None:
    """~4 KB/s for ~3 s, over the minimum rate: accepted although it outlasts --body-timeout."""
    events = events_json()
    padded = events[:1] + b" " * 12_000 + events[1:]
    with connect(limits_service) as sock:
        sock.sendall(head(len(padded)))
        began = time.monotonic()
        for i in range(0, len(padded), 400):
            sock.sendall(padded[i : i + 400])
            time.sleep(0.1)
        status, _, body = read_response(sock)
        took = time.monotonic() - began
    assert took > BODY_TIMEOUT_S
    assert status == 200, body
    assert orjson.loads(body)["stored"] == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_accepted(limits_service: ServiceProcess, encoding: str) -> None:
    events = events_json()
    data = gzip.compress(events) if encoding == "gzip" else zlib.compress(events)
    r = httpx.post(
        f"{limits_service.url}/events",
        content=data,
        timeout=30,
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2


def test_a_decompression_bomb_is_refused_without_inflating_it(limits_service: ServiceProcess) -> None:
    """~1 GiB of zeros in a ~1 MiB gzip body: 413 once the inflated size passes the limit."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (16 * 2**20)
    bomb = b"".join([compressor.compress(zeros) for _ in range(64)]) + compressor.flush()
    _, hwm_before = memory_kb(limits_service)
    r = httpx.post(
        f"{limits_service.url}/events",
        content=bomb,
        timeout=60,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    _, hwm_after = memory_kb(limits_service)
    say(
        f"bomb of {len(bomb) / 2**20:.1f} MiB (1 GiB inflated): {r.status_code} {r.text}; VmHWM "
        f"{hwm_before / 1024:.0f} -> {hwm_after / 1024:.0f} MiB"
    )
    assert r.status_code == 413
    assert "decompressed" in r.json()["error"]
    assert (hwm_after - hwm_before) / 1024 < MAX_BODY / 2**20 + 64


def test_the_service_is_still_healthy_after_the_abuse(limits_service: ServiceProcess) -> None:
    assert limits_service.alive()
    assert httpx.get(f"{limits_service.url}/health", timeout=10).status_code == 200
    assert "Traceback" not in limits_service.log_path.read_text(errors="replace")
    assert " 500 " not in Path(limits_service.log_path).read_text()


class Probe:
    """GET / (no Cassandra involved) every 20 ms from a thread: how long other requests wait."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.waits: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                assert client.get("/").status_code == 200
                self.waits.append(time.monotonic() - began)
                time.sleep(0.02)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def worst_ms(self) -> float:
        return max(self.waits) * 1000

    def p99_ms(self) -> float:
        ordered = sorted(self.waits)
        return ordered[int(len(ordered) * 0.99)] * 1000


def hostile_bodies() -> list[tuple[str, bytes, dict[str, str]]]:
    gz = {"content-type": "application/json", "content-encoding": "gzip"}
    plain = {"content-type": "application/json"}
    empties = gzip.compress(b"[" + b"{}," * (64 * 2**20 // 3) + b"{}]", 6)  # 64 MiB of {},{},...
    nested = gzip.compress(b"[" * (16 * 2**20) + b"]" * (16 * 2**20), 6)
    string = gzip.compress(b'["' + b"x" * (30 * 2**20) + b'"]', 6)
    return [
        ("gzip of 64 MiB of {},{},...", empties, gz),
        ("gzip of 64 MiB of {},{},... (again)", empties, gz),
        ("gzip of 32 MiB of [[[[...", nested, gz),
        ("gzip of a 30 MiB string", string, gz),
        ("20 MiB of {},{},...", b"[" + b"{}," * (20 * 2**20 // 3) + b"{}]", plain),
        ("20 MiB of 1,1,1,...", b"[" + b"1," * (10 * 2**20) + b"1]", plain),
        ("20 MiB of {}\\n lines", b"{}\n" * (20 * 2**20 // 3), {"content-type": "application/x-ndjson"}),
        (
            "gzip of 64 MiB of {}\\n lines",
            gzip.compress(b"{}\n" * (64 * 2**20 // 3), 6),
            {"content-type": "application/x-ndjson", "content-encoding": "gzip"},
        ),
    ]


def test_eight_hostile_bodies_at_once_are_refused_with_the_worker_bounded(
    limits_service: ServiceProcess,
) -> None:
    bodies = hostile_bodies()
    rss_before, _ = memory_kb(limits_service)
    answers: dict[str, tuple[int, str, float]] = {}

    def post(name: str, body: bytes, headers: dict[str, str]) -> None:
        began = time.monotonic()
        r = httpx.post(f"{limits_service.url}/events", content=body, headers=headers, timeout=120)
        answers[name] = (r.status_code, r.text[:120], time.monotonic() - began)

    with Probe(limits_service.url) as probe:
        threads = [threading.Thread(target=post, args=b) for b in bodies]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
    _, hwm = memory_kb(limits_service)
    for name, (status, text, seconds) in answers.items():
        say(f"{name}: {status} in {seconds:.1f}s {text}")
    say(
        f"8 hostile bodies at once: RSS before {rss_before / 1024:.0f} MiB, VmHWM {hwm / 1024:.0f} MiB; "
        f"GET / meanwhile: {len(probe.waits)} requests, p99 {probe.p99_ms():.0f} ms, worst "
        f"{probe.worst_ms():.0f} ms"
    )
    assert len(answers) == len(bodies)
    assert all(status in (400, 413, 503) for status, _, _ in answers.values()), answers
    assert hwm / 1024 < 500
    assert probe.p99_ms() < 100


def legit_batch(events: int) -> bytes:
    """`events` NDJSON events, 5,000 distinct sessions repeated: parsed and validated in full."""
    one = [
        line
        for i in range(2500)
        for line in map(orjson.dumps, session_pair(f"big-{i}", NOW - timedelta(minutes=90 + i)))
    ]
    return b"\n".join(one * (events // len(one))) + b"\n"


def test_a_100000_event_batch_adds_little_memory_and_delays_no_one(
    cassandra_node: str, tmp_path: Path
) -> None:
    body = legit_batch(100_000)
    service = fault_service(f"ps_faults_one_{uuid.uuid4().hex[:8]}", tmp_path)
    service.start()
    try:
        httpx.post(
            f"{service.url}/events",
            content=events_json(),
            timeout=30,
            headers={"content-type": "application/json"},
        )  # warm: the store's statements
        rss_before, _ = memory_kb(service)
        with Probe(service.url) as probe:
            r = httpx.post(
                f"{service.url}/events",
                content=body,
                timeout=120,
                headers={"content-type": "application/x-ndjson"},
            )
        _, hwm = memory_kb(service)
    finally:
        service.stop()
    say(
        f"100,000 events ({len(body) / 2**20:.1f} MiB): {r.status_code}; RSS {rss_before / 1024:.0f} MiB "
        f"before, VmHWM {hwm / 1024:.0f} MiB (+{(hwm - rss_before) / 1024:.0f}); GET / meanwhile: "
        f"{len(probe.waits)} requests, p99 {probe.p99_ms():.0f} ms, worst {probe.worst_ms():.0f} ms"
    )
    assert r.status_code == 200 and r.json()["received"] == 100_000, r.text[:300]
    assert (hwm - rss_before) / 1024 < 100
    assert probe.p99_ms() < 100


def half_open(port: int, count: int) -> list[socket.socket]:
    """Connections that send part of a request line and then nothing."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.setblocking(False)
        opened.append(sock)
    return opened


def closed_by_peer(sock: socket.socket) -> bool:
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_half_open_connections_are_closed_while_fresh_requests_answer(limits_service: ServiceProcess) -> None:
    began = time.monotonic()
    socks = half_open(limits_service.port, HALF_OPEN)
    opened_s = time.monotonic() - began
    open_socks = set(socks)
    fresh: list[tuple[int, float]] = []
    closed_at: list[float] = []
    try:
        with httpx.Client(base_url=limits_service.url, timeout=10) as client:
            while open_socks and time.monotonic() - began < 40:
                sent = time.monotonic()
                fresh.append((client.get("/").status_code, time.monotonic() - sent))
                for sock in [s for s in open_socks if closed_by_peer(s)]:
                    open_socks.discard(sock)
                    closed_at.append(time.monotonic() - began)
                time.sleep(0.25)
    finally:
        for sock in socks:
            sock.close()
    say(
        f"{HALF_OPEN} half-open connections opened in {opened_s:.1f}s; closed by the service: "
        f"{len(closed_at)}, the first after {min(closed_at, default=0):.1f}s, the last after "
        f"{max(closed_at, default=0):.1f}s (--header-timeout {HEADER_TIMEOUT_S:g}); fresh GET / meanwhile: "
        f"{len(fresh)}, statuses {sorted({s for s, _ in fresh})}, slowest "
        f"{max(t for _, t in fresh) * 1000:.0f} ms"
    )
    assert not open_socks, f"{len(open_socks)} still open after 40 s"
    assert max(closed_at) < 30
    assert all(status == 200 for status, _ in fresh)


@pytest.mark.parametrize("trickled", [False, True])
def test_oversized_headers_get_431(limits_service: ServiceProcess, trickled: bool) -> None:
    """Whole in one send, or without end in pieces: 431 and the connection closed."""
    with connect(limits_service) as sock:
        if trickled:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(64):
                if select.select([sock], [], [], 0.01)[0]:
                    break
                sock.sendall(b"a" * 1024)
        else:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 * 1024) + b"\r\n\r\n")
        status, _, body = read_response(sock, timeout=10)
    assert status == 431, body


def test_connections_over_the_cap_are_refused_at_once(cassandra_node: str, tmp_path: Path) -> None:
    service = fault_service(f"ps_faults_conns_{uuid.uuid4().hex[:8]}", tmp_path, {"--max-connections": "50"})
    service.start()
    socks: list[socket.socket] = []
    try:
        socks = half_open(service.port, 50)
        time.sleep(0.5)
        with socket.create_connection(("127.0.0.1", service.port), timeout=10) as extra:
            status, _, body = read_response(extra, timeout=10)
        assert status == 503, body
        for sock in socks:
            sock.close()
        time.sleep(0.5)
        assert httpx.get(f"{service.url}/", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()
        service.stop()
