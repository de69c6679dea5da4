"""validate_event: one test per rule with its exact client-facing message, then normalisations,
then properties over arbitrary JSON."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from player_sessions.domain.events import Event, EventKind, InvalidEvent
from player_sessions.domain.validation import ValidationRules, normalise_country, validate_event
from tests.support import clock

NOW = clock.NOW + timedelta(hours=12)
SESSION = "5b2d8c3e-0f7a-4c1e-9d3b-2a6f1e8c7d40"
MISSING = object()


def start_raw(**overrides: object) -> dict[str, object]:
    """A valid start event as a client sends it; pass MISSING to drop a field."""
    raw: dict[str, object] = {
        "event": "start",
        "player_id": "player-1",
        "session_id": SESSION,
        "country": "FI",
        "ts": "2016-12-01T11:00:00Z",
    }
    raw.update(overrides)
    return {k: v for k, v in raw.items() if v is not MISSING}


def end_raw(**overrides: object) -> dict[str, object]:
    """A valid end event (no country) as a client sends it; pass MISSING to drop a field."""
    return start_raw(**{"event": "end", "country": MISSING, **overrides})


def rejection(raw: object, rules: ValidationRules | None = None) -> str:
    with pytest.raises(InvalidEvent) as caught:
        if rules is None:
            validate_event(raw, NOW)
        else:
            validate_event(raw, NOW, rules)
    assert str(caught.value) == caught.value.error.message
    return caught.value.error.message


# --- the happy path --------------------------------------------------------------------------------


def test_valid_start_becomes_an_event() -> None:
    assert validate_event(start_raw(), NOW) == Event(
        kind=EventKind.START,
        player_id="player-1",
        session_id=uuid.UUID(SESSION),
        ts=datetime(2016, 12, 1, 11, 0, tzinfo=UTC),
        country="FI",
    )


def test_valid_end_without_country_has_no_country() -> None:
    event = validate_event(end_raw(), NOW)
    assert event.kind is EventKind.END
    assert event.country is None


# --- the event object ------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, True, 0, 1.5, "start", [], [start_raw()]])
def test_non_object_is_rejected(raw: object) -> None:
    assert rejection(raw) == "event: not a JSON object"


# --- event -----------------------------------------------------------------------------------------


def test_missing_event_kind_is_rejected() -> None:
    assert rejection(start_raw(event=MISSING)) == "event: required"


def test_null_event_kind_is_rejected_as_missing() -> None:
    assert rejection(start_raw(event=None)) == "event: required"


@pytest.mark.parametrize("kind", ["START", "begin", "", " start", 1, True, ["start"], {"start": 1}])
def test_unknown_event_kind_is_rejected(kind: object) -> None:
    assert rejection(start_raw(event=kind)) == 'event: must be "start" or "end"'


# --- player_id -------------------------------------------------------------------------------------


def test_missing_player_id_is_rejected() -> None:
    assert rejection(start_raw(player_id=MISSING)) == "player_id: required"


def test_null_player_id_is_rejected_as_missing() -> None:
    assert rejection(start_raw(player_id=None)) == "player_id: required"


@pytest.mark.parametrize("player_id", [42, True, 1.0, ["p"], {"id": "p"}])
def test_non_string_player_id_is_rejected(player_id: object) -> None:
    assert rejection(start_raw(player_id=player_id)) == "player_id: must be a string"


def test_empty_player_id_is_rejected() -> None:
    assert rejection(start_raw(player_id="")) == "player_id: must be 1 to 64 characters"


def test_player_id_longer_than_64_characters_is_rejected() -> None:
    assert rejection(start_raw(player_id="p" * 65)) == "player_id: must be 1 to 64 characters"


def test_player_id_of_exactly_64_characters_is_accepted() -> None:
    assert validate_event(start_raw(player_id="p" * 64), NOW).player_id == "p" * 64


def test_huge_player_id_is_rejected_by_length() -> None:
    assert rejection(start_raw(player_id="p" * 1_000_000)) == "player_id: must be 1 to 64 characters"


def test_player_id_with_space_is_rejected() -> None:
    assert rejection(start_raw(player_id="player 1")) == (
        "player_id: only letters, digits and . _ : - are allowed"
    )


@pytest.mark.parametrize("player_id", ["player\n", "pläyer", "player/1", "player\u0661", "a,b", "p@x"])
def test_player_id_with_other_characters_is_rejected(player_id: str) -> None:
    assert rejection(start_raw(player_id=player_id)) == (
        "player_id: only letters, digits and . _ : - are allowed"
    )


def test_player_id_with_every_allowed_punctuation_is_accepted() -> None:
    assert validate_event(start_raw(player_id="a.b_c:d-E9"), NOW).player_id == "a.b_c:d-E9"


# --- session_id ------------------------------------------------------------------------------------


def test_missing_session_id_is_rejected() -> None:
    assert rejection(start_raw(session_id=MISSING)) == "session_id: required"


def test_null_session_id_is_rejected_as_missing() -> None:
    assert rejection(start_raw(session_id=None)) == "session_id: required"


@pytest.mark.parametrize("session_id", [1234, True, ["x"], {"uuid": SESSION}])
def test_non_string_session_id_is_rejected(session_id: object) -> None:
    assert rejection(start_raw(session_id=session_id)) == "session_id: not a UUID"


@pytest.mark.parametrize(
    "session_id",
    [
        "",
        "not-a-uuid",
        SESSION[:-1],
        SESSION + "0",
        SESSION.replace("5", "g", 1),
        "{" + SESSION + "}",
        "urn:uuid:" + SESSION,
        " " + SESSION,
        SESSION.replace("-", "")[:31] + "-" + SESSION.replace("-", "")[31],
        "\u0660" * 32,  # Arabic-Indic zeros: int(..., 16) would accept them
    ],
)
def test_malformed_session_id_is_rejected(session_id: str) -> None:
    assert rejection(start_raw(session_id=session_id)) == "session_id: not a UUID"


def test_upper_case_session_id_is_normalised_to_lower_case() -> None:
    event = validate_event(start_raw(session_id=SESSION.upper()), NOW)
    assert str(event.session_id) == SESSION


def test_session_id_without_hyphens_is_accepted() -> None:
    event = validate_event(start_raw(session_id=SESSION.replace("-", "")), NOW)
    assert event.session_id == uuid.UUID(SESSION)


# --- country ---------------------------------------------------------------------------------------


def test_start_without_country_is_rejected() -> None:
    assert rejection(start_raw(country=MISSING)) == "country: required on start"


def test_start_with_null_country_is_rejected() -> None:
    assert rejection(start_raw(country=None)) == "country: required on start"


def test_start_with_empty_country_is_rejected() -> None:
    assert rejection(start_raw(country="")) == "country: required on start"


@pytest.mark.parametrize("country", [49, True, ["FI"], {"code": "FI"}])
def test_non_string_country_on_start_is_rejected(country: object) -> None:
    assert rejection(start_raw(country=country)) == "country: must be a string"


def test_non_string_country_on_end_is_rejected() -> None:
    assert rejection(end_raw(country=358)) == "country: must be a string"


@pytest.mark.parametrize(
    "country",
    # "\ufb01" is the "fi" ligature, which str.upper() turns into "FI".
    ["ZZ", "FIN", "F", "F I", "\ufb01", "\uff26\uff29", "EU", "XX", "G" * 100_000],
)
def test_unknown_country_is_rejected(country: str) -> None:
    assert rejection(start_raw(country=country)) == "country: not an ISO 3166-1 alpha-2 code"


def test_unknown_country_on_end_is_rejected() -> None:
    assert rejection(end_raw(country="ZZ")) == "country: not an ISO 3166-1 alpha-2 code"


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("fi", "FI"), ("Fi", "FI"), ("fI", "FI"), ("UK", "GB"), ("uk", "GB"), ("EL", "GR"), ("xk", "XK")],
)
def test_country_is_normalised_to_upper_case_iso_code(sent: str, stored: str) -> None:
    assert validate_event(start_raw(country=sent), NOW).country == stored


def test_end_with_empty_country_has_no_country() -> None:
    assert validate_event(end_raw(country=""), NOW).country is None


def test_end_with_null_country_has_no_country() -> None:
    assert validate_event(end_raw(country=None), NOW).country is None


def test_end_with_country_keeps_it_normalised() -> None:
    assert validate_event(end_raw(country="de"), NOW).country == "DE"


def test_normalise_country_exposes_the_same_table() -> None:
    assert normalise_country("uk") == "GB"
    assert normalise_country("zz") is None


# --- ts --------------------------------------------------------------------------------------------


def test_missing_ts_is_rejected() -> None:
    assert rejection(start_raw(ts=MISSING)) == "ts: required"


def test_null_ts_is_rejected_as_missing() -> None:
    assert rejection(start_raw(ts=None)) == "ts: required"


@pytest.mark.parametrize("ts", [1480550400, 1480550400000, 1.5, True, ["2016-12-01T00:00:00Z"]])
def test_non_string_ts_is_rejected(ts: object) -> None:
    assert rejection(start_raw(ts=ts)) == "ts: must be a string"


@pytest.mark.parametrize(
    "ts",
    [
        "",
        "2016-11-22",  # a date alone
        "2016-11-22T",
        "2016-11-22T10",
        "yesterday",
        "2016-13-01T00:00:00Z",
        "2016-02-30T00:00:00Z",
        "2016-12-01T24:00:00Z",
        "2016-12-01T23:59:60Z",  # leap second
        "2016-12-01T00:00:00+05:99",
        "2016-12-01T00:00:00+24:00",
        "2016-12-01T00:00:00 Z",
        "2016-12-01T00:00:00.Z",
        "2016-W48-4T00:00:00Z",
        "20161201T000000Z",
        "2016-12-01X00:00:00Z",
        "\uff12\uff10\uff11\uff16-12-01T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",  # before datetime.min once in UTC
        "2016-12-01T00:00:00Z" + " " * 100_000,
    ],
)
def test_malformed_ts_is_rejected(ts: str) -> None:
    assert rejection(start_raw(ts=ts)) == "ts: not an ISO 8601 date-time"


def test_ts_more_than_five_minutes_ahead_is_rejected() -> None:
    ts = (NOW + timedelta(minutes=5, milliseconds=1)).isoformat()
    assert rejection(start_raw(ts=ts)) == "ts: more than 5 minutes in the future"


def test_ts_exactly_five_minutes_ahead_is_accepted() -> None:
    ts = (NOW + timedelta(minutes=5)).isoformat()
    assert validate_event(start_raw(ts=ts), NOW).ts == NOW + timedelta(minutes=5)


def test_sub_millisecond_excess_over_max_future_is_truncated_away() -> None:
    # The stored (truncated) instant is what must not lie in the future, not the client's digits.
    ts = (NOW + timedelta(minutes=5, microseconds=999)).isoformat()
    assert validate_event(start_raw(ts=ts), NOW).ts == NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("max_future", "text"),
    [
        (timedelta(minutes=1), "ts: more than 1 minute in the future"),
        (timedelta(hours=2), "ts: more than 120 minutes in the future"),
        (timedelta(seconds=90), "ts: more than 90 seconds in the future"),
        (timedelta(seconds=1), "ts: more than 1 second in the future"),
        (timedelta(milliseconds=1500), "ts: more than 1.5 seconds in the future"),
    ],
)
def test_future_rule_text_follows_the_configured_limit(max_future: timedelta, text: str) -> None:
    ts = (NOW + max_future + timedelta(milliseconds=1)).isoformat()
    assert rejection(start_raw(ts=ts), ValidationRules(max_future=max_future)) == text


def test_negative_max_future_is_refused() -> None:
    with pytest.raises(ValueError, match="max_future"):
        ValidationRules(max_future=timedelta(seconds=-1))


def test_ts_long_past_is_valid_because_retention_is_the_callers_decision() -> None:
    assert validate_event(start_raw(ts="2000-01-01T00:00:00Z"), NOW).ts.year == 2000


@pytest.mark.parametrize(
    ("sent", "utc"),
    [
        ("2016-12-01T13:30:00+02:00", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T06:00:00-05:30", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T13:30:00+0200", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T13:30:00+02", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T11:30:00-00:00", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T02:00:00+02:00", datetime(2016, 12, 1, 0, 0, tzinfo=UTC)),
        ("2016-12-01T01:00:00+02:00", datetime(2016, 11, 30, 23, 0, tzinfo=UTC)),
    ],
)
def test_offset_is_converted_to_utc(sent: str, utc: datetime) -> None:
    ts = validate_event(start_raw(ts=sent), NOW).ts
    assert ts == utc
    assert ts.tzinfo is UTC


def test_ts_without_offset_is_taken_as_utc() -> None:
    ts = validate_event(start_raw(ts="2016-12-01T11:30:00"), NOW).ts
    assert ts == datetime(2016, 12, 1, 11, 30, tzinfo=UTC)
    assert ts.tzinfo is UTC


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        ("2016-12-01t11:30:00z", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01 11:30:00Z", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T11:30Z", datetime(2016, 12, 1, 11, 30, tzinfo=UTC)),
        ("2016-12-01T11:30:00,25Z", datetime(2016, 12, 1, 11, 30, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_rfc3339_and_iso_variants_are_accepted(sent: str, expected: datetime) -> None:
    assert validate_event(start_raw(ts=sent), NOW).ts == expected


@pytest.mark.parametrize(
    ("sent", "micros"),
    [
        ("2016-12-01T11:30:00.1Z", 100_000),
        ("2016-12-01T11:30:00.345Z", 345_000),
        ("2016-12-01T11:30:00.345999Z", 345_000),
        ("2016-12-01T11:30:00.123456789Z", 123_000),
    ],
)
def test_ts_is_truncated_to_milliseconds(sent: str, micros: int) -> None:
    assert validate_event(start_raw(ts=sent), NOW).ts.microsecond == micros


# --- whole-event behaviour -------------------------------------------------------------------------


def test_unknown_fields_are_ignored() -> None:
    raw = start_raw(extra=1, nested={"a": [1, 2]}, Event="END")
    assert validate_event(raw, NOW) == validate_event(start_raw(), NOW)


@pytest.mark.parametrize(
    ("valid_up_to", "message"),
    [
        ((), 'event: must be "start" or "end"'),
        (("event",), "player_id: must be a string"),
        (("event", "player_id"), "session_id: not a UUID"),
        (("event", "player_id", "session_id"), "country: must be a string"),
        (("event", "player_id", "session_id", "country"), "ts: must be a string"),
    ],
)
def test_only_the_first_failing_field_is_reported(valid_up_to: tuple[str, ...], message: str) -> None:
    valid = start_raw()
    # Every field is broken except the leading ones; the report must name the first broken one.
    raw: dict[str, object] = {"event": "x", "player_id": 1, "session_id": 1, "country": 1, "ts": 1}
    raw.update({name: valid[name] for name in valid_up_to})
    assert rejection(raw) == message


def test_validation_does_not_modify_the_input() -> None:
    raw = start_raw(country="uk", ts="2016-12-01T13:30:00+02:00")
    before = dict(raw)
    validate_event(raw, NOW)
    assert raw == before


# --- properties ------------------------------------------------------------------------------------

FIELDS = ("event", "player_id", "session_id", "country", "ts")

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
# Near-misses exercise the deeper branches far more often than arbitrary JSON would.
plausible = st.one_of(
    st.sampled_from(["start", "end", "FI", "uk", "", "2016-12-01T11:00:00Z", SESSION, SESSION.upper()]),
    st.from_regex(r"[A-Za-z0-9._:\- ]{0,70}", fullmatch=True),
    st.from_regex(r"[0-9a-fA-F-]{30,38}", fullmatch=True),
    st.from_regex(
        r"2016-1[0-3]-[0-3][0-9][Tt ][0-2][0-9]:[0-6][0-9](:[0-6][0-9](\.[0-9]{1,9})?)?"
        r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?",
        fullmatch=True,
    ),
    st.uuids().map(str),
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)
field_value = json_values | plausible
valid_values: dict[str, st.SearchStrategy[object]] = {
    "event": st.sampled_from(["start", "end"]),
    "player_id": st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    "session_id": st.uuids().map(str) | st.uuids().map(lambda u: u.hex.upper()),
    "country": st.sampled_from(["FI", "fi", "uk", "EL", "xk", "Us"]),
    "ts": st.datetimes(
        min_value=datetime(2016, 11, 1), max_value=datetime(2016, 12, 2), timezones=st.timezones()
    ).map(lambda d: d.isoformat()),
}


@st.composite
def event_like(draw: st.DrawFn) -> dict[str, object]:
    """Mostly-valid events, each field independently valid, arbitrary, null or absent."""
    raw: dict[str, object] = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=3))
    for name in FIELDS:
        choice = draw(st.integers(0, 9))
        if choice < 6:
            raw[name] = draw(valid_values[name])
        elif choice < 8:
            raw[name] = draw(field_value)
        elif choice == 8:
            raw.pop(name, None)
        else:
            raw[name] = None
    return raw


def check_outcome(raw: Any) -> None:
    try:
        event = validate_event(raw, NOW)
    except InvalidEvent as error:
        assert error.error.field in FIELDS
        assert str(error) == f"{error.error.field}: {error.error.rule}"
        return
    assert isinstance(event, Event)
    assert event.ts.tzinfo is UTC
    assert event.ts.microsecond % 1000 == 0
    assert event.ts - NOW <= timedelta(minutes=5)
    assert event.country is None or (len(event.country) == 2 and event.country.isupper())
    assert event.kind is EventKind.END or event.country is not None
    assert 1 <= len(event.player_id) <= 64


@given(json_values)
def test_any_json_value_yields_an_event_or_invalid_event(raw: Any) -> None:
    check_outcome(raw)


@settings(max_examples=500)
@given(event_like())
def test_any_event_shaped_object_yields_an_event_or_invalid_event(raw: Any) -> None:
    check_outcome(raw)


@given(
    kind=st.sampled_from(["start", "end"]),
    player_id=st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    session_id=st.uuids(),
    upper=st.booleans(),
    country=st.sampled_from(["FI", "se", "Us", "gB", "xk"]),
    ts=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(2016, 12, 1, 12), timezones=st.just(UTC)
    ),
)
def test_every_well_formed_event_is_accepted_and_normalised(
    kind: str, player_id: str, session_id: uuid.UUID, upper: bool, country: str, ts: datetime
) -> None:
    sent = str(session_id).upper() if upper else str(session_id)
    raw = start_raw(event=kind, player_id=player_id, session_id=sent, country=country, ts=ts.isoformat())
    event = validate_event(raw, NOW)
    stored_ts = ts.replace(microsecond=ts.microsecond // 1000 * 1000)
    assert event == Event(EventKind(kind), player_id, session_id, stored_ts, country.upper())
