"""Optional API keys: POST and DELETE need `Authorization: Bearer <key>`, GET too with --protect-reads;
keys never reach the logs; the loader sends its key in that one header."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from player_sessions.datagen.load import LoadOptions, run_load
from tests.support import ROOT
from tests.support.clock import NOW
from tests.support.factories import iso, new_player, session_pair
from tests.support.service import ServiceProcess, start_service

LOADER_KEY = "ld-" + uuid.uuid4().hex  # in the file as is
DASHBOARD_KEY = "db-" + uuid.uuid4().hex  # in the file only as its SHA-256
WRONG_KEY = "wr-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def keys_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "api-keys"
    digest = hashlib.sha256(DASHBOARD_KEY.encode()).hexdigest()
    path.write_text(f"# name:key, one per line\nloader:{LOADER_KEY}\n\ndashboard:sha256:{digest}\n")
    return path


@pytest.fixture(scope="module")
def services(
    cassandra_node: str, test_keyspace_name: str, keys_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    logs = tmp_path_factory.mktemp("auth-logs")
    keyspace = f"{test_keyspace_name}_auth"
    started = {
        "writes": start_service(keyspace, logs, {"--clock": iso(NOW), "--api-keys-file": str(keys_file)}),
        "reads": start_service(
            keyspace, logs, {"--clock": iso(NOW), "--api-keys-file": str(keys_file), "--protect-reads": ""}
        ),
    }
    yield started
    for service in started.values():
        service.stop()


INGEST_KEY = "in-" + uuid.uuid4().hex
READ_KEY = "rd-" + uuid.uuid4().hex
ERASE_KEY = "er-" + uuid.uuid4().hex
ANY_KEY = "an-" + uuid.uuid4().hex  # a line without scopes: may do everything


@pytest.fixture(scope="module")
def scoped_services(
    cassandra_node: str, test_keyspace_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    folder = tmp_path_factory.mktemp("scoped")
    path = folder / "api-keys"
    digest = hashlib.sha256(READ_KEY.encode()).hexdigest()
    path.write_text(
        f"loader:{INGEST_KEY} ingest\ndashboard:sha256:{digest}  read, metrics\n"
        f"privacy:{ERASE_KEY}\terase\nold:{ANY_KEY}\n"
    )
    keyspace = f"{test_keyspace_name}_scoped"
    started = {
        "reads": start_service(
            keyspace, folder, {"--clock": iso(NOW), "--api-keys-file": str(path), "--protect-reads": ""}
        ),
        "metrics": start_service(
            keyspace, folder, {"--clock": iso(NOW), "--api-keys-file": str(path), "--protect-metrics": ""}
        ),
    }
    yield started
    for service in started.values():
        service.stop()


def test_each_key_may_do_only_what_its_scopes_name(scoped_services: dict[str, ServiceProcess]) -> None:
    player = new_player()
    batch = list(session_pair(player, NOW - timedelta(hours=1)))
    reads = (f"/players/{player}/sessions", "/session-starts?hours=2", "/session-starts/FI?hours=2")
    with httpx.Client(base_url=scoped_services["reads"].url, timeout=30) as client:
        assert client.post("/events", json=batch, headers=bearer(INGEST_KEY)).json()["stored"] == 2
        for key, scope in ((READ_KEY, "ingest"), (ERASE_KEY, "ingest")):
            refused = client.post("/events", json=batch, headers=bearer(key))
            assert refused.status_code == 403, key
            assert refused.json()["field"] == "authorization"
            assert f"lacks the `{scope}` scope" in refused.json()["error"]
        for path in (*reads, "/metrics"):
            assert client.get(path, headers=bearer(READ_KEY)).status_code == 200, path
            assert client.get(path, headers=bearer(INGEST_KEY)).status_code == 403, path
            assert client.get(path, headers=bearer(ERASE_KEY)).status_code == 403, path
            assert client.get(path, headers=bearer(ANY_KEY)).status_code == 200, path
        assert client.get(reads[0], headers=bearer(READ_KEY)).json()["sessions"]
        for key in (INGEST_KEY, READ_KEY):
            refused = client.delete(f"/players/{player}", headers=bearer(key))
            assert refused.status_code == 403 and "lacks the `erase` scope" in refused.json()["error"]
        assert client.get(reads[0], headers=bearer(READ_KEY)).json()["sessions"]  # nothing was erased
        assert client.delete(f"/players/{player}", headers=bearer(ERASE_KEY)).status_code == 202
        assert client.get(reads[0], headers=bearer(READ_KEY)).json()["sessions"] == []
        assert client.post("/events", json=batch, headers=bearer(ANY_KEY)).json()["stored"] == 2
        assert client.delete(f"/players/{player}", headers=bearer(ANY_KEY)).status_code == 202


def test_protect_metrics_closes_only_metrics(scoped_services: dict[str, ServiceProcess]) -> None:
    with httpx.Client(base_url=scoped_services["metrics"].url, timeout=30) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(INGEST_KEY)).status_code == 403
        assert client.get("/metrics", headers=bearer(READ_KEY)).status_code == 200
        assert client.get("/session-starts", params={"hours": 1}).status_code == 200  # reads stay open


def test_keys_without_scopes_are_named_in_a_warning(scoped_services: dict[str, ServiceProcess]) -> None:
    log = scoped_services["reads"].log_path.read_text()
    warnings = [line for line in log.splitlines() if "without scopes" in line]
    assert len(warnings) == 1 and "WARNING" in warnings[0] and ": old;" in warnings[0]
    assert ANY_KEY not in log


def announce_huge_body(url: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000000\r\n\r\n["
        )
        return sock.recv(4096)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_writes_need_a_valid_key_reads_stay_open(services: dict[str, ServiceProcess]) -> None:
    url = services["writes"].url
    player = new_player()
    batch = list(session_pair(player, NOW - timedelta(hours=1)))
    with httpx.Client(base_url=url, timeout=30) as client:
        missing = client.post("/events", json=batch)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json() == {
            "error": "authorization: send `Authorization: Bearer <api key>`",
            "field": "authorization",
        }
        assert (
            client.post("/events", json=batch, headers={"Authorization": f"Basic {LOADER_KEY}"}).status_code
            == 401
        )
        assert client.post("/events", json=batch, headers={"X-API-Key": LOADER_KEY}).status_code == 401
        wrong = client.post("/events", json=batch, headers=bearer(WRONG_KEY))
        assert wrong.status_code == 403 and wrong.json()["field"] == "authorization"
        # Refused before the body is read: a terabyte announced and none sent still gets 401, not 413.
        assert announce_huge_body(url).startswith(b"HTTP/1.1 401 ")

        assert client.post("/events", json=batch, headers=bearer(LOADER_KEY)).json()["stored"] == 2
        assert len(client.get(f"/players/{player}/sessions").json()["sessions"]) == 1  # reads open
        assert client.get("/session-starts", params={"hours": 2}).status_code == 200
        assert client.get("/metrics").status_code == 200
        assert client.get("/health").status_code == 200

        assert client.delete(f"/players/{player}").status_code == 401
        assert client.delete(f"/players/{player}", headers=bearer(WRONG_KEY)).status_code == 403
        assert client.delete(f"/players/{player}", headers=bearer(DASHBOARD_KEY)).status_code == 202

        schema = client.get("/openapi.json").json()
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
        assert {"401", "403"} <= schema["paths"]["/events"]["post"]["responses"].keys()


def test_protect_reads_closes_every_get_but_health_and_the_page(services: dict[str, ServiceProcess]) -> None:
    with httpx.Client(base_url=services["reads"].url, timeout=30) as client:
        for path in (
            f"/players/{new_player()}/sessions",
            "/session-starts?hours=1",
            "/session-starts/FI?hours=1",
            "/metrics",
        ):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=bearer(WRONG_KEY)).status_code == 403, path
            assert client.get(path, headers=bearer(DASHBOARD_KEY)).status_code == 200, path
        assert client.get("/health").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "player-sessions" in page.text
        assert client.get("/static/app.js").status_code == 200


def test_the_loader_sends_its_key_as_bearer(services: dict[str, ServiceProcess], tmp_path: Path) -> None:
    url = services["writes"].url
    events = tmp_path / "events.jsonl"
    player = new_player()
    events.write_text(
        "\n".join(
            httpx.Request("POST", "/", json=e).content.decode()
            for e in session_pair(player, NOW - timedelta(hours=3))
        )
        + "\n"
    )
    options = {"input": events, "url": url, "progress": False, "quiet": True, "handle_sigint": False}
    refused = run_load(LoadOptions(**options))  # type: ignore[arg-type]
    assert not refused.complete and refused.error is not None and "--api-key" in refused.error
    loaded = run_load(LoadOptions(**options, api_key=LOADER_KEY))  # type: ignore[arg-type]
    assert loaded.complete and loaded.stored == 2


def test_logs_name_the_key_and_never_show_it(services: dict[str, ServiceProcess]) -> None:
    service = services["writes"]
    httpx.post(
        f"{service.url}/events",
        json=list(session_pair(new_player(), NOW - timedelta(hours=1))),
        headers={**bearer(LOADER_KEY), "X-Request-ID": "auth-log-check"},
        timeout=30,
    )
    # The access line is written once the response has been sent: the client can be faster than it.
    deadline = time.monotonic() + 10
    while True:
        log = service.log_path.read_text()
        lines = [line for line in log.splitlines() if "id=auth-log-check" in line]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert lines, "no access line for the request"
    line = lines[0]
    # Text format (the default): readable, one line per request.
    assert "player_sessions.access: POST /events 200 in " in line and "2 events" in line
    assert line.endswith("[id=auth-log-check key=loader]")
    for secret in (LOADER_KEY, DASHBOARD_KEY, WRONG_KEY):
        assert secret not in log


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("loader:short\n", "line 1 (loader): the key must be 16-256"),
        ("a:aaaaaaaaaaaaaaaaaaaa\na:bbbbbbbbbbbbbbbbbbbb\n", "line 2: the name 'a' is used twice"),
        ("# only a comment\n", "no keys"),
        ("no colon here\n", "line 1: expected `name:key`"),
        ("loader:aaaaaaaaaaaaaaaaaaaa ingest,delete\n", "line 1 (loader): unknown scope 'delete'"),
    ],
)
def test_a_bad_keys_file_stops_serve_with_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys"
    path.write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "player_sessions.cli", "serve", "--api-keys-file", str(path), "--port", "1"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert done.returncode == 1
    assert message in done.stderr and "bbbbbbbbbbbbbbbbbbbb" not in done.stderr
