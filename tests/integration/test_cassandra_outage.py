"""Cassandra stopped under a running service: 503 with Retry-After, /health 503, then recovery."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.support.factories import session_pair
from tests.support.service import ServiceProcess, start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LauncherConfig]:
    """A node of its own (127.0.0.41), so stopping it disturbs no other test."""
    config = LauncherConfig(
        base_dir=tmp_path_factory.mktemp("outage") / "cassandra", first_address=41, heap="512m"
    )
    start(config)
    try:
        yield config
    finally:
        stop(config, wipe=True)


@pytest.fixture(scope="module")
def outage_service(own_node: LauncherConfig, tmp_path: Path | None = None) -> Iterator[ServiceProcess]:
    service = start_service(
        f"ps_outage_{uuid.uuid4().hex[:8]}",
        Path("/tmp"),
        {"--contact-points": own_node.address(1), "--request-timeout": "15"},
    )
    yield service
    service.stop()


def batch() -> list[dict[str, str]]:
    now = datetime.now(UTC)
    return list(session_pair(uuid.uuid4().hex, now - timedelta(minutes=30)))


def test_outage_gives_503_and_the_service_recovers_by_itself(
    own_node: LauncherConfig, outage_service: ServiceProcess
) -> None:
    with httpx.Client(base_url=outage_service.url, timeout=30) as client:
        assert client.post("/events", json=batch()).status_code == 200

        stop(own_node)
        r = client.post("/events", json=batch())
        assert r.status_code == 503
        assert int(r.headers["retry-after"]) > 0
        assert "retry" in r.json()["error"]
        health = client.get("/health")
        assert health.status_code == 503
        assert client.get(f"/players/{uuid.uuid4().hex}/sessions").status_code == 503

        start(own_node)
        began = time.monotonic()
        while client.get("/health").status_code != 200:
            assert time.monotonic() - began < 60, "service did not recover within 60 s"
            time.sleep(0.5)
        events = batch()
        r = client.post("/events", json=events)
        assert r.status_code == 200 and r.json()["stored"] == 2
        sessions = client.get(f"/players/{events[0]['player_id']}/sessions").json()["sessions"]
        assert [s["session_id"] for s in sessions] == [events[0]["session_id"]]
        assert outage_service.alive()  # the same process, never restarted
