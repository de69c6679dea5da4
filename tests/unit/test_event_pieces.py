"""A body decoded in pieces: the same events as decoding it whole, the event limit before the body is
decoded, bounded memory for hostile bodies, oversized and over-nested events."""

from __future__ import annotations

import time
import tracemalloc

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player_sessions.api import event_pieces as event_pieces_module
from player_sessions.api.body import decode_events
from player_sessions.api.errors import BadRequest, PayloadTooLarge
from player_sessions.api.event_pieces import MAX_DEPTH, MAX_EVENT_BYTES, PIECE_EVENTS, event_pieces
from player_sessions.services.ingest import TooLarge

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.sampled_from(list('ab,]}[{":\\ \n\u00e9\U0001f600')), max_size=12)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=12,
)


def depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=400)
@given(
    events=st.lists(values, min_size=1, max_size=8),
    indent=st.booleans(),
    envelope=st.sampled_from(["none", "events only", "events first", "events last"]),
)
def test_pieces_hold_exactly_what_decoding_the_whole_body_gives(
    events: list[object], indent: bool, envelope: str
) -> None:
    other = [1, {"x": "]"}]
    document: object = {
        "none": events,
        "events only": {"events": events},
        "events first": {"events": events, "other": other},
        "events last": {"other": other, "events": events},
    }[envelope]
    body = orjson.dumps(document, option=orjson.OPT_INDENT_2 if indent else 0)
    if max(map(depth, events)) > MAX_DEPTH:
        with pytest.raises(BadRequest, match="nested deeper"):
            decode_events(body, "application/json", 100)
    else:
        assert decode_events(body, "application/json", 100) == events


def test_many_pieces_keep_the_order_and_tricky_strings() -> None:
    events = [
        {"event": "start", "player_id": f'p"{i}],}}', "n": [i, {"k": ",]"}]}
        for i in range(5 * PIECE_EVENTS + 7)
    ]
    body = orjson.dumps(events)
    pieces = list(event_pieces(body, False, 100_000))
    assert len(pieces) > 5 and all(len(p) <= PIECE_EVENTS for p in pieces)
    assert [e for p in pieces for e in p] == events


def test_the_event_limit_stops_a_hostile_body_early_in_little_memory() -> None:
    body = b"[" + b"{}," * 8_000_000 + b"{}]"  # 24 MB: 8 million dicts (~550 MB) if decoded whole
    tracemalloc.start()
    began = time.perf_counter()
    with pytest.raises(PayloadTooLarge, match="more than 100000 events"):
        for _ in event_pieces(body, False, 100_000):
            pass
    seconds = time.perf_counter() - began
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20, f"{peak / 2**20:.1f} MiB"
    assert seconds < 2


def test_ndjson_too_many_lines_is_413_and_blank_lines_do_not_count() -> None:
    with pytest.raises(PayloadTooLarge):
        decode_events(b"{}\n" * 11, "application/x-ndjson", 10)
    assert len(decode_events(b"{}\n\n  \n" * 10, "application/x-ndjson", 10)) == 10


@pytest.mark.parametrize("kind", ["application/json", "application/x-ndjson"])
def test_an_event_over_the_size_cap_is_that_events_error_not_decoded(kind: str) -> None:
    big = {"event": "start", "pad": "x" * MAX_EVENT_BYTES}
    if kind == "application/json":
        body = orjson.dumps([{"a": 1}, big, 7])
    else:
        body = b"\n".join(orjson.dumps(e) for e in ({"a": 1}, big, 7))
    events = decode_events(body, kind, 10)
    assert events[0] == {"a": 1} and isinstance(events[1], TooLarge) and events[2] == 7
    assert events[1].error.rule == f"larger than {MAX_EVENT_BYTES} bytes"


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'[{"a":[[[[1]]]]}]',
        b"[1,2",
        b"[1e5]x",
        b"[1,2] [3]",
        b'{"events": [1]} x',
        b'{"events": [1], "other": }',
        b'{"events": [1], "events": [2]}',
        b"[{},{},{} x]",
        b'[{"a": 1}, {"pad": "' + b"x" * MAX_EVENT_BYTES + b'" nope}]',
        b'{"events": 3}',
        b"7",
        b"[]",
        b'{"events": []}',
    ],
)
def test_bad_bodies_are_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_events(body, "application/json", 10)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" + b"{}," * 1000 + b"{} x]", "not valid JSON (JSON is malformed"),
        (b'{"events": [1], "events": [2]}', '"events" given more than once'),
        (b"[1] [2]", "not valid JSON"),
        (b'[{"a": 1}, {"pad": "' + b"x" * MAX_EVENT_BYTES + b'" nope}]', "not valid JSON (JSON is malformed"),
    ],
)
def test_a_refused_body_says_why(body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as refused:
        decode_events(body, "application/json", 10_000)
    assert refused.value.rule.startswith(message.removeprefix("body: ")), refused.value.rule


class _CountingSyntax:
    """Stands in for the whole-body syntax decoder and records the size of what it was given."""

    def __init__(self, real: msgspec.json.Decoder[msgspec.Raw]) -> None:
        self.real = real
        self.sizes: list[int] = []

    def decode(self, data: bytes | bytearray | memoryview) -> object:
        self.sizes.append(len(data))
        return self.real.decode(data)


@pytest.mark.parametrize("shape", ["array", "envelope"])
def test_a_valid_large_body_is_never_checked_in_one_call(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One C call over 20 MB holds the GIL ~50 ms, and the event loop serves nothing meanwhile: the
    body is checked piece by piece, each a short call."""
    counting = _CountingSyntax(event_pieces_module._SYNTAX)
    monkeypatch.setattr(event_pieces_module, "_SYNTAX", counting)
    events = b"{}," * (6 * 2**20) + b"{}"  # 18 MiB, 6 million elements
    body = b"[" + events + b"]" if shape == "array" else b'{"events": [' + events + b"]}"
    with pytest.raises(PayloadTooLarge):
        for piece in event_pieces(body, False, 100_000):
            assert len(piece) <= PIECE_EVENTS
    assert counting.sizes == []
    small = orjson.dumps({"events": [{"a": 1}] * 3, "other": 1} if shape == "envelope" else [{"a": 1}] * 3)
    assert decode_events(small, "application/json", 10) == [{"a": 1}] * 3
    assert counting.sizes == ([len(small)] if shape == "envelope" else [])
