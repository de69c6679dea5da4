"""GET /players/{id}/sessions: pairing in any order, completeness, the limit and the ordering."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx

from tests.support.clock import NOW
from tests.support.factories import end, iso, new_player, session_pair, start


def sessions_of(client: httpx.Client, player: str, **params: int) -> list[dict[str, object]]:
    r = client.get(f"/players/{player}/sessions", params=params)
    assert r.status_code == 200
    assert r.json()["player_id"] == player
    return list(r.json()["sessions"])


def test_end_before_start_in_one_batch_pairs(client: httpx.Client) -> None:
    player = new_player()
    s, e = session_pair(player, NOW - timedelta(hours=5), minutes=8)
    client.post("/events", json=[e, s])
    (session,) = sessions_of(client, player)
    assert session["duration_seconds"] == 480


def test_start_and_end_in_separate_batches_pair_in_either_order(client: httpx.Client) -> None:
    player = new_player()
    s1, e1 = session_pair(player, NOW - timedelta(hours=5))
    s2, e2 = session_pair(player, NOW - timedelta(hours=3))
    client.post("/events", json=[s1])
    client.post("/events", json=[e1])
    client.post("/events", json=[e2])  # end first
    client.post("/events", json=[s2])
    assert [x["session_id"] for x in sessions_of(client, player)] == [s2["session_id"], s1["session_id"]]


def test_orphan_ends_and_open_starts_are_never_returned(client: httpx.Client) -> None:
    player = new_player()
    s, e = session_pair(player, NOW - timedelta(hours=9))
    open_start = start(player, str(uuid.uuid4()), NOW - timedelta(hours=2))
    orphan_end = end(player, str(uuid.uuid4()), NOW - timedelta(hours=1))
    client.post("/events", json=[open_start, orphan_end, s, e])
    assert [x["session_id"] for x in sessions_of(client, player)] == [s["session_id"]]


def test_unknown_player_has_no_sessions(client: httpx.Client) -> None:
    assert sessions_of(client, new_player()) == []


def test_last_20_newest_first_with_ties_by_session_id(client: httpx.Client) -> None:
    player = new_player()
    events = []
    for i in range(25):
        events.extend(session_pair(player, NOW - timedelta(hours=i + 1)))
    tie_ids = sorted(str(uuid.uuid4()) for _ in range(3))
    tie_start = NOW - timedelta(minutes=30)
    for sid in reversed(tie_ids):
        events.extend(session_pair(player, tie_start, session=sid))
    client.post("/events", json=events)
    got = sessions_of(client, player)
    assert len(got) == 20
    assert [x["session_id"] for x in got[:3]] == tie_ids
    starts = [x["start"] for x in got]
    assert starts == sorted(starts, reverse=True)
    assert len(sessions_of(client, player, limit=100)) == 28
    assert len(sessions_of(client, player, limit=1)) == 1


def test_limit_out_of_range_is_400(client: httpx.Client) -> None:
    for bad in ("0", "101", "x"):
        r = client.get(f"/players/{new_player()}/sessions", params={"limit": bad})
        assert r.status_code == 400
        assert r.json()["error"].startswith("limit:")


def test_invalid_player_id_is_400(client: httpx.Client) -> None:
    r = client.get("/players/bad player/sessions")
    assert r.status_code == 400
    assert r.json()["error"] == "player_id: only letters, digits and . _ : - are allowed"


def test_a_read_stops_at_the_row_cap_and_says_truncated(service_factory: Callable[..., str]) -> None:
    url = service_factory("capped", clock=iso(NOW), player_read_max_rows="300")
    bot, player = new_player(), new_player()
    newest = session_pair(bot, NOW - timedelta(minutes=5))
    oldest = session_pair(bot, NOW - timedelta(days=3))
    open_starts = [start(bot, str(uuid.uuid4()), NOW - timedelta(minutes=10 + i)) for i in range(400)]
    with httpx.Client(base_url=url, timeout=60) as capped:
        assert capped.post("/events", json=[*newest, *open_starts, *oldest]).json()["stored"] == 404
        assert (
            capped.post("/events", json=list(session_pair(player, NOW - timedelta(hours=1)))).json()["stored"]
            == 2
        )
        r = capped.get(f"/players/{bot}/sessions").json()
        assert r["truncated"] is True
        assert [s["session_id"] for s in r["sessions"]] == [newest[0]["session_id"]]
        r = capped.get(f"/players/{player}/sessions").json()
        assert r["truncated"] is False and len(r["sessions"]) == 1
