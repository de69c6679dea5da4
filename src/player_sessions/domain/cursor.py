"""The signed pagination cursor of ``GET /session-starts/{country}``.

The cursor freezes the window (``frm``, ``to``) chosen by the first page, so "now" moving between
pages neither skips nor repeats rows, records the last row returned as (``hour``, ``ts``,
``session_id``) so the next page resumes strictly after it, and names the ``country`` it pages.

Wire format: ``<payload>.<tag>``. The payload is URL-safe base64, without padding, of compact JSON
``{"v":2,"c":"FI","f":..,"t":..,"h":..,"s":..,"i":"<32 hex>"}`` where the instants are integer
microseconds since the Unix epoch (exact for any datetime, so decode(encode(c)) == c). The tag is the
first 16 bytes of HMAC-SHA256 of the payload text under the signing key, in the same base64. A client
can read a cursor but not write one: a forged window, a tampered row or a cursor edited to another
country fails the tag. Several keys verify (the first one signs), so a key is rotated by putting the
new one first and dropping the old one once the pages it signed are no longer followed.

Decoding accepts only the exact strings ``encode_cursor`` produces: after the tag it re-encodes and
compares, which rejects reordered keys, whitespace or alternative base64 spellings without a rule
for each.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["StartsCursor", "decode_cursor", "encode_cursor"]

_VERSION = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_HEX32 = re.compile(r"[0-9a-f]{32}", re.ASCII)
_COUNTRY = re.compile(r"[A-Z]{2}", re.ASCII)
_TAG_BYTES = 16  # 128 bits: forging needs 2**128 tries, and the cursor stays short
# A real cursor is about 190 characters; the bound keeps hostile input away from the decoders.
_MAX_LEN = 400
_KEYS = frozenset({"v", "c", "f", "t", "h", "s", "i"})
_INVALID = "cursor: not a valid cursor"


@dataclass(frozen=True)
class StartsCursor:
    country: str
    frm: datetime
    to: datetime
    hour: datetime
    ts: datetime
    session_id: uuid.UUID


def _to_micros(ts: datetime) -> int:
    if ts.tzinfo is None or ts.utcoffset() is None:
        raise ValueError("cursor: timestamps must be timezone-aware")
    return (ts - _EPOCH) // _ONE_MICROSECOND


def _from_micros(value: object) -> datetime:
    # bool is an int subclass; a cursor holding true is not one we wrote.
    if type(value) is not int:
        raise ValueError(_INVALID)
    return _EPOCH + timedelta(microseconds=value)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _tag(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()[:_TAG_BYTES])


def _payload(c: StartsCursor) -> str:
    fields = {
        "v": _VERSION,
        "c": c.country,
        "f": _to_micros(c.frm),
        "t": _to_micros(c.to),
        "h": _to_micros(c.hour),
        "s": _to_micros(c.ts),
        "i": c.session_id.hex,
    }
    return _b64(json.dumps(fields, separators=(",", ":")).encode("ascii"))


def encode_cursor(c: StartsCursor, key: bytes) -> str:
    """The cursor signed with ``key``."""
    payload = _payload(c)
    return f"{payload}.{_tag(key, payload)}"


def decode_cursor(text: str, keys: Sequence[bytes]) -> StartsCursor:
    """Decode a cursor ``encode_cursor`` signed with one of ``keys``;
    ``ValueError("cursor: not a valid cursor")`` otherwise."""
    try:
        payload = _verified_payload(text, keys)
        cursor = _decode(payload)
        if _payload(cursor) != payload:
            raise ValueError(_INVALID)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise ValueError(_INVALID) from None
    return cursor


def _verified_payload(text: str, keys: Sequence[bytes]) -> str:
    if not isinstance(text, str) or len(text) > _MAX_LEN:
        raise ValueError(_INVALID)
    payload, dot, tag = text.partition(".")
    if not dot or _ALPHABET.fullmatch(payload) is None or _ALPHABET.fullmatch(tag) is None:
        raise ValueError(_INVALID)
    # Every key is tried, each in constant time: which key signed is no secret, but a near miss is.
    valid = False
    for key in keys:
        valid |= hmac.compare_digest(_tag(key, payload), tag)
    if not valid:
        raise ValueError(_INVALID)
    return payload


def _decode(text: str) -> StartsCursor:
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    fields = json.loads(raw)
    if not isinstance(fields, dict) or fields.keys() != _KEYS or fields["v"] != _VERSION:
        raise ValueError(_INVALID)
    session_hex, country = fields["i"], fields["c"]
    if not isinstance(session_hex, str) or _HEX32.fullmatch(session_hex) is None:
        raise ValueError(_INVALID)
    if not isinstance(country, str) or _COUNTRY.fullmatch(country) is None:
        raise ValueError(_INVALID)
    cursor = StartsCursor(
        country=country,
        frm=_from_micros(fields["f"]),
        to=_from_micros(fields["t"]),
        hour=_from_micros(fields["h"]),
        ts=_from_micros(fields["s"]),
        session_id=uuid.UUID(hex=session_hex),
    )
    # A cursor we wrote always describes a last row inside its own window, in an hour bucket.
    hour = cursor.hour
    if not (
        cursor.frm <= cursor.ts <= cursor.to
        and hour == hour.replace(minute=0, second=0, microsecond=0)
        and cursor.frm - timedelta(hours=1) < hour <= cursor.to
    ):
        raise ValueError(_INVALID)
    return cursor
