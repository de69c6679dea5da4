from __future__ import annotations

import base64
import hashlib
import hmac
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
KEY = b"k" * 32
OLD_KEY = b"o" * 32
KEYS = [KEY]


BASE = StartsCursor(
    country="FI",
    frm=FRM,
    to=FRM + timedelta(hours=5),
    hour=FRM + timedelta(hours=2),
    ts=FRM + timedelta(hours=2, minutes=7, milliseconds=123),
    session_id=SESSION,
)


def cursor(**overrides: Any) -> StartsCursor:
    return replace(BASE, **overrides)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def wire(payload: object, key: bytes = KEY) -> str:
    """Encode and sign an arbitrary payload the way encode_cursor does: what a holder of the key could
    write, to check that decoding still refuses what encode_cursor never writes."""
    text = b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{text}.{b64(hmac.new(key, text.encode(), hashlib.sha256).digest()[:16])}"


def micros(ts: datetime) -> int:
    return (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def payload(c: StartsCursor) -> dict[str, object]:
    return {
        "v": 2,
        "c": c.country,
        "f": micros(c.frm),
        "t": micros(c.to),
        "h": micros(c.hour),
        "s": micros(c.ts),
        "i": c.session_id.hex,
    }


def test_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(cursor(), KEY), KEYS) == cursor()


def test_encoded_cursor_is_url_safe_base64_without_padding() -> None:
    text = encode_cursor(cursor(session_id=uuid.UUID(int=2**128 - 1)), KEY)
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_encoding_is_compact() -> None:
    assert len(encode_cursor(cursor(), KEY)) < 250


def test_decoded_instants_are_utc() -> None:
    decoded = decode_cursor(encode_cursor(cursor(), KEY), KEYS)
    assert {decoded.frm.tzinfo, decoded.to.tzinfo, decoded.hour.tzinfo, decoded.ts.tzinfo} == {UTC}


def test_offset_instants_decode_as_the_same_instants() -> None:
    plus2 = timezone(timedelta(hours=2))
    original = cursor(frm=FRM.astimezone(plus2), ts=cursor().ts.astimezone(plus2))
    assert decode_cursor(encode_cursor(original, KEY), KEYS) == original


def test_encoding_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        encode_cursor(cursor(frm=datetime(2016, 12, 1)), KEY)


def test_the_forging_helpers_match_the_real_encoding() -> None:
    # Guards the tampering tests below: they must start from exactly what encode_cursor writes.
    assert wire(payload(cursor())) == encode_cursor(cursor(), KEY)


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(encode_cursor(cursor(), OLD_KEY), KEYS)


def test_every_listed_key_verifies_so_rotation_keeps_pages_in_flight() -> None:
    in_flight = encode_cursor(cursor(), OLD_KEY)
    assert decode_cursor(in_flight, [KEY, OLD_KEY]) == cursor()
    assert decode_cursor(encode_cursor(cursor(), KEY), [KEY, OLD_KEY]) == cursor()
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(in_flight, [KEY])  # once the old key is dropped


def test_no_keys_verify_nothing() -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(encode_cursor(cursor(), KEY), [])


@pytest.mark.parametrize(
    "change",
    [
        {"c": "SE"},  # another country's pages
        {"f": micros(FRM - timedelta(days=30))},  # a wider window
        {"t": micros(FRM + timedelta(hours=4))},
        {"s": micros(FRM + timedelta(hours=2, minutes=8))},  # another resume point
    ],
)
def test_an_edited_payload_under_the_old_tag_is_refused(change: dict[str, object]) -> None:
    signed = encode_cursor(cursor(), KEY)
    _, tag = signed.split(".")
    forged = b64(json.dumps({**payload(cursor()), **change}, separators=(",", ":")).encode())
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(f"{forged}.{tag}", KEYS)


def test_the_unsigned_payload_alone_is_refused() -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(encode_cursor(cursor(), KEY).split(".")[0], KEYS)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ".",
        "!!!!",
        "abc",
        "eyJ2IjoxfQ",  # {"v":1}
        "eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",
        wire([1, 2, 3]),
        wire("cursor"),
        b64(b"\xff\xfe\x00garbage") + "." + b64(b"\x00" * 16),
        "a" * 10_000,
        "é" * 20,
    ],
)
def test_garbage_is_not_a_cursor(text: str) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text, KEYS)


@pytest.mark.parametrize(
    "change",
    [
        {"v": 1},
        {"v": True},
        {"c": "fi"},
        {"c": "FIN"},
        {"c": 1},
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
def test_signed_payloads_encode_cursor_never_writes_are_not_a_cursor(change: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire({**payload(cursor()), **change}), KEYS)


def test_cursor_missing_a_field_is_not_a_cursor() -> None:
    forged = payload(cursor())
    del forged["s"]
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire(forged), KEYS)


def test_reordered_keys_are_not_a_cursor() -> None:
    forged = dict(reversed(payload(cursor()).items()))
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(wire(forged), KEYS)


def test_padded_cursor_is_not_a_cursor() -> None:
    text, tag = encode_cursor(cursor(), KEY).split(".")
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text + "=" * (-len(text) % 4 or 4) + "." + tag, KEYS)


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
        decode_cursor(encode_cursor(broken, KEY), KEYS)


def test_every_single_character_change_is_rejected() -> None:
    text = encode_cursor(cursor(), KEY)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    for i, original in enumerate(text):
        for replacement in alphabet.replace(original, "")[::7]:
            forged = text[:i] + replacement + text[i + 1 :]
            # The tag covers the payload's text, so even its unused low bits cannot be changed.
            with pytest.raises(ValueError, match=f"^{INVALID}$"):
                decode_cursor(forged, KEYS)


instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(
    frm=instants,
    span=st.timedeltas(timedelta(0), timedelta(days=3)),
    at=st.floats(0, 1),
    sid=st.uuids(),
    country=st.from_regex(r"[A-Z]{2}", fullmatch=True),
)
def test_any_consistent_cursor_round_trips(
    frm: datetime, span: timedelta, at: float, sid: uuid.UUID, country: str
) -> None:
    ts = frm + span * at
    hour = ts.replace(minute=0, second=0, microsecond=0)
    original = StartsCursor(country=country, frm=frm, to=frm + span, hour=hour, ts=ts, session_id=sid)
    assert decode_cursor(encode_cursor(original, KEY), KEYS) == original


@given(st.text() | st.from_regex(r"[A-Za-z0-9_-]{0,300}(\.[A-Za-z0-9_-]{0,30})?", fullmatch=True))
def test_decoding_arbitrary_text_fails_with_only_the_one_error(text: str) -> None:
    # Random text carrying a valid tag is a 2**-128 chance.
    with pytest.raises(ValueError, match=f"^{INVALID}$"):
        decode_cursor(text, KEYS)
