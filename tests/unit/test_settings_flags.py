"""Every setting is a `serve` flag derived from the model, and a flag sets exactly what its variable sets."""

from __future__ import annotations

import argparse

import pytest

from player_sessions.cli import MIGRATE_SETTINGS, build_parser, settings_from_args
from player_sessions.config import Settings
from player_sessions.settings_flags import ENV_ONLY, env_name, setting_flags

# One valid value, unlike the default, per setting, as an operator would type it. A boolean's value is
# the one its flag sets. A new setting fails test_every_setting_has_a_sample until it gets one here.
SAMPLES: dict[str, str | bool] = {
    "host": "0.0.0.0",
    "port": "8080",
    "workers": "4",
    "role": "query",
    "max_body_bytes": "2048",
    "max_events": "500",
    "max_decoded_bytes": "4096",
    "request_timeout": "7.5",
    "body_timeout": "3",
    "body_min_rate": "0",
    "max_ingest_requests": "8",
    "ingest_budget_bytes": "65536",
    "header_timeout": "2.5",
    "max_header_bytes": "8192",
    "max_connections": "100",
    "queue_timeout": "1.5",
    "contact_points": "10.0.0.1, 10.0.0.2",
    "cql_port": "9142",
    "keyspace": "ks_flags",
    "replication_factor": "3",
    "datacenter": "dc1",
    "consistency": "QUORUM",
    "username": "app",
    "password": "secret",
    "tls": True,
    "tls_ca_file": "/etc/ca.pem",
    "tls_verify": False,
    "create_keyspace": False,
    "replication": "dc1:3,dc2:2",
    "migrate": False,
    "max_in_flight": "64",
    "max_in_flight_per_request": "8",
    "max_ingest_in_flight": "12",
    "retention": "7d",
    "clock": "2016-12-01T00:00:00Z",
    "player_read_max_rows": "500",
    "rollup_interval": "2.5",
    "log_format": "json",
    "api_keys_file": "/etc/keys",
    "protect_reads": True,
    "cursor_keys": "0123456789abcdef,fedcba9876543210",
    "protect_metrics": True,
}

# The flags operators and scripts already use: their spelling is a public contract.
CONTRACT_FLAGS = (
    "--host",
    "--port",
    "--workers",
    "--contact-points",
    "--cql-port",
    "--keyspace",
    "--replication-factor",
    "--datacenter",
    "--consistency",
    "--retention",
    "--clock",
    "--username",
    "--password",
    "--tls",
    "--tls-ca-file",
    "--no-tls-verify",
    "--replication",
    "--no-migrate",
    "--no-create-keyspace",
    "--max-body-bytes",
    "--max-decoded-bytes",
    "--max-in-flight",
    "--max-in-flight-per-request",
    "--request-timeout",
    "--body-timeout",
    "--body-min-rate",
    "--max-ingest-requests",
    "--ingest-budget-bytes",
    "--header-timeout",
    "--max-header-bytes",
    "--max-connections",
    "--queue-timeout",
    "--player-read-max-rows",
    "--rollup-interval",
    "--log-format",
    "--api-keys-file",
    "--protect-reads",
    "--cursor-keys",
    "--protect-metrics",
)


def command(name: str) -> argparse.ArgumentParser:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = commands.choices[name]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {flag: action for action in parser._actions for flag in action.option_strings}


def argv_for(name: str) -> list[str]:
    flag = next(spec.flag for spec in setting_flags([name]))
    value = SAMPLES[name]
    return [flag] if isinstance(value, bool) else [flag, value]


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in [n for n in os.environ if n.upper().startswith("PLAYER_SESSIONS_")]:
        monkeypatch.delenv(name)
    return monkeypatch


def test_every_setting_has_a_serve_flag_that_sets_it() -> None:
    dests = {action.dest for action in command("serve")._actions}
    assert set(Settings.model_fields) - ENV_ONLY <= dests
    assert "max_events" in dests


def test_the_existing_flags_keep_their_spelling_and_kind() -> None:
    serve = options(command("serve"))
    assert set(CONTRACT_FLAGS) <= set(serve)
    assert serve["--port"].type is int and serve["--body-min-rate"].type is float
    assert serve["--log-format"].choices == ("text", "json")
    for flag, dest, const in (
        ("--tls", "tls", True),
        ("--no-tls-verify", "tls_verify", False),
        ("--no-migrate", "migrate", False),
        ("--protect-reads", "protect_reads", True),
        ("--no-create-keyspace", "create_keyspace", False),
    ):
        assert (serve[flag].dest, serve[flag].const, serve[flag].nargs) == (dest, const, 0), flag


def test_migrate_takes_the_connection_and_keyspace_flags() -> None:
    migrate = options(command("migrate"))
    assert {
        "--contact-points",
        "--replication",
        "--no-tls-verify",
        "--no-create-keyspace",
        "--password",
        "--wait",
    } <= set(migrate)
    assert "--port" not in migrate and "--workers" not in migrate
    assert {migrate[spec.flag].dest for spec in setting_flags(MIGRATE_SETTINGS)} == set(MIGRATE_SETTINGS)


def test_help_shows_the_description_the_default_and_the_variable() -> None:
    serve = command("serve")
    assert "--max-events N" in serve.format_help()
    flags = options(serve)
    assert flags["--max-events"].help == (
        "most events in one request (default 100000; PLAYER_SESSIONS_MAX_EVENTS)"
    )
    assert (flags["--retention"].help or "").endswith("(default 365d; PLAYER_SESSIONS_RETENTION)")
    assert (flags["--no-migrate"].help or "").startswith("turn off: create/upgrade the schema")


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(Settings.model_fields)


@pytest.mark.parametrize("name", sorted(set(Settings.model_fields) - ENV_ONLY))
def test_a_flag_sets_what_its_environment_variable_sets(name: str, clean_env: pytest.MonkeyPatch) -> None:
    value = SAMPLES[name]
    clean_env.setenv(env_name(name), str(value).lower() if isinstance(value, bool) else value)
    from_env = Settings()
    clean_env.delenv(env_name(name))
    from_flag = settings_from_args(build_parser().parse_args(["serve", *argv_for(name)]))
    assert from_flag is not None
    assert from_flag == from_env
    assert getattr(from_flag, name) != Settings.model_fields[name].default


def test_all_flags_at_once_match_all_variables(clean_env: pytest.MonkeyPatch) -> None:
    argv = [arg for name in sorted(SAMPLES) for arg in argv_for(name)]
    from_flags = settings_from_args(build_parser().parse_args(["serve", *argv]))
    for name, value in SAMPLES.items():
        clean_env.setenv(env_name(name), str(value).lower() if isinstance(value, bool) else value)
    assert from_flags == Settings()


def test_an_invalid_flag_value_is_reported_with_the_flag(
    capsys: pytest.CaptureFixture[str], clean_env: pytest.MonkeyPatch
) -> None:
    assert settings_from_args(build_parser().parse_args(["serve", "--max-events", "0"])) is None
    assert "error: --max-events:" in capsys.readouterr().err
