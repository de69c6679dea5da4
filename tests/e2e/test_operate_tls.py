"""TLS to Cassandra: `db start --tls` makes a node with client encryption and a throw-away CA; the real
`serve --tls --tls-ca-file` ingests and answers the three reads with the certificate and host name
verified; a wrong CA stops `serve` at once with a clear error."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.probe import ask_cql
from tests.support import ROOT
from tests.support.clock import NOW
from tests.support.factories import iso, new_player, session_pair
from tests.support.service import start_service

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LauncherConfig, Path]]:
    """A node of its own on 127.0.0.81 (JMX 7180) with client encryption; yields it and the CA's PEM."""
    config = LauncherConfig(
        base_dir=tmp_path_factory.mktemp("tls") / "cassandra", first_address=81, heap="512m", tls=True
    )
    said: list[str] = []
    start(config, say=said.append)
    try:
        ca = config.base_dir.resolve() / "tls" / "ca.pem"
        assert any(f"--tls --tls-ca-file {ca}" in line for line in said), said
        yield config, ca
    finally:
        stop(config, wipe=True)


def test_the_node_speaks_only_tls_with_a_certificate_naming_its_address(
    tls_node: tuple[LauncherConfig, Path],
) -> None:
    config, ca = tls_node
    address = config.address(1)
    assert ask_cql(address, config.cql_port) is None  # plain text is refused
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection((address, config.cql_port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname=address) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    with (
        socket.create_connection((address, config.cql_port), timeout=10) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="127.0.0.82")


def test_serve_over_tls_ingests_and_answers_the_three_reads(
    tls_node: tuple[LauncherConfig, Path], tmp_path: Path
) -> None:
    config, ca = tls_node
    service = start_service(
        f"ps_tls_{uuid.uuid4().hex[:8]}",
        tmp_path,
        {"--contact-points": config.address(1), "--tls": "", "--tls-ca-file": str(ca), "--clock": iso(NOW)},
    )
    try:
        player = new_player()
        first, second = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
        events = [*session_pair(player, first, country="FI"), *session_pair(player, second, country="SE")]
        with httpx.Client(base_url=service.url, timeout=60) as client:
            r = client.post("/events", json=events)
            assert r.status_code == 200 and r.json()["stored"] == 4
            sessions = client.get(f"/players/{player}/sessions").json()["sessions"]
            assert [s["country"] for s in sessions] == ["SE", "FI"]
            counts = client.get("/session-starts", params={"hours": 3}).json()["countries"]
            assert counts == {"FI": 1, "SE": 1}
            starts = client.get("/session-starts/FI", params={"hours": 3}).json()["starts"]
            assert [s["player_id"] for s in starts] == [player]
            assert client.get("/health/ready").status_code == 200
    finally:
        service.stop()


@pytest.mark.parametrize("ca_flags", [["--tls-ca-file", "wrong"], []], ids=["another CA", "system CAs"])
def test_a_wrong_ca_stops_serve_at_once_with_a_clear_error(
    tls_node: tuple[LauncherConfig, Path], tmp_path: Path, ca_flags: list[str]
) -> None:
    config, _ = tls_node
    if ca_flags:
        other = LauncherConfig(base_dir=tmp_path / "other", first_address=81, tls=True)
        from player_sessions.cassandra_local.tls import ensure_certificates

        ca_flags = ["--tls-ca-file", str(ensure_certificates(other).ca_pem)]
    began = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "player_sessions.cli",
            "serve",
            "--contact-points",
            config.address(1),
            "--port",
            "1",
            "--tls",
            *ca_flags,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    assert done.returncode == 1
    assert time.monotonic() - began < 60
    assert "TLS handshake with Cassandra at 127.0.0.81 failed" in done.stderr
    assert "certificate verify failed" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
