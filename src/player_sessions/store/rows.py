"""How rows come back and are decoded: the driver's row factory, the column lists that keep decoding
cheap, and the values of the rollup rows (counts as a JSON blob, countries as JSON text, timestamps
that the driver returns naive but are UTC). The statements select these columns and the store builds
its values with these functions; nothing here talks to Cassandra.
"""

from __future__ import annotations

import collections
import functools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from player_sessions.domain.sessions import StoredEvent

# Rollup rows are read by every window query, ~10 µs of client CPU per decoded value on the reference
# machine: the tokens come as their 16 bytes (no uuid.UUID per cell) and an hour's countries as one JSON
# text (the driver builds a set<text> element by element: 2.5 ms of a 24-hour window's 5.5 ms).
ROLLUP_COLUMNS = "counts_json, uuidAsBlob(touched) AS touched, uuidAsBlob(counted) AS counted"
COUNTRIES_COLUMN = "toJson(countries) AS countries_json"
EVENT_COLUMNS = "toUnixTimestamp(ts) AS ts_ms, uuidAsBlob(session_id) AS sid, is_start, country"
EVENT_COLUMN_NAMES = ("ts_ms", "sid", "is_start", "country")  # StoredEvent's fields, in order


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC)


def countries_of(text: str | None) -> frozenset[str]:
    return frozenset(orjson.loads(text) or ()) if text else frozenset()


def counts_blob(counts: Mapping[str, int] | None) -> bytes:
    return orjson.dumps(dict(counts or {}))


def counts_of(blob: bytes | None) -> dict[str, int] | None:
    """A rollup's counts; None for a row never counted (or counted by a version that kept them in the
    old map column): such a row is stale and gets recounted."""
    if blob is None:
        return None
    counts: dict[str, int] = orjson.loads(blob)
    return counts


@functools.lru_cache(maxsize=128)
def _row_class(colnames: tuple[str, ...]) -> Any:
    # rename: a column such as `TTL(x)` (not a Python name) becomes a positional field, as in any
    # session open_cluster gives, not an error.
    return collections.namedtuple("Row", colnames, rename=True)


def cached_named_tuple_factory(colnames: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[Any]:
    """The driver's default row factory builds a new namedtuple class for every result (~2 % of a
    player query's CPU, measured with py-spy); our statements have a handful of column lists, so the
    classes are made once. Our column names are plain identifiers (aggregates are aliased). A player's
    events come as StoredEvent rows (the domain's named tuple) straight away."""
    names = tuple(colnames)
    make = StoredEvent._make if names == EVENT_COLUMN_NAMES else _row_class(names)._make
    return [make(row) for row in rows]
