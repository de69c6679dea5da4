"""The service is SIGKILLed twice in the middle of a load and restarted on the same port: the loader
retries what was cut, every acknowledged event is in Cassandra, and the answers equal the truth.

Cassandra (the development node) is never touched here: only the API process dies.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from tests.faults.harness import (
    BackgroundLoad,
    all_bodies,
    assert_answers_equal_truth,
    assert_load_matches_truth,
    bodies_acknowledged_between,
    fault_service,
    make_dataset,
    say,
    stored_check,
)

# The contract is >= 200,000 events, so CI runs this one at full size too (~4 min on 2 cores).
PLAYERS, DAYS = 8_000, 21
BATCH = 1000


def test_service_killed_twice_mid_ingest_loses_no_acknowledged_event(
    cassandra_node: str,
    tmp_path: Path,
    service_logs: Path,
    record_property: Callable[[str, object], None],
) -> None:
    data = make_dataset(tmp_path / "data", PLAYERS, DAYS, seed=71)
    assert data.lines >= 200_000, data.lines
    say(
        f"dataset: {data.lines:,} events, {len(data.truth.players):,} players "
        f"(generated in {data.generate_seconds:.1f}s)"
    )
    service = fault_service(f"ps_faults_kill_{uuid.uuid4().hex[:8]}", service_logs)
    service.start()
    try:
        batches = math.ceil(data.lines / BATCH)
        load = BackgroundLoad(data.events, service.url, batch_size=BATCH, concurrency=4).start()
        kills: list[tuple[float, float]] = []
        for fraction in (1 / 3, 2 / 3):
            load.wait_acknowledged(int(batches * fraction))
            killed_at = time.monotonic()
            old_pid = service.pid
            service.kill()
            restarted = time.monotonic()
            service.start()
            restart_s = time.monotonic() - restarted
            assert service.pid != old_pid
            kills.append((killed_at, restart_s))
            say(
                f"killed pid {old_pid} at {load.transport.acknowledged()}/{batches} batches acknowledged; "
                f"restarted on port {service.port} in {restart_s:.1f}s"
            )
        summary = load.join()
        load_s = time.monotonic() - load.began
        statuses = load.transport.statuses()
        say(
            f"load done in {load_s:.1f}s: {summary.batches} batches, {summary.retries} retries; "
            f"exchanges {statuses}"
        )

        assert_load_matches_truth(summary, data)
        assert "500" not in statuses, statuses
        assert set(statuses) <= {
            "200",
            "503",
            "ConnectError",
            "ReadError",
            "RemoteProtocolError",
            "WriteError",
        }, statuses
        assert summary.retries >= 2, "both kills should have cut requests in flight"
        exchanges = load.transport.snapshot()
        recoveries = []
        for killed_at, _ in kills:
            first_ack = min(
                e.began + e.seconds for e in exchanges if e.body is not None and e.began > killed_at
            )
            recoveries.append(first_ack - killed_at)

        # Acknowledged means stored: every valid in-retention event of every acknowledged batch,
        # read back from Cassandra (the batches acknowledged just before each kill among them).
        checked, missing = stored_check([cassandra_node], service.config.keyspace, all_bodies(load.transport))
        assert not missing, f"{len(missing)} acknowledged events are not in Cassandra: {missing[:5]}"
        just_before = sum(len(bodies_acknowledged_between(load.transport, k - 5, k)) for k, _ in kills)
        answers = assert_answers_equal_truth(service.url, data.truth)
        say(
            f"{checked:,} acknowledged events read back (0 missing; {just_before} batches acknowledged "
            f"in the 5s before a kill); recovery after each kill {[round(r, 1) for r in recoveries]}s; "
            f"{answers.players:,} players and {answers.windows} windows equal the truth "
            f"(checked in {answers.seconds:.1f}s)"
        )
        for name, value in (
            ("events", data.lines),
            ("load_seconds", round(load_s, 1)),
            ("retries", summary.retries),
            ("exchanges", statuses),
            ("recovery_seconds", [round(r, 1) for r in recoveries]),
            ("acknowledged_events_checked", checked),
        ):
            record_property(name, value)
    finally:
        service.stop()
