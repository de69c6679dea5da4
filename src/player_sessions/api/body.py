"""Reading and decoding a POST /events body within limits (bytes, decompressed bytes, events)."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import orjson

from player_sessions.api.errors import BadRequest, PayloadTooLarge, UnsupportedMedia
from player_sessions.services.ingest import NotJson

JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl",
                          "application/x-jsonlines", "application/jsonlines"})


def media_type(content_type: str | None) -> str:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if kind in JSON_TYPES or kind in NDJSON_TYPES:
        return kind
    raise UnsupportedMedia(
        "content-type",
        f"{kind or 'missing'}: send application/json (an array or {{\"events\": [...]}}) "
        "or application/x-ndjson (one event per line)",
    )


async def read_limited(chunks: AsyncIterator[bytes], content_length: str | None, encoding: str | None,
                       max_bytes: int) -> bytes:
    """The body, refused with 413 as soon as it (or its decompressed form) passes max_bytes."""
    if content_length is not None and content_length.isdigit() and int(content_length) > max_bytes:
        raise PayloadTooLarge("body", f"larger than {max_bytes} bytes")
    enc = (encoding or "identity").strip().lower()
    if enc not in ("identity", "gzip", "deflate"):
        raise UnsupportedMedia("content-encoding", f"{enc}: only gzip and deflate are accepted")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if enc == "gzip" else zlib.MAX_WBITS) \
        if enc != "identity" else None
    parts: list[bytes] = []
    size = 0
    raw_size = 0
    try:
        async for chunk in chunks:
            raw_size += len(chunk)
            if raw_size > max_bytes:
                raise PayloadTooLarge("body", f"larger than {max_bytes} bytes")
            # Inflate no more than the room left: a decompression bomb stops at max_bytes + 1.
            data = chunk if inflater is None else inflater.decompress(chunk, max_bytes - size + 1)
            size += len(data)
            if size > max_bytes:
                raise PayloadTooLarge("body", f"larger than {max_bytes} bytes once decompressed")
            parts.append(data)
        if inflater is not None:
            tail = inflater.flush()
            size += len(tail)
            if size > max_bytes or inflater.unconsumed_tail:
                raise PayloadTooLarge("body", f"larger than {max_bytes} bytes once decompressed")
            parts.append(tail)
    except zlib.error as exc:
        raise BadRequest("body", f"not valid {enc} data") from exc
    return b"".join(parts)


def decode_events(body: bytes, kind: str, max_events: int) -> list[object]:
    events = _decode_ndjson(body, max_events) if kind in NDJSON_TYPES else _decode_json(body)
    if not events:
        raise BadRequest("body", f"no events: send 1 to {max_events} events")
    if len(events) > max_events:
        raise PayloadTooLarge("body", f"{len(events)} events: at most {max_events} per request")
    return events


def _decode_json(body: bytes) -> list[object]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("body", f"not valid JSON ({exc})") from exc
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("events"), list):
        events: list[object] = document["events"]
        return events
    raise BadRequest("body", 'top level must be an array of events or {"events": [...]}')


def _decode_ndjson(body: bytes, max_events: int) -> list[object]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    if len(lines) > max_events:
        raise PayloadTooLarge("body", f"{len(lines)} events: at most {max_events} per request")
    events: list[object] = []
    parsed = 0
    for number, line in enumerate(lines):
        try:
            events.append(orjson.loads(line))
            parsed += 1
        except orjson.JSONDecodeError:
            events.append(NotJson(number))
    if lines and parsed == 0:
        raise BadRequest("body", "not NDJSON: no line is a JSON value")
    return events
