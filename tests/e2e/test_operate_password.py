"""`serve --username/--password` against a password-protected Cassandra (launcher `--password-auth`):
ingest and read work; a wrong password or none stops `serve` at once with a clear error."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.e2e.conftest import ROOT, start_service
from tests.e2e.factories import NOW, iso, new_player, session_pair

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def secured_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LauncherConfig]:
    """A node of its own on 127.0.0.71 with PasswordAuthenticator (superuser cassandra/cassandra)."""
    config = LauncherConfig(base_dir=tmp_path_factory.mktemp("secured") / "cassandra", first_address=71,
                            password_auth=True, heap="512m")
    start(config)
    try:
        yield config
    finally:
        stop(config, wipe=True)


def test_serve_with_credentials_ingests_and_reads(secured_node: LauncherConfig, tmp_path: Path) -> None:
    service = start_service(f"ps_secured_{uuid.uuid4().hex[:8]}", tmp_path, {
        "--contact-points": secured_node.address(1), "--username": "cassandra", "--password": "cassandra",
        "--clock": iso(NOW)})
    try:
        player = new_player()
        with httpx.Client(base_url=service.url, timeout=60) as client:
            r = client.post("/events", json=[*session_pair(player, NOW - timedelta(hours=2), country="FI"),
                                             *session_pair(player, NOW - timedelta(hours=1), country="SE")])
            assert r.status_code == 200 and r.json()["stored"] == 4
            sessions = client.get(f"/players/{player}/sessions").json()["sessions"]
            assert [s["country"] for s in sessions] == ["SE", "FI"]
            counts = client.get("/session-starts", params={"hours": 3}).json()["countries"]
            assert counts == {"FI": 1, "SE": 1}
    finally:
        service.stop()


@pytest.mark.parametrize(("flags", "who"), [
    (["--username", "cassandra", "--password", "not-the-password"], "user 'cassandra'"),
    ([], "no credentials"),
])
def test_wrong_or_missing_credentials_stop_serve_with_a_clear_error(
        secured_node: LauncherConfig, flags: list[str], who: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "player_sessions.cli", "serve", "--contact-points", secured_node.address(1),
         "--port", "1", *flags],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(Path.home())})
    assert done.returncode == 1
    assert f"refused the login ({who})" in done.stderr
    assert "check --username/--password" in done.stderr
    assert "not-the-password" not in done.stderr
