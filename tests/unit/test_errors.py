from __future__ import annotations

import pickle

from player_sessions.domain.errors import DomainError, InvalidRequest
from player_sessions.domain.events import EventError, InvalidEvent


def test_invalid_request_renders_field_and_rule() -> None:
    error = InvalidRequest("limit", "must be 1 to 1000")
    assert (error.field, error.rule) == ("limit", "must be 1 to 1000")
    assert str(error) == error.message == "limit: must be 1 to 1000"


def test_invalid_event_renders_its_error_message() -> None:
    error = InvalidEvent(EventError("ts", "required"))
    assert str(error) == "ts: required"
    assert error.error.message == "ts: required"


def test_one_except_clause_catches_every_domain_error() -> None:
    assert issubclass(InvalidRequest, DomainError)
    assert issubclass(InvalidEvent, DomainError)


def test_domain_errors_survive_pickling() -> None:
    request = pickle.loads(pickle.dumps(InvalidRequest("hours", "must be 1 to 168")))
    event = pickle.loads(pickle.dumps(InvalidEvent(EventError("country", "required on start"))))
    assert (request.field, request.rule) == ("hours", "must be 1 to 168")
    assert str(request) == "hours: must be 1 to 168"
    assert event.error == EventError("country", "required on start")
    assert str(event) == "country: required on start"
