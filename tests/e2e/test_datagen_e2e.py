"""generate -> load -> the service's answers equal the generator's ground truth."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from player_sessions.datagen.load import LoadOptions, run_load
from player_sessions.domain.windows import MILLISECOND
from tests.support.clock import NOW_TEXT
from tests.support.service import free_port
from tests.support.truth import Truth, load_truth, starts_in_window

UNTIL = NOW_TEXT  # the generated data ends where the service's clock stands


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Truth]:
    folder = tmp_path_factory.mktemp("datagen")
    events, truth = folder / "events.jsonl.bz2", folder / "truth.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "player_sessions.cli",
            "generate",
            "--players",
            "400",
            "--days",
            "10",
            "--until",
            UNTIL,
            "--seed",
            "11",
            "-o",
            str(events),
            "--truth",
            str(truth),
            "--no-progress",
        ],
        check=True,
        capture_output=True,
    )
    return events, load_truth(truth)


@pytest.fixture(scope="module")
def loaded_service(service_factory: Callable[..., str], dataset: tuple[Path, Truth]) -> str:
    url = service_factory("datagen", clock=UNTIL)
    summary = run_load(
        LoadOptions(
            input=dataset[0],
            url=url,
            batch_size=500,
            concurrency=4,
            progress=False,
            quiet=True,
            handle_sigint=False,
        )
    )
    truth = dataset[1]
    assert summary.complete and summary.not_json == 0
    assert summary.rejected == truth.invalid
    assert summary.expired == truth.expired
    assert summary.stored + summary.expired + summary.rejected == summary.sent == truth.events
    return url


def test_every_players_sessions_equal_the_truth(loaded_service: str, dataset: tuple[Path, Truth]) -> None:
    truth = dataset[1]
    with httpx.Client(base_url=loaded_service, timeout=30) as client:
        for player, expected in truth.players.items():
            got = client.get(f"/players/{player}/sessions").json()["sessions"]
            assert [(s["session_id"], s["country"], s["duration_seconds"]) for s in got] == [
                (s.session_id, s.country, s.duration_seconds) for s in expected[:20]
            ], player


def test_starts_per_country_equal_the_truth(loaded_service: str, dataset: tuple[Path, Truth]) -> None:
    truth = dataset[1]
    with httpx.Client(base_url=loaded_service, timeout=30) as client:
        for hours in (1, 6.5, 24, 100, 240):
            frm = truth.now - timedelta(hours=hours)
            expected = {c: n for c, n in starts_in_window(truth, frm, truth.now + MILLISECOND).items() if n}
            assert client.get("/session-starts", params={"hours": hours}).json()["countries"] == expected


class FlakyProxy:
    """Forwards to the real service but answers the first POST with 503, as an overloaded node would."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.refused = 0
        self.port = free_port()

        async def forward(request: Request) -> Response:
            if request.method == "POST" and self.refused == 0:
                self.refused += 1
                return Response('{"error": "unavailable"}', 503, {"Retry-After": "0"})
            async with httpx.AsyncClient(base_url=self.target, timeout=60) as client:
                r = await client.request(
                    request.method,
                    request.url.path,
                    content=await request.body(),
                    headers={"content-type": request.headers["content-type"]},
                )
            return Response(r.content, r.status_code, media_type="application/json")

        app = Starlette(routes=[Route("/events", forward, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture()
def small_file(tmp_path: Path, dataset: tuple[Path, Truth]) -> Iterator[Path]:
    import bz2

    with bz2.open(dataset[0]) as handle:
        lines = handle.read().splitlines()[:300]
    path = tmp_path / "small.jsonl"
    path.write_bytes(b"\n".join([*lines[:100], b"{this is not json", *lines[100:]]) + b"\n")
    yield path


def test_loader_retries_a_503_and_reports_a_malformed_line(loaded_service: str, small_file: Path) -> None:
    with FlakyProxy(loaded_service) as url:
        summary = run_load(
            LoadOptions(
                input=small_file,
                url=url,
                batch_size=50,
                concurrency=2,
                progress=False,
                quiet=True,
                handle_sigint=False,
                backoff_initial=0.05,
            )
        )
    assert summary.complete
    assert summary.retries >= 1
    assert summary.not_json == 1 and summary.not_json_lines == [101]
    assert summary.sent == 300 == summary.stored + summary.expired + summary.rejected
    assert summary.batches == 6
