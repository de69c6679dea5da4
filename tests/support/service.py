"""The tests' `serve` processes, run by `player_sessions.service_process` (the benchmark's too): each on a
free port with its log in a folder of the test's, stopped by process group, and gone with the test run
even if it is killed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from player_sessions.service_process import ServiceConfig, ServiceProcess, free_port

__all__ = [
    "SERVICE_LOGS",
    "ServiceProcess",
    "free_port",
    "service_factory",
    "service_process",
    "start_service",
]

# The log of every service started by start_service (and so by service_factory) in this run:
# tests/e2e/test_openapi_truth.py checks the statuses the service really answered, read from their
# access lines, against the OpenAPI document. The fault tests' services, which provoke failures on
# purpose, are made by service_process and not listed.
SERVICE_LOGS: list[Path] = []


def service_process(
    keyspace: str, log_dir: Path, flags: Mapping[str, str] | None = None, *, port: int = 0
) -> ServiceProcess:
    """`serve --keyspace KEYSPACE --rollup-interval 1 FLAGS`, not started; its log is
    `serve-KEYSPACE-PORT.log` in `log_dir`.

    `flags` maps each flag to its value, or to "" for a flag without one (`{"--no-migrate": ""}`);
    they come last, so they override the ones before. Settings not given are serve's defaults (the
    real clock, Cassandra on 127.0.0.1): PLAYER_SESSIONS_* variables of the test run do not reach it.
    """
    args: list[str] = []
    for flag, value in (flags or {}).items():
        args += [flag, value] if value != "" else [flag]
    # Recounts every second: tests read fresh rollups within seconds of ingesting.
    config = ServiceConfig(
        keyspace=keyspace, port=port or free_port(), rollup_interval=1, extra_args=tuple(args)
    )
    return ServiceProcess(config, log_dir / f"serve-{keyspace}-{config.port}.log")


def start_service(keyspace: str, log_dir: Path, flags: Mapping[str, str] | None = None) -> ServiceProcess:
    """`service_process(...)` started and answering /health, its log in SERVICE_LOGS; the caller stops it."""
    service = service_process(keyspace, log_dir, flags)
    SERVICE_LOGS.append(service.log_path)
    return service.start()


@pytest.fixture(scope="session")
def service_factory(
    cassandra_node: str, test_keyspace_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., str]]:
    """`service_factory(name, **settings)` -> the URL of a running service with those settings, in
    keyspace `<the run's keyspace>_<name>`: `clock="..."` is `--clock ...`, `protect_reads=""` is
    `--protect-reads`. One process per distinct name and settings, shared by the whole run."""
    running: dict[tuple[str, tuple[tuple[str, str], ...]], ServiceProcess] = {}
    log_dir = tmp_path_factory.mktemp("serve-logs")

    def get(name: str = "main", **settings: str) -> str:
        key = (name, tuple(sorted(settings.items())))
        if key not in running:
            flags = {f"--{k.replace('_', '-')}": v for k, v in settings.items()}
            running[key] = start_service(f"{test_keyspace_name}_{name}", log_dir, flags)
        return running[key].url

    yield get
    for service in running.values():
        service.stop()
