"""Rollups under concurrency, against the real database: ingest, window queries and the background
pass all at once, as in a busy service (and, with two sets of recount flights, as in two processes:
an ingest process and a query process of `serve --role` split, or two of `--role all`).

While the load runs, every answer lies between the starts acknowledged before it was asked and the
starts sent before it was answered: a fresh-looking rollup that missed an acknowledged start would
fall under the first bound. Once the load stops, every answer is exact.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.validation import ValidationRules
from player_sessions.rollups import MarkCoalescer, RecountFlights, count_window, refresh_recent
from player_sessions.services.ingest import ingest_batch, ingest_pieces
from player_sessions.store.cassandra import CassandraStore
from player_sessions.store.config import StoreConfig
from tests.support import clock

NOW = clock.NOW + timedelta(hours=12, minutes=30)
CLOCK = FixedClock(NOW)
RETENTION = timedelta(days=365)
COUNTRIES = ("FI", "SE", "NO", "DK")
# Starts land in a few busy hours of yesterday and today (the background pass's range, recounted
# through minutes), in the current partial hour, and in a day five days back (hours recounted from
# raw rows by queries, the day from its hours).
HOT_HOURS = [NOW.replace(minute=0) - timedelta(hours=h) for h in (0, 1, 7, 20, 30)]
OLD_HOURS = [NOW.replace(hour=h, minute=0) - timedelta(days=5) for h in (3, 4, 17)]
INGESTERS, BATCHES = 4, 30


@dataclass
class Ledger:
    """Every start with when its batch was sent and acknowledged (monotonic seconds)."""

    sent: list[tuple[float, str, datetime]] = field(default_factory=list)
    acked: list[tuple[float, str, datetime]] = field(default_factory=list)

    def between(
        self, rows: list[tuple[float, str, datetime]], until: float, lo: datetime, hi: datetime
    ) -> Counter[str]:
        return Counter(country for at, country, ts in rows if at <= until and lo <= ts <= hi)


@pytest.fixture()
async def store(cassandra_node: str, test_keyspace_name: str) -> AsyncIterator[CassandraStore]:
    # Few ingest slots: batches wait for them while queries and marks go around them.
    settings = Settings(
        contact_points=cassandra_node, keyspace=f"{test_keyspace_name}_rollconc", max_ingest_in_flight=3
    )
    s = await CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=True)
    yield s
    await s.close()


def random_window(rng: random.Random) -> tuple[datetime, datetime]:
    if rng.random() < 0.5:
        hours = rng.choice([0.25, 1, 2.5, 6, 24, 36, 24 * 6])
        return NOW - timedelta(hours=hours), NOW
    lo = NOW - timedelta(seconds=rng.randrange(6 * 24 * 3600))
    return lo, min(NOW, lo + timedelta(seconds=rng.randrange(1, 40 * 3600)))


async def test_answers_stay_between_acknowledged_and_sent_under_load_and_are_exact_after(
    store: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(int(os.environ.get("PS_TEST_SEED", "5")))
    # Every group of writes (raw rows, then each level of tokens) waits 0-10 ms before it goes, as on a
    # loaded host: the gaps between the levels are where a recount could read one level's new token
    # and the old state of the level below.
    execute_all = store._execute_all

    async def slow_execute_all(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(rng.random() / 100)
        return await execute_all(*args, **kwargs)

    monkeypatch.setattr(store, "_execute_all", slow_execute_all)
    ledger = Ledger()
    coalescer = MarkCoalescer()
    done = asyncio.Event()
    checked: list[str] = []

    async def ingester() -> None:
        for _ in range(BATCHES):
            batch, rows = [], []
            for _ in range(rng.randrange(1, 25)):
                hour = rng.choice(HOT_HOURS if rng.random() < 0.8 else OLD_HOURS)
                ts = hour + timedelta(milliseconds=rng.randrange(3_600_000))
                ts = min(ts, NOW)
                country = rng.choice(COUNTRIES)
                rows.append((country, ts))
                batch.append(
                    {
                        "event": "start",
                        "player_id": uuid.uuid4().hex,
                        "session_id": str(uuid.uuid4()),
                        "country": country,
                        "ts": ts.isoformat(timespec="milliseconds"),
                    }
                )
            sent = time.monotonic()
            ledger.sent += [(sent, c, ts) for c, ts in rows]
            # Both ingest paths: the service's (statements bound in the decoding thread or on the
            # loop, as the body's size decides) and the one taking already-decoded events.
            path = rng.random()
            if path < 1 / 3:
                result = await ingest_batch(batch, store, CLOCK, RETENTION, ValidationRules())
            else:  # the service's path, its marks written in groups with other ingesters' half the time
                result = await ingest_pieces(
                    [batch],
                    store,
                    CLOCK,
                    RETENTION,
                    ValidationRules(),
                    in_thread=path < 2 / 3,
                    marks=coalescer if rng.random() < 0.5 else None,
                )
            assert result.stored == len(batch), result
            acked = time.monotonic()
            ledger.acked += [(acked, c, ts) for c, ts in rows]

    async def querier(flights: RecountFlights) -> None:
        while not done.is_set():
            lo, hi = random_window(rng)
            asked = time.monotonic()
            got = await count_window(store, lo, hi, NOW, RETENTION, flights)
            answered = time.monotonic()
            floor = ledger.between(ledger.acked, asked, lo, hi)
            ceiling = ledger.between(ledger.sent, answered, lo, hi)
            for country in COUNTRIES:
                assert floor[country] <= got[country] <= ceiling[country], (
                    f"[{lo}, {hi}] {country}: got {got[country]}, acknowledged before asking "
                    f"{floor[country]}, sent before the answer {ceiling[country]}"
                )
            checked.append(f"{lo}..{hi}")

    async def background_pass(flights: RecountFlights) -> None:
        while not done.is_set():
            await refresh_recent(store, CLOCK, RETENTION, flights)
            await asyncio.sleep(0.02)

    service_flights, other_process_flights = RecountFlights(), RecountFlights()
    readers = [
        asyncio.ensure_future(querier(service_flights)),
        asyncio.ensure_future(querier(other_process_flights)),
        asyncio.ensure_future(background_pass(service_flights)),
    ]
    try:
        await asyncio.gather(*(ingester() for _ in range(INGESTERS)))
    finally:
        done.set()
        await asyncio.gather(*readers)
    assert len(checked) >= 20, f"only {len(checked)} answers were checked during the load"
    print(f"{len(checked)} answers checked during the load; {coalescer.groups} groups of marks")

    for _ in range(40):
        lo, hi = random_window(rng)
        want = ledger.between(ledger.acked, float("inf"), lo, hi)
        got = await count_window(store, lo, hi, NOW, RETENTION, RecountFlights())
        assert +got == +want, (lo, hi)
    for hour in HOT_HOURS + OLD_HOURS:  # each busy hour, as a whole hour of a window
        lo, hi = hour - timedelta(minutes=1), min(NOW, hour + timedelta(minutes=61))
        assert +await count_window(store, lo, hi, NOW, RETENTION) == +ledger.between(
            ledger.acked, float("inf"), lo, hi
        ), hour
