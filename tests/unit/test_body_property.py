"""Properties of the body reader and decoder over arbitrary input: they return bytes / a list of events
or raise one of the HTTP layer's own errors (400, 408, 413, 415), never anything else, so no body can
turn into a 500. Classifying whatever was decoded never raises either: every item becomes an event, an
expired event or a field-named error.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from player_sessions.api.body import NDJSON_TYPES, decode_events, media_type, read_limited
from player_sessions.api.errors import BadRequest, HttpError, PayloadTooLarge, UnsupportedMedia
from player_sessions.domain.validation import ValidationRules
from player_sessions.services.ingest import classify
from tests.support.clock import NOW

KINDS = ["application/json", *sorted(NDJSON_TYPES)]
FIELDS = {"event", "player_id", "session_id", "country", "ts"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=10,
)
# What orjson cannot represent, deep nesting and other corner cases, as raw bodies.
odd_bodies = st.sampled_from(
    [
        b"[123456789012345678901234567890]",
        b"[1e999]",
        b"[NaN]",
        b"[" * 2000 + b"]" * 2000,
        b'{"events": {}}',
        b'{"events": null}',
        b'{"events": []}',
        b"[]",
        b"\xef\xbb\xbf[{}]",
        b"\x00",
        b'[{"event": "start"}]\n',
        b"\n\n\n",
        b"\r\n",
        b'["\\ud800"]',
    ]
)
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(["start", "end", "START", ""]) | json_values,
        "player_id": st.from_regex(r"[A-Za-z0-9._:-]{0,70}", fullmatch=True) | json_values,
        "session_id": st.uuids().map(str) | st.text(max_size=40),
        "country": st.sampled_from(["FI", "uk", "XK", "ZZ", ""]) | json_values,
        "ts": st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()) | st.text(max_size=30),
    },
)
# Bodies that are JSON-ish: valid documents of every shape, NDJSON mixes, and their mangled forms.
json_documents = st.one_of(
    st.lists(event_fields, max_size=6).map(orjson.dumps),
    st.lists(event_fields, max_size=6).map(lambda evs: orjson.dumps({"events": evs})),
    json_values.map(orjson.dumps),
    st.lists(event_fields | json_values, max_size=6).map(
        lambda items: b"\n".join(orjson.dumps(i) for i in items)
    ),
    st.lists(st.binary(max_size=40) | event_fields.map(orjson.dumps), max_size=6).map(b"\n".join),
)
bodies = (
    st.binary(max_size=300)
    | odd_bodies
    | json_documents
    | json_documents.flatmap(lambda doc: st.integers(0, max(0, len(doc))).map(lambda cut: doc[:cut]))
)


def outcome_of_decode(body: bytes, kind: str, max_events: int) -> list[object] | HttpError:
    try:
        events = decode_events(body, kind, max_events)
    except (BadRequest, PayloadTooLarge, UnsupportedMedia) as error:
        return error
    assert isinstance(events, list)
    assert 1 <= len(events) <= max_events
    return events


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, kind=st.sampled_from(KINDS), max_events=st.integers(1, 8))
def test_decode_events_gives_a_list_or_an_http_error_for_any_bytes(
    body: bytes, kind: str, max_events: int
) -> None:
    outcome = outcome_of_decode(body, kind, max_events)
    if isinstance(outcome, HttpError):
        assert outcome.field == "body" and outcome.status in (400, 413)
        return
    # Whatever was decoded classifies without an exception: events, expired, or field-named errors.
    result = classify(outcome, NOW, timedelta(days=365), ValidationRules()).result
    assert result.received == len(outcome) == result.stored + result.expired + result.rejected
    assert all(error.field in FIELDS for _, error in result.errors)


@given(
    st.text(max_size=60) | st.sampled_from([*KINDS, "application/json; charset=utf-8", " APPLICATION/JSON "])
)
def test_media_type_is_a_known_kind_or_415(content_type: str) -> None:
    try:
        kind = media_type(content_type)
    except UnsupportedMedia as error:
        assert error.status == 415
    else:
        assert kind in KINDS


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    at = 0
    for size in sizes:
        yield data[at : at + size]
        at += size
    if at < len(data):
        yield data[at:]


def encoded(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    return data


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=bodies | st.binary(min_size=0, max_size=3000),
    encoding=st.sampled_from(["identity", "gzip", "deflate", None, "br", "GZIP", " gzip "]),
    declared_encoding=st.none() | st.sampled_from(["identity", "gzip", "deflate", "x-gzip", "", "gzip, br"]),
    mangle=st.sampled_from(["none", "truncate", "flip", "garbage"]),
    sizes=st.lists(st.integers(0, 700), max_size=6),
    content_length=st.none() | st.sampled_from(["", "abc", "-1", "²", "99999999999999999999", "10"]),
    max_bytes=st.integers(16, 4000),
    timeout=st.none() | st.just(30.0),
)
def test_read_limited_gives_bytes_within_the_limit_or_an_http_error(
    payload: bytes,
    encoding: str | None,
    declared_encoding: str | None,
    mangle: str,
    sizes: list[int],
    content_length: str | None,
    max_bytes: int,
    timeout: float | None,
) -> None:
    data = encoded(payload, (encoding or "identity").strip().lower())
    if mangle == "truncate":
        data = data[: len(data) // 2]
    elif mangle == "flip" and data:
        data = data[:-1] + bytes([data[-1] ^ 0xFF])
    elif mangle == "garbage":
        data += b"\x00garbage"
    header = declared_encoding if declared_encoding is not None else encoding

    async def run() -> bytearray | HttpError:
        try:
            return await read_limited(
                chunked(data, sizes), content_length, header, max_bytes, body_timeout=timeout, min_rate=1.0
            )
        except HttpError as error:
            return error

    outcome = asyncio.run(run())
    if isinstance(outcome, HttpError):
        assert outcome.status in (400, 413, 415)
        return
    assert isinstance(outcome, bytearray)
    assert len(outcome) <= max_bytes
    same_encoding = (header or "identity").strip().lower() == (encoding or "identity").strip().lower()
    if mangle == "none" and same_encoding:
        assert outcome == payload
