"""Erase stays erased: DELETE /players/{id} at QUORUM on a 3-node cluster (RF 3) with one node down,
then the node brought back. The delete reaches the returned node by a hint (an outage shorter than
max_hint_window) or, when no hint was written (an outage longer than the window, simulated with
`nodetool disablehandoff` on the other two), by `nodetool repair`; until that repair the returned node
alone still holds the erased rows, which is why gc_grace_seconds of the erased tables must outlast
the repair cadence (docs/design.md, "Erase stays erased").

The cluster is our own (127.0.0.91-93, JMX 7190/7290/7390), beside the development node.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cassandra.cluster import Session

from player_sessions.cassandra_local import LauncherConfig, start, stop
from player_sessions.cassandra_local.node import Node, nodetool, nodetool_status
from player_sessions.store.connection import open_cluster
from player_sessions.store.schema import minute_shard
from tests.faults.harness import fault_service, say, wait_until
from tests.support.clock import NOW
from tests.support.factories import new_player, session_pair
from tests.support.factories import start as start_event
from tests.support.service import ServiceProcess

pytestmark = pytest.mark.slow

FIRST_ADDRESS = 91
COUNTRIES = ["FI", "SE", "DE", "BR"]
WINDOWS = [1, 24, 24 * 7, 24 * 30, 8760]
ERASED_TABLES = ("player_events", "starts_by_country_hour", "starts_by_minute")
TEN_DAYS_S = 864_000


def player_events(player: str, rng: random.Random, sessions: int) -> list[dict[str, Any]]:
    """Complete sessions over the year (some in the last hour, so every rollup level is involved) and
    an open start."""
    events: list[dict[str, Any]] = []
    for i in range(sessions):
        back = timedelta(minutes=30) if i == 0 else timedelta(seconds=rng.randrange(3600, 360 * 86400))
        events += session_pair(
            player,
            NOW - back - timedelta(minutes=15),
            minutes=rng.randrange(1, 14),
            country=rng.choice(COUNTRIES),
        )
    events.append(start_event(player, str(uuid.uuid4()), NOW - timedelta(hours=5), rng.choice(COUNTRIES)))
    return events


def window_counts(events: list[dict[str, Any]], hours: float) -> dict[str, int]:
    frm = NOW - timedelta(hours=hours)
    found = Counter(
        e["country"]
        for e in events
        if e["event"] == "start" and frm <= datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) <= NOW
    )
    return dict(sorted(found.items()))


@contextmanager
def cql(addresses: list[str], consistency: str) -> Iterator[Session]:
    """A driver session that sends requests only to `addresses`."""
    cluster = open_cluster(addresses, only_hosts=addresses, consistency=consistency, request_timeout=30)
    try:
        yield cluster.connect()
    finally:
        cluster.shutdown()


def rows_left(session: Session, keyspace: str, player: str, events: list[dict[str, Any]]) -> dict[str, int]:
    """The player's rows still readable in each table the erase deletes from."""
    left = dict.fromkeys(ERASED_TABLES, 0)
    left["player_events"] = (
        session.execute(f"SELECT count(*) AS n FROM {keyspace}.player_events WHERE player_id = %s", (player,))
        .one()
        .n
    )
    by_hour = session.prepare(
        f"SELECT count(*) AS n FROM {keyspace}.starts_by_country_hour "
        "WHERE country = ? AND hour = ? AND ts = ? AND session_id = ?"
    )
    by_minute = session.prepare(
        f"SELECT count(*) AS n FROM {keyspace}.starts_by_minute "
        "WHERE minute = ? AND shard = ? AND country = ? AND ts = ? AND session_id = ?"
    )
    for e in events:
        if e["event"] != "start":
            continue
        ts = datetime.fromisoformat(e["ts"].replace("Z", "+00:00"))
        sid = uuid.UUID(e["session_id"])
        hour, minute = ts.replace(minute=0, second=0, microsecond=0), ts.replace(second=0, microsecond=0)
        left["starts_by_country_hour"] += session.execute(by_hour, (e["country"], hour, ts, sid)).one().n
        left["starts_by_minute"] += (
            session.execute(by_minute, (minute, minute_shard(sid), e["country"], ts, sid)).one().n
        )
    return left


def erase(url: str, player: str) -> dict[str, Any]:
    """DELETE /players/{id}, retried on 503 as a client would (the erase is idempotent)."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(30):
            r = client.delete(f"/players/{player}")
            if r.status_code != 503:
                break
            time.sleep(1)
    assert r.status_code == 202, r.text
    answer: dict[str, Any] = r.json()
    return answer


def pending_hints(node: Node) -> bool:
    """Hints waiting for delivery: a node keeps them in files under hints/, deleted once delivered
    (`nodetool listpendinghints` does not list them for a node that is down)."""
    return any((node.dir / "hints").glob("*.hints"))


def nodetool_ok(node: Node, *args: str, timeout_s: float = 60.0) -> str:
    out = nodetool(node, *args, timeout_s=timeout_s)
    assert out.returncode == 0, f"nodetool {' '.join(args)}: {out.stdout}{out.stderr}"
    return out.stdout


def stop_nodes(config: LauncherConfig, *indexes: int) -> None:
    for i in indexes:
        assert Node(i, config).stop(config.stop_timeout_s) == "stopped"
    survivor = Node(next(i for i in (1, 2, 3) if i not in indexes), config)
    wait_until(
        lambda: nodetool_status(survivor).up == 3 - len(indexes),
        f"nodetool to show nodes {indexes} down",
        60,
        0.5,
    )


def test_an_erase_with_a_node_down_stays_erased_once_the_node_is_back(
    tmp_path: Path,
    service_logs: Path,
    record_property: Callable[[str, object], None],
) -> None:
    config = LauncherConfig(base_dir=tmp_path / "cluster", nodes=3, first_address=FIRST_ADDRESS, heap="512m")
    addresses = [config.address(i) for i in (1, 2, 3)]
    node1, node2, node3 = (Node(i, config) for i in (1, 2, 3))
    rng = random.Random(20)
    hinted, repaired = new_player(), new_player()
    victims = {hinted: player_events(hinted, rng, 8), repaired: player_events(repaired, rng, 8)}
    others = [new_player() for _ in range(5)]
    background = [e for p in others for e in player_events(p, rng, 40)]
    keyspace = f"ps_faults_erase_{uuid.uuid4().hex[:8]}"
    services: list[ServiceProcess] = []
    began = time.monotonic()
    try:
        booted = start(config, say=lambda line: None)
        assert booted.started, f"something else already answers on {addresses}: stop it first"
        service = fault_service(
            keyspace,
            service_logs,
            {"--contact-points": ",".join(addresses), "--replication-factor": "3", "--consistency": "QUORUM"},
        )
        services.append(service)
        service.start()
        say(f"cluster {addresses} up in {booted.seconds:.1f}s; service on {service.url}")
        with cql(addresses, "ALL") as session:
            options = {
                t: session.execute(
                    "SELECT gc_grace_seconds FROM system_schema.tables WHERE keyspace_name = %s "
                    "AND table_name = %s",
                    (keyspace, t),
                )
                .one()
                .gc_grace_seconds
                for t in ERASED_TABLES
            }
        assert options == dict.fromkeys(ERASED_TABLES, TEN_DAYS_S)

        everything = background + [e for events in victims.values() for e in events]
        with httpx.Client(base_url=service.url, timeout=60) as client:
            r = client.post("/events", json=everything)
            assert r.status_code == 200 and r.json()["stored"] == len(everything), r.text
            for hours in WINDOWS:
                assert client.get("/session-starts", params={"hours": hours}).json()[
                    "countries"
                ] == window_counts(everything, hours)

        # Node 3 misses both erases: the first is hinted, the second is not (hints off, as for an
        # outage longer than max_hint_window).
        stop_nodes(config, 3)
        first = erase(service.url, hinted)
        wait_until(lambda: pending_hints(node1) or pending_hints(node2), "a hint for node 3", 60, 1)
        for node in (node1, node2):
            nodetool_ok(node, "disablehandoff")
        second = erase(service.url, repaired)
        for node in (node1, node2):
            nodetool_ok(node, "enablehandoff")
        assert first["removed"]["player_events"] == len(victims[hinted]), first
        assert second["removed"]["player_events"] == len(victims[repaired]), second
        say(f"node 3 down; erased {first['removed']} (hinted) and {second['removed']} (no hints)")

        start(config, say=lambda line: None)
        waited = wait_until(
            lambda: not (pending_hints(node1) or pending_hints(node2)),
            "the hints to be delivered to node 3",
            120,
            1,
        )
        say(f"node 3 back; hints delivered {waited:.1f}s later")
        service.stop()

        # Node 3 alone: the hinted erase reached it; the other did not, its rows are back.
        stop_nodes(config, 1, 2)
        with cql([addresses[2]], "ONE") as session:
            before_repair = {p: rows_left(session, keyspace, p, events) for p, events in victims.items()}
        assert before_repair[hinted] == dict.fromkeys(ERASED_TABLES, 0), before_repair
        assert before_repair[repaired]["player_events"] == len(victims[repaired]), before_repair
        say(f"node 3 alone before repair: {before_repair[repaired]} rows of the unhinted erase")

        start(config, say=lambda line: None)
        repair_began = time.monotonic()
        nodetool_ok(node3, "repair", "-full", keyspace, timeout_s=180)
        repair_s = time.monotonic() - repair_began
        with cql(addresses, "ALL") as session:
            at_all = {p: rows_left(session, keyspace, p, events) for p, events in victims.items()}
        assert all(left == dict.fromkeys(ERASED_TABLES, 0) for left in at_all.values()), at_all

        # Node 3 alone again, through the service at ONE: no sessions, counts without the victims.
        stop_nodes(config, 1, 2)
        with cql([addresses[2]], "ONE") as session:
            after_repair = {p: rows_left(session, keyspace, p, events) for p, events in victims.items()}
        assert all(left == dict.fromkeys(ERASED_TABLES, 0) for left in after_repair.values()), after_repair
        alone = fault_service(
            keyspace, service_logs, {"--contact-points": addresses[2], "--consistency": "ONE"}
        )
        services.append(alone)
        alone.start()
        with httpx.Client(base_url=alone.url, timeout=60) as client:
            for player in victims:
                assert client.get(f"/players/{player}/sessions").json()["sessions"] == []
            assert len(client.get(f"/players/{others[0]}/sessions").json()["sessions"]) == 20
            for hours in WINDOWS:
                got = client.get("/session-starts", params={"hours": hours}).json()["countries"]
                assert got == window_counts(background, hours), f"{hours}h: {got}"
        seconds = time.monotonic() - began
        say(
            f"after `nodetool repair` ({repair_s:.1f}s): nothing of either player at ALL or on node 3 "
            f"alone; counts exact; {seconds:.0f}s in all"
        )
        record_property("repair_seconds", round(repair_s, 1))
        record_property("hints_delivered_seconds", round(waited, 1))
    finally:
        for running in services:
            running.stop()
        stop(config, wipe=True, say=lambda line: None)
