"""Rollups: ingest marks them stale, recounts make them fresh and exact, the backlog pass heals old days."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import pytest

from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock
from player_sessions.domain.validation import ValidationRules
from player_sessions.rollups import RecountFlights, count_window, refresh_backlog, refresh_recent
from player_sessions.services.ingest import ingest_batch
from player_sessions.store.cassandra import CassandraStore
from player_sessions.store.config import StoreConfig
from tests.support.clock import NOW

RETENTION = timedelta(days=365)
CLOCK = FixedClock(NOW)


@pytest.fixture()
async def store(cassandra_node: str, test_keyspace_name: str) -> AsyncIterator[CassandraStore]:
    settings = Settings(contact_points=cassandra_node, keyspace=f"{test_keyspace_name}_rollups")
    s = await CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=True)
    yield s
    await s.close()


def starts_on(day: datetime, n: int, country: str) -> list[object]:
    player = uuid.uuid4().hex
    return [
        {
            "event": "start",
            "player_id": player,
            "session_id": str(uuid.uuid4()),
            "country": country,
            "ts": (day + timedelta(minutes=37 * i)).isoformat(),
        }
        for i in range(n)
    ]


async def test_backlog_pass_makes_old_days_fresh_and_exact(store: CassandraStore) -> None:
    old_day = datetime(2016, 3, 10, tzinfo=UTC)
    await ingest_batch(starts_on(old_day, 30, "NO"), store, CLOCK, RETENTION, ValidationRules())
    rows = await store.day_rows(2016, old_day, old_day)
    assert rows and not rows[0].fresh  # ingest left it stale

    while await refresh_backlog(store, CLOCK, RETENTION, max_days=50) == 50:
        pass
    (row,) = await store.day_rows(2016, old_day, old_day)
    assert row.fresh and row.counts == {"NO": 30}
    hours = await store.hour_rows(old_day)
    assert len(hours) == 18 and all(h.fresh and h.countries == {"NO"} for h in hours)
    assert sum((h.counts or {}).get("NO", 0) for h in hours) == 30

    # A late start into that counted day makes it stale again, and the answer stays exact.
    await ingest_batch(
        starts_on(old_day + timedelta(hours=3, seconds=5), 1, "NO"),
        store,
        CLOCK,
        RETENTION,
        ValidationRules(),
    )
    (row,) = await store.day_rows(2016, old_day, old_day)
    assert not row.fresh
    counts = await count_window(
        store, old_day, old_day + timedelta(days=1) - timedelta(milliseconds=1), NOW, RETENTION
    )
    assert counts["NO"] == 31


class CountSpy:
    """How many raw counts of each kind (whole hours from starts_by_country_hour, minutes from
    starts_by_minute) and reads of minute rollups the store was asked for."""

    def __init__(self, store: CassandraStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = {"count_starts": 0, "count_minutes": 0, "minute_rows": 0}
        for name in self.calls:
            monkeypatch.setattr(store, name, self._counting(name, getattr(store, name)))

    def _counting(
        self, name: str, real: Callable[..., Awaitable[object]]
    ) -> Callable[..., Awaitable[object]]:
        async def counted(*args: object) -> object:
            self.calls[name] += 1
            return await real(*args)

        return counted

    def take(self) -> dict[str, int]:
        calls = dict(self.calls)
        self.calls.update(dict.fromkeys(self.calls, 0))
        return calls


def bulk_starts(hour: datetime, n: int) -> list[object]:
    return [
        {
            "event": "start",
            "player_id": uuid.uuid4().hex,
            "session_id": str(uuid.uuid4()),
            "country": ("FI", "SE")[i % 2],
            "ts": (hour + timedelta(seconds=17 * i)).isoformat(),
        }
        for i in range(n)
    ]


async def test_a_query_recounts_a_bulk_loaded_hour_from_its_raw_rows(
    store: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    hour = datetime(2016, 11, 20, 14, tzinfo=UTC)
    await ingest_batch(bulk_starts(hour, 200), store, CLOCK, RETENTION, ValidationRules())  # 57 minutes
    spy = CountSpy(store, monkeypatch)
    window = (hour - timedelta(minutes=30), hour + timedelta(minutes=90))  # hour is its one whole hour
    assert dict(await count_window(store, *window, NOW, RETENTION)) == {"FI": 100, "SE": 100}
    # One raw count, not 57 minutes' (its minutes read once to choose, once for the window's edges).
    assert spy.take() == {"count_starts": 1, "count_minutes": 0, "minute_rows": 2}


async def test_a_query_recounts_a_bulk_loaded_day_from_raw_rows_without_reading_its_minutes(
    store: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = datetime(2016, 11, 12, tzinfo=UTC)
    await ingest_batch(bulk_starts(day, 2000), store, CLOCK, RETENTION, ValidationRules())  # 9.4 hours
    spy = CountSpy(store, monkeypatch)
    got = await count_window(store, day, day + timedelta(days=1) - timedelta(milliseconds=1), NOW, RETENTION)
    assert dict(got) == {"FI": 1000, "SE": 1000}
    assert spy.take() == {"count_starts": 1, "count_minutes": 0, "minute_rows": 0}


async def test_an_hour_the_background_pass_counted_is_then_recounted_from_its_few_stale_minutes(
    store: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background pass recounts a bulk-loaded recent hour through its minutes, so they are fresh.
    A few late starts (one of a country the hour had none of) then leave two minutes stale: a query
    recounts the hour from its minute rollups, counting only those two minutes' raw rows, exactly."""
    hour = NOW - timedelta(hours=10)
    await ingest_batch(bulk_starts(hour, 200), store, CLOCK, RETENTION, ValidationRules())
    spy = CountSpy(store, monkeypatch)
    await refresh_recent(store, CLOCK, RETENTION)
    assert spy.take()["count_starts"] == 0
    (row,) = await store.hour_rows(hour.replace(hour=0), hour, hour)
    assert row.fresh and row.counts == {"FI": 100, "SE": 100}

    late = [
        {
            "event": "start",
            "player_id": "late",
            "session_id": str(uuid.uuid4()),
            "country": country,
            "ts": (hour + timedelta(minutes=minute, seconds=1)).isoformat(),
        }
        for country, minute in (("FI", 3), ("NO", 3), ("NO", 41))
    ]
    await ingest_batch(late, store, CLOCK, RETENTION, ValidationRules())
    (row,) = await store.hour_rows(hour.replace(hour=0), hour, hour)
    assert not row.fresh
    window = (hour - timedelta(minutes=30), hour + timedelta(minutes=90))
    assert dict(await count_window(store, *window, NOW, RETENTION)) == {"FI": 101, "SE": 100, "NO": 2}
    assert spy.take() == {"count_starts": 0, "count_minutes": 1, "minute_rows": 2}  # two stale minutes
    (row,) = await store.hour_rows(hour.replace(hour=0), hour, hour)
    assert row.fresh and row.counts == {"FI": 101, "SE": 100, "NO": 2}


@pytest.mark.parametrize(
    ("base", "span_hours"),
    [
        (datetime(2016, 11, 30, 9, tzinfo=UTC), 3),
        # Across two midnights: whole days, whole hours on two days (one request over both), partial
        # hours on two days (one minute-rollup request, one raw count over both cut minutes).
        (datetime(2016, 11, 26, 20, tzinfo=UTC), 52),
    ],
)
async def test_windows_with_edges_inside_minutes_count_exactly_while_minutes_go_stale_and_fresh(
    store: CassandraStore, base: datetime, span_hours: int
) -> None:
    """Windows whose edges cut minutes: whole minutes come from minute rollups (stale ones recounted),
    the cut minutes from raw rows. Every answer equals the starts counted one by one."""
    import random

    rng = random.Random(7)
    span_ms = span_hours * 3600 * 1000
    starts: list[tuple[str, datetime]] = []

    async def add(n: int) -> None:
        batch = []
        for _ in range(n):
            country = rng.choice(["FI", "SE", "NO"])
            ts = base + timedelta(milliseconds=rng.randrange(span_ms))
            starts.append((country, ts))
            batch.append(
                {
                    "event": "start",
                    "player_id": uuid.uuid4().hex,
                    "session_id": str(uuid.uuid4()),
                    "country": country,
                    "ts": ts.isoformat(timespec="milliseconds"),
                }
            )
        result = await ingest_batch(batch, store, CLOCK, RETENTION, ValidationRules())
        assert result.stored == n

    async def check(rounds: int) -> None:
        for _ in range(rounds):
            lo = base + timedelta(milliseconds=rng.randrange(span_ms))
            length = rng.choice([59_000, 61_000, 3_600_000, 7_000_000, 30 * 3_600_000, span_ms])
            hi = min(lo + timedelta(milliseconds=length * rng.random()), base + timedelta(hours=span_hours))
            got = await count_window(store, lo, hi, NOW, RETENTION)
            want: dict[str, int] = {}
            for country, ts in starts:
                if lo <= ts <= hi:
                    want[country] = want.get(country, 0) + 1
            assert dict(+got) == want, (lo, hi)

    await add(400)
    await check(15)  # minutes stale: recounted, then fresh
    await check(15)
    await add(50)  # late starts make some minutes (and hours) stale again
    await check(15)


async def test_rollups_of_a_keyspace_made_before_counts_json_are_recounted_not_trusted(
    cassandra_node: str, test_keyspace_name: str, cql: object
) -> None:
    """A keyspace created when rollups kept their counts in a `counts` map: serve adds `counts_json`,
    and a row whose map looked fresh (counted == touched) reads as stale, so it is recounted from the
    raw rows instead of being taken as zero."""
    from cassandra.cluster import Session

    assert isinstance(cql, Session)
    ks = f"{test_keyspace_name}_oldrollups"
    settings = Settings(contact_points=cassandra_node, keyspace=ks)
    cql.execute(
        f"CREATE KEYSPACE {ks} WITH replication = {{'class': 'NetworkTopologyStrategy', 'datacenter1': 1}}",
        timeout=60,
    )
    for table, key in (
        ("hour_starts", "day timestamp, hour timestamp, countries set<text>, "),
        ("minute_starts", "hour timestamp, minute timestamp, "),
        ("day_starts", "year int, day timestamp, "),
    ):
        first, second = key.split(",")[0].split()[0], key.split(",")[1].split()[0]
        cql.execute(
            f"CREATE TABLE {ks}.{table} ({key}counts frozen<map<text, int>>, touched uuid, "
            f"counted uuid, PRIMARY KEY (({first}), {second}))",
            timeout=60,
        )
    day = datetime(2016, 11, 20, tzinfo=UTC)
    token = uuid.uuid4()
    # The old layout's "fresh" rollups of that day: counts the new code must not read as 0 or trust.
    cql.execute(
        f"INSERT INTO {ks}.day_starts (year, day, counts, touched, counted) VALUES (%s, %s, %s, %s, %s)",
        (2016, day.replace(tzinfo=None), {"FI": 999}, token, token),
    )

    store = await CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=True)
    try:
        columns = {
            r.column_name
            for r in cql.execute(
                "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
                (ks, "day_starts"),
            )
        }
        assert {"counts", "counts_json"} <= columns
        (old,) = await store.day_rows(2016, day, day)
        assert old.counts is None and not old.fresh
        whole_day = (day, day + timedelta(days=1) - timedelta(milliseconds=1))
        assert await count_window(store, *whole_day, NOW, RETENTION) == {}  # no raw rows: not 999
        # Ingest into that day, as the old version did; the count is the raw rows', not the old map's.
        await ingest_batch(starts_on(day, 12, "FI"), store, CLOCK, RETENTION, ValidationRules())
        assert await count_window(store, *whole_day, NOW, RETENTION) == {"FI": 12}
        (row,) = await store.day_rows(2016, day, day)
        assert row.fresh and row.counts == {"FI": 12}
        # Serving the same keyspace again (another process starting) changes nothing.
        again = await CassandraStore.connect(StoreConfig.from_settings(settings), ensure_schema=True)
        await again.close()
    finally:
        await store.close()
        cql.execute(f"DROP KEYSPACE {ks}", timeout=60)


async def test_a_query_does_not_share_a_recount_that_began_before_it_was_asked(
    store: CassandraStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recount running since before the query was asked may miss starts acknowledged in between:
    the query recounts for itself, and sees them."""
    minute = datetime(2016, 11, 30, 21, 7, tzinfo=UTC)
    window = (minute, minute + timedelta(minutes=1) - timedelta(milliseconds=1))

    def one_start() -> list[object]:
        return [
            {
                "event": "start",
                "player_id": uuid.uuid4().hex,
                "session_id": str(uuid.uuid4()),
                "country": "FI",
                "ts": (minute + timedelta(seconds=5)).isoformat(),
            }
        ]

    await ingest_batch(one_start(), store, CLOCK, RETENTION, ValidationRules())
    count_minutes = store.count_minutes
    first_count_read = asyncio.Event()
    release = asyncio.Event()
    calls = 0

    async def held_count_minutes(minutes: list[datetime]) -> dict[tuple[str, datetime], int]:
        nonlocal calls
        calls += 1
        found = await count_minutes(minutes)
        if calls == 1:  # the first recount has read its count, and is held before it answers
            first_count_read.set()
            await release.wait()
        return found

    monkeypatch.setattr(store, "count_minutes", held_count_minutes)
    flights = RecountFlights()
    # The whole minute sits in a partial hour of the window: it is read from its minute rollup.
    early = asyncio.ensure_future(count_window(store, *window, NOW, RETENTION, flights))
    await first_count_read.wait()
    await ingest_batch(one_start(), store, CLOCK, RETENTION, ValidationRules())  # acknowledged now
    late = asyncio.ensure_future(count_window(store, *window, NOW, RETENTION, flights))
    await asyncio.sleep(0.2)
    release.set()
    assert dict(await early) == {"FI": 1}  # counted before the second start was ingested
    assert dict(await late) == {"FI": 2}
    assert calls == 2
