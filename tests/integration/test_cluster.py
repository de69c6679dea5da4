"""A 3-node cluster from the launcher keeps serving QUORUM reads and writes with one node down.

The cluster sits beside the single development node on other loopback addresses (127.0.0.11-13, JMX
7110/7210/7310, same CQL/storage ports). Both use the same cluster name, so this test also checks that
they never find each other: each cluster's only seed is its own first node.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.cluster import Cluster, Session
from cassandra.query import PreparedStatement

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.node import Node, nodetool_status
from player_sessions.cassandra_local.preflight import port_open
from player_sessions.store.connection import open_cluster

pytestmark = pytest.mark.slow

FIRST_ADDRESS = 11
CLUSTER_ADDRESSES = [f"127.0.0.{FIRST_ADDRESS + i}" for i in range(3)]
ROWS_BEFORE = 20
ROWS_AFTER = 10


def _session(contact_points: list[str], allowed: list[str]) -> tuple[Cluster, Session]:
    # The driver learns every peer from system.peers; the whitelist keeps it from ever sending a request
    # to an address outside `allowed` (in particular to the single node on 127.0.0.1).
    cluster = open_cluster(contact_points, only_hosts=allowed, consistency="QUORUM", request_timeout=20)
    return cluster, cluster.connect()


def _peers(address: str) -> set[str]:
    cluster, session = _session([address], [address])
    try:
        return {str(row.peer) for row in session.execute("SELECT peer FROM system.peers_v2")}
    finally:
        cluster.shutdown()


def _wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:.0f}s waiting for {what}"
        time.sleep(0.5)


def _read_all(session: Session, select: PreparedStatement, rows: dict[uuid.UUID, int]) -> None:
    for row_id, score in rows.items():
        row = session.execute(select, (row_id,)).one()
        assert row is not None, f"row {row_id} missing"
        assert row.score == score


def test_three_nodes_serve_quorum_with_one_node_down(
    cassandra_node: str,
    tmp_path: Path,
    test_keyspace_name: str,
    record_property: Callable[[str, object], None],
) -> None:
    base_dir = tmp_path / "cluster"
    config = LauncherConfig(base_dir=base_dir, nodes=3, first_address=FIRST_ADDRESS, heap="512m")
    keyspace = f"{test_keyspace_name}_cluster"
    driver: Cluster | None = None
    try:
        result = start(config)
        assert result.started
        record_property("cluster_boot_seconds", round(result.seconds, 1))
        print(f"\n3-node cluster booted in {result.seconds:.1f}s")

        # --- the two clusters stay apart ---------------------------------------------------------
        for i in (1, 2, 3):
            yaml = (config.node_dir(i) / "conf" / "cassandra.yaml").read_text()
            assert f'seeds: "{CLUSTER_ADDRESSES[0]}:7000"' in yaml
        # Each node has its own local JMX port (the launcher once gave node 2 port 14210 and node 3 21310).
        assert [config.jmx_port(i) for i in (1, 2, 3)] == [7110, 7210, 7310]
        assert all(port_open("127.0.0.1", config.jmx_port(i)) for i in (1, 2, 3))
        assert nodetool_status(Node(1, config)).up == 3
        for address in CLUSTER_ADDRESSES:
            assert _peers(address) == set(CLUSTER_ADDRESSES) - {address}
        assert not _peers(cassandra_node) & set(CLUSTER_ADDRESSES), "the single node joined the cluster"

        driver, session = _session(CLUSTER_ADDRESSES, CLUSTER_ADDRESSES)
        metadata = driver.metadata
        assert {h.address for h in metadata.all_hosts()} == set(CLUSTER_ADDRESSES)

        # --- QUORUM with all three nodes ---------------------------------------------------------
        session.execute(
            f"CREATE KEYSPACE {keyspace} "
            "WITH replication = {'class': 'NetworkTopologyStrategy', 'datacenter1': 3}"
        )
        session.execute(f"CREATE TABLE {keyspace}.scores (id uuid PRIMARY KEY, score int)")
        insert = session.prepare(f"INSERT INTO {keyspace}.scores (id, score) VALUES (?, ?)")
        select = session.prepare(f"SELECT score FROM {keyspace}.scores WHERE id = ?")
        assert insert.consistency_level is None  # QUORUM comes from the execution profile
        before = {uuid.uuid4(): n for n in range(ROWS_BEFORE)}
        for row_id, score in before.items():
            session.execute(insert, (row_id, score))
        _read_all(session, select, before)

        # --- node 3 down: QUORUM (2 of 3) still works, ALL does not ------------------------------
        node3 = Node(3, config)
        assert node3.stop(config.stop_timeout_s) == "stopped"
        # Wait until the survivors' gossip and the driver both see it down, so no request is routed
        # to it and no coordinator waits on it.
        _wait_until(lambda: nodetool_status(Node(1, config)).up == 2, "nodetool to show 2 nodes UN")
        _wait_until(
            lambda: not any(h.is_up for h in metadata.all_hosts() if h.address == CLUSTER_ADDRESSES[2]),
            "the driver to mark 127.0.0.13 down",
        )

        _read_all(session, select, before)
        after = {uuid.uuid4(): 1000 + n for n in range(ROWS_AFTER)}
        for row_id, score in after.items():
            session.execute(insert, (row_id, score))
        _read_all(session, select, after)

        insert.consistency_level = ConsistencyLevel.ALL
        # The coordinator refuses up front (it knows only 2 of the 3 replicas are alive): proof that
        # node 3 really is down, and that QUORUM above succeeded without it.
        with pytest.raises(Unavailable) as refused:
            session.execute(insert, (uuid.uuid4(), -1))
        assert refused.value.alive_replicas == 2
        assert refused.value.required_replicas == 3
    finally:
        if driver is not None:
            driver.shutdown()
        stopped_at = time.monotonic()
        stop(config, wipe=True)
        print(f"cluster stopped and wiped in {time.monotonic() - stopped_at:.1f}s")
    assert not base_dir.exists()
