"""The local cluster's secrets, kept in files only its owner can read, under the base dir.

- JMX (nodetool's channel): every node's JMX listens on 127.0.0.1 only and asks for a login; the
  user `nodetool` and its generated password are in `<base-dir>/jmx.password` (the JDK's format,
  `user password`, which nodetool's `-pwf` reads too) with its rights in `<base-dir>/jmx.access`.
- The CQL superuser of `db start --password-auth`: Cassandra creates `cassandra`/`cassandra`; the
  first start changes its password to `PLAYER_SESSIONS_PASSWORD` when that is set (the variable
  `serve` reads), or to a generated one, written to `<base-dir>/superuser-password`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from player_sessions.cassandra_local.config import LauncherConfig

JMX_USER = "nodetool"
SUPERUSER = "cassandra"
DEFAULT_SUPERUSER_PASSWORD = "cassandra"  # what a fresh PasswordAuthenticator node starts with
PASSWORD_ENV = "PLAYER_SESSIONS_PASSWORD"


def jmx_password_file(config: LauncherConfig) -> Path:
    return config.base_dir.resolve() / "jmx.password"


def jmx_access_file(config: LauncherConfig) -> Path:
    return config.base_dir.resolve() / "jmx.access"


def superuser_password_file(config: LauncherConfig) -> Path:
    return config.base_dir.resolve() / "superuser-password"


def _write_private(path: Path, text: str) -> None:
    """Created with mode 0600 from the start: never readable by others, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)


def ensure_jmx_files(config: LauncherConfig) -> None:
    """The JMX login of every node of this cluster (generated once, kept across restarts)."""
    if not jmx_password_file(config).exists():
        _write_private(jmx_password_file(config), f"{JMX_USER} {secrets.token_urlsafe(24)}\n")
    if not jmx_access_file(config).exists():
        _write_private(jmx_access_file(config), f"{JMX_USER} readwrite\n")


def nodetool_login(config: LauncherConfig) -> list[str]:
    """nodetool's login flags; none for a node started before its cluster had a JMX login."""
    path = jmx_password_file(config)
    return ["-u", JMX_USER, "-pwf", str(path)] if path.exists() else []


def superuser_password(config: LauncherConfig) -> str | None:
    """The password the superuser has been (or is about to be) given, None before the first start."""
    try:
        return superuser_password_file(config).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def ensure_superuser_password(config: LauncherConfig) -> str:
    """The superuser's password from the file, else from PLAYER_SESSIONS_PASSWORD or generated, then
    written to the file (before Cassandra is told, so a start that fails in between can finish)."""
    existing = superuser_password(config)
    if existing is not None:
        return existing
    chosen = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(24)
    _write_private(superuser_password_file(config), chosen + "\n")
    return chosen


def logins(config: LauncherConfig) -> list[tuple[str | None, str | None]]:
    """CQL logins to try, the expected one first: the superuser's own password once it has one (also
    for `db status`, which has no --password-auth), then the default one while it has not, else none."""
    password = superuser_password(config)
    tried: list[tuple[str | None, str | None]] = [(SUPERUSER, password)] if password else []
    if config.password_auth:
        return [*tried, (SUPERUSER, DEFAULT_SUPERUSER_PASSWORD)]
    return [*tried, (None, None)]
