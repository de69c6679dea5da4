"""Cassandra stopped in the middle of a load: every request gets 503 + Retry-After (never a 500, never a
hang past --request-timeout), /health says 503; once the node is back the same service process recovers
within 30 s, the loader finishes, nothing acknowledged is lost and the answers equal the truth.

The node is our own (127.0.0.51, `own_node`): the development node is never stopped.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from player_sessions.cassandra_local import LauncherConfig, start, stop
from tests.faults.harness import (
    FULL,
    BackgroundLoad,
    all_bodies,
    assert_answers_equal_truth,
    assert_load_matches_truth,
    fault_service,
    health,
    make_dataset,
    say,
    stored_check,
    wait_until,
)
from tests.support.clock import NOW
from tests.support.factories import end

PLAYERS, DAYS = (4_000, 21) if FULL else (300, 21)
BATCH = 500
REQUEST_TIMEOUT_S = 15.0
DOWN_FOR_S = 8.0
LOAD_S = 60.0


def test_cassandra_down_mid_load_gives_503_then_the_same_process_recovers(
    own_node: LauncherConfig,
    tmp_path: Path,
    service_logs: Path,
    record_property: Callable[[str, object], None],
) -> None:
    data = make_dataset(tmp_path / "data", PLAYERS, DAYS, seed=72)
    address = own_node.address(1)
    service = fault_service(
        f"ps_faults_down_{uuid.uuid4().hex[:8]}",
        service_logs,
        {"--contact-points": address, "--request-timeout": str(REQUEST_TIMEOUT_S)},
    )
    service.start()
    pid = service.pid
    try:
        batches = math.ceil(data.lines / BATCH)
        # Paced to last ~LOAD_S whatever the service's speed: the node is stopped at a third of it.
        load = BackgroundLoad(
            data.events,
            service.url,
            batch_size=BATCH,
            concurrency=4,
            timeout=REQUEST_TIMEOUT_S * 4,
            lasting_s=LOAD_S,
            batches=batches,
        ).start()
        load.wait_acknowledged(batches // 3)
        say(f"{data.lines:,} events; stopping the node at {load.transport.acknowledged()}/{batches} batches")
        stop_began = time.monotonic()
        stop(own_node, say=lambda line: None)
        stopped_at = time.monotonic()
        say(f"node stopped in {stopped_at - stop_began:.1f}s")

        # While it is down: /health 503, a POST 503 + Retry-After, both fast.
        assert health(service.url) == 503
        with httpx.Client(base_url=service.url, timeout=REQUEST_TIMEOUT_S * 2) as client:
            began = time.monotonic()
            probe = end(uuid.uuid4().hex, str(uuid.uuid4()), NOW)
            r = client.post("/events", json=[probe])
            probe_s = time.monotonic() - began
            assert r.status_code == 503, r.text
            assert int(r.headers["retry-after"]) > 0
            assert "retry" in r.json()["error"]
            assert probe_s < REQUEST_TIMEOUT_S
            assert client.get("/session-starts", params={"hours": 24}).status_code == 503
        time.sleep(max(0.0, DOWN_FOR_S - (time.monotonic() - stopped_at)))
        acked_while_down = load.transport.acknowledged()

        start(own_node, say=lambda line: None)
        node_ready = time.monotonic()
        say(
            f"node down for {node_ready - stopped_at:.1f}s (start took {node_ready - stop_began:.1f}s "
            "from the stop)"
        )
        recovered_s = wait_until(
            lambda: health(service.url) == 200, "/health 200 after the node came back", timeout=30
        )
        assert service.alive() and service.pid == pid, "the same process must recover by itself"
        summary = load.join()
        exchanges = load.transport.snapshot()
        first_ack = min(
            (e.began + e.seconds for e in exchanges if e.body is not None and e.began > node_ready),
            default=float("nan"),
        )
        statuses = load.transport.statuses()
        slowest = max(e.seconds for e in exchanges)
        unavailable = [e for e in exchanges if e.status == 503]
        say(
            f"recovered {recovered_s:.1f}s after the node was ready (first batch acknowledged after "
            f"{first_ack - node_ready:.1f}s); exchanges {statuses}; slowest {slowest:.1f}s; "
            f"{summary.retries} retries"
        )

        assert_load_matches_truth(summary, data)
        assert set(statuses) <= {"200", "503"}, statuses
        assert unavailable, "the load should have met the outage"
        assert all(e.retry_after and int(e.retry_after) > 0 for e in unavailable)
        assert slowest < REQUEST_TIMEOUT_S + 5, f"a request took {slowest:.1f}s"
        assert acked_while_down <= load.transport.acknowledged()

        checked, missing = stored_check([address], service.config.keyspace, all_bodies(load.transport))
        assert not missing, f"{len(missing)} acknowledged events are not in Cassandra: {missing[:5]}"
        answers = assert_answers_equal_truth(service.url, data.truth)
        say(
            f"{checked:,} acknowledged events read back, 0 missing; {answers.players:,} players and "
            f"{answers.windows} windows equal the truth"
        )
        for name, value in (
            ("events", data.lines),
            ("exchanges", statuses),
            ("recovery_seconds", round(recovered_s, 1)),
            ("slowest_request_seconds", round(slowest, 1)),
            ("acknowledged_events_checked", checked),
        ):
            record_property(name, value)
    finally:
        service.stop()
        start(own_node, say=lambda line: None)  # leave it up for the next test (no-op if it is)
