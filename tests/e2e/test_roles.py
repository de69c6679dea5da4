"""`serve --role`: ingest and query processes of one keyspace, as a proxy routing POST /events to one
pool and the rest to the other runs them. Each refuses the other's routes with 421 and a message that
names the role; what one stores the other answers, exactly."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import httpx
import pytest

from tests.support.clock import NOW
from tests.support.factories import iso, new_player, session_pair, start


@pytest.fixture(scope="module")
def roles(service_factory: Callable[..., str]) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    clock = iso(NOW)
    with (
        httpx.Client(base_url=service_factory("roles", clock=clock, role="ingest"), timeout=120) as ingest,
        httpx.Client(base_url=service_factory("roles", clock=clock, role="query"), timeout=120) as query,
    ):
        yield ingest, query


def test_each_role_refuses_the_others_routes(roles: tuple[httpx.Client, httpx.Client]) -> None:
    ingest, query = roles
    player = new_player()
    refused = [
        query.post("/events", json=[start(player, str(uuid.uuid4()), NOW)]),
        ingest.get(f"/players/{player}/sessions"),
        ingest.get("/session-starts", params={"hours": 1}),
        ingest.get("/session-starts/FI", params={"hours": 1}),
        ingest.delete(f"/players/{player}"),
    ]
    for r in refused:
        assert r.status_code == 421, (r.request.method, r.request.url, r.text)
        body = r.json()
        assert body["field"] == "role" and "--role" in body["error"], body
    assert "serves query routes only" in refused[0].json()["error"]
    assert "serves ingest routes only" in refused[1].json()["error"]
    # Nothing the query process refused was stored.
    assert query.get(f"/players/{player}/sessions").json()["sessions"] == []
    for client in roles:
        assert client.get("/health").status_code == 200


def test_what_the_ingest_process_stores_the_query_process_answers(
    roles: tuple[httpx.Client, httpx.Client],
) -> None:
    ingest, query = roles
    player = new_player()
    events = []
    for minutes in (5, 50, 300):
        events += session_pair(player, NOW - timedelta(minutes=minutes), minutes=3, country="SE")
    events += [start(new_player(), str(uuid.uuid4()), NOW - timedelta(minutes=m), "FI") for m in range(1, 40)]
    r = ingest.post("/events", json=events)
    assert r.status_code == 200 and r.json()["stored"] == len(events), r.text

    sessions = query.get(f"/players/{player}/sessions").json()["sessions"]
    assert len(sessions) == 3
    # This module's keyspace holds these starts only, and a window holds both its ends: the counts
    # are known exactly. Counted by the query process right after the ingest process acknowledged
    # them (the ingest process runs no recounts: these are the query process's, from the marks
    # ingest wrote), then again once its background pass has recounted the rollups.
    expected = {1: {"FI": 39, "SE": 2}, 0.5: {"FI": 30, "SE": 1}, 24: {"FI": 39, "SE": 3}}
    for attempt in range(2):
        for hours, countries in expected.items():
            answer = query.get("/session-starts", params={"hours": hours}).json()
            assert answer["countries"] == countries, (attempt, hours, answer)
        time.sleep(2.5)
