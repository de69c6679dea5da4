"""GET /session-starts and /session-starts/{country}: exact counts and complete pagination."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.clock import NOW
from tests.support.factories import iso, new_player, start

COUNTRIES = ["FI", "SE", "US", "BR", "DE", "GB", "JP", "XK"]
WINDOWS = [0.25, 1, 2.75, 23.99, 24, 25.5, 168, 720.5, 1000]


def brute_force(starts: list[dict[str, Any]], hours: float, now: datetime = NOW) -> Counter[str]:
    frm = now - timedelta(hours=hours)
    return Counter(
        s["country"] for s in starts if frm <= datetime.fromisoformat(s["ts"].replace("Z", "+00:00")) <= now
    )


def generated_starts(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    players = [new_player() for _ in range(50)]
    events = []
    for _ in range(count):
        ms = rng.randrange(0, 42 * 24 * 3600 * 1000)
        ts = NOW - timedelta(milliseconds=ms)
        events.append(
            start(rng.choice(players), str(uuid.UUID(int=rng.getrandbits(128))), ts, rng.choice(COUNTRIES))
        )
    # Starts exactly on the window's edges must count (both ends are inclusive).
    events.append(start(players[0], str(uuid.uuid4()), NOW, "FI"))
    events.append(start(players[0], str(uuid.uuid4()), NOW - timedelta(hours=24), "FI"))
    return events


@pytest.fixture(scope="module")
def counts_service(service_factory: Callable[..., str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_factory("counts", clock=iso(NOW)), timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def loaded(counts_service: httpx.Client) -> list[dict[str, Any]]:
    starts = generated_starts(4000, seed=7)
    r = counts_service.post("/events", json=starts)
    assert r.json()["stored"] == len(starts)
    return starts


def counts(client: httpx.Client, hours: float) -> dict[str, Any]:
    r = client.get("/session-starts", params={"hours": hours})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_counts_per_country_equal_a_brute_force_count(
    counts_service: httpx.Client, loaded: list[dict[str, Any]]
) -> None:
    for hours in WINDOWS:
        out = counts(counts_service, hours)
        expected = brute_force(loaded, hours)
        assert out["countries"] == dict(expected), f"hours={hours}"
        assert out["total"] == sum(expected.values())
        assert out["to"] == "2016-12-01T00:00:00Z" and out["hours"] == hours


def test_counts_stay_exact_after_late_events_into_counted_hours(
    counts_service: httpx.Client, loaded: list[dict[str, Any]]
) -> None:
    counts(counts_service, 1000)  # rollups are now recounted and fresh
    late = generated_starts(300, seed=8)
    assert counts_service.post("/events", json=late).json()["stored"] == len(late)
    loaded.extend(late)  # the module's later tests see every start posted
    for hours in WINDOWS:
        assert counts(counts_service, hours)["countries"] == dict(brute_force(loaded, hours))


def test_countries_with_no_starts_are_left_out(
    counts_service: httpx.Client, loaded: list[dict[str, Any]]
) -> None:
    assert all(n > 0 for n in counts(counts_service, 0.25)["countries"].values())


def test_hours_out_of_range_is_400(counts_service: httpx.Client) -> None:
    for bad in ("0", "-1", "8760.01", "abc", "nan"):
        r = counts_service.get("/session-starts", params={"hours": bad})
        assert r.status_code == 400, bad
        assert r.json()["error"].startswith("hours:")


def test_pagination_walks_every_start_exactly_once(
    counts_service: httpx.Client, loaded: list[dict[str, Any]]
) -> None:
    hours = 720.5
    frm = NOW - timedelta(hours=hours)
    expected = {
        s["session_id"]
        for s in loaded
        if s["country"] == "SE" and frm <= datetime.fromisoformat(s["ts"].replace("Z", "+00:00")) <= NOW
    }
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"hours": hours, "limit": 37}
    while True:
        r = counts_service.get("/session-starts/se", params=params)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["country"] == "SE"
        seen.extend(page["starts"])
        if page["next"] is None:
            break
        params = {"cursor": page["next"], "limit": 37}
    ids = [s["session_id"] for s in seen]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    keys = [(datetime.fromisoformat(s["ts"].replace("Z", "+00:00")), s["session_id"]) for s in seen]
    assert keys == sorted(keys, reverse=True)


def test_bad_cursor_and_unknown_country_are_400(counts_service: httpx.Client) -> None:
    r = counts_service.get("/session-starts/FI", params={"cursor": "garbage"})
    assert r.status_code == 400 and r.json()["error"] == "cursor: not a valid cursor"
    r = counts_service.get("/session-starts/ZZ", params={"hours": 1})
    assert r.status_code == 400 and r.json()["error"].startswith("country:")
