"""Creating and upgrading the schema: versioned steps, the recorded version, schema agreement.

The schema this release needs is declared in `schema.py` (tables with their options, and columns added
after a table's first release). Each step below brings one aspect of a keyspace to that declaration
and changes only what is missing or different, so migrate runs every step every time: a repeated run
changes nothing, a run cut short is finished by the next one, a keyspace made by a release that
recorded no version is brought up to date, and two runs at once make the same changes:

- tables are created with `IF NOT EXISTS` and a table id derived from the keyspace and table names.
  Without it, two coordinators creating the same table at once each pick a random id, and the
  cluster ends up with two tables of one name that never reconcile;
- columns are added with `ADD IF NOT EXISTS`;
- table options (compaction, gc_grace_seconds, ...) are compared with system_schema and altered only
  where they differ, so a changed option in `schema.py` reaches existing tables;
- the version is a row per version in `schema_version` (insert-only, so runs at once cannot undo each
  other; the highest row is the keyspace's version), written last, after every node agrees on the
  schema, at EACH_QUORUM so that a LOCAL_QUORUM read in any datacenter finds it.

A keyspace whose recorded version is newer than SCHEMA_VERSION is left alone: an older release must
not undo a newer one's options.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cassandra import ConsistencyLevel, InvalidRequest, OperationTimedOut, RequestExecutionException
from cassandra.cluster import Cluster, NoHostAvailable, Session
from cassandra.query import SimpleStatement

from player_sessions import __version__
from player_sessions.store import schema
from player_sessions.store.config import StoreConfig
from player_sessions.store.connection import connect_session
from player_sessions.store.errors import SchemaError, SchemaVersionMismatch, StoreUnavailable
from player_sessions.store.replication import Replication

# Bump it with every change of schema.py (tests/unit/test_migrations.py compares SCHEMA_FINGERPRINT
# with the declarations and says so), so that `serve --no-migrate` refuses a keyspace not migrated yet.
SCHEMA_VERSION = 4
SCHEMA_FINGERPRINT = "34e97bdd771a02ca"
VERSION_TABLE = "schema_version"
SCHEMA_AGREEMENT_WAIT_S = 60.0
DDL_TIMEOUT_S = 60.0
SETTLE_WAIT_S = 10.0
_NOT_SETTLED = ("does not exist", "Unknown CF")
_TABLE_IDS = uuid.UUID("6f1d3c52-9a4e-4e0b-8a57-3d2b1f0c9e77")  # namespace of the derived table ids

_VERSION_TABLE_CQL = (
    "CREATE TABLE IF NOT EXISTS {ks}.schema_version ("
    "scope text, version int, applied_at timestamp, applied_by text, "
    "PRIMARY KEY ((scope), version)) WITH CLUSTERING ORDER BY (version DESC)"
)
_ADDED_COLUMN = re.compile(r"ALTER TABLE \{ks\}\.(\w+) ADD IF NOT EXISTS (\w+) (.+)", re.S)
_TABLE_WITH = re.compile(r"\)\s*WITH\s+(.*)$", re.S)
# Options Cassandra fills in when a compaction map does not name them.
_COMPACTION_DEFAULTS = frozenset({"max_threshold", "min_threshold"})

Say = Callable[[str], None]


def table_id(keyspace: str, table: str) -> uuid.UUID:
    return uuid.uuid5(_TABLE_IDS, f"{keyspace}.{table}")


def fingerprint() -> str:
    """A digest of the declared schema: what SCHEMA_FINGERPRINT must equal for SCHEMA_VERSION."""
    text = "\n".join(
        [*(f"{n}:{c}" for n, c in sorted(schema.TABLES.items())), *schema.MIGRATIONS, _VERSION_TABLE_CQL]
    )
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()[:16]


def version_statement(keyspace: str) -> SimpleStatement:
    """The recorded version: the highest row (at the session's consistency: the service's)."""
    statement = SimpleStatement(
        f"SELECT version FROM {keyspace}.{VERSION_TABLE} WHERE scope = 'schema' LIMIT 1"
    )
    statement.is_idempotent = True
    return statement


def replication_of(config: StoreConfig) -> tuple[Replication | None, Replication]:
    """(what --replication asks for, if given; what a new keyspace gets without it: the
    --replication-factor in the --datacenter)."""
    requested = Replication.parse(config.replication) if config.replication else None
    return requested, Replication.per_datacenter({config.datacenter: config.replication_factor})


# --- declared table options ----------------------------------------------------------------------


@dataclass(frozen=True)
class TableOption:
    name: str  # as in system_schema.tables: compaction, gc_grace_seconds, ...
    text: str  # `name = value` as declared, for ALTER TABLE ... WITH
    value: Any  # the declared value: a dict for map options

    def matches(self, actual: Any) -> bool:
        if isinstance(self.value, dict):
            return isinstance(actual, Mapping) and _map_matches(self.name, self.value, actual)
        if isinstance(self.value, float) or isinstance(actual, float):
            return actual is not None and abs(float(actual) - float(self.value)) < 1e-9
        return str(actual).lower() == str(self.value).lower()

    def change(self, actual: Any) -> str:
        if isinstance(self.value, dict):
            return f"{self.name} set to {self.value}"
        return f"{self.name} {actual} -> {self.value}"


def declared_options(create_cql: str) -> list[TableOption]:
    """The options of a CREATE TABLE statement, except CLUSTERING ORDER (which cannot change)."""
    found = _TABLE_WITH.search(create_cql)
    if found is None:
        return []
    options = []
    for part in _split_top_level(found.group(1).strip()):
        if part.upper().startswith("CLUSTERING ORDER"):
            continue
        name, _, value = part.partition("=")
        options.append(
            TableOption(name.strip().lower(), " ".join(part.split()), ast.literal_eval(value.strip()))
        )
    return options


def _split_top_level(text: str) -> list[str]:
    """Split on AND outside braces, brackets and quotes."""
    parts, depth, quoted, start = [], 0, False, 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "{([":
            depth += 1
        elif not quoted and char in "})]":
            depth -= 1
        elif not quoted and depth == 0 and text[i : i + 5].upper() == " AND ":
            parts.append(text[start:i].strip())
            start = i = i + 5
            continue
        i += 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _map_matches(name: str, declared: Mapping[str, Any], actual: Mapping[str, str]) -> bool:
    def norm(key: str, value: object) -> str:
        text = str(value).lower()
        return text.rsplit(".", 1)[-1] if key == "class" else text

    ignored = _COMPACTION_DEFAULTS if name == "compaction" else frozenset()
    keys = set(declared) | (set(actual) - ignored)
    return all(k in declared and k in actual and norm(k, declared[k]) == norm(k, actual[k]) for k in keys)


# --- the steps -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    version: int  # the schema version that introduced the step
    what: str
    apply: Callable[[SchemaAdmin], list[str]]  # returns what it changed


def _create_tables(admin: SchemaAdmin) -> list[str]:
    existing = admin.tables()
    done = []
    for name, cql in schema.TABLES.items():
        if name not in existing:
            admin.ddl(f"{cql.replace('{ks}', admin.keyspace)} AND ID = {table_id(admin.keyspace, name)}")
            done.append(f"created {name}")
    return done


def _add_columns(admin: SchemaAdmin) -> list[str]:
    done = []
    for cql in schema.MIGRATIONS:
        found = _ADDED_COLUMN.fullmatch(cql.strip())
        if found is None:
            raise SchemaError(f"schema.MIGRATIONS holds a statement migrate does not know: {cql}")
        table, column = found.group(1), found.group(2)
        if column not in admin.columns(table):
            admin.ddl(cql.replace("{ks}", admin.keyspace))
            done.append(f"added {table}.{column}")
    return done


def _align_options(admin: SchemaAdmin) -> list[str]:
    done = []
    for name, cql in schema.TABLES.items():
        actual = admin.table_options(name)
        differ = [o for o in declared_options(cql) if not o.matches(actual.get(o.name))]
        if differ:
            admin.ddl(f"ALTER TABLE {admin.keyspace}.{name} WITH " + " AND ".join(o.text for o in differ))
            done.append(f"{name}: " + ", ".join(o.change(actual.get(o.name)) for o in differ))
    return done


STEPS: tuple[Step, ...] = (
    Step(1, "tables", _create_tables),
    Step(2, "columns added since a table's first release", _add_columns),
    Step(3, "table options (compaction, gc_grace_seconds)", _align_options),
)


# --- the connection's schema operations ---------------------------------------------------------


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (NoHostAvailable, RequestExecutionException, OperationTimedOut) as exc:
        raise StoreUnavailable(f"{what}: Cassandra could not complete it: {exc}") from exc
    except Exception as exc:  # the driver's and the server's refusals alike
        raise SchemaError(f"{what}: {type(exc).__name__}: {exc}") from exc


def _settled(call: Callable[[], Any]) -> Any:
    """Run a statement on a table another migrate may have just created: system_schema lists a new
    table a moment before the node can use it (`table ... does not exist`, or a server error `Unknown
    CF <id>`), so retry for a while."""
    deadline = time.monotonic() + SETTLE_WAIT_S
    while True:
        try:
            return call()
        except (InvalidRequest, NoHostAvailable) as exc:
            if not any(sign in str(exc) for sign in _NOT_SETTLED) or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class SchemaAdmin:
    """Schema reads and DDL of one keyspace over one driver session (blocking calls)."""

    def __init__(self, cluster: Cluster, session: Session, keyspace: str) -> None:
        self.cluster = cluster
        self.session = session
        self.keyspace = keyspace

    @classmethod
    def open(cls, config: StoreConfig) -> SchemaAdmin:
        cluster, session = connect_session(config)
        return cls(cluster, session, config.keyspace)

    def close(self) -> None:
        self.cluster.shutdown()

    def ddl(self, cql: str) -> None:
        with _translated(cql.split("(")[0].strip()):
            _settled(lambda: self.session.execute(cql, timeout=DDL_TIMEOUT_S))

    def _rows(self, cql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with _translated("reading the schema"):
            return list(self.session.execute(cql, params, timeout=DDL_TIMEOUT_S))

    def release(self) -> str:
        rows = self._rows("SELECT release_version FROM system.local")
        return str(rows[0].release_version) if rows else "?"

    def nodes_per_datacenter(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for host in self.cluster.metadata.all_hosts():
            counts[host.datacenter or "?"] = counts.get(host.datacenter or "?", 0) + 1
        return counts

    def replication(self) -> Replication | None:
        rows = self._rows(
            "SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (self.keyspace,)
        )
        return Replication.from_cassandra(dict(rows[0].replication)) if rows else None

    def tables(self) -> set[str]:
        rows = self._rows(
            "SELECT table_name FROM system_schema.tables WHERE keyspace_name = %s", (self.keyspace,)
        )
        return {r.table_name for r in rows}

    def columns(self, table: str) -> set[str]:
        rows = self._rows(
            "SELECT column_name FROM system_schema.columns WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, table),
        )
        return {r.column_name for r in rows}

    def table_options(self, table: str) -> dict[str, Any]:
        rows = self._rows(
            "SELECT * FROM system_schema.tables WHERE keyspace_name = %s AND table_name = %s",
            (self.keyspace, table),
        )
        return (
            {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in rows[0]._asdict().items()}
            if rows
            else {}
        )

    def create_version_table(self) -> bool:
        if VERSION_TABLE in self.tables():
            return False
        self.ddl(
            f"{_VERSION_TABLE_CQL.replace('{ks}', self.keyspace)} "
            f"AND ID = {table_id(self.keyspace, VERSION_TABLE)}"
        )
        return True

    def recorded_version(self) -> int | None:
        """The highest version recorded; None without a version table or row. Read at the session's
        consistency (the service's)."""
        if VERSION_TABLE not in self.tables():
            return None
        with _translated("reading the schema version"):
            rows = list(
                _settled(
                    lambda: self.session.execute(version_statement(self.keyspace), timeout=DDL_TIMEOUT_S)
                )
            )
        return int(rows[0].version) if rows else None

    def record_version(self, version: int) -> None:
        statement = SimpleStatement(
            f"INSERT INTO {self.keyspace}.{VERSION_TABLE} (scope, version, applied_at, applied_by) "
            "VALUES ('schema', %s, %s, %s)",
            consistency_level=ConsistencyLevel.EACH_QUORUM,
        )
        by = f"player-sessions {__version__} on {socket.gethostname()} (pid {os.getpid()})"
        with _translated("recording the schema version"):
            _settled(
                lambda: self.session.execute(
                    statement, (version, datetime.now(UTC), by), timeout=DDL_TIMEOUT_S
                )
            )

    def wait_for_agreement(self, wait_s: float) -> bool:
        with _translated("waiting for schema agreement"):
            return bool(self.cluster.control_connection.wait_for_schema_agreement(wait_time=wait_s))


# --- migrate and check ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaState:
    version: int
    replication: Replication
    changes: int  # schema changes this run made (0: the keyspace was up to date)


def migrate(
    admin: SchemaAdmin, requested: Replication | None, default: Replication, create_keyspace: bool, say: Say
) -> SchemaState:
    """Bring the keyspace to SCHEMA_VERSION; `requested` replication (or `default` for a new keyspace)."""
    ks = admin.keyspace
    changes = 0
    current = admin.replication()
    if current is None:
        if not create_keyspace:
            raise SchemaError(
                f"keyspace {ks} does not exist (and --no-create-keyspace is set): create it, "
                "e.g. in your provider's console"
            )
        current = requested or default
        admin.ddl(f"CREATE KEYSPACE IF NOT EXISTS {ks} WITH replication = {current.cql()}")
        say(f"keyspace {ks}: created ({current.describe()})")
        changes += 1
    elif requested is not None and requested != current and create_keyspace:
        admin.ddl(f"ALTER KEYSPACE {ks} WITH replication = {requested.cql()}")
        say(f"keyspace {ks}: replication changed from {current.describe()} to {requested.describe()}")
        say(
            f"  repair needed: run `nodetool repair -full {ks}` on every node, one node at a time, so the "
            "rows already stored reach their new replicas (until then LOCAL_QUORUM reads may miss some)"
        )
        if requested.lowered_from(current):
            say(f"  then `nodetool cleanup {ks}` on every node to drop the rows it no longer owns")
        current = requested
        changes += 1
    else:
        say(f"keyspace {ks}: exists ({current.describe()})")
    for line in current.advice(admin.nodes_per_datacenter()):
        say(f"warning: {line}")

    if admin.create_version_table():
        changes += 1
    recorded = admin.recorded_version()
    if recorded is not None and recorded > SCHEMA_VERSION:
        raise SchemaVersionMismatch(_newer(ks, recorded))
    say(
        f"schema version: {recorded if recorded is not None else 'none recorded'}; "
        f"this release needs {SCHEMA_VERSION}"
    )
    for number, step in enumerate(STEPS, start=1):
        done = step.apply(admin)
        changes += len(done)
        say(f"[{number}/{len(STEPS)}] {step.what}: {'; '.join(done) if done else 'up to date'}")

    nodes = sum(admin.nodes_per_datacenter().values())
    say(f"waiting for schema agreement ({nodes} node{'s' if nodes != 1 else ''}) ...")
    if not admin.wait_for_agreement(SCHEMA_AGREEMENT_WAIT_S):
        raise SchemaError(
            f"the nodes did not agree on the schema within {SCHEMA_AGREEMENT_WAIT_S:.0f}s "
            "(a node down or slow?); `nodetool describecluster` shows the versions; run "
            "`player-sessions migrate` again once every node is up"
        )
    if changes == 0 and recorded == SCHEMA_VERSION:
        # Nothing to write: a start with replicas down (a node being repaired, a datacenter away)
        # must not fail on the EACH_QUORUM write of a version that is already there.
        say(f"schema version {SCHEMA_VERSION} already recorded in {ks}.{VERSION_TABLE}")
    else:
        admin.record_version(SCHEMA_VERSION)
        say(f"schema version {SCHEMA_VERSION} recorded in {ks}.{VERSION_TABLE}")
    return SchemaState(SCHEMA_VERSION, current, changes)


def check(admin: SchemaAdmin) -> SchemaState:
    """The keyspace is at SCHEMA_VERSION, or SchemaVersionMismatch saying what to do."""
    ks = admin.keyspace
    replication = admin.replication()
    if replication is None:
        raise SchemaVersionMismatch(
            f"keyspace {ks} does not exist: run `player-sessions migrate` "
            "(with the same --contact-points/--keyspace) before `serve --no-migrate`"
        )
    recorded = admin.recorded_version()
    if recorded is None:
        raise SchemaVersionMismatch(
            f"keyspace {ks} has no schema version recorded (made by an older release, or a migrate that "
            f"did not finish); this release needs version {SCHEMA_VERSION}: run `player-sessions migrate`"
        )
    if recorded < SCHEMA_VERSION:
        raise SchemaVersionMismatch(
            f"keyspace {ks} is at schema version {recorded}, this release needs {SCHEMA_VERSION}: run "
            "`player-sessions migrate` (older API processes keep working on the upgraded schema)"
        )
    if recorded > SCHEMA_VERSION:
        raise SchemaVersionMismatch(_newer(ks, recorded))
    return SchemaState(recorded, replication, 0)


def _newer(ks: str, recorded: int) -> str:
    return (
        f"keyspace {ks} is at schema version {recorded}, newer than this release knows "
        f"({SCHEMA_VERSION}): run a release that needs version {recorded} (this one would not "
        "know its tables or options)"
    )
