"""player_sessions.client against the real `serve` and the real Cassandra (its own keyspace)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from player_sessions.client import ApiError, AsyncClient, Client, Event, RetryNotice, Session
from tests.support.clock import NOW, NOW_TEXT
from tests.support.factories import new_player


@pytest.fixture(scope="module")
def url(service_factory: Callable[..., str]) -> str:
    return service_factory("client", clock=NOW_TEXT)


def sessions_for(player: str, country: str, count: int, first: datetime) -> list[Event]:
    events: list[Event] = []
    for i in range(count):
        sid = uuid.uuid4()
        began = first + timedelta(minutes=30 * i)
        events += [
            Event.start(player, sid, country, began),
            Event.end(player, sid, began + timedelta(seconds=61)),
        ]
    return events


def test_send_splits_a_large_sequence_and_every_read_answers_typed(url: str) -> None:
    players = [new_player() for _ in range(4)]
    events: list[Any] = []
    for n, player in enumerate(players):
        events += sessions_for(player, "IS", 30, NOW - timedelta(hours=40) + timedelta(minutes=n))
    bad = {
        17: {
            "event": "start",
            "player_id": players[0],
            "session_id": "nope",
            "country": "IS",
            "ts": "2016-11-30T10:00:00Z",
        },
        101: {"event": "end", "player_id": "", "session_id": str(uuid.uuid4()), "ts": "2016-11-30T10:00:00Z"},
    }
    for index, event in sorted(bad.items()):
        events.insert(index, event)
    events.append(Event.start(players[1], uuid.uuid4(), "IS", NOW - timedelta(days=400)))  # expired

    with Client(url, max_request_events=50) as client:
        result = client.send(events)
        assert (result.received, result.stored, result.expired, result.rejected) == (243, 240, 1, 2)
        assert [(e.index, e.field) for e in result.errors] == [(17, "session_id"), (101, "player_id")]

        sessions = client.sessions(players[0], limit=5)
        assert len(sessions) == 5 and all(isinstance(s, Session) for s in sessions)
        assert [s.start for s in sessions] == sorted((s.start for s in sessions), reverse=True)
        assert all(s.duration_seconds == 61 and s.country == "IS" for s in sessions)
        assert isinstance(sessions[0].session_id, uuid.UUID)

        counts = client.session_starts(48)
        assert counts.countries["IS"] == 120
        assert counts.end == NOW and counts.start == NOW - timedelta(hours=48)

        starts = list(client.country_starts("IS", hours=48, page_size=7))  # 18 pages
        assert len(starts) == 120 == len({s.session_id for s in starts})
        assert [s.ts for s in starts] == sorted((s.ts for s in starts), reverse=True)
        assert {s.player_id for s in starts} == set(players)


def test_a_retried_batch_stores_each_event_once(url: str) -> None:
    player = new_player()
    events = sessions_for(player, "NZ", 3, NOW - timedelta(hours=5))
    with Client(url) as client:
        first = client.send(events, request_id="game-server-7.batch-1")
        again = client.send(events, request_id="game-server-7.batch-1")
        assert first.stored == again.stored == 6  # acknowledged again, written onto the same rows
        assert len(client.sessions(player)) == 3
        assert client.session_starts(6).countries["NZ"] == 3


def test_the_batcher_flushes_everything_on_close(url: str) -> None:
    player = new_player()
    events = sessions_for(player, "MT", 50, NOW - timedelta(hours=30))
    with Client(url) as client:
        with client.batcher(max_events=25, max_seconds=0.5, queue_size=40) as batcher:
            for event in events:
                batcher.add(event)
        assert (batcher.result.received, batcher.result.stored) == (100, 100)
        assert len(client.sessions(player, limit=100)) == 50


def test_a_refusal_is_an_api_error_and_is_not_retried(url: str) -> None:
    notices: list[RetryNotice] = []
    with Client(url, on_retry=notices.append) as client, pytest.raises(ApiError) as caught:
        client.session_starts(-1)
    assert caught.value.status == 400 and caught.value.field == "hours"
    assert caught.value.request_id
    assert notices == []


async def test_the_async_client_sends_reads_and_erases(url: str) -> None:
    player = new_player()
    events = sessions_for(player, "LU", 4, NOW - timedelta(hours=3))
    async with AsyncClient(url) as client:
        async with client.batcher(max_events=3) as batcher:
            for event in events:
                await batcher.add(event)
        assert batcher.result.stored == 8
        assert len(await client.sessions(player)) == 4
        starts = [s async for s in client.country_starts("LU", hours=4, page_size=3)]
        assert len(starts) == 4
        erased = await client.erase(player)
        assert erased.player_id == player and erased.sessions == 4
        assert await client.sessions(player) == []
        assert (await client.session_starts(4)).countries.get("LU", 0) == 0
