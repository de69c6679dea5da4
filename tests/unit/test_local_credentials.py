"""The local cluster's secret files: private from creation, generated once, read back by every use."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from player_sessions.cassandra_local import LauncherConfig
from player_sessions.cassandra_local.credentials import (
    ensure_jmx_files,
    ensure_superuser_password,
    jmx_access_file,
    jmx_password_file,
    logins,
    nodetool_login,
    superuser_password,
    superuser_password_file,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_jmx_files_are_private_generated_once_and_read_by_nodetool(tmp_path: Path) -> None:
    config = LauncherConfig(base_dir=tmp_path / "c")
    assert nodetool_login(config) == []  # a cluster started before it had a JMX login
    ensure_jmx_files(config)
    first = jmx_password_file(config).read_text()
    user, password = first.split()
    assert user == "nodetool" and len(password) >= 24
    assert jmx_access_file(config).read_text() == "nodetool readwrite\n"
    assert mode(jmx_password_file(config)) == mode(jmx_access_file(config)) == 0o600
    ensure_jmx_files(config)
    assert jmx_password_file(config).read_text() == first
    assert nodetool_login(config) == ["-u", "nodetool", "-pwf", str(jmx_password_file(config))]


def test_superuser_password_is_generated_kept_and_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PLAYER_SESSIONS_PASSWORD", raising=False)
    config = LauncherConfig(base_dir=tmp_path / "c", password_auth=True)
    assert superuser_password(config) is None
    assert logins(config) == [("cassandra", "cassandra")]
    password = ensure_superuser_password(config)
    assert len(password) >= 24 and password != "cassandra"
    assert mode(superuser_password_file(config)) == 0o600
    assert ensure_superuser_password(config) == password == superuser_password(config)
    assert logins(config) == [("cassandra", password), ("cassandra", "cassandra")]
    # Without --password-auth (db status), the file's login still comes first.
    assert logins(LauncherConfig(base_dir=tmp_path / "c")) == [("cassandra", password), (None, None)]


def test_superuser_password_from_the_variable_serve_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLAYER_SESSIONS_PASSWORD", "chosen-by-the-operator")
    config = LauncherConfig(base_dir=tmp_path / "c", password_auth=True)
    assert ensure_superuser_password(config) == "chosen-by-the-operator"
    assert superuser_password_file(config).read_text() == "chosen-by-the-operator\n"
    monkeypatch.setenv("PLAYER_SESSIONS_PASSWORD", "changed-later")
    assert ensure_superuser_password(config) == "chosen-by-the-operator"  # the node's is the file's


def test_a_cluster_without_password_auth_logs_in_without_credentials(tmp_path: Path) -> None:
    assert logins(LauncherConfig(base_dir=tmp_path / "none")) == [(None, None)]
