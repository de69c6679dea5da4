"""Storage errors. The driver's own exceptions are translated into these once, at the store's edge.

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
