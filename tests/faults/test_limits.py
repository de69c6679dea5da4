"""Request limits over real sockets: a body over the byte limit is refused while it is still being sent
(and never held whole), a body that pauses or trickles gets 408, gzip/deflate bodies are accepted and
a decompression bomb is refused by its decompressed size, without the service's memory following.
"""

from __future__ import annotations

import gzip
import select
import socket
import time
import uuid
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest

from tests.e2e.factories import session_pair
from tests.faults.conftest import NOW_DT, Service, say

pytestmark = pytest.mark.faults

MAX_BODY = 64 * 1024 * 1024  # the default --max-body-bytes
BODY_TIMEOUT_S = 2.0
MIN_RATE = 1000  # bytes/s after BODY_TIMEOUT_S


@pytest.fixture(scope="module")
def limits_service(cassandra_node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(f"ps_faults_limits_{uuid.uuid4().hex[:8]}", tmp_path_factory.mktemp("limits"),
                      {"--body-timeout": str(BODY_TIMEOUT_S), "--body-min-rate": str(MIN_RATE)})
    service.start()
    try:
        yield service
    finally:
        service.stop()


def connect(service: Service) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", service.port), timeout=30)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 256 * 1024)
    return sock


def head(length: int | None = None, encoding: str | None = None,
         content_type: str = "application/json") -> bytes:
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
    return orjson.dumps(list(session_pair(uuid.uuid4().hex, NOW_DT - timedelta(minutes=90))))


def test_an_endless_chunked_body_gets_413_while_it_is_still_being_sent(limits_service: Service) -> None:
    """1 GiB offered in chunks: the 413 arrives after ~64 MiB, and the service never holds much more."""
    _, hwm_before = limits_service.memory_kb()
    rss_before, _ = limits_service.memory_kb()
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
            sock.sendall(chunk)
            sent += len(piece)
        assert answered, f"no answer after sending all {offered} bytes"
        status, _, body = read_response(sock)
    seconds = time.monotonic() - began
    rss_after, hwm_after = limits_service.memory_kb()
    say(f"413 after {sent / 2**20:.0f} MiB sent of {offered / 2**20:.0f} MiB offered, in {seconds:.1f}s; "
        f"RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MiB, VmHWM {hwm_before / 1024:.0f} -> "
        f"{hwm_after / 1024:.0f} MiB")
    assert status == 413, body
    assert orjson.loads(body)["field"] == "body"
    assert sent < MAX_BODY + 32 * 2**20, "the service should answer soon after the limit"
    # It keeps at most the limit (the body so far) plus its working set; never the gigabyte.
    assert (hwm_after - hwm_before) / 1024 < MAX_BODY / 2**20 + 64


def test_a_declared_length_over_the_limit_is_refused_before_any_body(limits_service: Service) -> None:
    with connect(limits_service) as sock:
        sock.sendall(head(10 * 1024**3))
        status, _, body = read_response(sock, timeout=10)
    assert status == 413 and b"larger than" in body


def test_a_body_that_stops_gets_408_and_the_connection_is_closed(limits_service: Service) -> None:
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


def test_a_trickling_body_gets_408(limits_service: Service) -> None:
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


def test_a_slow_but_steady_body_is_accepted(limits_service: Service) -> None:
    """~4 KB/s for ~3 s, over the minimum rate: accepted although it outlasts --body-timeout."""
    events = events_json()
    padded = events[:1] + b" " * 12_000 + events[1:]
    with connect(limits_service) as sock:
        sock.sendall(head(len(padded)))
        began = time.monotonic()
        for i in range(0, len(padded), 400):
            sock.sendall(padded[i:i + 400])
            time.sleep(0.1)
        status, _, body = read_response(sock)
        took = time.monotonic() - began
    assert took > BODY_TIMEOUT_S
    assert status == 200, body
    assert orjson.loads(body)["stored"] == 2


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compressed_bodies_are_accepted(limits_service: Service, encoding: str) -> None:
    events = events_json()
    data = gzip.compress(events) if encoding == "gzip" else zlib.compress(events)
    r = httpx.post(f"{limits_service.url}/events", content=data, timeout=30,
                   headers={"content-type": "application/json", "content-encoding": encoding})
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 2


def test_a_decompression_bomb_is_refused_without_inflating_it(limits_service: Service) -> None:
    """~1 GiB of zeros in a ~1 MiB gzip body: 413 once the inflated size passes the limit."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (16 * 2**20)
    bomb = b"".join([compressor.compress(zeros) for _ in range(64)]) + compressor.flush()
    _, hwm_before = limits_service.memory_kb()
    r = httpx.post(f"{limits_service.url}/events", content=bomb, timeout=60,
                   headers={"content-type": "application/json", "content-encoding": "gzip"})
    _, hwm_after = limits_service.memory_kb()
    say(f"bomb of {len(bomb) / 2**20:.1f} MiB (1 GiB inflated): {r.status_code} {r.text}; VmHWM "
        f"{hwm_before / 1024:.0f} -> {hwm_after / 1024:.0f} MiB")
    assert r.status_code == 413
    assert "decompressed" in r.json()["error"]
    assert (hwm_after - hwm_before) / 1024 < MAX_BODY / 2**20 + 64


def test_the_service_is_still_healthy_after_the_abuse(limits_service: Service) -> None:
    assert limits_service.alive()
    assert httpx.get(f"{limits_service.url}/health", timeout=10).status_code == 200
    assert "Traceback" not in limits_service.log_text()
    assert " 500 " not in Path(limits_service.log_path).read_text()
