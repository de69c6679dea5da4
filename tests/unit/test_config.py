"""Settings come from PLAYER_SESSIONS_* variables; CLI flags override them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from player_sessions.cli import build_parser
from player_sessions.config import Settings
from player_sessions.domain.clock import FixedClock, SystemClock
from player_sessions.store.config import StoreConfig


def test_environment_variables_set_every_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYER_SESSIONS_KEYSPACE", "ks_env")
    monkeypatch.setenv("PLAYER_SESSIONS_RETENTION", "2h")
    monkeypatch.setenv("PLAYER_SESSIONS_CLOCK", "2016-12-01T00:00:00Z")
    monkeypatch.setenv("PLAYER_SESSIONS_CONTACT_POINTS", "10.0.0.1, 10.0.0.2")
    settings = Settings()
    assert settings.keyspace == "ks_env"
    assert settings.retention == timedelta(hours=2)
    assert StoreConfig.from_settings(settings).contact_point_list == ["10.0.0.1", "10.0.0.2"]
    clock = settings.make_clock()
    assert isinstance(clock, FixedClock) and clock.now() == datetime(2016, 12, 1, tzinfo=UTC)


def test_a_flag_overrides_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYER_SESSIONS_KEYSPACE", "ks_env")
    args = build_parser().parse_args(["serve", "--keyspace", "ks_flag", "--retention", "30s"])
    overrides = {k: v for k, v in vars(args).items() if v is not None and k != "command"}
    settings = Settings(**overrides)
    assert settings.keyspace == "ks_flag"
    assert settings.retention == timedelta(seconds=30)


def test_defaults_are_the_documented_ones() -> None:
    settings = Settings()
    assert (settings.host, settings.port, settings.keyspace, settings.consistency) == (
        "127.0.0.1",
        8000,
        "player_sessions",
        "LOCAL_QUORUM",
    )
    assert settings.retention == timedelta(days=365)
    assert isinstance(settings.make_clock(), SystemClock)


def test_a_keyspace_that_could_inject_cql_is_refused() -> None:
    with pytest.raises(ValueError, match="keyspace"):
        Settings(keyspace="ks; DROP TABLE x")
