"""A 3-node cluster, RF 3, QUORUM: one node is stopped in the middle of a load and brought back later.
No request fails beyond retried 503s, nothing acknowledged is lost, and the answers equal the truth
with all three nodes up and again with another node down (the returned node then has to answer with
the others' writes).

The cluster is our own (127.0.0.61-63, JMX 7160/7260/7360), beside the development node.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.node import Node, nodetool_status
from tests.faults.harness import (
    FULL,
    BackgroundLoad,
    all_bodies,
    assert_answers_equal_truth,
    assert_load_matches_truth,
    bodies_acknowledged_between,
    fault_service,
    health,
    make_dataset,
    rollup_diagnosis,
    say,
    stored_check,
    wait_until,
)
from tests.support.clock import NOW
from tests.support.factories import session_pair
from tests.support.service import ServiceProcess

FIRST_ADDRESS = 61
# CI: ~17,000 events in ~85 batches.
PLAYERS, DAYS = (2_000, 21) if FULL else (600, 21)
BATCH = 500 if FULL else 200
LOAD_S = 60.0


def test_a_node_lost_under_quorum_fails_nothing_and_loses_nothing(
    tmp_path: Path,
    service_logs: Path,
    record_property: Callable[[str, object], None],
) -> None:
    data = make_dataset(tmp_path / "data", PLAYERS, DAYS, seed=73)
    config = LauncherConfig(base_dir=tmp_path / "cluster", nodes=3, first_address=FIRST_ADDRESS, heap="512m")
    addresses = [config.address(i) for i in (1, 2, 3)]
    service: ServiceProcess | None = None
    try:
        booted = start(config, say=lambda line: None)
        assert booted.started, f"something else already answers on {addresses}: stop it first"
        say(f"3-node cluster {addresses} up in {booted.seconds:.1f}s; {data.lines:,} events")
        service = fault_service(
            f"ps_faults_quorum_{uuid.uuid4().hex[:8]}",
            service_logs,
            {
                "--contact-points": ",".join(addresses),
                "--replication-factor": "3",
                "--consistency": "QUORUM",
                "--request-timeout": "15",
            },
        )
        service.start()
        batches = math.ceil(data.lines / BATCH)
        # Paced to last ~LOAD_S whatever the service's speed: node 3 is stopped at a third of it.
        load = BackgroundLoad(
            data.events,
            service.url,
            batch_size=BATCH,
            concurrency=4,
            timeout=60,
            lasting_s=LOAD_S,
            batches=batches,
        ).start()

        load.wait_acknowledged(batches // 3)
        down_at = load.transport.acknowledged()
        node3 = Node(3, config)
        stopped = node3.stop(config.stop_timeout_s)
        assert stopped == "stopped"
        stopped_at = time.monotonic()
        acked_at_stop = load.transport.acknowledged()
        say(f"node 3 {stopped} at {down_at}/{batches} batches acknowledged ({acked_at_stop} once down)")
        assert acked_at_stop < batches, "the load ended before node 3 was down: use a larger dataset"

        load.wait_acknowledged(min(batches, max(2 * batches // 3, acked_at_stop + 3)))
        start(config, say=lambda line: None)  # starts only the missing node
        back_at = time.monotonic()
        say(
            f"node 3 back after {back_at - stopped_at:.1f}s, at {load.transport.acknowledged()}/{batches} "
            "batches acknowledged"
        )
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

        checked, missing = stored_check(
            addresses, service.config.keyspace, all_bodies(load.transport), consistency="QUORUM"
        )
        assert not missing, f"{len(missing)} acknowledged events are not in Cassandra: {missing[:5]}"
        try:
            all_up = assert_answers_equal_truth(service.url, data.truth)
        except AssertionError as exc:
            where = rollup_diagnosis(addresses, service.config.keyspace, data.truth)
            raise AssertionError(f"{exc}\nrollups: {where}") from None
        if os.environ.get("PS_FAULTS_DIAGNOSE"):  # the same report on a pass: checks the checker
            say(f"rollups: {rollup_diagnosis(addresses, service.config.keyspace, data.truth)}")

        # Another node down: QUORUM now needs node 3, which missed the writes made while it was away.
        node2 = Node(2, config)
        assert node2.stop(config.stop_timeout_s) == "stopped"
        wait_until(lambda: nodetool_status(Node(1, config)).up == 2, "nodetool to show 2 nodes UN", 60, 0.5)
        two_up = assert_answers_equal_truth(service.url, data.truth)
        say(
            f"{acked_while_down} batches acknowledged with node 3 down; slowest request {slowest:.1f}s; "
            f"{checked:,} acknowledged events read back at QUORUM, 0 missing; answers equal the truth with "
            f"3 nodes ({all_up.retried_503} 503s retried), with node 2 down ({two_up.retried_503} retried)"
        )
        for name, value in (
            ("events", data.lines),
            ("exchanges", statuses),
            ("node3_down_seconds", round(back_at - stopped_at, 1)),
            ("acknowledged_events_checked", checked),
            ("read_503s_retried", all_up.retried_503 + two_up.retried_503),
        ):
            record_property(name, value)

        write_timeouts_become_503_then_the_retry_stores_all(service, config, record_property)
    finally:
        resume(Node(3, config))
        if service is not None:
            service.stop()
        stop(config, wipe=True, say=lambda line: None)


def write_timeouts_become_503_then_the_retry_stores_all(
    service: ServiceProcess,
    config: LauncherConfig,
    record_property: Callable[[str, object], None],
) -> None:
    """Fault 4 on the real cluster: node 2 is down (known), node 3 is frozen with SIGSTOP (still
    believed up), so a QUORUM write reaches node 1 and waits for node 3 until Cassandra's own
    write_request_timeout (5 s): a real WriteTimeout. The batch must get 503 + Retry-After, never a
    200; once the nodes are back, the client's retry of the same batch is stored whole."""
    player = f"timeout-{uuid.uuid4().hex[:12]}"
    began = NOW - timedelta(hours=5)
    batch = [e for i in range(10) for e in session_pair(player, began + timedelta(minutes=15 * i))]
    node3 = Node(3, config)
    pid = node3.recorded_pid()
    assert pid is not None
    before = scrape_errors(service.url)
    os.kill(pid, signal.SIGSTOP)
    try:
        answers = []
        with httpx.Client(base_url=service.url, timeout=60) as client:
            for _ in range(2):
                t0 = time.monotonic()
                r = client.post("/events", json=batch)
                answers.append((r.status_code, round(time.monotonic() - t0, 1), r.headers.get("retry-after")))
        say(f"node 2 down, node 3 frozen: POST /events answered {answers}")
        assert all(status == 503 and retry and int(retry) > 0 for status, _, retry in answers), answers
        assert all(seconds < 15 + 5 for _, seconds, _ in answers), answers
        errors = {k: v - before.get(k, 0) for k, v in scrape_errors(service.url).items()}
        say(f"Cassandra errors seen by the service meanwhile: {errors}")
        assert any(v > 0 for k, v in errors.items() if "Timeout" in k or "Timed" in k), errors
    finally:
        resume(node3)
    start(config, say=lambda line: None)  # node 2 again
    wait_until(lambda: health(service.url) == 200, "/health 200 with the nodes back", 60)
    with httpx.Client(base_url=service.url, timeout=60) as client:
        for _ in range(30):  # the client's retry, as the loader would do it
            r = client.post("/events", json=batch)
            if r.status_code != 503:
                break
            time.sleep(1)
        assert r.status_code == 200 and r.json()["stored"] == len(batch), r.text
        got = client.get(f"/players/{player}/sessions").json()["sessions"]
    assert len(got) == 10
    record_property("write_timeout_answers", answers)


def resume(node: Node) -> None:
    pid = node.recorded_pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def scrape_errors(url: str) -> dict[str, float]:
    """player_sessions_cassandra_errors_total by driver error name, from /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=30).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "player_sessions_cassandra_errors_total":
                key = sample.labels.get("error", "?")
                counts[key] = counts.get(key, 0) + sample.value
    return counts
