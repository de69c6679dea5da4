"""The schema, as code: what `player-sessions migrate` (store/migrations.py) brings a keyspace to.

Why these table options:
- Every row of the event tables carries a TTL of `retention - (now - ts)`, so data dies one retention
  after its event. TimeWindowCompactionStrategy with 7-day windows keeps ~52 windows per year of TTL
  and drops whole expired SSTables without compacting them.
- gc_grace_seconds is 3 hours on TTL-only tables (country_hours): nothing is deleted from them, and
  every replica expires a TTL'd cell on its own, so no tombstone must reach a replica that was away.
- It is 10 days on the tables DELETE /players/{id} deletes from (player_events, starts_by_country_hour,
  starts_by_minute): a tombstone must outlive the longest time a replica can miss the delete before
  repair gives it the tombstone, or the replica's copy of the erased rows comes back. Hints cover
  only an outage under max_hint_window (3 h); beyond it, the weekly repair does (docs/design.md,
  "Erase stays erased"). The cost: expired rows stay on disk up to 10 days longer (~3 % of a year).
- The count tables are overwritten in place (recounts), which TWCS handles badly; they are small, so
  they use LeveledCompactionStrategy, which keeps reads of a day's rows to few SSTables.
"""

from __future__ import annotations

import uuid

MINUTE_SHARDS = 4


def minute_shard(session_id: uuid.UUID) -> int:
    return session_id.int % MINUTE_SHARDS


TWCS = (
    "compaction = {'class': 'TimeWindowCompactionStrategy', 'compaction_window_unit': 'DAYS', "
    "'compaction_window_size': 7, 'unchecked_tombstone_compaction': 'true'} "
    "AND gc_grace_seconds = 10800"
)
TWCS_ERASED = TWCS.replace("gc_grace_seconds = 10800", "gc_grace_seconds = 864000")
LCS = "compaction = {'class': 'LeveledCompactionStrategy'} AND gc_grace_seconds = 86400"

TABLES: dict[str, str] = {
    # Every stored event of a player, newest first: one row per event (a duplicate rewrites its own
    # row), the only write ingest makes for a player, with no read before it. "Last N complete
    # sessions" pairs starts with ends while it reads back from the newest, and stops as soon as the
    # newest N are settled (domain.sessions.LatestSessions): cost tracks the answer, not the history.
    # It also lists every session and start of the player for DELETE /players/{id}.
    # Unbucketed on purpose: the TTL bounds a partition to one retention of one player's events.
    "player_events": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.player_events (
            player_id text, ts timestamp, session_id uuid, is_start boolean, country text,
            PRIMARY KEY ((player_id), ts, session_id, is_start)
        ) WITH CLUSTERING ORDER BY (ts DESC, session_id DESC, is_start DESC) AND {TWCS_ERASED}""",
    # Raw starts: one partition per country and hour, newest first (pagination, exact edge counts).
    "starts_by_country_hour": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.starts_by_country_hour (
            country text, hour timestamp, ts timestamp, session_id uuid, player_id text,
            PRIMARY KEY ((country, hour), ts, session_id)
        ) WITH CLUSTERING ORDER BY (ts DESC, session_id DESC) AND {TWCS_ERASED}""",
    # Raw starts again, by minute and every country together: the two minutes a window's edges cut are
    # counted here, a few partitions per edge (one per shard) instead of one per country (40 countries:
    # 7-9 ms of Cassandra per edge, however few starts). Sharded by the session id so that the
    # starts of a busy minute do not all land on one replica set; retries land on the same row.
    "starts_by_minute": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.starts_by_minute (
            minute timestamp, shard tinyint, country text, ts timestamp, session_id uuid,
            PRIMARY KEY ((minute, shard), country, ts, session_id)
        ) WITH {TWCS_ERASED}""",
    # Which hours a country has starts in: lets pagination skip empty hours of a long window.
    "country_hours": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.country_hours (
            country text, hour timestamp,
            PRIMARY KEY ((country), hour)
        ) WITH CLUSTERING ORDER BY (hour DESC) AND {TWCS}""",
    # The starts of one hour, per country, in one row: a window reads one row per hour (or day) however
    # many countries it has. `countries` is every country ingest added starts of to the hour (a set
    # that only grows, no tombstones): what a recount counts. `touched` is a fresh token written by
    # every ingest that adds starts to the hour, with its countries; `counted` is the token a recount
    # read *before* counting the raw rows, so `counts_json` is exact iff counted == touched. Recounts
    # overwrite it whole (one cell, no tombstone per overwrite): idempotent. The counts are one JSON
    # object in a blob, not a map<text, int>: the Python driver builds a map value entry by entry and
    # re-serialises a key on every lookup, ~4 ms of a 24-hour window's ~9 ms of service CPU (profiled);
    # a blob is one bytes object, parsed by orjson in microseconds.
    "hour_starts": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.hour_starts (
            day timestamp, hour timestamp,
            countries set<text>, counts_json blob, touched uuid, counted uuid,
            PRIMARY KEY ((day), hour)
        ) WITH {LCS}""",
    # The same per minute, partitioned by hour: a window's edges inside an hour read its whole minutes
    # here and count raw rows only in the two partial minutes, so an edge costs the same at any rate of
    # starts. An hour with a few stale minutes is recounted from these (rollups/recount.py). No
    # countries set: a minute is recounted from starts_by_minute over every country (so a bulk load
    # touches each minute once, not once per country and minute).
    "minute_starts": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.minute_starts (
            hour timestamp, minute timestamp,
            counts_json blob, touched uuid, counted uuid,
            PRIMARY KEY ((hour), minute)
        ) WITH {LCS}""",
    # The same per day, partitioned by year: a year-long window reads ~365 rows. A day's countries
    # are its hours'; a day is recounted from its hour rows.
    "day_starts": f"""
        CREATE TABLE IF NOT EXISTS {{ks}}.day_starts (
            year int, day timestamp,
            counts_json blob, touched uuid, counted uuid,
            PRIMARY KEY ((year), day)
        ) WITH {LCS}""",
}


# Columns added after a table's first release, for keyspaces created before (no-ops on new ones).
# Rollup rows of an older keyspace have no `counts_json`: they read as stale and are recounted once
# (their old `counts` map column is left in place, unread).
MIGRATIONS: tuple[str, ...] = tuple(
    f"ALTER TABLE {{ks}}.{table} ADD IF NOT EXISTS counts_json blob"
    for table in ("hour_starts", "minute_starts", "day_starts")
)
