"""The loader against a small fake of ``POST /events`` that answers in the service's contract.

Most tests run the fake ASGI app in-process through ``httpx.ASGITransport``; one serves it with
uvicorn on a real socket, and one points the loader at a closed port.
"""

from __future__ import annotations

import argparse
import asyncio
import bz2
import gzip
import io
import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from player_sessions.datagen.commands import add_load_arguments, run_load_command
from player_sessions.datagen.generate import GenerateOptions, generate
from player_sessions.datagen.load import LoadOptions, LoadSummary, LoadUsageError, run_load
from player_sessions.domain.clock import parse_instant
from tests.support.clock import NOW
from tests.support.service import free_port
from tests.support.truth import load_truth, shift_truth

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

Hook = Callable[["FakeService", int, bytes], Awaitable[Response | None]]


@dataclass
class FakeService:
    """Validates minimally, stores in memory, answers like the real service; ``hook`` can intercept."""

    now: datetime = NOW
    hook: Hook | None = None
    requests: int = 0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    stored: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route("/events", self.events, methods=["POST"])])

    def problem(self, raw: Any) -> tuple[str, str] | None:
        if not isinstance(raw, dict) or raw.get("event") not in ("start", "end"):
            return "event", 'event: must be "start" or "end"'
        if not isinstance(raw.get("player_id"), str):
            return "player_id", "player_id: must be a string"
        if not isinstance(raw.get("session_id"), str) or not UUID_RE.fullmatch(raw["session_id"]):
            return "session_id", "session_id: not a UUID"
        try:
            ts = parse_instant(raw["ts"])
        except (KeyError, TypeError, ValueError):
            return "ts", "ts: not an ISO 8601 date-time"
        if ts - self.now > timedelta(minutes=5):
            return "ts", "ts: more than 5 minutes in the future"
        return None

    async def events(self, request: Request) -> Response:
        body = await request.body()
        index = self.requests
        self.requests += 1
        self.headers.append(dict(request.headers))
        if self.hook is not None:
            intercepted = await self.hook(self, index, body)
            if intercepted is not None:
                return intercepted
        if request.headers.get("content-type") != "application/x-ndjson":
            return Response(status_code=415)
        self.bodies.append(body)
        lines = body.splitlines()
        stored = expired = 0
        errors: list[dict[str, object]] = []
        for i, line in enumerate(lines):
            raw = json.loads(line)
            problem = self.problem(raw)
            if problem is not None:
                errors.append({"index": i, "field": problem[0], "error": problem[1]})
            elif parse_instant(raw["ts"]) < self.now - timedelta(days=365):
                expired += 1
            else:
                stored += 1
                self.stored[(raw["event"], raw["player_id"], raw["session_id"])] = raw
        return JSONResponse(
            {
                "received": len(lines),
                "stored": stored,
                "expired": expired,
                "rejected": len(errors),
                "errors": errors,
            }
        )

    def sent_lines(self) -> list[bytes]:
        return [line for body in self.bodies for line in body.splitlines()]


def event(i: int, kind: str = "start", ts: datetime | None = None, **extra: object) -> bytes:
    """A valid event for session i, at NOW - 1 day + i seconds unless ts is given."""
    when = ts if ts is not None else NOW - timedelta(days=1) + timedelta(seconds=i)
    raw: dict[str, object] = {
        "event": kind,
        "player_id": f"p{i % 7}",
        "session_id": str(uuid.UUID(int=i + 1, version=4)),
        "ts": when.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if kind == "start":
        raw["country"] = "FI"
    raw.update(extra)
    return json.dumps(raw, separators=(",", ":")).encode()


def write_input(path: Path, lines: list[bytes]) -> Path:
    data = b"".join(line + b"\n" for line in lines)
    if path.suffix == ".gz":
        data = gzip.compress(data)
    elif path.suffix == ".bz2":
        data = bz2.compress(data)
    path.write_bytes(data)
    return path


def load(source: Path | str, service: FakeService, **options: Any) -> LoadSummary:
    settings: dict[str, Any] = {
        "progress": False,
        "quiet": True,
        "handle_sigint": False,
        "transport": httpx.ASGITransport(app=service.app),
        **options,
    }
    return run_load(LoadOptions(input=source, **settings))


def retry_after_zero_first(status: int = 503, times: int = 1) -> Hook:
    async def hook(service: FakeService, index: int, body: bytes) -> Response | None:
        return Response(status_code=status, headers={"Retry-After": "0"}) if index < times else None

    return hook


def test_non_json_lines_are_counted_by_line_number_and_never_sent(tmp_path: Path) -> None:
    # Odd spacing proves the loader forwards the original bytes rather than re-serialising.
    spaced = b'{"event": "end",  "player_id": "p9", "session_id": "%s", "ts": "2016-11-30T10:00:00"}' % (
        str(uuid.uuid4()).encode()
    )
    lines = [*(event(i) for i in range(1, 6)), b"not json {", spaced, b"", b'{"broken', event(6)]
    service = FakeService()
    summary = load(write_input(tmp_path / "in.jsonl", lines), service, batch_size=3)

    assert summary.not_json == 2
    assert summary.not_json_lines == [6, 9]
    assert summary.blank == 1
    assert summary.sent == 7
    assert service.sent_lines() == [line for line in lines if line and not line.startswith((b"not", b'{"b'))]
    assert summary.exit_code == 0
    assert summary.acknowledged_through_line == 10


def test_503_with_retry_after_is_retried_and_totals_stay_exact(tmp_path: Path) -> None:
    lines = [event(i) for i in range(35)]
    service = FakeService(hook=retry_after_zero_first())
    summary = load(write_input(tmp_path / "in.jsonl", lines), service, batch_size=10, concurrency=2)

    assert summary.retries == 1
    assert service.requests == 5  # four batches, one of them twice
    assert (summary.sent, summary.stored, summary.batches) == (35, 35, 4)
    assert sorted(service.sent_lines()) == sorted(lines)
    assert summary.exit_code == 0


def test_counts_add_up_and_rejections_point_at_input_lines(tmp_path: Path) -> None:
    lines = [event(i) for i in range(60)]
    lines[6] = event(6, session_id="nope")  # line 7
    lines[22] = event(22, ts=NOW + timedelta(hours=2))  # line 23
    lines[39] = event(39, ts=NOW - timedelta(days=400))  # line 40
    lines[40] = event(40, kind="end", ts=NOW - timedelta(days=366))  # line 41
    lines[51] = b"[garbage"  # line 52, not JSON
    service = FakeService()
    summary = load(write_input(tmp_path / "in.jsonl", lines), service, batch_size=8, concurrency=3)

    assert summary.sent == 59 == summary.stored + summary.expired + summary.rejected
    assert (summary.stored, summary.expired, summary.rejected) == (55, 2, 2)
    assert summary.lines == 60 == summary.sent + summary.not_json + summary.blank
    assert [(r.line, r.field, r.error) for r in summary.first_rejected] == [
        (7, "session_id", "session_id: not a UUID"),
        (23, "ts", "ts: more than 5 minutes in the future"),
    ]
    assert summary.batches == 8
    assert summary.acknowledged_through_line == 60
    assert summary.exit_code == 0


def test_only_the_first_rejections_are_kept_smallest_line_first(tmp_path: Path) -> None:
    lines = [event(i, session_id=f"bad-{i}") for i in range(40)]
    summary = load(
        write_input(tmp_path / "in.jsonl", lines), FakeService(), batch_size=4, concurrency=4, report_limit=5
    )
    assert summary.rejected == 40
    assert [r.line for r in summary.first_rejected] == [1, 2, 3, 4, 5]


def test_rebase_to_now_moves_the_newest_event_to_now(tmp_path: Path) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    base = datetime(2016, 11, 20, 8, 0, 0, tzinfo=UTC)
    lines = [event(i, ts=base + timedelta(minutes=17 * i)) for i in range(20)]
    lines.append(event(99, ts=base + timedelta(days=3)))  # the newest
    lines.append(event(100).replace(b'"ts":"', b'"ts":"garbled '))  # no readable ts
    service = FakeService(now=now)
    summary = load(
        write_input(tmp_path / "in.jsonl.gz", lines),
        service,
        rebase_to_now=True,
        clock=lambda: now,
        batch_size=6,
    )

    sent = [json.loads(line) for line in service.sent_lines()]
    shifted = [parse_instant(e["ts"]) for e in sent if not e["ts"].startswith("garbled")]
    offset = now - (base + timedelta(days=3))
    assert max(shifted) == now
    assert shifted[:20] == [base + timedelta(minutes=17 * i) + offset for i in range(20)]
    assert all(e["ts"].endswith("Z") for e in sent if not e["ts"].startswith("garbled"))
    assert lines[-1] in service.sent_lines()  # sent unchanged
    assert summary.rebase_offset_seconds == offset.total_seconds()
    assert (summary.stored, summary.rejected) == (21, 1)


def test_rebase_anchor_sets_what_becomes_now(tmp_path: Path) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    anchor = NOW
    lines = [event(1, ts=NOW - timedelta(hours=1)), event(2, ts=NOW + timedelta(days=1))]
    service = FakeService(now=now)
    summary = load(
        "-",
        service,
        stdin=io.BytesIO(b"\n".join(lines)),
        rebase_to_now=True,
        rebase_anchor=anchor,
        clock=lambda: now,
    )
    assert [json.loads(line)["ts"] for line in service.sent_lines()] == [
        "2024-05-01T11:00:00Z",
        "2024-05-02T12:00:00Z",
    ]
    assert (summary.stored, summary.rejected) == (1, 1)  # the deliberately future event stays future


def test_rebase_to_now_on_stdin_without_anchor_is_refused() -> None:
    with pytest.raises(LoadUsageError, match="stdin"):
        load("-", FakeService(), stdin=io.BytesIO(event(1)), rebase_to_now=True)


def test_missing_input_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(LoadUsageError, match="no such file"):
        load(tmp_path / "absent.jsonl", FakeService())


@pytest.mark.parametrize("name", ["in.jsonl.gz", "in.jsonl.bz2", "in.jsonl"])
def test_compressed_and_plain_inputs_are_streamed(tmp_path: Path, name: str) -> None:
    lines = [event(i) for i in range(2_500)]
    service = FakeService()
    summary = load(write_input(tmp_path / name, lines), service, batch_size=500)
    assert summary.sent == summary.stored == 2_500
    assert service.sent_lines() == lines


def test_stdin_is_read_as_a_stream(tmp_path: Path) -> None:
    lines = [event(i) for i in range(30)]
    service = FakeService()
    summary = load("-", service, stdin=io.BytesIO(gzip.compress(b"\n".join(lines))), batch_size=7)
    assert summary.stored == 30
    assert summary.batches == 5


def test_payload_too_large_stops_with_a_batch_size_hint(tmp_path: Path) -> None:
    async def too_large(service: FakeService, index: int, body: bytes) -> Response | None:
        return Response(status_code=413, content=b"body too large")

    service = FakeService(hook=too_large)
    summary = load(
        write_input(tmp_path / "in.jsonl", [event(i) for i in range(50)]),
        service,
        batch_size=10,
        concurrency=1,
    )
    assert summary.exit_code == 1
    assert summary.error is not None and "--batch-size" in summary.error
    assert summary.retries == 0
    assert service.requests == 1
    assert summary.acknowledged_through_line == 0


def test_unauthorised_stops_and_names_the_api_key(tmp_path: Path) -> None:
    async def unauthorised(service: FakeService, index: int, body: bytes) -> Response | None:
        return Response(status_code=401)

    service = FakeService(hook=unauthorised)
    summary = load(write_input(tmp_path / "in.jsonl", [event(1)]), service, api_key="secret")
    assert summary.exit_code == 1
    assert summary.error is not None and "--api-key" in summary.error
    assert service.headers[0]["authorization"] == "Bearer secret"
    assert "x-api-key" not in service.headers[0]  # the key travels in one header only


def test_gives_up_after_continuous_failures(tmp_path: Path) -> None:
    async def unavailable(service: FakeService, index: int, body: bytes) -> Response | None:
        return Response(status_code=503)

    service = FakeService(hook=unavailable)
    started = time.monotonic()
    summary = load(
        write_input(tmp_path / "in.jsonl", [event(i) for i in range(5)]),
        service,
        give_up_after=0.4,
        backoff_initial=0.02,
        backoff_max=0.1,
    )
    assert time.monotonic() - started < 3
    assert summary.gave_up
    assert summary.exit_code == 1
    assert summary.error is not None and "gave up" in summary.error and "HTTP 503" in summary.error
    assert summary.retries >= 3
    assert summary.sent == 0


def test_connection_refused_is_retried_then_given_up(tmp_path: Path) -> None:
    summary = run_load(
        LoadOptions(
            input=write_input(tmp_path / "in.jsonl", [event(1)]),
            url=f"http://127.0.0.1:{free_port()}",
            progress=False,
            quiet=True,
            handle_sigint=False,
            give_up_after=0.5,
            backoff_initial=0.05,
        )
    )
    assert summary.gave_up
    assert summary.retries >= 1
    assert summary.error is not None and "ConnectError" in summary.error


def test_stop_reports_the_highest_line_every_earlier_batch_was_acknowledged(tmp_path: Path) -> None:
    # Four batches of 10 in flight together; the second keeps failing, the others succeed, then a stop
    # arrives. Lines 21-40 were acknowledged, but only line 10 is safe to resume after.
    stop = threading.Event()
    successes = 0

    async def second_batch_fails(service: FakeService, index: int, body: bytes) -> Response | None:
        nonlocal successes
        if event(10) in body.splitlines():
            return Response(status_code=503)
        successes += 1
        if successes == 3:
            stop.set()
        return None

    service = FakeService(hook=second_batch_fails)
    summary = load(
        write_input(tmp_path / "in.jsonl", [event(i) for i in range(40)]),
        service,
        batch_size=10,
        concurrency=4,
        stop=stop,
        backoff_initial=30,
    )
    assert summary.interrupted
    assert summary.exit_code == 130
    assert summary.sent == 30
    assert summary.acknowledged_through_line == 10


def test_ctrl_c_stops_reading_and_exits_130(tmp_path: Path) -> None:
    async def interrupt_on_second(service: FakeService, index: int, body: bytes) -> Response | None:
        if index == 1:
            os.kill(os.getpid(), signal.SIGINT)
            await asyncio.sleep(0.05)
        return None

    service = FakeService(hook=interrupt_on_second)
    err = io.StringIO()
    summary = load(
        write_input(tmp_path / "in.jsonl", [event(i) for i in range(200)]),
        service,
        batch_size=10,
        concurrency=1,
        handle_sigint=True,
        quiet=False,
        stderr=err,
    )
    assert summary.interrupted
    assert summary.exit_code == 130
    assert 10 <= summary.sent < 200
    assert summary.acknowledged_through_line == summary.sent
    assert f"every line up to {summary.sent}" in err.getvalue()


def test_generated_file_rebased_on_its_until_matches_the_shifted_truth(tmp_path: Path) -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    events_path, truth_path = tmp_path / "events.jsonl.gz", tmp_path / "truth.json"
    options = GenerateOptions(players=60, days=5, until=NOW, seed=3, invalid=0.05)
    generated = generate(options, events_path, truth_path, quiet=True)
    service = FakeService(now=now)
    summary = load(
        events_path, service, rebase_to_now=True, rebase_anchor=NOW, clock=lambda: now, batch_size=200
    )
    truth = shift_truth(load_truth(truth_path), now - NOW)

    assert summary.sent == generated.events
    assert summary.rebase_offset_seconds == (now - NOW).total_seconds()
    sessions = [(pid, s) for pid, listed in truth.players.items() for s in listed]
    assert len(sessions) > 100
    for pid, session in sessions:
        start = service.stored[("start", pid, session.session_id)]
        end = service.stored[("end", pid, session.session_id)]
        assert (parse_instant(start["ts"]), parse_instant(end["ts"]), start["country"]) == (
            session.start,
            session.end,
            session.country,
        )
    # The deliberately future events stay in the future because the anchor, not the newest ts, is now.
    assert summary.rejected >= generated.invalid_by_kind["future_ts"] > 0


@pytest.fixture
def real_server() -> Iterator[tuple[str, FakeService]]:
    service = FakeService()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service.app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", service
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def test_loads_over_a_real_socket(tmp_path: Path, real_server: tuple[str, FakeService]) -> None:
    url, service = real_server
    lines = [event(i) for i in range(300)]
    err = io.StringIO()
    summary = run_load(
        LoadOptions(
            input=write_input(tmp_path / "in.jsonl.bz2", lines),
            url=url,
            batch_size=64,
            concurrency=4,
            handle_sigint=False,
            stderr=err,
        )
    )
    assert summary.exit_code == 0
    assert summary.stored == 300
    assert sorted(service.sent_lines()) == sorted(lines)
    assert all(h["content-type"] == "application/x-ndjson" for h in service.headers)
    assert "300 events" in err.getvalue()


def test_cli_refuses_rebase_on_stdin_without_anchor(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_load_arguments(parser)
    assert run_load_command(parser.parse_args(["-", "--rebase-to-now"])) == 2
    assert "stdin" in capsys.readouterr().err
