"""The client's own rules against a small in-process fake of the service's HTTP contract (httpx's
MockTransport for the request logic, a real socket for connection errors): splitting and merging,
gzip, backoff and Retry-After, one request id per batch, the bounded batchers."""

from __future__ import annotations

import asyncio
import gzip
import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from player_sessions.client import (
    ApiError,
    AsyncClient,
    Client,
    Event,
    QueueFull,
    RetriesExhausted,
    RetryNotice,
    RetryPolicy,
    Start,
)
from player_sessions.client.retry import Attempts, parse_retry_after
from player_sessions.client.wire import encode_event, split

TS = datetime(2016, 11, 20, 10, 0, tzinfo=UTC)
Answer = Callable[[int, httpx.Request], httpx.Response | None]


@dataclass
class FakeIngest:
    """Answers POST /events like the service: counts, and one error per event without a UUID.
    ``answer(n, request)`` may replace the answer to request number n (0-based)."""

    answer: Answer | None = None
    requests: list[httpx.Request] = field(default_factory=list)
    events: list[list[dict[str, object]]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        n = len(self.requests)
        self.requests.append(request)
        if self.answer is not None:
            replaced = self.answer(n, request)
            if replaced is not None:
                return replaced
        body = request.content
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        batch = [json.loads(line) for line in body.splitlines()]
        self.events.append(batch)
        errors = [
            {"index": i, "field": "session_id", "error": "session_id: not a UUID"}
            for i, e in enumerate(batch)
            if not _is_uuid(e["session_id"])
        ]
        return httpx.Response(
            200,
            json={
                "received": len(batch),
                "stored": len(batch) - len(errors),
                "expired": 0,
                "rejected": len(errors),
                "errors": errors,
            },
        )

    @property
    def request_ids(self) -> list[str]:
        return [r.headers["x-request-id"] for r in self.requests]


def _is_uuid(text: object) -> bool:
    try:
        uuid.UUID(str(text))
    except ValueError:
        return False
    return True


def ev(i: int, session_id: str | None = None) -> Event:
    return Event.start(
        f"p{i}", session_id or str(uuid.UUID(int=i + 1, version=4)), "FI", TS + timedelta(seconds=i)
    )


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client_for(fake: FakeIngest, **options: object) -> tuple[Client, Sleeps]:
    sleeps = Sleeps()
    settings: dict[str, object] = {
        "transport": httpx.MockTransport(fake),
        "sleep": sleeps,
        "rng": random.Random(7),
        **options,
    }
    return Client("http://svc", **settings), sleeps  # type: ignore[arg-type]


def status_first(status: int, times: int, headers: dict[str, str] | None = None) -> Answer:
    def answer(n: int, request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(status, headers=headers, json={"error": "busy"}) if n < times else None

    return answer


# --- splitting and merging --------------------------------------------------------------------


def test_split_respects_the_event_and_byte_limits() -> None:
    lines = [b"x" * 9] * 7  # 10 bytes each with the newline
    assert list(split(lines, 3, 1000)) == [(0, 3), (3, 6), (6, 7)]
    assert list(split(lines, 100, 25)) == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert list(split([b"y" * 50, b"z"], 100, 20)) == [(0, 1), (1, 2)]  # too big alone: sent alone
    assert list(split([], 10, 10)) == []


def test_send_splits_over_the_limits_and_indices_refer_to_the_callers_sequence() -> None:
    fake = FakeIngest()
    events = [ev(i, "nope" if i in (3, 14, 22) else None) for i in range(25)]
    client, _ = client_for(fake, max_request_events=10)
    with client:
        result = client.send(events)
    assert [len(batch) for batch in fake.events] == [10, 10, 5]
    assert (result.received, result.stored, result.expired, result.rejected) == (25, 22, 0, 3)
    assert [e.index for e in result.errors] == [3, 14, 22]
    assert result.errors[0].field == "session_id"
    assert [e["player_id"] for batch in fake.events for e in batch] == [f"p{i}" for i in range(25)]
    assert len(set(fake.request_ids)) == 3


def test_send_splits_by_bytes_too() -> None:
    fake = FakeIngest()
    events = [ev(i) for i in range(12)]
    size = len(encode_event(events[0])) + 1
    client, _ = client_for(fake, max_request_bytes=size * 5)
    with client:
        assert client.send(events).stored == 12
    assert [len(batch) for batch in fake.events] == [5, 5, 2]
    assert all(len(gzip.decompress(r.content)) <= size * 5 for r in fake.requests)


def test_bodies_are_gzipped_ndjson_with_the_key_and_a_request_id() -> None:
    fake = FakeIngest()
    client, _ = client_for(fake, api_key="k" * 20)
    with client:
        client.send(
            [
                ev(1),
                {
                    "event": "end",
                    "player_id": "p1",
                    "session_id": uuid.UUID(int=2),
                    "ts": TS + timedelta(minutes=8),
                },
            ]
        )
    request = fake.requests[0]
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.headers["authorization"] == "Bearer " + "k" * 20
    assert fake.events[0][1] == {
        "event": "end",
        "player_id": "p1",
        "session_id": str(uuid.UUID(int=2)),
        "ts": "2016-11-20T10:08:00.000Z",
    }
    assert len(request.headers["x-request-id"]) == 32


def test_a_failed_part_carries_what_was_acknowledged_before_it() -> None:
    fake = FakeIngest(
        answer=lambda n, r: (
            httpx.Response(413, json={"error": "too large", "field": "body"}) if n == 1 else None
        )
    )
    client, _ = client_for(fake, max_request_events=10)
    with client, pytest.raises(ApiError) as caught:
        client.send([ev(i, "bad" if i == 2 else None) for i in range(30)])
    assert caught.value.status == 413 and caught.value.field == "body"
    assert caught.value.acknowledged == 10
    assert caught.value.partial is not None and caught.value.partial.received == 10
    assert [e.index for e in caught.value.partial.errors] == [2]


# --- retries ----------------------------------------------------------------------------------


def test_503_is_retried_after_retry_after_with_the_same_request_id() -> None:
    fake = FakeIngest(answer=status_first(503, 2, {"Retry-After": "2"}))
    notices: list[RetryNotice] = []
    client, sleeps = client_for(fake, on_retry=notices.append)
    with client:
        result = client.send([ev(1)], request_id="batch-42")
    assert result.stored == 1
    assert fake.request_ids == ["batch-42"] * 3
    assert len(sleeps) == 2 and all(2.0 <= s <= 2.5 for s in sleeps)
    assert [(n.retry, n.failure, n.request_id) for n in notices] == [
        (1, "HTTP 503", "batch-42"),
        (2, "HTTP 503", "batch-42"),
    ]
    # The retried body is byte-identical (gzip without a timestamp).
    assert len({r.content for r in fake.requests}) == 1


@pytest.mark.parametrize("status", [429, 500, 502, 504])
def test_other_retryable_statuses_back_off_exponentially(status: int) -> None:
    fake = FakeIngest(answer=status_first(status, 4))
    policy = RetryPolicy(attempts=6, give_up_after=None, backoff_initial=0.5, backoff_max=3.0)
    client, sleeps = client_for(fake, retry=policy)
    with client:
        assert client.send([ev(1)]).stored == 1
    ceilings = [0.5, 1.0, 2.0, 3.0]
    assert len(sleeps) == 4
    assert all(c / 2 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(fake.request_ids)) == 1


def test_the_last_try_raises_a_clear_error() -> None:
    fake = FakeIngest(answer=status_first(503, 99))
    client, sleeps = client_for(fake, retry=RetryPolicy(attempts=4, give_up_after=None))
    with client, pytest.raises(RetriesExhausted) as caught:
        client.send([ev(1)])
    exc = caught.value
    assert (exc.attempts, exc.last_status, exc.last_failure) == (4, 503, "HTTP 503")
    assert len(fake.requests) == 4 and len(sleeps) == 3
    assert exc.request_id in str(exc) and "gave up after 4 attempts" in str(exc)


def test_client_errors_are_not_retried() -> None:
    fake = FakeIngest(
        answer=lambda n, r: httpx.Response(400, json={"error": "body: empty batch", "field": "body"})
    )
    client, sleeps = client_for(fake)
    with client, pytest.raises(ApiError, match="empty batch"):
        client.send([ev(1)])
    assert len(fake.requests) == 1 and sleeps == []


def test_connection_errors_are_retried_then_given_up() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    ids: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        ids.append(request.headers["x-request-id"])
        return refuse(request)

    client = Client(
        "http://svc",
        transport=httpx.MockTransport(record),
        sleep=lambda s: None,
        retry=RetryPolicy(attempts=3, give_up_after=None),
    )
    with client, pytest.raises(RetriesExhausted, match="ConnectError"):
        client.session_starts(24)
    assert len(ids) == 3 and len(set(ids)) == 1


def test_a_closed_port_over_a_real_socket_gives_up_within_the_time_limit() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    policy = RetryPolicy(attempts=None, give_up_after=0.5, backoff_initial=0.05, backoff_max=0.1)
    started = time.monotonic()
    client = Client(f"http://127.0.0.1:{port}", retry=policy)
    with client, pytest.raises(RetriesExhausted) as caught:
        client.send([ev(1)])
    assert time.monotonic() - started < 3
    assert caught.value.attempts >= 3 and caught.value.last_status is None


def test_backoff_grows_and_is_capped_and_give_up_after_stops_early() -> None:
    policy = RetryPolicy(attempts=None, give_up_after=10.0, backoff_initial=1.0, backoff_max=4.0)
    rng = random.Random(1)
    delays = [policy.delay(n, None, rng) for n in range(6)]
    assert [0.5 <= delays[0] <= 1, 1 <= delays[1] <= 2, 2 <= delays[2] <= 4] == [True] * 3
    assert all(2 <= d <= 4 for d in delays[3:])
    now = [0.0]
    attempts = Attempts(policy, random.Random(1), clock=lambda: now[0])
    assert attempts.next_delay(None) is not None
    now[0] = 9.0
    assert attempts.next_delay(5.0) is None  # 9 s failing + 5 s asked > 10 s


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2016, 12, 1, tzinfo=UTC)
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after("Thu, 01 Dec 2016 00:00:07 GMT", now) == 7.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("-4", now) == 0.0


# --- reads ------------------------------------------------------------------------------------


def test_country_starts_follows_next_until_the_last_page() -> None:
    pages = {None: "c1", "c1": "c2", "c2": None}
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        cursor = request.url.params.get("cursor")
        n = len(seen)
        starts = [
            {"session_id": str(uuid.UUID(int=n * 10 + i)), "player_id": f"p{n}", "ts": "2016-11-30T10:00:00Z"}
            for i in range(2)
        ]
        return httpx.Response(200, json={"country": "FI", "starts": starts, "next": pages[cursor]})

    with Client("http://svc", transport=httpx.MockTransport(handler)) as client:
        starts = list(client.country_starts("FI", hours=24, page_size=2))
    assert len(starts) == 6 and all(isinstance(s, Start) for s in starts)
    assert [s.player_id for s in starts] == ["p1", "p1", "p2", "p2", "p3", "p3"]
    assert starts[0].ts == datetime(2016, 11, 30, 10, tzinfo=UTC)
    assert [r.url.params.get("cursor") for r in seen] == [None, "c1", "c2"]
    assert all(r.url.params["limit"] == "2" and r.url.params["hours"] == "24" for r in seen)


def test_reads_are_typed_and_player_ids_are_quoted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.raw_path.startswith(b"/players/a%3Ab/")
        return httpx.Response(
            200,
            json={
                "player_id": "a:b",
                "sessions": [
                    {
                        "session_id": str(uuid.UUID(int=5)),
                        "country": "FI",
                        "start": "2016-11-06T02:35:22Z",
                        "end": "2016-11-06T02:43:23.5Z",
                        "duration_seconds": 481,
                    }
                ],
            },
        )

    with Client("http://svc", transport=httpx.MockTransport(handler)) as client:
        [session] = client.sessions("a:b", limit=5)
    assert session.session_id == uuid.UUID(int=5)
    assert session.end == datetime(2016, 11, 6, 2, 43, 23, 500000, tzinfo=UTC)
    assert session.duration_seconds == 481


# --- batchers ---------------------------------------------------------------------------------


def test_batcher_sends_in_batches_flushes_on_close_and_counts_indices_across_batches() -> None:
    fake = FakeIngest()
    client, _ = client_for(fake)
    with client:
        with client.batcher(max_events=10, max_seconds=30) as batcher:
            for i in range(25):
                batcher.add(ev(i, "nope" if i in (7, 21) else None))
        assert [len(b) for b in fake.events] == [10, 10, 5]
        assert batcher.result.received == 25
        assert [e.index for e in batcher.result.errors] == [7, 21]


def test_batcher_sends_after_max_seconds_without_close() -> None:
    fake = FakeIngest()
    client, _ = client_for(fake)
    with client, client.batcher(max_events=1000, max_seconds=0.2) as batcher:
        batcher.add(ev(1))
        batcher.add(ev(2))
        deadline = time.monotonic() + 5
        while not fake.events and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [len(b) for b in fake.events] == [2]


def test_batcher_queue_is_bounded_raising_or_blocking_when_full() -> None:
    release = threading.Event()

    def hold(n: int, request: httpx.Request) -> None:
        release.wait(10)
        return None

    fake = FakeIngest(answer=hold)
    client, _ = client_for(fake)
    with client:
        raising = client.batcher(max_events=1, queue_size=3, block=False)
        raising.add(ev(0))
        deadline = time.monotonic() + 5
        while not fake.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(1, 4):
            raising.add(ev(i))  # the sender holds event 0; three wait in the queue
        with pytest.raises(QueueFull):
            raising.add(ev(4))
        blocking = client.batcher(max_events=1, queue_size=1, block=True)
        blocking.add(ev(10))
        while len(fake.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        blocking.add(ev(11))
        started = time.monotonic()
        with pytest.raises(QueueFull):
            blocking.add(ev(12), timeout=0.2)
        assert time.monotonic() - started >= 0.2
        release.set()
        raising.close()
        blocking.close()
    assert raising.result.received == 4 and blocking.result.received == 2


def test_batcher_reports_a_batch_that_failed_every_try() -> None:
    fake = FakeIngest(answer=status_first(503, 99))
    failed: list[tuple[int, int]] = []
    client, _ = client_for(fake, retry=RetryPolicy(attempts=2, give_up_after=None))
    with client:
        with client.batcher(max_events=5, on_error=lambda exc, first, n: failed.append((first, n))) as b:
            for i in range(7):
                b.add(ev(i))
        assert failed == [(0, 5), (5, 2)]
        silent = client.batcher(max_events=5)
        silent.add(ev(1))
        with pytest.raises(RetriesExhausted):
            silent.close()


# --- async ------------------------------------------------------------------------------------


async def test_async_client_splits_retries_and_batches() -> None:
    fake = FakeIngest(answer=status_first(503, 1, {"Retry-After": "0"}))
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    async with AsyncClient(
        "http://svc", transport=httpx.MockTransport(fake), sleep=sleep, max_request_events=4
    ) as client:
        result = await client.send([ev(i, "x" if i == 5 else None) for i in range(9)])
        assert (result.received, [e.index for e in result.errors]) == (9, [5])
        assert fake.request_ids[0] == fake.request_ids[1]  # the retried first part
        assert sleeps == [0.0]
        async with client.batcher(max_events=3, queue_size=2, block=False) as batcher:
            await batcher.add(ev(0))
            await batcher.add(ev(1))
            with pytest.raises(QueueFull):
                await batcher.add(ev(2))  # the sender task has not run yet: the queue is full
            await asyncio.sleep(0)
        assert batcher.result.received == 2


# --- packaging --------------------------------------------------------------------------------

BLOCKER = """
import importlib.abc, sys
BLOCKED = {"fastapi", "cassandra", "pydantic_settings", "pydantic", "starlette", "uvicorn", "msgspec",
           "orjson", "pycountry", "prometheus_client"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)  # as if not installed
        return None
sys.meta_path.insert(0, Block())
import player_sessions.client as c
with c.Client("http://127.0.0.1:1", retry=c.RetryPolicy(attempts=1, give_up_after=None)) as client:
    try:
        client.send([c.Event.start("p1", "4a0c43c9-c43a-42ff-ba55-67563dfa35d4", "FI",
                                   "2016-11-01T00:00:00")])
    except c.RetriesExhausted as exc:
        print("ok", exc.last_failure.split(":")[0])
print(sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
"""


def test_the_client_imports_and_runs_without_the_servers_dependencies() -> None:
    done = subprocess.run([sys.executable, "-c", BLOCKER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["ok ConnectError", "[]"]


def test_without_the_server_dependencies_the_cli_explains_what_to_install() -> None:
    blocker = BLOCKER.split("import player_sessions.client")[0]
    script = blocker + "from player_sessions.cli import main\nraise SystemExit(main(['serve']))\n"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "pip install 'player-sessions[server]'" in done.stderr
    version = subprocess.run(
        [sys.executable, "-c", blocker + "from player_sessions.cli import main\nmain(['--version'])\n"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert version.returncode == 0 and version.stdout.startswith("player-sessions ")
