"""Our own `player-sessions serve` processes: started on a free port, stopped by their own pid.

Each service runs in a new session (process group) whose id is its pid, so stopping it signals exactly
the processes it started (uvicorn's workers) and nothing else: SIGTERM, then SIGKILL after a grace
period. Its output goes to a log file whose tail is shown if it fails to come up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from player_sessions.bench.httpload import Connection, HttpError, get_request

__all__ = ["ServiceConfig", "ServiceError", "ServiceProcess", "free_port"]


_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys\n"
    "try:\n"
    "    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "except (OSError, AttributeError):\n"
    "    pass\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


class ServiceError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServiceConfig:
    keyspace: str
    clock: str
    contact_points: str = "127.0.0.1"
    cql_port: int = 9042
    workers: int = 1
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port
    rollup_interval: float | None = None
    extra_args: tuple[str, ...] = ()  # more `serve` flags, e.g. ("--ingest-budget-bytes", "134217728")

    def command(self, port: int) -> list[str]:
        command = [
            "python", "-m", "player_sessions.cli", "serve",
            "--host", self.host, "--port", str(port), "--keyspace", self.keyspace,
            "--clock", self.clock, "--workers", str(self.workers),
            "--contact-points", self.contact_points, "--cql-port", str(self.cql_port),
        ]
        if self.rollup_interval is not None:
            command += ["--rollup-interval", str(self.rollup_interval)]
        return command + list(self.extra_args)


def group_members(pgid: int, only: int | None = None) -> dict[int, int]:
    """{pid: start time in ticks} of the live processes of process group `pgid`."""
    members: dict[int, int] = {}
    pids = [only] if only is not None else [int(e.name) for e in os.scandir("/proc") if e.name.isdigit()]
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2:].split()
        # state(0) ppid(1) pgrp(2) ... starttime(19)
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members[pid] = int(fields[19])
    return members


class ServiceProcess:
    """`with ServiceProcess(config, log_path) as svc:` starts it and waits for /health; always stops."""

    def __init__(self, config: ServiceConfig, log_path: Path) -> None:
        self.config = config
        self.log_path = log_path
        self.port = config.port or free_port(config.host)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServiceError("the service is not running")
        return self._proc.pid

    @property
    def command_line(self) -> str:
        return " ".join(self.config.command(self.port))

    def start(self, timeout: float = 180.0) -> ServiceProcess:
        # Flags only: PLAYER_SESSIONS_* from the caller's environment must not change what we measure.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PLAYER_SESSIONS_")}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = self.config.command(self.port)
        # The service gets SIGTERM if this process dies without stopping it (even SIGKILL): the
        # prelude sets PR_SET_PDEATHSIG, which survives the exec into the real command.
        launcher = [sys.executable, "-c", _DIE_WITH_PARENT, sys.executable, *command[1:]]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(  # our own fixed command line, no shell
                launcher, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        probe = get_request(self.host, self.port, "/health")
        while True:
            if self._proc.poll() is not None:
                raise ServiceError(f"the service exited with {self._proc.returncode}:\n{self.log_tail()}")
            conn = Connection(self.host, self.port, timeout=5)
            try:
                status, _ = conn.request(probe)
                if status == 200:
                    return self
            except (OSError, HttpError):
                pass
            finally:
                conn.close()
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(f"the service did not answer /health within {timeout:.0f}s:\n"
                                   f"{self.log_tail()}")
            time.sleep(0.25)

    def wait_for_rollup_pass(self, timeout: float = 300.0) -> float:
        """Wait until the service has finished its first background rollup pass (which recounts what
        the previous scenario wrote: not the steady state a low-load cell is about); returns the
        seconds waited. From /metrics: player_sessions_rollup_pass_duration_seconds_count."""
        began = time.monotonic()
        probe = get_request(self.host, self.port, "/metrics")
        while time.monotonic() - began < timeout:
            conn = Connection(self.host, self.port, timeout=10)
            try:
                status, body = conn.request(probe)
            except (OSError, HttpError):
                status, body = 0, b""
            finally:
                conn.close()
            if status == 200 and _rollup_passes(body) >= 1:
                break
            time.sleep(0.25)
        return time.monotonic() - began

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace: float = 15.0) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        members = group_members(proc.pid)  # recorded while the leader is alive (its pid is ours)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)  # the group we created: the service and its workers
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # A worker may outlive the master by a moment: kill exactly those we recorded (same pid, same
        # start time, same group), never a process that merely reuses a pid.
        for pid, started in members.items():
            if pid != proc.pid and group_members(proc.pid, only=pid).get(pid) == started:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _rollup_passes(metrics_text: bytes) -> float:
    for line in metrics_text.decode(errors="replace").splitlines():
        if line.startswith("player_sessions_rollup_pass_duration_seconds_count"):
            return float(line.split()[-1])
    return 0.0
