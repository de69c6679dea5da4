"""The cursor of GET /session-starts/{country} is signed: it pages only the country and window it was
issued for, keys rotate without breaking pages in flight, and every worker of one `serve` accepts it."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import ROOT
from tests.support.clock import NOW
from tests.support.factories import iso, new_player, start
from tests.support.service import ServiceProcess, start_service

OLD_KEY = "old-" + uuid.uuid4().hex
NEW_KEY = "new-" + uuid.uuid4().hex
STARTS_PER_COUNTRY = 60


@pytest.fixture(scope="module")
def services(
    cassandra_node: str, test_keyspace_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("cursor-logs")
    keyspace = f"{test_keyspace_name}_cursors"
    started: dict[str, ServiceProcess] = {}
    try:
        for name, extra in (
            ("old", {"--cursor-keys": OLD_KEY}),
            ("rotated", {"--cursor-keys": f"{NEW_KEY},{OLD_KEY}"}),
            ("workers", {"--workers": "2"}),
        ):
            started[name] = start_service(keyspace, logs, {"--clock": iso(NOW), **extra})
        player = new_player()
        events = [
            start(player, str(uuid.uuid4()), NOW - timedelta(minutes=7 * i + 1), country)
            for i in range(STARTS_PER_COUNTRY)
            for country in ("FI", "SE")
        ]
        assert httpx.post(f"{started['old'].url}/events", json=events, timeout=60).json()["stored"] == 120
        yield started
    finally:
        for service in started.values():
            service.stop()


def first_page(url: str, country: str = "FI") -> dict[str, Any]:
    r = httpx.get(f"{url}/session-starts/{country}", params={"hours": 24, "limit": 10}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["next"]
    return r.json()


def follow(url: str, cursor: str, country: str = "FI") -> httpx.Response:
    return httpx.get(f"{url}/session-starts/{country}", params={"cursor": cursor, "limit": 10}, timeout=30)


def test_a_cursor_pages_only_the_country_it_was_issued_for(services: dict[str, ServiceProcess]) -> None:
    url = services["old"].url
    cursor = first_page(url, "SE")["next"]
    r = follow(url, cursor, "FI")
    assert r.status_code == 400
    assert r.json() == {"error": "cursor: issued for SE, not FI", "field": "cursor"}
    assert follow(url, cursor, "se").status_code == 200


def test_a_tampered_window_is_refused(services: dict[str, ServiceProcess]) -> None:
    url = services["old"].url
    payload, tag = first_page(url)["next"].split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields["f"] -= 300 * 24 * 3600 * 10**6  # a window reaching 300 days further back
    forged = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode()).rstrip(b"=")
    r = follow(url, f"{forged.decode()}.{tag}")
    assert r.status_code == 400
    assert r.json() == {"error": "cursor: not a valid cursor", "field": "cursor"}


def test_rotation_keeps_pages_in_flight_and_signs_with_the_new_key(
    services: dict[str, ServiceProcess],
) -> None:
    in_flight = first_page(services["old"].url)["next"]
    continued = follow(services["rotated"].url, in_flight)  # signed with OLD_KEY, still listed
    assert continued.status_code == 200, continued.text
    newer = continued.json()["next"]
    assert newer is not None
    assert follow(services["rotated"].url, newer).status_code == 200
    # Signed with NEW_KEY: a process that only knows the old key refuses it.
    assert follow(services["old"].url, newer).status_code == 400


def test_another_serve_with_another_key_refuses_the_cursor(services: dict[str, ServiceProcess]) -> None:
    cursor = first_page(services["workers"].url)["next"]
    assert follow(services["old"].url, cursor).status_code == 400


def test_every_worker_of_one_serve_accepts_the_cursors_of_the_others(
    services: dict[str, ServiceProcess],
) -> None:
    url = services["workers"].url
    seen: list[str] = []
    cursor = first_page(url)["next"]
    for _ in range(STARTS_PER_COUNTRY // 10 - 1):
        r = follow(url, cursor)  # a new connection each time: any worker may answer
        assert r.status_code == 200, r.text
        seen += [s["session_id"] for s in r.json()["starts"]]
        if r.json()["next"] is None:
            break
        cursor = r.json()["next"]
    assert len(seen) == len(set(seen)) == STARTS_PER_COUNTRY - 10


def test_a_short_cursor_key_stops_serve(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "player_sessions.cli",
            "serve",
            "--cursor-keys",
            f"{NEW_KEY},short",
            "--port",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--cursor-keys" in done.stderr and "16 characters" in done.stderr
    assert NEW_KEY not in done.stderr
