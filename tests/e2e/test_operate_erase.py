"""DELETE /players/{player_id}: the player's events and sessions leave every table, and the per-country
counts drop by exactly that player's starts (the rollups are marked stale and recounted)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from player_sessions.store.schema import minute_shard
from tests.support.clock import NOW
from tests.support.factories import end, iso, new_player, session_pair, start

WINDOWS = [0.5, 1, 3, 24, 24 * 4 + 0.5, 24 * 7, 24 * 30, 24 * 200, 8760]
COUNTRIES = ["FI", "SE", "DE", "BR"]


def ts_of(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["ts"].replace("Z", "+00:00"))


def window_counts(starts: list[dict[str, Any]], hours: float) -> Counter[str]:
    frm = NOW - timedelta(hours=hours)
    return Counter(s["country"] for s in starts if frm <= ts_of(s) <= NOW)


def counts(client: httpx.Client, hours: float) -> dict[str, int]:
    r = client.get("/session-starts", params={"hours": hours})
    assert r.status_code == 200, r.text
    return dict(r.json()["countries"])


def victim_events(player: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A player with every kind of row: complete sessions over a year (some in the same hours as other
    players), an open start, an orphan end, a start re-sent with another ts. Returns (events, starts)."""
    events: list[dict[str, Any]] = []
    offsets = [
        timedelta(minutes=20),
        timedelta(minutes=50),
        timedelta(hours=2, minutes=5),
        timedelta(hours=20),
        timedelta(days=3),
        timedelta(days=6, hours=5),
        timedelta(days=25),
        timedelta(days=100),
        timedelta(days=300),
    ]
    for i, back in enumerate(offsets):
        s, e = session_pair(
            player, NOW - back - timedelta(minutes=15), minutes=12, country=COUNTRIES[i % len(COUNTRIES)]
        )
        events += [s, e]
    open_start = start(player, str(uuid.uuid4()), NOW - timedelta(hours=5), "SE")
    orphan_end = end(player, str(uuid.uuid4()), NOW - timedelta(hours=7))
    resent = str(uuid.uuid4())
    first_try = start(player, resent, NOW - timedelta(days=2, minutes=3), "DE")
    second_try = start(player, resent, NOW - timedelta(days=2), "DE")  # a second raw start row
    events += [open_start, orphan_end, first_try, second_try, end(player, resent, NOW - timedelta(days=1))]
    return events, [e for e in events if e["event"] == "start"]


def others_events(players: list[str], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for _ in range(300):
        started = NOW - timedelta(seconds=rng.randrange(60, 320 * 86400))
        events += session_pair(
            rng.choice(players), started, minutes=rng.randrange(1, 90), country=rng.choice(COUNTRIES)
        )
    return events


@pytest.fixture(scope="module")
def erase_client(service_factory: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_factory("operate", clock=iso(NOW)), timeout=120) as c:
        yield c


def test_erasing_a_player_removes_their_data_and_exactly_their_starts(erase_client: httpx.Client) -> None:
    client = erase_client
    victim, others = new_player(), [new_player() for _ in range(5)]
    events, victim_starts = victim_events(victim)
    background = others_events(others, seed=3)
    assert client.post("/events", json=events + background).json()["rejected"] == 0

    # Counted once before the erase, so the hour and day rollups are fresh and must be invalidated.
    before = {h: counts(client, h) for h in WINDOWS}
    assert before == {h: counts(client, h) for h in WINDOWS}
    others_sessions = {p: client.get(f"/players/{p}/sessions").json()["sessions"] for p in others}
    assert len(client.get(f"/players/{victim}/sessions").json()["sessions"]) == 10

    r = client.delete(f"/players/{victim}")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["player_id"] == victim
    assert body["removed"] == {
        "player_events": 23,  # 9 complete x 2 + open start + orphan end + 2 tries and the end of the re-sent
        "starts_by_country_hour": 12,  # 9 + open start + both tries of the re-sent start
        "starts_by_minute": 12,
    }
    assert body["sessions"] == 12  # 9 complete + open start + orphan end + the re-sent one
    assert body["rollups_marked_stale"] == len({(s["country"], s["ts"][:13]) for s in victim_starts})

    assert client.get(f"/players/{victim}/sessions").json()["sessions"] == []
    for hours in WINDOWS:
        expected = Counter(before[hours])
        expected.subtract(window_counts(victim_starts, hours))
        assert counts(client, hours) == {c: n for c, n in expected.items() if n > 0}, f"hours={hours}"
    # Other players are untouched.
    assert {p: client.get(f"/players/{p}/sessions").json()["sessions"] for p in others} == others_sessions
    # The victim is in no country's list of starts.
    for country in COUNTRIES:
        page = client.get(f"/session-starts/{country}", params={"hours": 8760, "limit": 1000}).json()
        assert victim not in {s["player_id"] for s in page["starts"]}

    # Idempotent: a second erase finds nothing.
    again = client.delete(f"/players/{victim}").json()
    assert set(again["removed"].values()) == {0} and again["rollups_marked_stale"] == 0


def test_an_erase_stopped_half_way_is_finished_by_a_retry(
    erase_client: httpx.Client, cql: Any, test_keyspace_name: str
) -> None:
    client = erase_client
    player = new_player()
    events = [
        *session_pair(player, NOW - timedelta(hours=3), country="FI"),
        *session_pair(player, NOW - timedelta(days=2), country="SE"),
    ]
    client.post("/events", json=events)
    before = {h: counts(client, h) for h in (4, 72)}
    # As if an erase had deleted the raw starts and then failed: player_events (deleted last) remains.
    for e in events[::2]:
        ts = ts_of(e)
        hour = ts.replace(minute=0, second=0, microsecond=0)
        cql.execute(
            f"DELETE FROM {test_keyspace_name}_operate.starts_by_country_hour WHERE country = %s "
            "AND hour = %s AND ts = %s AND session_id = %s",
            (e["country"], hour, ts, uuid.UUID(e["session_id"])),
        )
        cql.execute(
            f"DELETE FROM {test_keyspace_name}_operate.starts_by_minute WHERE minute = %s "
            "AND shard = %s AND country = %s AND ts = %s AND session_id = %s",
            (
                ts.replace(second=0, microsecond=0),
                minute_shard(uuid.UUID(e["session_id"])),
                e["country"],
                ts,
                uuid.UUID(e["session_id"]),
            ),
        )
    body = client.delete(f"/players/{player}").json()
    assert body["removed"] == {"player_events": 4, "starts_by_country_hour": 2, "starts_by_minute": 2}
    assert body["sessions"] == 2
    assert client.get(f"/players/{player}/sessions").json()["sessions"] == []
    # The retry marked the rollups stale: the counts drop by exactly the player's starts.
    assert before[4].get("FI", 0) - counts(client, 4).get("FI", 0) == 1
    after = counts(client, 72)
    assert (before[72]["FI"] - after.get("FI", 0), before[72]["SE"] - after.get("SE", 0)) == (1, 1)


def test_erase_validates_the_player_id(erase_client: httpx.Client) -> None:
    r = erase_client.delete("/players/not%20valid")
    assert r.status_code == 400 and r.json()["field"] == "player_id"
    unknown = erase_client.delete(f"/players/{new_player()}")
    assert unknown.status_code == 202 and set(unknown.json()["removed"].values()) == {0}
