"""The pure parts of migrate: replication parsing and advice, declared table options, the version guard."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from player_sessions.config import Settings
from player_sessions.store import migrations, schema
from player_sessions.store.migrations import SCHEMA_FINGERPRINT, SCHEMA_VERSION, declared_options, table_id
from player_sessions.store.replication import Replication


def test_a_bare_number_is_simple_strategy() -> None:
    replication = Replication.parse("3")
    assert replication == Replication.simple(3)
    assert replication.cql() == "{'class': 'SimpleStrategy', 'replication_factor': 3}"


def test_datacenter_pairs_are_network_topology_strategy_in_any_order() -> None:
    replication = Replication.parse("dc2:3, dc1:2")
    assert replication == Replication.per_datacenter({"dc1": 2, "dc2": 3})
    assert replication.cql() == "{'class': 'NetworkTopologyStrategy', 'dc1': 2, 'dc2': 3}"


@pytest.mark.parametrize("text", ["", "0", "11", "dc1", "dc1:", "dc1:x", "dc1:3,dc1:3", "dc 1:3", "3,dc1:3"])
def test_malformed_replication_is_refused_with_the_rule(text: str) -> None:
    with pytest.raises(ValueError, match=r"replication factor|datacenter"):
        Replication.parse(text)


def test_replication_read_back_from_cassandra_equals_the_parsed_one() -> None:
    assert Replication.from_cassandra(
        {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}
    ) == Replication.parse("3")
    assert Replication.from_cassandra(
        {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy", "dc2": "3", "dc1": "3/1"}
    ) == Replication.parse("dc1:3,dc2:3")


def test_a_factor_below_three_is_always_said_plainly() -> None:
    [line] = Replication.parse("datacenter1:1").advice({"datacenter1": 1})
    assert "replication factor 1 in datacenter1 (1 node)" in line
    assert "--replication datacenter1:3" in line
    assert Replication.parse("dc1:3,dc2:3").advice({"dc1": 3, "dc2": 4}) == []


def test_more_replicas_than_nodes_and_simple_strategy_across_datacenters_are_warned() -> None:
    lines = Replication.parse("dc1:3").advice({"dc1": 1})
    assert any("but 1 node there: writes at LOCAL_QUORUM fail" in line for line in lines)
    lines = Replication.parse("3").advice({"dc1": 3, "dc2": 3})
    assert any("SimpleStrategy ignores datacenters" in line and "dc1:3,dc2:3" in line for line in lines)


def test_lowering_a_factor_is_told_apart_from_raising_it() -> None:
    assert Replication.parse("dc1:1").lowered_from(Replication.parse("dc1:3"))
    assert not Replication.parse("dc1:3,dc2:3").lowered_from(Replication.parse("dc1:3"))


def test_settings_refuse_a_malformed_replication() -> None:
    assert Settings(replication="dc1:3,dc2:3").replication == "dc1:3,dc2:3"
    with pytest.raises(ValidationError, match="datacenter:factor pairs"):
        Settings(replication="dc1=3")


def test_every_table_declares_compaction_and_gc_grace_but_not_clustering_order() -> None:
    for name, cql in schema.TABLES.items():
        options = {o.name: o for o in declared_options(cql)}
        assert {"compaction", "gc_grace_seconds"} <= set(options), name
        assert "clustering" not in " ".join(options), name
        assert isinstance(options["compaction"].value, dict)


def test_declared_options_compare_with_what_cassandra_reports() -> None:
    [compaction, gc_grace] = declared_options(
        "CREATE TABLE {ks}.t (a int PRIMARY KEY) WITH CLUSTERING ORDER BY (b DESC) AND "
        "compaction = {'class': 'LeveledCompactionStrategy'} AND gc_grace_seconds = 86400"
    )
    assert compaction.matches(
        {
            "class": "org.apache.cassandra.db.compaction.LeveledCompactionStrategy",
            "max_threshold": "32",
            "min_threshold": "4",
        }
    )
    assert not compaction.matches({"class": "SizeTieredCompactionStrategy"})
    assert not compaction.matches({"class": "LeveledCompactionStrategy", "sstable_size_in_mb": "10"})
    assert gc_grace.matches(86400) and not gc_grace.matches(10800)
    assert gc_grace.text == "gc_grace_seconds = 86400"


def test_table_ids_are_the_same_from_every_process_and_differ_per_keyspace() -> None:
    assert table_id("ks", "player_events") == table_id("ks", "player_events")
    assert table_id("ks", "player_events") != table_id("ks2", "player_events")


def test_the_schema_version_is_bumped_with_the_schema() -> None:
    assert migrations.fingerprint() == SCHEMA_FINGERPRINT, (
        f"schema.py changed: add 1 to SCHEMA_VERSION (now {SCHEMA_VERSION}) in store/migrations.py and set "
        f"SCHEMA_FINGERPRINT = {migrations.fingerprint()!r}, so `serve --no-migrate` asks for a migrate"
    )
    assert max(step.version for step in migrations.STEPS) <= SCHEMA_VERSION
