"""The CQL the store runs, prepared once per connection: `Statements.prepare(session, keyspace)` returns
them as named fields. Every statement is marked idempotent (each write is an upsert or a delete keyed
by the natural key), which lets the driver and the client retry any of them. What each statement
selects is chosen for decoding cost (store/rows.py); which statements a use case runs, and with what
values, is the store's (store/cassandra.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cassandra.query import PreparedStatement

from player_sessions.store.rows import COUNTRIES_COLUMN, EVENT_COLUMNS, ROLLUP_COLUMNS

if TYPE_CHECKING:
    from cassandra.cluster import Session


@dataclass(frozen=True)
class Statements:
    # Ingest: each event's row in its player's partition, each start's rows by hour and by minute
    put_event: PreparedStatement
    put_start: PreparedStatement
    put_minute_start: PreparedStatement
    # Marks: the rollups an ingest or an erase made stale get a new `touched` token
    touch_minute: PreparedStatement
    touch_hour: PreparedStatement
    put_country_hour: PreparedStatement
    touch_day: PreparedStatement
    # A player's events, newest first, in pages
    get_events: PreparedStatement
    get_events_after: PreparedStatement
    # Rollup rows, the recounts of stale ones, and their saved counts
    get_minute_rows: PreparedStatement
    get_hour_rows: PreparedStatement
    get_hour_rows_of_days: PreparedStatement
    get_day_rows: PreparedStatement
    count_minutes: PreparedStatement
    count_starts: PreparedStatement
    count_starts_between: PreparedStatement
    save_minute: PreparedStatement
    save_hour: PreparedStatement
    save_day: PreparedStatement
    # Pages of a window's starts
    get_country_hours: PreparedStatement
    get_starts: PreparedStatement
    get_starts_before: PreparedStatement
    # GET /health: a node answers at all
    ping: PreparedStatement
    # DELETE /players/{player_id} (the player's events are read with get_events)
    del_start: PreparedStatement
    del_minute_start: PreparedStatement
    del_events: PreparedStatement

    @classmethod
    def prepare(cls, session: Session, keyspace: str) -> Statements:
        ks = keyspace

        def idem(cql: str) -> PreparedStatement:
            stmt = session.prepare(cql)
            stmt.is_idempotent = True  # every write is an upsert keyed by the natural key
            return stmt

        return cls(
            put_event=idem(
                f"INSERT INTO {ks}.player_events (player_id, ts, session_id, is_start, country) "
                "VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ),
            # ts as epoch ms and session_id as its bytes (StoredEvent): decoding a datetime and a UUID per
            # row was ~40 % of a whale's request.
            get_events=idem(f"SELECT {EVENT_COLUMNS} FROM {ks}.player_events WHERE player_id = ? LIMIT ?"),
            get_events_after=idem(
                f"SELECT {EVENT_COLUMNS} FROM {ks}.player_events "
                "WHERE player_id = ? AND (ts, session_id, is_start) < (?, ?, ?) LIMIT ?"
            ),
            put_start=idem(
                f"INSERT INTO {ks}.starts_by_country_hour (country, hour, ts, session_id, player_id) "
                "VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ),
            put_minute_start=idem(
                f"INSERT INTO {ks}.starts_by_minute (minute, shard, country, ts, session_id) "
                "VALUES (?, ?, ?, ?, ?) USING TTL ?"
            ),
            # Filtering on ts inside the minutes' partitions (the rows of those minutes, nothing else): a
            # window's two cut minutes, every shard, in one request.
            count_starts_between=idem(
                f"SELECT country, count(*) AS n FROM {ks}.starts_by_minute "
                "WHERE minute IN ? AND shard IN ? AND ts >= ? AND ts <= ? "
                "GROUP BY minute, shard, country ALLOW FILTERING"
            ),
            put_country_hour=idem(
                f"INSERT INTO {ks}.country_hours (country, hour) VALUES (?, ?) USING TTL ?"
            ),
            touch_hour=idem(
                f"UPDATE {ks}.hour_starts USING TTL ? SET touched = ?, countries = countries + ? "
                "WHERE day = ? AND hour = ?"
            ),
            touch_day=idem(f"UPDATE {ks}.day_starts USING TTL ? SET touched = ? WHERE year = ? AND day = ?"),
            get_hour_rows=idem(
                f"SELECT hour, {ROLLUP_COLUMNS}, {COUNTRIES_COLUMN} FROM {ks}.hour_starts "
                "WHERE day = ? AND hour >= ? AND hour <= ?"
            ),
            touch_minute=idem(
                f"UPDATE {ks}.minute_starts USING TTL ? SET touched = ? WHERE hour = ? AND minute = ?"
            ),
            # Several partitions per request (a window's two partial hours; its whole hours on two days):
            # the driver's cost is per request (~0.35 ms of client CPU here), and so is much of Cassandra's.
            get_minute_rows=idem(
                f"SELECT minute, {ROLLUP_COLUMNS} FROM {ks}.minute_starts "
                "WHERE hour IN ? AND minute >= ? AND minute <= ?"
            ),
            get_hour_rows_of_days=idem(
                f"SELECT hour, {ROLLUP_COLUMNS}, {COUNTRIES_COLUMN} FROM {ks}.hour_starts "
                "WHERE day IN ? AND hour >= ? AND hour <= ?"
            ),
            save_minute=idem(
                f"UPDATE {ks}.minute_starts USING TTL ? SET counts_json = ?, counted = blobAsUuid(?) "
                "WHERE hour = ? AND minute = ?"
            ),
            # Every country of the minutes at once (no country list: a minute's recount needs nothing read
            # before it but the minute's token), a few partitions per minute (one per shard).
            count_minutes=idem(
                f"SELECT minute, country, count(*) AS n FROM {ks}.starts_by_minute "
                "WHERE minute IN ? AND shard IN ? GROUP BY minute, shard, country"
            ),
            get_day_rows=idem(
                f"SELECT day, {ROLLUP_COLUMNS} FROM {ks}.day_starts WHERE year = ? AND day >= ? AND day <= ?"
            ),
            save_hour=idem(
                f"UPDATE {ks}.hour_starts USING TTL ? SET counts_json = ?, counted = blobAsUuid(?) "
                "WHERE day = ? AND hour = ?"
            ),
            save_day=idem(
                f"UPDATE {ks}.day_starts USING TTL ? SET counts_json = ?, counted = blobAsUuid(?) "
                "WHERE year = ? AND day = ?"
            ),
            # One request counts many (country, hour) partitions (the product of the two lists): the server
            # reads the same partitions as one count(*) each would, the driver sends one request, not one
            # per country and hour (that was most of a query's cost).
            count_starts=idem(
                f"SELECT country, hour, count(*) AS n FROM {ks}.starts_by_country_hour "
                "WHERE country IN ? AND hour IN ? GROUP BY country, hour"
            ),
            get_country_hours=idem(
                f"SELECT hour FROM {ks}.country_hours WHERE country = ? AND hour <= ? AND hour >= ? LIMIT ?"
            ),
            get_starts=idem(
                f"SELECT ts, session_id, player_id FROM {ks}.starts_by_country_hour "
                "WHERE country = ? AND hour = ? AND ts >= ? AND ts <= ? LIMIT ?"
            ),
            get_starts_before=idem(
                f"SELECT ts, session_id, player_id FROM {ks}.starts_by_country_hour "
                "WHERE country = ? AND hour = ? AND ts >= ? AND (ts, session_id) < (?, ?) LIMIT ?"
            ),
            ping=idem("SELECT release_version FROM system.local"),
            # DELETE /players/{player_id}
            del_start=idem(
                f"DELETE FROM {ks}.starts_by_country_hour "
                "WHERE country = ? AND hour = ? AND ts = ? AND session_id = ?"
            ),
            del_minute_start=idem(
                f"DELETE FROM {ks}.starts_by_minute "
                "WHERE minute = ? AND shard = ? AND country = ? AND ts = ? AND session_id = ?"
            ),
            del_events=idem(f"DELETE FROM {ks}.player_events WHERE player_id = ?"),
        )
