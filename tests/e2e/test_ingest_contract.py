"""POST /events: formats, per-event accounting, status codes."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.support.clock import NOW, NOW_TEXT
from tests.support.factories import end, new_player, session_pair, start


def post(client: httpx.Client, events: Any, **kw: Any) -> httpx.Response:
    return client.post("/events", json=events, **kw)


def test_valid_batch_is_stored_and_counted(client: httpx.Client) -> None:
    player = new_player()
    events = [e for i in range(5) for e in session_pair(player, NOW - timedelta(hours=i + 1))]
    r = post(client, events)
    assert r.status_code == 200
    assert r.json() == {"received": 10, "stored": 10, "expired": 0, "rejected": 0, "errors": []}


def test_events_wrapper_object_is_accepted(client: httpx.Client) -> None:
    r = post(client, {"events": list(session_pair(new_player(), NOW - timedelta(hours=1)))})
    assert r.status_code == 200 and r.json()["stored"] == 2


def test_ndjson_body_is_accepted_and_a_bad_line_is_that_events_error(client: httpx.Client) -> None:
    s, e = session_pair(new_player(), NOW - timedelta(hours=1))
    body = orjson.dumps(s) + b"\n{not json\n" + orjson.dumps(e) + b"\n"
    r = client.post("/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 200
    out = r.json()
    assert (out["received"], out["stored"], out["rejected"]) == (3, 2, 1)
    assert out["errors"] == [{"index": 1, "field": "event", "error": "event: not valid JSON"}]


def test_gzip_body_is_accepted(client: httpx.Client) -> None:
    body = gzip.compress(orjson.dumps(list(session_pair(new_player(), NOW - timedelta(hours=1)))))
    r = client.post(
        "/events", content=body, headers={"content-type": "application/json", "content-encoding": "gzip"}
    )
    assert r.status_code == 200 and r.json()["stored"] == 2


def test_valid_events_are_stored_beside_invalid_ones(client: httpx.Client) -> None:
    player = new_player()
    s, e = session_pair(player, NOW - timedelta(hours=2))
    bad = start(player, "not-a-uuid", NOW - timedelta(hours=2))
    r = post(client, [s, bad, e])
    out = r.json()
    assert out["stored"] == 2 and out["rejected"] == 1
    assert out["errors"] == [{"index": 1, "field": "session_id", "error": "session_id: not a UUID"}]
    sessions = client.get(f"/players/{player}/sessions").json()["sessions"]
    assert [x["session_id"] for x in sessions] == [s["session_id"]]


def test_expired_events_are_counted_and_not_stored(client: httpx.Client) -> None:
    player = new_player()
    old_s, old_e = session_pair(player, NOW - timedelta(days=366))
    r = post(client, [old_s, old_e])
    assert r.json() == {"received": 2, "stored": 0, "expired": 2, "rejected": 0, "errors": []}
    assert client.get(f"/players/{player}/sessions").json()["sessions"] == []


def test_unknown_fields_are_ignored(client: httpx.Client) -> None:
    s, e = session_pair(new_player(), NOW - timedelta(hours=1))
    s["platform"] = "ios"
    e["extra"] = {"nested": [1, 2]}
    assert post(client, [s, e]).json()["stored"] == 2


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b"hello", "application/json", 400, "body: not valid JSON"),
        (b"[]", "application/json", 400, "body: no events"),
        (b'{"rows": []}', "application/json", 400, "body: top level must be an array"),
        (b"42", "application/json", 400, "body: top level must be an array"),
        (b"nope\nnope", "application/x-ndjson", 400, "body: not NDJSON"),
        (b"[]", "text/plain", 415, "content-type: text/plain"),
    ],
    ids=["not-json", "empty", "wrong-object", "scalar", "not-ndjson", "text-plain"],
)
def test_bad_bodies_get_a_clear_error(
    client: httpx.Client, body: bytes, content_type: str, status: int, message: str
) -> None:
    r = client.post("/events", content=body, headers={"content-type": content_type})
    assert r.status_code == status
    assert r.json()["error"].startswith(message)


@pytest.mark.parametrize("shape", ["array", "envelope"])
def test_a_body_broken_after_its_first_thousand_events_stores_none_of_them(
    client: httpx.Client, shape: str
) -> None:
    player = new_player()
    events = [e for i in range(600) for e in session_pair(player, NOW - timedelta(hours=1, minutes=i))]
    good = orjson.dumps(events)
    broken = good[:-1] + b", {oops}]" if shape == "array" else b'{"events": ' + good + b', "oops"}'
    r = client.post("/events", content=broken, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"].startswith("body: not valid JSON (JSON is malformed")
    assert client.get(f"/players/{player}/sessions").json()["sessions"] == []


def test_more_than_100000_events_is_413(client: httpx.Client) -> None:
    one = orjson.dumps(start(new_player(), str(uuid.uuid4()), NOW - timedelta(hours=1)))
    body = b"\n".join([one] * 100_001)
    r = client.post("/events", content=body, headers={"content-type": "application/x-ndjson"})
    assert r.status_code == 413
    assert "at most 100000" in r.json()["error"]


def test_body_over_the_byte_limit_is_413(service_factory: Callable[..., str]) -> None:
    url = service_factory("small", clock=NOW_TEXT, max_body_bytes="100000")
    events = [start(new_player(), str(uuid.uuid4()), NOW - timedelta(hours=1)) for _ in range(1000)]
    r = httpx.post(f"{url}/events", json=events)
    assert r.status_code == 413
    bomb = gzip.compress(b"[" + b" " * 10_000_000 + b"]")  # ~10 KB that inflates to 10 MB
    assert len(bomb) < 100_000
    r = httpx.post(
        f"{url}/events",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 413
    assert "decompressed" in r.json()["error"]


def test_duplicates_and_retries_store_once(client: httpx.Client) -> None:
    player = new_player()
    s, e = session_pair(player, NOW - timedelta(hours=3))
    batch = [s, e, s, e]
    assert post(client, batch).json()["stored"] == 4  # duplicates are stored again idempotently
    assert post(client, batch).json()["stored"] == 4  # a retried batch too
    sessions = client.get(f"/players/{player}/sessions").json()["sessions"]
    assert len(sessions) == 1 and sessions[0]["session_id"] == s["session_id"]


def test_a_100000_event_batch_is_accepted(client: httpx.Client) -> None:
    player = new_player()
    events: list[dict[str, Any]] = []
    for i in range(50_000):
        events.extend(session_pair(player, NOW - timedelta(minutes=10 * i + 30), minutes=5))
    r = client.post(
        "/events", content=orjson.dumps(events), headers={"content-type": "application/json"}, timeout=300
    )
    assert r.status_code == 200
    assert r.json()["stored"] == 100_000
    sessions = client.get(f"/players/{player}/sessions").json()["sessions"]
    assert len(sessions) == 20
    assert sessions[0]["session_id"] == events[0]["session_id"]


def test_end_without_country_and_end_with_country_are_both_valid(client: httpx.Client) -> None:
    player = new_player()
    sid = str(uuid.uuid4())
    r = post(
        client,
        [
            start(player, sid, NOW - timedelta(hours=1)),
            end(player, sid, NOW - timedelta(minutes=30), country="fi"),
        ],
    )
    assert r.json()["stored"] == 2
