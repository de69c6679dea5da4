from __future__ import annotations

import base64
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from player_sessions.domain.cursor import StartsCursor, decode_cursor, encode_cursor

INVALID = "cursor: not a valid cursor"
FRM = datetime(2016, 12, 1, tzinfo=UTC)
SESSION = uuid.UUID("5b2d8c3e-0f7a-4c1e-9d3b-2a6f1e8c7d40")


BASE = StartsCursor(
    frm=FRM,
    to=FRM + timedelta(hours=5),
    hour=FRM + timedelta(hours=2),
    ts=FRM + timedelta(hours=2, minutes=7, milliseconds=123),
    session_id=SESSION,
)


def cursor(**overrides: Any) -> StartsCursor:
    return replace(BASE, **overrides)


def wire(payload: object) -> str:
    """Encode an arbitrary payload the way encode_cursor does, to forge cursors."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def micros(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def payload(c: StartsCursor) -> dict[str, object]:
    return {
        "v": 1,
        "f": micros(c.frm),
        "t": micros(c.to),
        "h": micros(c.hour),
        "s": micros(c.ts),
        "i": c.session_id.hex,
    }


def test_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(cursor())) == cursor()


def test_encoded_cursor_is_url_safe_base64_without_padding() -> None:
    text = encode_cursor(cursor(session_id=uuid.UUID(int=2**128 - 1)))
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_encoding_is_compact() -> None:
    assert len(encode_cursor(cursor())) < 200


def test_decoded_instants_are_utc() -> None:
    decoded = decode_cursor(encode_cursor(cursor()))
    assert {decoded.frm.tzinfo, decoded.to.tzinfo, decoded.hour.tzinfo, decoded.ts.tzinfo} == {UTC}


def test_offset_instants_decode_as_the_same_instants() -> None:
    plus2 = timezone(timedelta(hours=2))
    original = cursor(frm=FRM.astimezone(plus2), ts=cursor().ts.astimezone(plus2))
    assert decode_cursor(encode_cursor(original)) == original


def test_encoding_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_cursor(cursor(frm=datetime(2016, 12, 1)))


def test_the_forging_helpers_match_the_real_encoding() -> None:
    # Guards the tampering tests below: they must start from exactly what encode_cursor writes.
    assert wire(payload(cursor())) == encode_cursor(cursor())


@pytest.mark.parametrize(
    "text",
    [
        "",
        "!!!!",
        "abc",
        "eyJ2IjoxfQ",  # {"v":1}
        wire([1, 2, 3]),
        wire("cursor"),
        base64.urlsafe_b64encode(b"\xff\xfe\x00garbage").decode().rstrip("="),
        "a" * 10_000,
        "é" * 20,
    ],
)
def test_garbage_is_not_a_cursor(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 2},
        {"v": True},
        {"f": True},
        {"f": "2016-12-01T00:00:00Z"},
        {"s": 1.5},
        {"h": 10**30},
        {"i": str(SESSION)},
        {"i": SESSION.hex.upper()},
        {"i": None},
        {"x": 1},
    ],
)
def test_tampered_fields_are_not_a_cursor(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire({**payload(cursor()), **change}))


def test_cursor_missing_a_field_is_not_a_cursor() -> None:
    forged = payload(cursor())
    del forged["s"]
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire(forged))


def test_reordered_keys_are_not_a_cursor() -> None:
    forged = dict(reversed(payload(cursor()).items()))
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire(forged))


def test_padded_cursor_is_not_a_cursor() -> None:
    text = encode_cursor(cursor())
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text + "=" * (-len(text) % 4 or 4))


@pytest.mark.parametrize(
    "broken",
    [
        cursor(to=FRM - timedelta(hours=1)),  # window ends before it starts
        cursor(ts=FRM - timedelta(milliseconds=1)),  # last row before the window
        cursor(ts=FRM + timedelta(hours=6)),  # last row after the window
        cursor(hour=FRM + timedelta(hours=2, minutes=1)),  # not an hour bucket
        cursor(hour=FRM + timedelta(hours=9)),  # bucket after the window
        cursor(hour=FRM - timedelta(hours=1)),  # bucket before the window
    ],
)
def test_inconsistent_cursor_is_not_a_cursor(broken: StartsCursor) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(encode_cursor(broken))


def test_every_single_character_change_is_rejected_or_decodes_to_a_different_cursor() -> None:
    text = encode_cursor(cursor())
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, original in enumerate(text):
        for replacement in alphabet.replace(original, "")[::7]:
            forged = text[:i] + replacement + text[i + 1 :]
            try:
                assert decode_cursor(forged) != cursor()
            except ValueError as error:
                assert str(error) == INVALID


instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(frm=instants, span=st.timedeltas(timedelta(0), timedelta(days=3)), at=st.floats(0, 1), sid=st.uuids())
def test_any_consistent_cursor_round_trips(frm: datetime, span: timedelta, at: float, sid: uuid.UUID) -> None:
    ts = frm + span * at
    hour = ts.replace(minute=0, second=0, microsecond=0)
    original = StartsCursor(frm=frm, to=frm + span, hour=hour, ts=ts, session_id=sid)
    assert decode_cursor(encode_cursor(original)) == original


@given(st.text() | st.from_regex(r"[A-Za-z0-9_-]{0,300}", fullmatch=True))
def test_decoding_arbitrary_text_fails_with_only_the_one_error(text: str) -> None:
    # Random text forming a valid, self-consistent, canonically encoded cursor is astronomically unlikely.
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text)
