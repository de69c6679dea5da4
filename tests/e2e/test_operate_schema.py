"""`serve --no-migrate` starts only on a keyspace at this release's schema version, and refuses an
absent, unversioned, older or newer one at once with what to run; `serve` (default) migrates."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from player_sessions.serve import EXIT_SCHEMA_MISMATCH
from player_sessions.store.migrations import SCHEMA_VERSION, VERSION_TABLE
from tests.support import ROOT
from tests.support.schema import clean_env, create_previous_schema, migrate_command
from tests.support.service import start_service


@pytest.fixture()
def keyspace(cql: Any, test_keyspace_name: str) -> Iterator[str]:
    name = f"{test_keyspace_name}_s{uuid.uuid4().hex[:6]}"
    yield name
    cql.execute(f"DROP KEYSPACE IF EXISTS {name}", timeout=60)


def serve_no_migrate(cassandra_node: str, keyspace: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "player_sessions.cli",
            "serve",
            "--no-migrate",
            "--port",
            "1",
            "--contact-points",
            cassandra_node,
            "--keyspace",
            keyspace,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=60,
    )


def assert_refused(done: subprocess.CompletedProcess[str], why: str) -> None:
    assert done.returncode == EXIT_SCHEMA_MISMATCH, done.stderr
    assert why in done.stderr
    assert "run `player-sessions migrate`" in done.stderr or "newer than this release" in done.stderr
    assert "Traceback" not in done.stderr


def migrate(cassandra_node: str, keyspace: str) -> None:
    done = subprocess.run(
        migrate_command(cassandra_node, keyspace),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def test_no_migrate_refuses_a_keyspace_that_does_not_exist(
    cql: Any, cassandra_node: str, keyspace: str
) -> None:
    assert_refused(serve_no_migrate(cassandra_node, keyspace), f"keyspace {keyspace} does not exist")
    assert (
        cql.execute(
            "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s", (keyspace,)
        ).one()
        is None
    )  # and made no DDL


def test_no_migrate_refuses_the_previous_releases_unversioned_schema(
    cql: Any, cassandra_node: str, keyspace: str
) -> None:
    create_previous_schema(cql, keyspace)
    assert_refused(serve_no_migrate(cassandra_node, keyspace), "has no schema version recorded")


def test_no_migrate_refuses_an_older_and_a_newer_version(
    cql: Any, cassandra_node: str, keyspace: str
) -> None:
    migrate(cassandra_node, keyspace)
    cql.execute(
        f"DELETE FROM {keyspace}.{VERSION_TABLE} WHERE scope = 'schema' AND version = %s", (SCHEMA_VERSION,)
    )
    cql.execute(
        f"INSERT INTO {keyspace}.{VERSION_TABLE} (scope, version) VALUES ('schema', %s)",
        (SCHEMA_VERSION - 1,),
    )
    assert_refused(
        serve_no_migrate(cassandra_node, keyspace),
        f"is at schema version {SCHEMA_VERSION - 1}, this release needs {SCHEMA_VERSION}",
    )
    cql.execute(
        f"INSERT INTO {keyspace}.{VERSION_TABLE} (scope, version) VALUES ('schema', %s)",
        (SCHEMA_VERSION + 1,),
    )
    assert_refused(
        serve_no_migrate(cassandra_node, keyspace),
        f"is at schema version {SCHEMA_VERSION + 1}, newer than this release knows",
    )


def test_no_migrate_serves_a_migrated_keyspace_without_changing_it(
    cql: Any, cassandra_node: str, keyspace: str, tmp_path: Path
) -> None:
    migrate(cassandra_node, keyspace)
    service = start_service(keyspace, tmp_path, {"--no-migrate": ""})
    try:
        assert httpx.get(f"{service.url}/health/ready", timeout=10).status_code == 200
    finally:
        service.stop()
    log = service.log_path.read_text()
    assert f"keyspace {keyspace} is at schema version {SCHEMA_VERSION}" in log
    assert "migrating" not in log


def test_plain_serve_migrates_an_unversioned_keyspace(cql: Any, keyspace: str, tmp_path: Path) -> None:
    create_previous_schema(cql, keyspace)
    service = start_service(keyspace, tmp_path)
    service.stop()
    assert [r.version for r in cql.execute(f"SELECT version FROM {keyspace}.{VERSION_TABLE}")] == [
        SCHEMA_VERSION
    ]
