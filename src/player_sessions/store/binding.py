"""Rows to protocol values: what `PreparedStatement.bind` computes, at less than half its CPU.

The driver's `bind` is most of ingest's CPU in the service: it builds a column descriptor,
asks the column-encryption policy and calls the type's generic serializer for every value of every
row (~18 us per row, 2,000 rows for 1,000 events). Our writes bind a handful of column types with
plain Python values, so each statement gets, once, one encoder per column that serializes those
values directly and hands anything else to the driver's own serializer. The bytes are the driver's
(a unit test compares them, type by type and row by row), so Cassandra sees the same request.
"""

from __future__ import annotations

import struct
import uuid
import weakref
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from cassandra import cqltypes
from cassandra.query import UNSET_VALUE, BatchStatement, BatchType, BoundStatement, PreparedStatement

Encoder = Callable[[Any], Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
_INT64 = struct.Struct(">q").pack
_INT32 = struct.Struct(">i").pack
_INT8 = struct.Struct(">b").pack
_ROUTING_PART = struct.Struct(">H")


class RowEncoder:
    """How one prepared statement's values become the bytes a request carries."""

    def __init__(self, statement: PreparedStatement) -> None:
        self.statement = statement
        version = statement.protocol_version
        self._encoders = tuple(_encoder(column, version) for column in statement.column_metadata)
        self._routing = tuple(statement.routing_key_indexes or ())
        self.keyspace = statement.column_metadata[0].keyspace_name if statement.column_metadata else None

    def values(self, params: Sequence[Any]) -> list[Any]:
        encoders = self._encoders
        if len(params) > len(encoders):
            raise ValueError(
                f"Too many arguments provided to bind() (got {len(params)}, expected {len(encoders)})"
            )
        out = [
            value if value is None or value is UNSET_VALUE else encode(value)
            for encode, value in zip(encoders, params, strict=False)
        ]
        if len(out) < len(encoders):
            out += [UNSET_VALUE] * (len(encoders) - len(out))  # as bind() pads from protocol v4
        for index in self._routing:
            if out[index] is UNSET_VALUE:
                name = self.statement.column_metadata[index].name
                raise ValueError(f"Cannot bind UNSET_VALUE as a part of the routing key '{name}'")
        return out

    def routing_key(self, values: Sequence[Any]) -> bytes | None:
        """BoundStatement.routing_key of these values: the partition key as the token is computed on."""
        routing = self._routing
        if not routing:
            return None
        if len(routing) == 1:
            key: bytes = values[routing[0]]
            return key
        return b"".join(_ROUTING_PART.pack(len(values[i])) + values[i] + b"\x00" for i in routing)

    def bound(self, values: list[Any], params: Sequence[Any]) -> BoundStatement:
        """A statement of one row, as `statement.bind(params)` returns it."""
        bound = BoundStatement(self.statement)
        bound.raw_values = params
        bound.values = values
        return bound


_ENCODERS: weakref.WeakKeyDictionary[PreparedStatement, RowEncoder] = weakref.WeakKeyDictionary()


def encoder_of(statement: PreparedStatement) -> RowEncoder:
    encoder = _ENCODERS.get(statement)
    if encoder is None:
        encoder = _ENCODERS[statement] = RowEncoder(statement)
    return encoder


def unlogged_batch(rows: Sequence[tuple[RowEncoder, list[Any]]]) -> BatchStatement:
    """An unlogged, idempotent batch of encoded rows, routed by its first row as BatchStatement.add
    routes it (the first row with a keyspace and a routing key)."""
    batch = BatchStatement(batch_type=BatchType.UNLOGGED)
    batch.is_idempotent = True
    add = batch._add_statement_and_params  # what add(bound) does once the row is bound
    for encoder, values in rows:
        if batch.routing_key is None and encoder.keyspace:
            key = encoder.routing_key(values)
            if key:
                batch.routing_key = key
                batch.keyspace = encoder.keyspace
        add(True, encoder.statement.query_id, values)
    return batch


def _encoder(column: Any, protocol_version: int) -> Encoder:
    """The column's serializer: a direct one for the plain Python value its type usually gets, the
    driver's (with the driver's error for a wrong type) for anything else."""
    cql_type = column.type

    def driver(value: Any) -> Any:
        try:
            return cql_type.serialize(value, protocol_version)
        except (TypeError, struct.error) as exc:
            raise TypeError(
                f'Received an argument of invalid type for column "{column.name}". '
                f"Expected: {cql_type}, Got: {type(value)}; ({exc})"
            ) from exc

    if cql_type is cqltypes.VarcharType or cql_type is cqltypes.UTF8Type:

        def text(value: Any) -> Any:
            return value.encode("utf-8") if value.__class__ is str else driver(value)

        return text
    if cql_type is cqltypes.DateType:

        def timestamp(value: Any) -> Any:
            if value.__class__ is not datetime:
                return driver(value)
            since = value - (_EPOCH_NAIVE if value.tzinfo is None else _EPOCH)
            # The driver's arithmetic, float and truncation included: the same millisecond, also
            # before 1970.
            return _INT64(int((since.days * 86_400 + since.seconds) * 1e3 + since.microseconds / 1e3))

        return timestamp
    if cql_type is cqltypes.UUIDType or cql_type is cqltypes.TimeUUIDType:

        def uuid_bytes(value: Any) -> Any:
            return value.bytes if value.__class__ is uuid.UUID else driver(value)

        return uuid_bytes
    if cql_type is cqltypes.BooleanType:

        def boolean(value: Any) -> Any:
            if value is True:
                return b"\x01"
            return b"\x00" if value is False else driver(value)

        return boolean
    integers = ((cqltypes.Int32Type, _INT32), (cqltypes.ByteType, _INT8), (cqltypes.LongType, _INT64))
    for int_type, pack in integers:
        if cql_type is int_type:

            def integer(value: Any, pack: Callable[[int], bytes] = pack) -> Any:
                if value.__class__ is int:
                    try:
                        return pack(value)
                    except struct.error:
                        pass  # out of range: the driver's error names the column
                return driver(value)

            return integer
    return driver
