"""A 3-node cluster, RF 3, QUORUM: one node is stopped in the middle of a load and brought back later.
No request fails beyond retried 503s, nothing acknowledged is lost, and the answers equal the truth
with all three nodes up and again with another node down (the returned node then has to answer with
the others' writes).

The cluster is our own (127.0.0.61-63, JMX 7160/7260/7360), beside the development node.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.node import Node, nodetool_status
from tests.faults.conftest import (
    FULL,
    BackgroundLoad,
    Service,
    all_bodies,
    assert_answers_equal_truth,
    assert_load_matches_truth,
    bodies_acknowledged_between,
    make_dataset,
    say,
    stored_check,
    wait_until,
)

pytestmark = pytest.mark.faults

FIRST_ADDRESS = 61
PLAYERS, DAYS = (2_000, 21) if FULL else (200, 21)
BATCH = 500


def test_a_node_lost_under_quorum_fails_nothing_and_loses_nothing(
    tmp_path: Path, service_logs: Path, record_property: Callable[[str, object], None],
) -> None:
    data = make_dataset(tmp_path / "data", PLAYERS, DAYS, seed=73)
    config = LauncherConfig(base_dir=tmp_path / "cluster", nodes=3, first_address=FIRST_ADDRESS, heap="512m")
    addresses = [config.address(i) for i in (1, 2, 3)]
    service: Service | None = None
    try:
        booted = start(config, say=lambda line: None)
        assert booted.started, f"something else already answers on {addresses}: stop it first"
        say(f"3-node cluster {addresses} up in {booted.seconds:.1f}s; {data.lines:,} events")
        service = Service(f"ps_faults_quorum_{uuid.uuid4().hex[:8]}", service_logs, {
            "--contact-points": ",".join(addresses), "--replication-factor": "3",
            "--consistency": "QUORUM", "--request-timeout": "15"})
        service.start()
        batches = math.ceil(data.lines / BATCH)
        load = BackgroundLoad(data.events, service.url, batch_size=BATCH, concurrency=4, timeout=60).start()

        load.wait_acknowledged(batches // 3)
        down_at = load.transport.acknowledged()
        node3 = Node(3, config)
        stopped = node3.stop(config.stop_timeout_s)
        assert stopped == "stopped"
        stopped_at = time.monotonic()
        say(f"node 3 {stopped} at {down_at}/{batches} batches acknowledged")

        load.wait_acknowledged(2 * batches // 3)
        start(config, say=lambda line: None)  # starts only the missing node
        back_at = time.monotonic()
        say(f"node 3 back after {back_at - stopped_at:.1f}s, at {load.transport.acknowledged()}/{batches} "
            "batches acknowledged")
        summary = load.join()
        statuses = load.transport.statuses()
        unavailable = [e for e in load.transport.snapshot() if e.status == 503]
        say(f"load done: {summary.batches} batches, {summary.retries} retries; exchanges {statuses}")
        assert_load_matches_truth(summary, data)
        assert set(statuses) <= {"200", "503"}, statuses
        assert all(e.retry_after and int(e.retry_after) > 0 for e in unavailable)
        acked_while_down = len(bodies_acknowledged_between(load.transport, stopped_at, back_at))
        assert acked_while_down > 0, "batches must be acknowledged at QUORUM with node 3 down"
        slowest = max(e.seconds for e in load.transport.snapshot())
        assert slowest < 15 + 5, f"a request took {slowest:.1f}s"

        checked, missing = stored_check(addresses, service.keyspace, all_bodies(load.transport),
                                        consistency="QUORUM")
        assert not missing, f"{len(missing)} acknowledged events are not in Cassandra: {missing[:5]}"
        all_up = assert_answers_equal_truth(service.url, data.truth)

        # Another node down: QUORUM now needs node 3, which missed the writes made while it was away.
        node2 = Node(2, config)
        assert node2.stop(config.stop_timeout_s) == "stopped"
        wait_until(lambda: nodetool_status(Node(1, config)).up == 2, "nodetool to show 2 nodes UN", 60, 0.5)
        two_up = assert_answers_equal_truth(service.url, data.truth)
        say(f"{acked_while_down} batches acknowledged with node 3 down; slowest request {slowest:.1f}s; "
            f"{checked:,} acknowledged events read back at QUORUM, 0 missing; answers equal the truth with "
            f"3 nodes ({all_up.retried_503} 503s retried), with node 2 down ({two_up.retried_503} retried)")
        for name, value in (("events", data.lines), ("exchanges", statuses),
                            ("node3_down_seconds", round(back_at - stopped_at, 1)),
                            ("acknowledged_events_checked", checked),
                            ("read_503s_retried", all_up.retried_503 + two_up.retried_503)):
            record_property(name, value)
    finally:
        if service is not None:
            service.stop()
        stop(config, wipe=True, say=lambda line: None)
