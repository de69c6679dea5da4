"""A PLAYER_SESSIONS_* variable that no setting reads is named at start-up, with the likely intended one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from player_sessions.cli import main
from player_sessions.env_check import NOT_SETTINGS, unknown_variable_warnings, unknown_variables

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "PLAYER_SESSIONS_"


def test_a_mistyped_setting_is_named_with_the_closest_setting() -> None:
    environ = {PREFIX + "MAX_EVENT": "5", PREFIX + "CONTACT_POINT": "10.0.0.1", PREFIX + "PORT": "8080"}
    assert unknown_variable_warnings(environ) == [
        f"warning: {PREFIX}CONTACT_POINT is not a setting and is ignored; "
        f"did you mean {PREFIX}CONTACT_POINTS?",
        f"warning: {PREFIX}MAX_EVENT is not a setting and is ignored; did you mean {PREFIX}MAX_EVENTS?",
    ]


def test_a_name_like_no_setting_is_named_without_a_guess() -> None:
    [unknown] = unknown_variables([PREFIX + "FLUX_CAPACITOR"])
    assert (unknown.name, unknown.suggestion) == (PREFIX + "FLUX_CAPACITOR", None)
    [line] = unknown_variable_warnings({PREFIX + "FLUX_CAPACITOR": "1"})
    assert line.startswith(f"warning: {PREFIX}FLUX_CAPACITOR is not a setting") and "did you mean" not in line


def test_settings_other_prefixes_and_the_project_s_own_variables_are_not_reported() -> None:
    environ = {
        PREFIX + "KEYSPACE": "ks",
        "player_sessions_port": "8080",
        "HOME": "/root",
        "PLAYER_SESSION_PORT": "1",
        **{name: "x" for name in NOT_SETTINGS},
    }
    assert unknown_variable_warnings(environ) == []


def test_every_prefixed_variable_the_project_uses_is_known() -> None:
    """A variable the code, tests or docs use must never be reported as a typo."""
    sources = [
        path
        for folder in ("src/player_sessions", "tests", "scripts", "docs")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".md", ".sh", ".yml")
    ]
    sources += [ROOT / name for name in ("README.md", "Makefile", "Dockerfile", "docker-compose.yml")]
    used = {
        match
        for path in sources
        if path.is_file() and path.name != Path(__file__).name
        for match in re.findall(PREFIX + r"[A-Z0-9_]*[A-Z0-9]", path.read_text(encoding="utf-8"))
    }
    assert PREFIX + "API_KEY" in used and PREFIX + "PASSWORD" in used
    assert unknown_variables(used) == []


def test_migrate_warns_and_carries_on(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PREFIX + "KEYSPCE", "ks_typo")
    # An invalid flag stops migrate at the settings, after the warning: it was printed, not fatal.
    assert main(["migrate", "--cql-port", "0"]) == 2
    err = capsys.readouterr().err
    assert f"warning: {PREFIX}KEYSPCE is not a setting and is ignored; did you mean {PREFIX}KEYSPACE?" in err
    assert "error: --cql-port:" in err


def test_serve_warns_before_it_reads_its_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(PREFIX + "WORKER", "2")
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.index(f"did you mean {PREFIX}WORKERS?") < err.index("error: --port:")
