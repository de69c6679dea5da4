"""Every validation rule through the HTTP API, with the exact error each one gives."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.support.clock import NOW
from tests.support.factories import iso, new_player, start

PLAYER = "0a2d12a1a7e145de8bae44c0c6e06629"
SESSION = "4a0c43c9-c43a-42ff-ba55-67563dfa35d4"


def valid_start(**changes: Any) -> Any:
    event: dict[str, Any] = start(PLAYER, SESSION, NOW - timedelta(hours=1))
    for key, value in changes.items():
        if value is ...:
            event.pop(key)
        else:
            event[key] = value
    return event


def rejected_with(client: httpx.Client, event: Any) -> dict[str, Any]:
    r = client.post("/events", json=[event])
    assert r.status_code == 200
    out = r.json()
    assert (out["received"], out["stored"], out["expired"], out["rejected"]) == (1, 0, 0, 1)
    (error,) = out["errors"]
    assert error["index"] == 0
    return dict(error)


RULES = [
    ("not-an-object", ["start"], "event", "event: not a JSON object"),
    ("event-missing", valid_start(event=...), "event", "event: required"),
    ("event-unknown", valid_start(event="pause"), "event", 'event: must be "start" or "end"'),
    ("player-missing", valid_start(player_id=...), "player_id", "player_id: required"),
    ("player-number", valid_start(player_id=12345), "player_id", "player_id: must be a string"),
    ("player-empty", valid_start(player_id=""), "player_id", "player_id: must be 1 to 64 characters"),
    (
        "player-too-long",
        valid_start(player_id="a" * 65),
        "player_id",
        "player_id: must be 1 to 64 characters",
    ),
    (
        "player-bad-chars",
        valid_start(player_id="bad player"),
        "player_id",
        "player_id: only letters, digits and . _ : - are allowed",
    ),
    ("session-missing", valid_start(session_id=...), "session_id", "session_id: required"),
    ("session-not-uuid", valid_start(session_id="4a0c43c9"), "session_id", "session_id: not a UUID"),
    ("session-number", valid_start(session_id=7), "session_id", "session_id: not a UUID"),
    ("country-missing-on-start", valid_start(country=...), "country", "country: required on start"),
    ("country-number", valid_start(country=246), "country", "country: must be a string"),
    ("country-unknown", valid_start(country="ZZ"), "country", "country: not an ISO 3166-1 alpha-2 code"),
    ("country-alpha3", valid_start(country="FIN"), "country", "country: not an ISO 3166-1 alpha-2 code"),
    ("ts-missing", valid_start(ts=...), "ts", "ts: required"),
    ("ts-number", valid_start(ts=1480550400), "ts", "ts: must be a string"),
    ("ts-garbage", valid_start(ts="yesterday"), "ts", "ts: not an ISO 8601 date-time"),
    ("ts-date-only", valid_start(ts="2016-11-22"), "ts", "ts: not an ISO 8601 date-time"),
    (
        "ts-future",
        valid_start(ts=iso(NOW + timedelta(minutes=6))),
        "ts",
        "ts: more than 5 minutes in the future",
    ),
]


@pytest.mark.parametrize(("event", "field", "message"), [r[1:] for r in RULES], ids=[r[0] for r in RULES])
def test_each_rule_rejects_with_its_exact_error(
    client: httpx.Client, event: Any, field: str, message: str
) -> None:
    assert rejected_with(client, event) == {"index": 0, "field": field, "error": message}


def test_ts_four_minutes_ahead_is_accepted(client: httpx.Client) -> None:
    event = start(new_player(), str(uuid.uuid4()), NOW + timedelta(minutes=4))
    assert client.post("/events", json=[event]).json()["stored"] == 1


def test_normalisations_show_in_the_answers(client: httpx.Client) -> None:
    player = new_player()
    sid = str(uuid.uuid4())
    events = [
        {
            "event": "start",
            "player_id": player,
            "session_id": sid.upper(),
            "country": "uk",
            "ts": "2016-11-30T12:00:00+02:00",
        },  # 10:00Z
        {"event": "end", "player_id": player, "session_id": sid, "ts": "2016-11-30T10:30:00"},
    ]
    assert client.post("/events", json=events).json()["stored"] == 2
    (session,) = client.get(f"/players/{player}/sessions").json()["sessions"]
    assert session == {
        "session_id": sid,
        "country": "GB",
        "start": "2016-11-30T10:00:00Z",
        "end": "2016-11-30T10:30:00Z",
        "duration_seconds": 1800,
    }


def test_kosovo_is_kept_as_xk(client: httpx.Client) -> None:
    player = new_player()
    event = start(player, str(uuid.uuid4()), NOW - timedelta(hours=1), country="xk")
    assert client.post("/events", json=[event]).json()["stored"] == 1
