"""Storage errors, and the translation of the driver's exceptions into them: once, at the store's edge
(`translate` for a statement, `raise_if_auth_failed` for a refused login), so nothing above the store
ever sees a driver exception.

    StoreError
     ├── StoreUnavailable   Cassandra cannot take or serve the request now (down, timeout,
     │                      not enough replicas): the client retries later -> HTTP 503
     ├── SchemaError        the keyspace/tables could not be created or do not match
     │    └── SchemaVersionMismatch  the keyspace is not at the version this release needs
     │                               (`serve --no-migrate`): run `player-sessions migrate`
     ├── StoreAuthFailed    Cassandra refused our credentials (--username/--password): not retried
     └── StoreTlsFailed     the TLS handshake failed (CA, host name, TLS off on the node): not retried
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cassandra import AuthenticationFailed, InvalidRequest

if TYPE_CHECKING:
    from cassandra.cluster import NoHostAvailable

    from player_sessions.store.config import StoreConfig


class StoreError(Exception):
    """Base of every storage failure."""


class StoreUnavailable(StoreError):
    """Cassandra could not complete the request; nothing was acknowledged, retrying is safe."""


class SchemaError(StoreError):
    """The schema could not be created or migrated."""


class StoreAuthFailed(StoreError):
    """Cassandra refused the username/password (or requires them and none were given)."""


class SchemaVersionMismatch(SchemaError):
    """The keyspace's recorded schema version is absent, older or newer than this release needs."""


class StoreTlsFailed(StoreError):
    """The TLS handshake with Cassandra failed: an untrusted certificate, a host name it does not
    name, an unreadable --tls-ca-file, or a node without client encryption."""


def translate(exc: BaseException) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, InvalidRequest):
        return StoreError(f"Cassandra rejected a statement: {exc}")
    return StoreUnavailable(f"Cassandra could not complete the request: {type(exc).__name__}: {exc}")


def raise_if_auth_failed(exc: NoHostAvailable, config: StoreConfig) -> None:
    errors = getattr(exc, "errors", None) or {}
    refused = [e for e in errors.values() if isinstance(e, AuthenticationFailed)]
    if refused:
        who = f"user {config.username!r}" if config.username else "no credentials"
        raise StoreAuthFailed(
            f"Cassandra at {config.contact_points} refused the login ({who}): {refused[0]}; "
            "check --username/--password (PLAYER_SESSIONS_USERNAME/PLAYER_SESSIONS_PASSWORD)"
        ) from exc
