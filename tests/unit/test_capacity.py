from __future__ import annotations

import argparse

import pytest

from player_sessions.capacity import constants as c
from player_sessions.capacity.cli import _replication, add_arguments, render, run
from player_sessions.capacity.model import (
    Assumptions,
    compaction_windows,
    cores_needed,
    disk_bytes,
    events_per_day,
    largest_partitions,
    plan,
    round_up_to,
)


def test_a_hundred_thousand_events_a_second_is_8_64_billion_a_day() -> None:
    assert events_per_day(100_000) == 8_640_000_000


def test_disk_grows_with_events_times_replication() -> None:
    assert disk_bytes(1_000_000, 3, 100.0) == 300_000_000


def test_cores_needed_counts_cpu_time_at_the_target_busy_share() -> None:
    # 10,000 events/s at 50 µs = half a core; allowed to run cores at 50 %: one core.
    assert cores_needed(10_000, 50.0, 0.5) == pytest.approx(1.0)


def test_nodes_round_up_to_a_multiple_of_the_replication_factor() -> None:
    assert round_up_to(4, 3) == 6
    assert round_up_to(6, 3) == 6
    assert round_up_to(0.5, 3) == 3


def test_a_year_has_53_seven_day_windows() -> None:
    assert compaction_windows(365) == 53
    assert compaction_windows(7) == 1


def test_partition_check_flags_rows_over_the_limit() -> None:
    hour, minute = largest_partitions(starts_per_second=10.0, top_country_share=0.5)
    assert (hour.table, hour.rows, hour.over_limit) == ("starts_by_country_hour", 18_000, False)
    assert (minute.table, minute.rows) == ("starts_by_minute", 150)
    busy_hour, _ = largest_partitions(starts_per_second=1_000.0, top_country_share=0.5)
    assert busy_hour.rows == 1_800_000 and busy_hour.over_limit


def test_plan_takes_the_larger_of_cpu_and_disk_nodes() -> None:
    small_disk = plan(Assumptions(events_per_second=100_000, disk_per_node_gb=1_000))
    big_disk = plan(Assumptions(events_per_second=100_000, disk_per_node_gb=1_000_000))
    assert small_disk.nodes_per_dc == round_up_to(small_disk.nodes_for_disk, 3)
    assert small_disk.nodes_for_disk > small_disk.nodes_for_cpu
    assert big_disk.nodes_per_dc == round_up_to(big_disk.nodes_for_cpu, 3)


def test_plan_uses_the_measured_costs_by_default() -> None:
    p = plan(Assumptions(events_per_second=1_000, replication=1, retention_days=1))
    assert p.disk_tb_per_dc == pytest.approx(86_400_000 * c.DISK_BYTES_PER_EVENT_REPLICA.value / 1e12)
    assert p.nodes_per_dc == 1
    assert p.api_processes == 2  # never fewer than two: one can be restarted while the other serves


def test_replication_doubles_cassandra_cpu_and_disk_not_api_processes() -> None:
    one = plan(Assumptions(events_per_second=200_000, replication=1, disk_per_node_gb=1e9))
    three = plan(Assumptions(events_per_second=200_000, replication=3, disk_per_node_gb=1e9))
    assert three.disk_tb_per_dc == pytest.approx(3 * one.disk_tb_per_dc)
    assert three.nodes_for_cpu >= 3 * one.nodes_for_cpu - 2
    assert three.api_processes == one.api_processes


@pytest.mark.parametrize(
    "bad",
    [
        {"events_per_second": 0},
        {"events_per_second": 1, "cpu_target": 0},
        {"events_per_second": 1, "disk_fill": 1.5},
        {"events_per_second": 1, "peak_factor": 0.5},
    ],
)
def test_impossible_assumptions_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Assumptions(**bad)  # type: ignore[arg-type]


def test_replication_flag_takes_a_number_or_one_rf_per_datacentre() -> None:
    assert _replication("3") == 3
    assert _replication("dc1:3,dc2:3") == 3
    with pytest.raises(argparse.ArgumentTypeError):
        _replication("dc1:3,dc2:2")


def test_render_names_nodes_processes_windows_and_partitions() -> None:
    text = render(plan(Assumptions(events_per_second=100_000)))
    assert "8.64 billion a day" in text
    assert "Cassandra nodes per data centre" in text
    assert "API processes" in text and "53 windows" in text
    assert "starts_by_country_hour" in text and "OVER the limit" in text


def test_cli_prints_a_plan_and_refuses_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert (
        run(
            parser.parse_args(
                ["--events-per-second", "5000", "--replication", "dc1:3,dc2:3", "--datacenters", "2"]
            )
        )
        == 0
    )
    assert "RF 3 in each of 2 data centre(s)" in capsys.readouterr().out
    assert run(parser.parse_args(["--events-per-second", "5000", "--cpu-target", "2"])) == 2
    assert "error:" in capsys.readouterr().err


def test_player_sessions_capacity_runs_from_the_main_command(capsys: pytest.CaptureFixture[str]) -> None:
    from player_sessions.cli import main

    assert main(["capacity", "--events-per-second", "100000", "--replication", "3"]) == 0
    out = capsys.readouterr().out
    assert "8.64 billion a day" in out and "Cassandra nodes per data centre" in out
    with pytest.raises(SystemExit) as exited:
        main(["capacity", "--help"])
    assert exited.value.code == 0
    assert "--events-per-second" in capsys.readouterr().out
