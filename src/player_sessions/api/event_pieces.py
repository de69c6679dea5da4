"""A POST /events body as pieces of at most a thousand events, never decoded whole.

Decoded at once, JSON costs up to ~25 times its size (`[{},{},...]` is a 64-byte dict per 3 bytes), so
a hostile body within the byte limit could take gigabytes. Here the body is cut at top-level commas
into pieces of up to PIECE_EVENTS events that are decoded one at a time: the caller validates each
piece and drops it, so at most one piece's objects exist at once, and the event limit stops the body
as soon as it is passed, long before its end.

Each piece is checked as it is decoded, and what lies between and after the pieces is checked by the
cutting itself, so no step holds the GIL for more than a piece: a whole-body check of 20 MB takes
~50 ms in one C call, during which the process serves no other request. The whole body is checked in
one pass only to explain a refusal (the first syntax error in it) and for an envelope whose first
member is not "events".

The cuts are found by one regular expression that matches a run of whole elements (strings, scalars,
objects and arrays nested up to MAX_DEPTH levels) with possessive quantifiers, so it never backtracks;
on a valid document it finds exactly the top-level commas. An element larger than MAX_EVENT_BYTES
becomes that event's error without being decoded (only checked to be JSON); one nested deeper than
MAX_DEPTH makes the body 400. NDJSON is cut at line ends the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import msgspec
import orjson

from player_sessions.api.errors import BadRequest, PayloadTooLarge
from player_sessions.services.ingest import NotJson, TooLarge

MAX_EVENT_BYTES = 64 * 1024  # an event is ~150 bytes; this leaves room for any extra fields a client adds
# 256 of the longest valid events take 61 KiB: a piece over MAX_EVENT_BYTES may hold an element over it,
# and is then decoded element by element.
PIECE_EVENTS = 256
MAX_DEPTH = 4  # an event object, and three levels of extra fields inside it

_WS = rb"[ \t\n\r]*+"
_STRING = rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"'
_SCALAR = rb'[^\s,:\[\]{}"]++'


def _value(depth: int) -> bytes:
    if depth == 0:
        return rb"(?:" + _STRING + rb"|" + _SCALAR + rb")"
    inner = rb"(?:" + _STRING + rb"|" + _value(depth - 1) + rb")"
    body = rb'[^{}\[\]"]*+(?:' + inner + rb'[^{}\[\]"]*+)*+'
    return rb"(?:\{" + body + rb"\}|\[" + body + rb"\]|" + _STRING + rb"|" + _SCALAR + rb")"


_VALUE = _value(MAX_DEPTH)
_RUN = re.compile(rb"(?:" + _WS + _VALUE + _WS + rb",){1,%d}" % PIECE_EVENTS)
_ONE = re.compile(_WS + rb"(" + _VALUE + rb")" + _WS + rb"(?:,|(\]))")
_LAST = re.compile(_WS + rb"(" + _VALUE + rb")" + _WS + rb"\]")
_SYNTAX = msgspec.json.Decoder(msgspec.Raw)


class _Envelope(msgspec.Struct):
    events: msgspec.Raw = msgspec.Raw(b"")


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def event_pieces(body: bytes | bytearray, ndjson: bool, max_events: int) -> Iterator[list[object]]:
    """The body's events in order, as lists of decoded JSON values (or placeholders for a line that is
    not JSON and for an element over MAX_EVENT_BYTES). 413 once there are more than `max_events`;
    400 for a body that is not JSON / NDJSON, of the wrong shape, or with no events."""
    pieces = _ndjson_pieces(body) if ndjson else _json_pieces(body)
    count = 0
    for piece in pieces:
        count += len(piece)
        if count > max_events:
            raise PayloadTooLarge("body", f"more than {max_events} events: at most {max_events} per request")
        yield piece
    if count == 0:
        raise BadRequest("body", f"no events: send 1 to {max_events} events")


def _json_pieces(body: bytes | bytearray) -> Iterator[list[object]]:
    array, opening, trailer = _events_array(body)
    pos = _skip_ws(array, opening + 1)
    if array[pos : pos + 1] == b"]":
        _check_trailer(body, array, opening, pos + 1, trailer)
        return
    while True:
        run = _RUN.match(array, pos)
        if run is not None:
            end, closing = run.end() - 1, -1  # without the comma that follows the last element
        else:
            final = _LAST.match(array, pos)
            if final is None:
                raise _too_deep(body)
            end, closing = final.end(1), final.end()
        if end - pos > MAX_EVENT_BYTES:
            yield from _one_by_one(body, array, pos, end)
        else:
            yield _decode_piece(body, b"[" + array[pos:end] + b"]")
        if closing >= 0:
            _check_trailer(body, array, opening, closing, trailer)
            return
        pos = end + 1


def _events_array(body: bytes | bytearray) -> tuple[bytes | bytearray, int, re.Pattern[bytes]]:
    """The bytes that hold the events array, the offset of its `[`, and what may follow its `]`.

    A top-level array, or an envelope whose first member is "events", is cut in place and checked
    piece by piece as it is cut. Any other envelope is checked whole first, in one call that holds
    the GIL for the whole body (~2.5 ms per MB), to find its "events" member."""
    start = _skip_ws(body, 0)
    if body[start : start + 1] == b"[":
        return body, start, _WS_TO_END
    envelope = _EVENTS_FIRST.match(body, start)
    if envelope is not None:
        return body, envelope.end(), _CLOSE_TO_END
    _check_syntax(body)
    if body[start : start + 1] == b"{":
        array = bytes(_ENVELOPE.decode(body).events)  # unknown fields are skipped, not decoded
        if array[:1] == b"[":
            return array, 0, _WS_TO_END
    raise BadRequest("body", 'top level must be an array of events or {"events": [...]}')


def _check_trailer(
    body: bytes | bytearray, array: bytes | bytearray, opening: int, closing: int, trailer: re.Pattern[bytes]
) -> None:
    """What follows the events array: white space, or the envelope's `}`. Anything else makes the body
    either not JSON or an envelope with more members; that is checked whole, here, before any of its
    events is stored (the caller takes every piece before it writes)."""
    if trailer.fullmatch(array, closing) is not None:
        return
    _check_syntax(body)
    if trailer is _CLOSE_TO_END and bytes(_ENVELOPE.decode(body).events) != array[opening:closing]:
        raise BadRequest("body", '"events" given more than once')
    if trailer is _WS_TO_END:
        raise BadRequest("body", "not valid JSON (trailing characters after the events array)")


def _one_by_one(
    body: bytes | bytearray, array: bytes | bytearray, pos: int, end: int
) -> Iterator[list[object]]:
    while pos < end:
        match = _ONE.match(array, pos)
        assert match is not None  # the run that spans [pos, end) matched these elements already
        start, stop = match.span(1)
        if stop - start > MAX_EVENT_BYTES:
            # Not decoded, but it must still be JSON for the body to be.
            try:
                _SYNTAX.decode(memoryview(array)[start:stop])
            except msgspec.DecodeError:
                raise _too_deep(body) from None
            yield [TooLarge(MAX_EVENT_BYTES)]
        else:
            yield [_decode(body, array[start:stop])]
        pos = match.end()


def _check_syntax(body: bytes | bytearray) -> None:
    error = _syntax_error(body)
    if error is not None:
        raise error


def _syntax_error(body: bytes | bytearray) -> BadRequest | None:
    """The first syntax error in the whole body, if any."""
    try:
        _SYNTAX.decode(body)
    except msgspec.DecodeError as exc:
        return BadRequest("body", f"not valid JSON ({exc})")
    except RecursionError:
        return BadRequest("body", "not valid JSON (nested too deeply)")
    return None


def _too_deep(body: bytes | bytearray) -> BadRequest:
    """Why no element could be cut: a syntax error, else the nesting limit (the one kind of valid JSON
    the cutting refuses)."""
    return _syntax_error(body) or BadRequest("body", f"an event nested deeper than {MAX_DEPTH} levels")


def _decode(body: bytes | bytearray, data: bytes | bytearray) -> object:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        # The body's own syntax error if it has one; else what msgspec accepts and orjson does not
        # (integers over 64 bits, lone surrogates).
        raise _syntax_error(body) or BadRequest("body", f"not valid JSON ({exc})") from None


def _decode_piece(body: bytes | bytearray, data: bytes) -> list[object]:
    piece = _decode(body, data)
    assert isinstance(piece, list)
    return piece


def _skip_ws(data: bytes | bytearray, pos: int) -> int:
    match = _WS_RUN.match(data, pos)
    return match.end() if match else pos


_WS_RUN = re.compile(_WS)
_WS_TO_END = re.compile(_WS)
_CLOSE_TO_END = re.compile(_WS + rb"\}" + _WS)
_EVENTS_FIRST = re.compile(rb"\{" + _WS + rb'"events"' + _WS + rb":" + _WS + rb"(?=\[)")


def _ndjson_pieces(body: bytes | bytearray) -> Iterator[list[object]]:
    pos = 0
    index = 0
    parsed = 0
    size = len(body)
    while pos < size:
        cut = body.find(b"\n", pos + MAX_EVENT_BYTES)
        end = size if cut < 0 else cut
        # C-speed filtering: a body of blank lines costs no Python step per line.
        lines = list(filter(None, map(bytes.strip, bytes(body[pos:end]).split(b"\n"))))
        piece: list[object] = []
        for line in lines:
            if len(line) > MAX_EVENT_BYTES:
                piece.append(TooLarge(MAX_EVENT_BYTES))
            else:
                try:
                    piece.append(orjson.loads(line))
                    parsed += 1
                except orjson.JSONDecodeError:
                    piece.append(NotJson(index))
            index += 1
        if piece:
            yield piece
        pos = end + 1
    if index and not parsed:
        raise BadRequest("body", "not NDJSON: no line is a JSON value")
