"""One-year retention, shrunk to seconds: rejected at ingest, never returned, gone after its TTL."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import new_player, session_pair

RETENTION_S = 20
# Tables holding events: their rows die with the event.
EVENT_TABLES = ["player_events", "starts_by_country_hour", "starts_by_minute"]
# Per-hour summaries (no player data): they die when the *last* instant of their hour/day leaves the
# retention, so a count of a partly retained hour stays exact.
SUMMARY_TABLES = {
    "country_hours": "hour",
    "hour_starts": "touched",
    "minute_starts": "touched",
    "day_starts": "touched",
}


def rows_in(cql: Any, keyspace: str, table: str) -> int:
    return len(list(cql.execute(f"SELECT * FROM {keyspace}.{table}")))


def test_events_past_retention_expire_everywhere(
    service_factory: Callable[..., str], cql: Any, test_keyspace_name: str
) -> None:
    url = service_factory("ttl", retention=f"{RETENTION_S}s")
    keyspace = f"{test_keyspace_name}_ttl"
    player = new_player()
    now = datetime.now(UTC)
    fresh = session_pair(player, now - timedelta(seconds=12), minutes=0.1)
    too_old = session_pair(
        player, now - timedelta(seconds=RETENTION_S + 5), minutes=0.05, session=str(uuid.uuid4())
    )
    with httpx.Client(base_url=url, timeout=30) as client:
        out = client.post("/events", json=[*fresh, *too_old]).json()
        assert (out["stored"], out["expired"]) == (2, 2)
        assert len(client.get(f"/players/{player}/sessions").json()["sessions"]) == 1
        assert client.get("/session-starts", params={"hours": RETENTION_S / 3600}).json()["total"] == 1
        assert all(rows_in(cql, keyspace, t) > 0 for t in EVENT_TABLES)

        # The start leaves the retention ~8 s after it was posted: from then on it is never returned ...
        deadline = time.monotonic() + 30
        while client.get(f"/players/{player}/sessions").json()["sessions"]:
            assert time.monotonic() < deadline, "session still returned after its retention"
            time.sleep(0.5)
        assert client.get("/session-starts", params={"hours": RETENTION_S / 3600}).json()["total"] == 0

    # ... and once its TTL has run out, no table holds any of its events.
    deadline = time.monotonic() + 60
    while any(rows_in(cql, keyspace, t) for t in EVENT_TABLES):
        assert time.monotonic() < deadline, {t: rows_in(cql, keyspace, t) for t in EVENT_TABLES}
        time.sleep(1)
    for table, column in SUMMARY_TABLES.items():
        if column == "hour":
            continue  # a clustering column has no TTL of its own; its row dies with the hour's TTL
        ttls = [row[0] for row in cql.execute(f"SELECT TTL({column}) FROM {keyspace}.{table}")]
        assert all(ttl is not None and ttl <= 3600 * 24 + RETENTION_S for ttl in ttls), (table, ttls)
