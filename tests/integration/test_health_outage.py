"""Cassandra stopped under a running service: /health/live stays 200 (a liveness probe must not restart
a healthy process), /health/ready and /health turn 503, and ready comes back with Cassandra."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.support.service import ServiceProcess, start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LauncherConfig]:
    """A node of its own (127.0.0.85, JMX 7184), so stopping it disturbs no other test."""
    config = LauncherConfig(
        base_dir=tmp_path_factory.mktemp("probes") / "cassandra", first_address=85, heap="512m"
    )
    start(config)
    try:
        yield config
    finally:
        stop(config, wipe=True)


@pytest.fixture(scope="module")
def probed_service(
    own_node: LauncherConfig, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    service = start_service(
        f"ps_probes_{uuid.uuid4().hex[:8]}",
        tmp_path_factory.mktemp("probe-logs"),
        {"--contact-points": own_node.address(1)},
    )
    yield service
    service.stop()


def wait_for(client: httpx.Client, path: str, status: int, within_s: float) -> None:
    began = time.monotonic()
    while client.get(path).status_code != status:
        assert time.monotonic() - began < within_s, f"{path} did not turn {status} within {within_s} s"
        time.sleep(0.5)


def test_live_stays_up_while_ready_follows_cassandra(
    own_node: LauncherConfig, probed_service: ServiceProcess
) -> None:
    with httpx.Client(base_url=probed_service.url, timeout=30) as client:
        for path in ("/health/live", "/health/ready", "/health"):
            assert client.get(path).status_code == 200, path

        stop(own_node)
        wait_for(client, "/health/ready", 503, within_s=30)
        ready = client.get("/health/ready")
        assert ready.json()["status"] == "unavailable" and "LOCAL_QUORUM" in ready.json()["error"]
        assert int(ready.headers["retry-after"]) > 0
        assert client.get("/health").status_code == 503
        for _ in range(5):
            began = time.monotonic()
            live = client.get("/health/live")
            assert (live.status_code, live.json()) == (200, {"status": "ok"})
            assert time.monotonic() - began < 1.0  # answered without waiting on Cassandra

        start(own_node)
        wait_for(client, "/health/ready", 200, within_s=60)
        assert client.get("/health/live").status_code == 200
    assert probed_service.alive()  # the same process throughout
