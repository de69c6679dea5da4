"""End-to-end fixtures: the real `player-sessions serve` in a subprocess, against the real Cassandra.

Each distinct configuration (keyspace, clock, retention) gets its own server process, started once per
test run and reused by every test that asks for the same configuration.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clock import NOW_TEXT

ROOT = Path(__file__).resolve().parents[2]
# Every service log of this test run: tests/e2e/test_openapi_truth.py reads the statuses the service
# actually answered from their access lines.
SERVICE_LOGS: list[Path] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests of a module with ``RUNS_LAST = True`` run after every other test of the run."""
    last = [item for item in items if getattr(getattr(item, "module", None), "RUNS_LAST", False)]
    if last:
        items[:] = [item for item in items if item not in last] + last


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServiceProcess:
    def __init__(self, url: str, proc: subprocess.Popen[bytes], log_path: Path, args: list[str]) -> None:
        self.url = url
        self.proc = proc
        self.log_path = log_path
        self.args = args

    def stop(self) -> None:
        stop_process(self.proc)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful shutdown), then SIGKILL if it has not exited after 15 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start_service(keyspace: str, log_dir: Path, extra: dict[str, str] | None = None,
                  timeout: float = 90.0) -> ServiceProcess:
    port = free_port()
    args = [sys.executable, "-m", "player_sessions.cli", "serve", "--port", str(port),
            "--keyspace", keyspace, "--rollup-interval", "1"]
    for flag, value in (extra or {}).items():
        args += [flag, value] if value != "" else [flag]
    log_path = log_dir / f"serve-{keyspace}-{port}.log"
    SERVICE_LOGS.append(log_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYER_SESSIONS_")}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return ServiceProcess(url, proc, log_path, args)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"serve did not become healthy in {timeout}s:\n{log_path.read_text()}")


@pytest.fixture(scope="session")
def service_factory(cassandra_node: str, test_keyspace_name: str,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """`service_factory(name, **flags)` -> base URL of a running service with those flags."""
    running: dict[tuple[str, tuple[tuple[str, str], ...]], ServiceProcess] = {}
    log_dir = tmp_path_factory.mktemp("serve-logs")

    def get(name: str = "main", **flags: str) -> str:
        key = (name, tuple(sorted(flags.items())))
        if key not in running:
            extra = {f"--{k.replace('_', '-')}": v for k, v in flags.items()}
            running[key] = start_service(f"{test_keyspace_name}_{name}", log_dir, extra)
        return running[key].url

    yield get
    for service in running.values():
        service.stop()



@pytest.fixture(scope="session")
def service(service_factory: Callable[..., str]) -> str:
    """The default service: clock frozen at 2016-12-01T00:00:00Z, one-year retention."""
    return service_factory("main", clock=NOW_TEXT)


@pytest.fixture()
def client(service: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service, timeout=120) as c:
        yield c
