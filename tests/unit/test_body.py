"""Request bodies: formats, limits (bytes, decompressed bytes, events) and their errors."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest

from player_sessions.api.body import decode_events, media_type, read_limited
from player_sessions.api.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from player_sessions.services.ingest import NotJson


async def chunks(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def test_body_over_the_limit_stops_being_read() -> None:
    with pytest.raises(PayloadTooLarge):
        await read_limited(chunks(b"x" * 5000), None, None, 4096)


async def test_declared_content_length_over_the_limit_is_refused_before_reading() -> None:
    async def never() -> AsyncIterator[bytes]:
        raise AssertionError("the body must not be read")
        yield b""

    with pytest.raises(PayloadTooLarge):
        await read_limited(never(), "999999", None, 4096)


async def test_gzip_bomb_is_refused_by_its_decompressed_size() -> None:
    bomb = gzip.compress(b" " * 1_000_000)
    assert len(bomb) < 4096
    with pytest.raises(PayloadTooLarge, match="decompressed"):
        await read_limited(chunks(bomb), None, "gzip", 4096)


async def test_gzip_within_the_limit_is_inflated() -> None:
    assert await read_limited(chunks(gzip.compress(b"[1,2]")), None, "gzip", 4096) == b"[1,2]"


async def test_corrupt_gzip_is_400() -> None:
    with pytest.raises(BadRequest):
        await read_limited(chunks(b"not gzip at all"), None, "gzip", 4096)


def test_content_types() -> None:
    assert media_type("application/json; charset=utf-8") == "application/json"
    assert media_type("application/x-ndjson") == "application/x-ndjson"
    with pytest.raises(UnsupportedMedia):
        media_type("text/csv")
    with pytest.raises(UnsupportedMedia):
        media_type(None)


def test_ndjson_bad_line_becomes_a_placeholder_and_blank_lines_are_skipped() -> None:
    events = decode_events(b'{"a":1}\n\nnope\n{"b":2}\n', "application/x-ndjson", 10)
    assert events[0] == {"a": 1} and isinstance(events[1], NotJson) and events[2] == {"b": 2}


def test_too_many_events_is_413() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_events(b"[1,2,3]", "application/json", 2)
