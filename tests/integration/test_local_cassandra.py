"""The single local node the launcher starts: real CQL, real TTLs, and an idempotent `db start`."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cassandra.cluster import Session

from player_sessions.store.connection import open_cluster

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / ".venv" / "bin" / "player-sessions"
TTL_S = 3
# A TTL'd row is gone once its TTL has passed on the replica's clock; allow for a loaded machine.
EXPIRY_DEADLINE_S = 15.0


@pytest.fixture(scope="module")
def session(cassandra_node: str) -> Iterator[Session]:
    # Pin the driver to the one node we mean, so nothing else on the loopback is ever contacted.
    cluster = open_cluster([cassandra_node], only_hosts=[cassandra_node], request_timeout=20)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


@pytest.fixture
def keyspace(session: Session, test_keyspace_name: str) -> Iterator[str]:
    name = f"{test_keyspace_name}_local"
    session.execute(
        f"CREATE KEYSPACE IF NOT EXISTS {name} "
        "WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"
    )
    try:
        yield name
    finally:
        session.execute(f"DROP KEYSPACE IF EXISTS {name}")


def test_row_written_with_ttl_expires(session: Session, keyspace: str) -> None:
    session.execute(f"CREATE TABLE {keyspace}.ttl_probe (id uuid PRIMARY KEY, note text)")
    row_id = uuid.uuid4()
    session.execute(
        f"INSERT INTO {keyspace}.ttl_probe (id, note) VALUES (%s, %s) USING TTL {TTL_S}",
        (row_id, "short-lived"),
    )
    select = session.prepare(f"SELECT note, TTL(note) AS ttl FROM {keyspace}.ttl_probe WHERE id = ?")

    row = session.execute(select, (row_id,)).one()
    assert row is not None, "the row must be readable right after the write"
    assert row.note == "short-lived"
    assert 0 < row.ttl <= TTL_S

    # Poll rather than sleep a fixed time: the test ends as soon as the row has expired.
    deadline = time.monotonic() + EXPIRY_DEADLINE_S
    while (row := session.execute(select, (row_id,)).one()) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert row is None, f"the row written with TTL {TTL_S}s was still there after {EXPIRY_DEADLINE_S}s"


def _cli(*args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), "db", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture()
def own_node(cassandra_node: str) -> str:
    """The node, if this checkout's launcher started it (not a Cassandra that happened to answer)."""
    from player_sessions.cassandra_local import LauncherConfig, status

    if not any(row.up for row in status(LauncherConfig(base_dir=ROOT / ".cassandra"))):
        pytest.skip("the Cassandra in use was not started by this checkout's launcher")
    return cassandra_node


def test_db_start_again_is_a_quick_no_op(own_node: str) -> None:
    began = time.monotonic()
    proc = _cli("start", timeout=60)
    seconds = time.monotonic() - began

    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stdout, proc.stdout + proc.stderr
    # One CQL round trip plus the interpreter's start-up; a real start takes 10 s or more.
    assert seconds < 10, f"`db start` on a running node took {seconds:.1f}s"


def test_db_status_shows_the_node_up(own_node: str) -> None:
    proc = _cli("status", timeout=60)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    node_lines = [line.split() for line in proc.stdout.splitlines()[1:]]
    # Columns: node, address, pid, state, data.
    assert [(cols[1], cols[3]) for cols in node_lines] == [(own_node, "up")], proc.stdout
