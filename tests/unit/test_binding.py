"""store.binding must send exactly what the driver's own binding sends: same bytes, same errors,
same routing, same batch."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from cassandra import cqltypes
from cassandra.protocol import ColumnMetadata
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, PreparedStatement

from player_sessions.store.binding import encoder_of, unlogged_batch

# The column types our statements bind, and one the encoder leaves to the driver.
TYPES = [
    cqltypes.VarcharType,
    cqltypes.DateType,
    cqltypes.UUIDType,
    cqltypes.BooleanType,
    cqltypes.Int32Type,
    cqltypes.ByteType,
    cqltypes.LongType,
    cqltypes.TimeUUIDType,
    cqltypes.BytesType,
]


def _prepared(types: list[Any], routing: list[int] | None, keyspace: str = "ks") -> PreparedStatement:
    columns = [ColumnMetadata(keyspace, "t", f"c{i}", t) for i, t in enumerate(types)]
    cql = f"INSERT INTO t ({', '.join(c.name for c in columns)}) VALUES ({', '.join('?' * len(columns))})"
    query_id = hashlib.sha1(cql.encode()).digest()
    return PreparedStatement(columns, query_id, routing, cql, keyspace, 4, None, None)


VALUES: dict[Any, list[Any]] = {
    cqltypes.VarcharType: ["", "FI", "pelaaja-ä€😀", "x" * 3000],
    cqltypes.DateType: [
        datetime(2016, 11, 22, 20, 37, 47, tzinfo=UTC),
        datetime(2016, 11, 22, 20, 37, 47, 999_999, tzinfo=UTC),
        datetime(2016, 11, 22, 20, 37, 47, 1_500),
        datetime(2016, 11, 22, 22, 37, 47, 123_456, tzinfo=timezone(timedelta(hours=2))),
        datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC),
        datetime(1900, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        1_480_595_696_000,  # an int: the driver's path
    ],
    cqltypes.UUIDType: [uuid.UUID(int=0), uuid.uuid4(), uuid.UUID("4a0c43c9-c43a-42ff-ba55-67563dfa35d4")],
    cqltypes.BooleanType: [True, False, 0, 1],
    cqltypes.Int32Type: [0, -1, 2**31 - 1, -(2**31), 31_536_000],
    cqltypes.ByteType: [0, 15, -128, 127],
    cqltypes.LongType: [0, 2**63 - 1, -(2**63)],
    cqltypes.TimeUUIDType: [uuid.uuid1()],
    cqltypes.BytesType: [b"", b"\x00\xff"],
}


@pytest.mark.parametrize("cql_type", TYPES, ids=lambda t: t.__name__)
def test_each_value_encodes_to_the_drivers_bytes(cql_type: Any) -> None:
    statement = _prepared([cql_type], None)
    for value in [*VALUES[cql_type], None, UNSET_VALUE]:
        assert encoder_of(statement).values([value]) == statement.bind([value]).values, value


@pytest.mark.parametrize(
    ("cql_type", "wrong"),
    [
        (cqltypes.Int32Type, 2**31),
        (cqltypes.ByteType, 300),
        (cqltypes.Int32Type, "7"),
        (cqltypes.UUIDType, "4a0c43c9"),
        (cqltypes.DateType, "2016-11-22"),
    ],
)
def test_a_wrong_value_fails_as_the_driver_fails(cql_type: Any, wrong: Any) -> None:
    statement = _prepared([cql_type], None)
    with pytest.raises(TypeError) as driver:
        statement.bind([wrong])
    with pytest.raises(TypeError) as ours:
        encoder_of(statement).values([wrong])
    assert 'column "c0"' in str(ours.value) and 'column "c0"' in str(driver.value)


def test_rows_routing_keys_and_short_rows_match_the_driver() -> None:
    types = [cqltypes.DateType, cqltypes.ByteType, cqltypes.VarcharType, cqltypes.UUIDType]
    types.append(cqltypes.Int32Type)
    ts = datetime(2016, 11, 22, 20, 37, tzinfo=UTC)
    rows = [
        (ts, 3, "FI", uuid.uuid4(), 3600),
        (ts, 0, None, uuid.uuid4(), UNSET_VALUE),
        (ts, 7, "SE"),  # a short row is padded with UNSET, as bind() does
    ]
    for routing in ([0, 1], [2], None):
        statement = _prepared(types, routing)
        encoder = encoder_of(statement)
        for params in rows:
            values = encoder.values(params)
            bound = statement.bind(params)
            assert values == bound.values
            assert encoder.routing_key(values) == bound.routing_key
            single = encoder.bound(values, params)
            assert single.values == bound.values and single.routing_key == bound.routing_key
            assert single.prepared_statement is statement and single.keyspace == "ks"


def test_unset_in_the_partition_key_and_too_many_values_are_refused() -> None:
    statement = _prepared([cqltypes.VarcharType, cqltypes.Int32Type], [0])
    with pytest.raises(ValueError, match="routing key 'c0'"):
        encoder_of(statement).values([UNSET_VALUE, 1])
    with pytest.raises(ValueError, match="Too many arguments"):
        encoder_of(statement).values(["a", 1, 2])


def test_a_batch_is_the_drivers_batch() -> None:
    first = _prepared([cqltypes.VarcharType, cqltypes.DateType, cqltypes.Int32Type], [0])
    second = _prepared([cqltypes.DateType, cqltypes.ByteType, cqltypes.UUIDType], [0, 1])
    ts = datetime(2016, 11, 22, 20, 37, tzinfo=UTC)
    rows = [(first, ("p1", ts, 60)), (second, (ts, 2, uuid.uuid4())), (first, ("p2", ts, UNSET_VALUE))]
    expected = BatchStatement(batch_type=BatchType.UNLOGGED)
    for statement, params in rows:
        expected.add(statement.bind(params))
    ours = unlogged_batch([(encoder_of(s), encoder_of(s).values(p)) for s, p in rows])
    assert ours._statements_and_parameters == expected._statements_and_parameters
    assert (ours.routing_key, ours.keyspace) == (expected.routing_key, expected.keyspace) == (b"p1", "ks")
    assert ours.batch_type == BatchType.UNLOGGED and ours.is_idempotent
