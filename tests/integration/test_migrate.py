"""`player-sessions migrate` against the real Cassandra, as real processes: a fresh keyspace, a repeated
run, several runs at once, and a keyspace made by the release before versioned migrations."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from player_sessions.store import schema
from player_sessions.store.migrations import SCHEMA_VERSION, VERSION_TABLE, table_id
from tests.support import ROOT
from tests.support.schema import clean_env, create_previous_schema, migrate_command

TABLES = {*schema.TABLES, VERSION_TABLE}


@pytest.fixture()
def migrate(cassandra_node: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(keyspace: str, *flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            migrate_command(cassandra_node, keyspace, *flags),
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=clean_env(),
            timeout=180,
        )

    return run


@pytest.fixture()
def keyspace(cql: Any, test_keyspace_name: str) -> Iterator[str]:
    name = f"{test_keyspace_name}_m{uuid.uuid4().hex[:6]}"
    yield name
    cql.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def tables_of(cql: Any, keyspace: str) -> dict[str, Any]:
    rows = cql.execute("SELECT * FROM system_schema.tables WHERE keyspace_name = %s", (keyspace,))
    return {r.table_name: r for r in rows}


def columns_of(cql: Any, keyspace: str) -> set[tuple[str, str, str, str]]:
    rows = cql.execute(
        "SELECT table_name, column_name, type, kind FROM system_schema.columns WHERE keyspace_name = %s",
        (keyspace,),
    )
    return {(r.table_name, r.column_name, r.type, r.kind) for r in rows}


def versions_of(cql: Any, keyspace: str) -> list[int]:
    return [
        r.version
        for r in cql.execute(f"SELECT version FROM {keyspace}.{VERSION_TABLE} WHERE scope = 'schema'")
    ]


def options_of(table: Any) -> tuple[Any, ...]:
    return (dict(table.compaction), table.gc_grace_seconds, table.default_time_to_live)


def test_fresh_migrate_creates_the_keyspace_tables_and_version(
    cql: Any, keyspace: str, migrate: Callable[..., Any]
) -> None:
    done = migrate(keyspace)
    assert done.returncode == 0, done.stderr
    assert f"keyspace {keyspace}: created (NetworkTopologyStrategy, datacenter1: 1)" in done.stdout
    assert "warning: replication factor 1 in datacenter1" in done.stdout
    assert f"is at schema version {SCHEMA_VERSION}" in done.stdout
    tables = tables_of(cql, keyspace)
    assert set(tables) == TABLES
    assert all(tables[name].id == table_id(keyspace, name) for name in TABLES)
    assert versions_of(cql, keyspace) == [SCHEMA_VERSION]
    applied = cql.execute(f"SELECT applied_by FROM {keyspace}.{VERSION_TABLE}").one().applied_by
    assert applied.startswith("player-sessions ")


def test_a_repeated_migrate_changes_nothing(cql: Any, keyspace: str, migrate: Callable[..., Any]) -> None:
    assert migrate(keyspace).returncode == 0
    before = {name: options_of(t) for name, t in tables_of(cql, keyspace).items()}
    again = migrate(keyspace)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("up to date") == 3
    assert "(0 changes" in again.stdout
    assert {name: options_of(t) for name, t in tables_of(cql, keyspace).items()} == before
    assert versions_of(cql, keyspace) == [SCHEMA_VERSION]


def test_concurrent_migrates_all_succeed_and_make_one_schema(
    cql: Any, keyspace: str, cassandra_node: str
) -> None:
    procs = [
        subprocess.Popen(
            migrate_command(cassandra_node, keyspace),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=clean_env(),
        )
        for _ in range(4)
    ]
    outcomes = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    assert [code for code, _, _ in outcomes] == [0, 0, 0, 0], outcomes
    tables = tables_of(cql, keyspace)
    assert set(tables) == TABLES
    assert all(tables[name].id == table_id(keyspace, name) for name in TABLES)
    assert versions_of(cql, keyspace) == [SCHEMA_VERSION]
    # The tables work: a write and a read of the schema's own tables.
    cql.execute(f"INSERT INTO {keyspace}.country_hours (country, hour) VALUES ('FI', 0)")
    assert cql.execute(f"SELECT count(*) FROM {keyspace}.country_hours").one()[0] == 1


def test_migrate_upgrades_the_previous_schema_to_what_a_fresh_one_is(
    cql: Any, keyspace: str, migrate: Callable[..., Any]
) -> None:
    create_previous_schema(cql, keyspace)
    cql.execute(
        f"INSERT INTO {keyspace}.player_events (player_id, ts, session_id, is_start, country) "
        "VALUES ('p1', 0, 4a0c43c9-c43a-42ff-ba55-67563dfa35d4, true, 'FI')"
    )
    done = migrate(keyspace)
    assert done.returncode == 0, done.stderr
    assert "schema version: none recorded" in done.stdout
    assert f"keyspace {keyspace}: exists" in done.stdout

    fresh = f"{keyspace}_fresh"
    try:
        assert migrate(fresh).returncode == 0
        upgraded, made = tables_of(cql, keyspace), tables_of(cql, fresh)
        assert set(upgraded) == set(made) == TABLES
        assert {n: options_of(t) for n, t in upgraded.items()} == {n: options_of(t) for n, t in made.items()}
        assert columns_of(cql, keyspace) == columns_of(cql, fresh)
    finally:
        cql.execute(f"DROP KEYSPACE IF EXISTS {fresh}", timeout=60)
    assert versions_of(cql, keyspace) == [SCHEMA_VERSION]
    assert (
        cql.execute(f"SELECT country FROM {keyspace}.player_events WHERE player_id = 'p1'").one().country
        == "FI"
    )


def test_migrate_restores_table_options_that_differ_from_the_declared_ones(
    cql: Any, keyspace: str, migrate: Callable[..., Any]
) -> None:
    assert migrate(keyspace).returncode == 0
    declared = tables_of(cql, keyspace)["player_events"].gc_grace_seconds
    cql.execute(f"ALTER TABLE {keyspace}.player_events WITH gc_grace_seconds = 1234", timeout=60)
    done = migrate(keyspace)
    assert done.returncode == 0, done.stderr
    assert f"player_events: gc_grace_seconds 1234 -> {declared}" in done.stdout
    assert tables_of(cql, keyspace)["player_events"].gc_grace_seconds == declared


def test_changing_the_replication_alters_the_keyspace_and_says_to_repair(
    cql: Any, keyspace: str, migrate: Callable[..., Any]
) -> None:
    assert migrate(keyspace, "--replication", "datacenter1:1").returncode == 0
    done = migrate(keyspace, "--replication", "1")
    assert done.returncode == 0, done.stderr
    assert "replication changed from NetworkTopologyStrategy, datacenter1: 1 to SimpleStrategy" in done.stdout
    assert f"nodetool repair -full {keyspace}" in done.stdout
    replication = (
        cql.execute("SELECT replication FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,))
        .one()
        .replication
    )
    assert replication["class"].endswith("SimpleStrategy") and replication["replication_factor"] == "1"
    unchanged = migrate(keyspace)  # without --replication an existing keyspace keeps its own
    assert "exists (SimpleStrategy, replication factor 1)" in unchanged.stdout


def test_an_unknown_datacenter_is_refused_clearly(keyspace: str, migrate: Callable[..., Any]) -> None:
    done = migrate(keyspace, "--replication", "nowhere:3")
    assert done.returncode == 1
    assert "nowhere" in done.stderr and "Traceback" not in done.stderr


def test_migrate_leaves_a_newer_schema_alone(cql: Any, keyspace: str, migrate: Callable[..., Any]) -> None:
    assert migrate(keyspace).returncode == 0
    cql.execute(
        f"INSERT INTO {keyspace}.{VERSION_TABLE} (scope, version) VALUES ('schema', %s)",
        (SCHEMA_VERSION + 1,),
    )
    cql.execute(f"ALTER TABLE {keyspace}.player_events WITH gc_grace_seconds = 1234", timeout=60)
    done = migrate(keyspace)
    assert done.returncode == 1
    assert f"schema version {SCHEMA_VERSION + 1}, newer than this release knows" in done.stderr
    assert tables_of(cql, keyspace)["player_events"].gc_grace_seconds == 1234  # not undone
