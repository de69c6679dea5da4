"""The opaque pagination cursor of ``GET /session-starts/{country}``.

The cursor freezes the window (``frm``, ``to``) chosen by the first page, so "now" moving between
pages neither skips nor repeats rows, and records the last row returned as (``hour``, ``ts``,
``session_id``) so the next page resumes strictly after it.

Wire format: URL-safe base64, without padding, of compact JSON
``{"v":1,"f":..,"t":..,"h":..,"s":..,"i":"<32 hex>"}`` where the instants are integer microseconds
since the Unix epoch (exact for any datetime, so decode(encode(c)) == c). Decoding accepts only the
exact strings ``encode_cursor`` produces: it re-encodes and compares, which rejects tampering such as
reordered keys, whitespace or alternative base64 spellings without a separate rule for each.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["StartsCursor", "decode_cursor", "encode_cursor"]

_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MICROSECOND = timedelta(microseconds=1)
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_HEX32 = re.compile(r"[0-9a-f]{32}", re.ASCII)
# A real cursor is about 150 characters; the bound keeps hostile input away from the decoders.
_MAX_LEN = 400
_KEYS = frozenset({"v", "f", "t", "h", "s", "i"})
_INVALID = "cursor: not a valid cursor"


@dataclass(frozen=True)
class StartsCursor:
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


def encode_cursor(c: StartsCursor) -> str:
    payload = {
        "v": _VERSION,
        "f": _to_micros(c.frm),
        "t": _to_micros(c.to),
        "h": _to_micros(c.hour),
        "s": _to_micros(c.ts),
        "i": c.session_id.hex,
    }
    raw = json.dumps(payload, separators=(",", ":")).encode("ascii")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str) -> StartsCursor:
    """Decode a cursor from ``encode_cursor``; ``ValueError("cursor: not a valid cursor")`` otherwise."""
    try:
        cursor = _decode(text)
        if encode_cursor(cursor) != text:
            raise ValueError(_INVALID)
    except (ValueError, TypeError, OverflowError, RecursionError, binascii.Error):
        raise ValueError(_INVALID) from None
    return cursor


def _decode(text: str) -> StartsCursor:
    if not isinstance(text, str) or len(text) > _MAX_LEN or _ALPHABET.fullmatch(text) is None:
        raise ValueError(_INVALID)
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    payload = json.loads(raw)
    if not isinstance(payload, dict) or payload.keys() != _KEYS or payload["v"] != _VERSION:
        raise ValueError(_INVALID)
    session_hex = payload["i"]
    if not isinstance(session_hex, str) or _HEX32.fullmatch(session_hex) is None:
        raise ValueError(_INVALID)
    cursor = StartsCursor(
        frm=_from_micros(payload["f"]),
        to=_from_micros(payload["t"]),
        hour=_from_micros(payload["h"]),
        ts=_from_micros(payload["s"]),
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
